// Package translate converts OpenAI-format requests into each provider's wire format and
// provider responses back into OpenAI format. It is pure code: bytes and parsed requests
// in; bytes, headers and a Usage value out. It imports no gRPC, no Envoy types and no
// storage, so every mapping is tested with plain values and golden files.
package translate

import (
	"fmt"
	"net/url"
	"sort"
)

// Endpoint is the client API operation a request called.
type Endpoint int

// The endpoints tollgate serves.
const (
	ChatCompletions Endpoint = iota + 1 // POST /v1/chat/completions
	Completions                         // POST /v1/completions
	Embeddings                          // POST /v1/embeddings
	Messages                            // POST /v1/messages (Anthropic clients)
	CountTokens                         // POST /v1/messages/count_tokens (Anthropic clients)
)

// Native reports whether clients of ep speak a provider's own format (Anthropic's Messages
// API) rather than OpenAI's: bodies and streams pass through, and errors take that
// provider's shape.
func (e Endpoint) Native() bool { return e == Messages || e == CountTokens }

// String names the endpoint as its path after /v1/ does.
func (e Endpoint) String() string {
	switch e {
	case ChatCompletions:
		return "chat/completions"
	case Completions:
		return "completions"
	case Embeddings:
		return "embeddings"
	case Messages:
		return "messages"
	case CountTokens:
		return "messages/count_tokens"
	}
	return fmt.Sprintf("Endpoint(%d)", int(e))
}

// Target is where one attempt goes: a deployment, as translation needs it.
type Target struct {
	Provider     string
	Model        string   // the provider's model name
	Base         *url.URL // api_base, parsed
	APIKey       string
	APIVersion   string
	Organization string
	ExtraHeaders map[string]string
	// AWS is what bedrock/ deployments sign requests with; nil for other providers.
	AWS *AWSCredentials
	// Google is where vertex_ai/ deployments send requests and the token they send; nil
	// for other providers.
	Google *GoogleCredentials
}

// AWSCredentials are the AWS access key and region a bedrock/ deployment signs its
// requests with (SigV4), resolved by config from aws_* settings or the AWS_* environment.
type AWSCredentials struct {
	Region          string
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string // temporary credentials only
}

// GoogleCredentials are a vertex_ai/ deployment's project and location (vertex_project,
// vertex_location) and a current OAuth2 access token for its service account
// (vertex_credentials). The caller keeps the token fresh with a caching token source;
// translation never fetches one, so it stays free of network calls.
type GoogleCredentials struct {
	Project     string
	Location    string // "" means us-central1, LiteLLM's default
	AccessToken string
}

// Header is one header to set on the upstream request.
type Header struct{ Key, Value string }

// Upstream is one attempt's request as the provider expects it.
type Upstream struct {
	// Path is the request path with its query (":path").
	Path string
	// Authority is the provider's host[:port] (":authority").
	Authority string
	// Headers are set on the request, replacing any value already there. Credential
	// headers not listed here are removed (see CredentialHeaders).
	Headers []Header
	// Body is the translated body; nil means the client's body is sent unchanged.
	Body []byte
}

// CredentialHeaders are every header any provider reads credentials or API options from.
// Each attempt removes those its provider does not set, because Envoy shares one header
// map between attempts and a fallback must not carry the previous provider's key.
var CredentialHeaders = []string{
	"authorization", "api-key", "x-api-key", "openai-organization", "anthropic-version",
	"anthropic-beta", "x-goog-api-key", "x-amz-date", "x-amz-security-token",
	"x-amz-content-sha256",
}

// Usage is what a response says it consumed.
type Usage struct {
	PromptTokens        int
	CompletionTokens    int
	CachedTokens        int // prompt tokens read from the provider's cache
	CacheCreationTokens int // prompt tokens written to the provider's cache
	ReasoningTokens     int // completion tokens spent on reasoning
	Known               bool
}

// Translator converts between OpenAI format and one provider family's format.
type Translator interface {
	// Request turns an OpenAI-format request body for ep into the provider's request for
	// t. Errors a client caused are *APIError.
	Request(ep Endpoint, body []byte, t *Target) (*Upstream, error)
	// Response turns a whole provider response (any status) into the OpenAI-format body
	// for ep. Error statuses become OpenAI error JSON.
	Response(ep Endpoint, status int, body []byte) ([]byte, Usage, error)
	// Stream starts translating one streamed response body.
	Stream(ep Endpoint, o StreamOptions) Stream
}

// StreamOptions are the client's choices that shape a translated stream.
type StreamOptions struct {
	// IncludeUsage says the client asked for stream_options.include_usage: the stream
	// ends with OpenAI's usage chunk (empty choices, usage) before [DONE] only then.
	// Usage() reports what the provider said either way, for metering.
	IncludeUsage bool
}

// Stream translates one streamed response as it arrives, chunk by chunk, carrying events
// split across chunks over to the next call. It never buffers the whole stream.
type Stream interface {
	// Next returns the OpenAI-format bytes for chunk; end is true for the last chunk.
	Next(chunk []byte, end bool) ([]byte, error)
	// Usage is what the stream reported so far.
	Usage() Usage
}

// Spec describes one LiteLLM provider prefix.
type Spec struct {
	Name string
	// DefaultBase is the provider's public API base; "" means api_base is required.
	DefaultBase string
	// KeyRequired says an api_key must be configured.
	KeyRequired bool
	// Endpoints the provider serves.
	Endpoints []Endpoint
	// StreamUsage says the provider honours stream_options.include_usage, as
	// OpenAI-compatible servers do: the router stage asks it for the usage chunk of every
	// stream so that spend is exact, and its Stream drops that chunk again when the client
	// did not ask for it. Other providers report usage in their own stream formats.
	StreamUsage bool
	Translator
}

// Lookup returns the spec for a provider prefix.
func Lookup(provider string) (*Spec, bool) {
	s, ok := registry[provider]
	return s, ok
}

// LookupModel returns the spec for a deployment of model under a provider prefix: the
// provider's, except where the provider serves the model in another family's format.
// Vertex AI serves Claude models (vertex_ai/claude-*) in Anthropic's Messages format, and
// Bedrock serves Claude models (bedrock/anthropic.claude-*) to native Messages clients
// through InvokeModel in that format too.
func LookupModel(provider, model string) (*Spec, bool) {
	switch {
	case provider == "vertex_ai" && isVertexAnthropic(model):
		return vertexAnthropicSpec, true
	case provider == "bedrock" && isBedrockAnthropic(model):
		return bedrockAnthropicSpec, true
	}
	return Lookup(provider)
}

// Providers lists the known provider prefixes, sorted.
func Providers() []string {
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Serves reports whether the provider serves ep.
func (s *Spec) Serves(ep Endpoint) bool {
	for _, e := range s.Endpoints {
		if e == ep {
			return true
		}
	}
	return false
}
