package translate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
)

// azureAPIVersion is sent when an azure/ deployment sets no api_version: the newest GA
// version of the Azure OpenAI data-plane API that serves chat, completions and
// embeddings on the deployments path.
const azureAPIVersion = "2024-10-21"

// azureAIAPIVersion is sent when an azure_ai/ deployment sets no api_version: the Azure AI
// model inference API version its /models endpoints (Foundry) require and its serverless
// endpoints accept.
const azureAIAPIVersion = "2024-05-01-preview"

// openAI translates for servers that speak the OpenAI API themselves: OpenAI, Azure
// OpenAI, Ollama's /v1, vLLM and the OpenAI-compatible hosted providers. Requests change
// only in "model", path, host and credentials; responses pass through, with errors
// normalised and usage read.
type openAI struct {
	azure   bool // deployment in the path, api-version query, api-key header
	azureAI bool // Azure AI model inference: model in the body, api-version query, api-key and bearer
	ollama  bool // api_base is the server root; the OpenAI API lives under /v1
}

func (o openAI) Request(ep Endpoint, body []byte, t *Target) (*Upstream, error) {
	model, err := json.Marshal(t.Model)
	if err != nil {
		return nil, fmt.Errorf("encode model name: %w", err)
	}
	up := &Upstream{
		Path:      o.path(ep, t),
		Authority: t.Base.Host,
		Body:      setTopLevel(body, "model", model),
	}
	switch {
	case o.azure:
		up.Headers = append(up.Headers, Header{"api-key", t.APIKey})
	case o.azureAI:
		// Foundry's /models endpoints read api-key, serverless endpoints the bearer
		// token; Azure's own inference SDK sends both.
		up.Headers = append(up.Headers, Header{"api-key", t.APIKey}, Header{"authorization", "Bearer " + t.APIKey})
	case t.APIKey != "":
		up.Headers = append(up.Headers, Header{"authorization", "Bearer " + t.APIKey})
	}
	if t.Organization != "" {
		up.Headers = append(up.Headers, Header{"openai-organization", t.Organization})
	}
	for k, v := range t.ExtraHeaders {
		up.Headers = append(up.Headers, Header{strings.ToLower(k), v})
	}
	return up, nil
}

func (o openAI) path(ep Endpoint, t *Target) string {
	base := strings.TrimSuffix(t.Base.Path, "/")
	suffix := "/" + ep.String()
	switch {
	case o.azure:
		base = strings.TrimSuffix(base, "/openai")
		version := t.APIVersion
		if version == "" {
			version = azureAPIVersion
		}
		return base + "/openai/deployments/" + url.PathEscape(t.Model) + suffix +
			"?api-version=" + url.QueryEscape(version)
	case o.azureAI:
		version := t.APIVersion
		if version == "" {
			version = azureAIAPIVersion
		}
		return base + suffix + "?api-version=" + url.QueryEscape(version)
	case o.ollama && !strings.HasSuffix(base, "/v1"):
		base += "/v1"
	}
	return base + suffix
}

func (openAI) Response(ep Endpoint, status int, body []byte) ([]byte, Usage, error) {
	if status >= 400 {
		return openAIError(status, body).JSON(), Usage{}, nil
	}
	u, err := openAIUsage(body)
	if err != nil {
		return nil, Usage{}, err
	}
	return body, u, nil
}

// openAIUsage reads the "usage" member of a response or stream chunk.
func openAIUsage(doc []byte) (Usage, error) {
	start, end, ok := topLevelValue(doc, "usage")
	if !ok || string(doc[start:end]) == "null" {
		return Usage{}, nil
	}
	var u struct {
		PromptTokens        int `json:"prompt_tokens"`
		CompletionTokens    int `json:"completion_tokens"`
		PromptTokensDetails struct {
			CachedTokens int `json:"cached_tokens"`
		} `json:"prompt_tokens_details"`
		CompletionTokensDetails struct {
			ReasoningTokens int `json:"reasoning_tokens"`
		} `json:"completion_tokens_details"`
	}
	if err := json.Unmarshal(doc[start:end], &u); err != nil {
		return Usage{}, fmt.Errorf("provider usage: %w", err)
	}
	return Usage{
		PromptTokens:     u.PromptTokens,
		CompletionTokens: u.CompletionTokens,
		CachedTokens:     u.PromptTokensDetails.CachedTokens,
		ReasoningTokens:  u.CompletionTokensDetails.ReasoningTokens,
		Known:            true,
	}, nil
}

// openAIError turns an error response from an OpenAI-compatible server into an APIError.
// OpenAI's own errors keep their message, type and code; Ollama's and vLLM's
// {"error": "text"} and non-JSON bodies (proxies, load balancers) are wrapped.
func openAIError(status int, body []byte) *APIError {
	e := StatusError(status, "")
	var shaped struct {
		Error json.RawMessage `json:"error"`
		// Some servers (vLLM, FastAPI) answer {"detail": ...} or {"message": ...}.
		Detail  json.RawMessage `json:"detail"`
		Message string          `json:"message"`
	}
	if json.Unmarshal(body, &shaped) == nil {
		var obj struct {
			Message string          `json:"message"`
			Type    string          `json:"type"`
			Param   json.RawMessage `json:"param"`
			Code    json.RawMessage `json:"code"`
		}
		var text string
		switch {
		case json.Unmarshal(shaped.Error, &obj) == nil && obj.Message != "":
			e.Message = obj.Message
			if obj.Type != "" {
				e.Type = obj.Type
			}
			e.Param = jsonScalar(obj.Param)
			if c := jsonScalar(obj.Code); c != "" {
				e.Code = c
			}
		case json.Unmarshal(shaped.Error, &text) == nil && text != "":
			e.Message = text
		case len(shaped.Detail) > 0:
			e.Message = strings.Trim(string(shaped.Detail), `"`)
		case shaped.Message != "":
			e.Message = shaped.Message
		}
	}
	if e.Message == "" {
		e.Message = fmt.Sprintf("provider returned HTTP %d: %s", status, snippet(body))
	}
	if status == 401 || status == 403 {
		// The provider's message may quote part of the deployment's key.
		e.Message = fmt.Sprintf("the provider rejected this deployment's credentials (HTTP %d): check the api_key configured for it", status)
	}
	if strings.Contains(e.Message, "maximum context length") || strings.Contains(e.Message, "context_length_exceeded") {
		e.Code = "context_length_exceeded"
	}
	return e
}

// jsonScalar renders a JSON string or number as text; null and absent give "".
func jsonScalar(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	return string(raw)
}

// snippet is the start of a body for an error message, on one line.
func snippet(body []byte) string {
	s := strings.Join(strings.Fields(string(body)), " ")
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	if s == "" {
		s = "(empty body)"
	}
	return s
}

func (openAI) Stream(_ Endpoint, o StreamOptions) Stream {
	return &openAIStream{hideUsage: !o.IncludeUsage}
}

// openAIStream forwards an OpenAI server-sent event stream line by line as it arrives,
// reading usage from the chunks that carry it. A partial line waits for the rest of it,
// so the client never receives half an event.
//
// When the client did not ask for stream_options.include_usage, the router stage asks
// the provider for it anyway (spend must be exact), and the stream drops the usage-only
// chunk (empty choices, usage) the client did not ask for, after reading it. The other
// chunks keep the "usage": null member OpenAI then adds; clients ignore it.
type openAIStream struct {
	carry     lineCarry
	usage     Usage
	done      bool
	hideUsage bool // drop the usage-only chunk
	skipBlank bool // a usage-only chunk was dropped: drop the blank line that ends its event
}

var (
	dataPrefix = []byte("data:")
	doneEvent  = []byte("[DONE]")
	usageKey   = []byte(`"usage"`)
)

func (s *openAIStream) Next(chunk []byte, end bool) ([]byte, error) {
	out := s.carry.whole(chunk)
	// kept is the output once a line has been dropped; until then out is forwarded as it
	// came, without a copy.
	var kept []byte
	dropped := false
	for i := 0; i < len(out); {
		j := i + bytes.IndexByte(out[i:], '\n') + 1 // out ends with '\n'
		switch drop := s.line(bytes.TrimRight(out[i:j-1], "\r")); {
		case drop && !dropped:
			kept = append(make([]byte, 0, len(out)), out[:i]...)
			dropped = true
		case !drop && dropped:
			kept = append(kept, out[i:j]...)
		}
		i = j
	}
	if dropped {
		out = kept
	}
	if end && !s.done {
		out = append(out[:len(out):len(out)], StreamError(&APIError{
			Status: 502, Type: "api_error", Code: "stream_interrupted",
			Message: "the provider ended the stream before it was complete; retry the request",
		})...)
	}
	return out, nil
}

// line reads one complete line of the stream and reports whether to drop it.
func (s *openAIStream) line(line []byte) (drop bool) {
	if s.skipBlank {
		s.skipBlank = false
		if len(line) == 0 {
			return true
		}
	}
	payload, ok := bytes.CutPrefix(line, dataPrefix)
	if !ok {
		return false
	}
	payload = bytes.TrimSpace(payload)
	switch {
	case bytes.Equal(payload, doneEvent):
		s.done = true
	case bytes.Contains(payload, usageKey):
		u, err := openAIUsage(payload)
		if err != nil || !u.Known {
			return false
		}
		s.usage = u
		if s.hideUsage && noChoices(payload) {
			s.skipBlank = true
			return true
		}
	}
	return false
}

// noChoices reports whether a chunk's "choices" is an empty array, as in the usage chunk.
func noChoices(chunk []byte) bool {
	start, end, ok := topLevelValue(chunk, "choices")
	if !ok || chunk[start] != '[' {
		return false
	}
	return skipSpace(chunk, start+1) == end-1
}

func (s *openAIStream) Usage() Usage { return s.usage }
