package translate

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// Claude on Vertex AI (vertex_ai/claude-*). Vertex AI serves Anthropic's models in
// Anthropic's own Messages format, not Gemini's
// (https://cloud.google.com/vertex-ai/generative-ai/docs/partner-models/claude/use-claude):
// the body is a Messages request without "model" (the model is in the path) and with
// "anthropic_version": "vertex-2023-10-16"; it is POSTed to
// /v1/projects/{project}/locations/{location}/publishers/anthropic/models/{model}:rawPredict,
// or :streamRawPredict for a stream, whose events are Anthropic's. Authentication is the
// deployment's OAuth2 access token, as for Gemini on Vertex AI.
//
// So OpenAI clients get the anthropic/ translation with that body, path and token, and
// native Messages clients get their body passed through with the same changes; responses
// and streams are Anthropic's and are read by the anthropic/ translator. Token counting
// (/v1/messages/count_tokens) goes to .../publishers/anthropic/models/count-tokens:rawPredict
// with the model in the body, which is not a model's path
// (https://cloud.google.com/vertex-ai/generative-ai/docs/partner-models/claude/count-tokens),
// and answers Anthropic's {"input_tokens": n}.

// vertexAnthropicVersion is the anthropic_version Vertex AI requires in the body.
const vertexAnthropicVersion = "vertex-2023-10-16"

// vertexAnthropicSpec serves vertex_ai/ deployments of Claude models.
var vertexAnthropicSpec = &Spec{
	Name:       "vertex_ai",
	Endpoints:  []Endpoint{ChatCompletions, Messages, CountTokens},
	Translator: vertexAnthropicTranslator{},
}

// isVertexAnthropic reports whether a vertex_ai/ model is one of Anthropic's, which
// Vertex AI serves in Anthropic's format ("claude-sonnet-4@20250514").
func isVertexAnthropic(model string) bool {
	return strings.HasPrefix(strings.TrimPrefix(model, "models/"), "claude")
}

// vertexAnthropicTranslator converts requests for Claude on Vertex AI; see above.
type vertexAnthropicTranslator struct {
	anthropic anthropicTranslator
}

// Request builds the rawPredict or streamRawPredict request.
func (v vertexAnthropicTranslator) Request(ep Endpoint, body []byte, t *Target) (*Upstream, error) {
	var (
		out []byte
		err error
	)
	switch ep {
	case ChatCompletions:
		req, err := anthropicBuildRequest(body, t.Model)
		if err != nil {
			return nil, err
		}
		if out, err = marshalJSON(req, len(body)); err != nil {
			return nil, fmt.Errorf("encode anthropic request: %w", err)
		}
	case Messages:
		out = body
	case CountTokens:
		if out, _, err = anthropicCloudBody(body, vertexAnthropicVersion, true); err != nil {
			return nil, err
		}
		model, _ := json.Marshal(vertexModel(t))
		return vertexAnthropicRoute(setTopLevel(out, "model", model), t, "count-tokens", "rawPredict")
	default:
		return nil, &APIError{Status: 400, Type: "invalid_request_error", Code: "unsupported_endpoint",
			Message: fmt.Sprintf("vertex_ai deployments of Claude models serve chat/completions, messages and messages/count_tokens, not %s", ep)}
	}
	out, stream, err := anthropicCloudBody(out, vertexAnthropicVersion, false)
	if err != nil {
		return nil, err
	}
	method := "rawPredict"
	if stream {
		method = "streamRawPredict"
	}
	return vertexAnthropicRoute(out, t, vertexModel(t), method)
}

// vertexModel is the deployment's model as Vertex AI names it.
func vertexModel(t *Target) string { return strings.TrimPrefix(t.Model, "models/") }

// vertexAnthropicRoute sets the path (the anthropic publisher's model, or count-tokens,
// and method), authority and bearer token of a Claude request. A deployment without a
// project or token is a configuration fault, not the client's.
func vertexAnthropicRoute(body []byte, t *Target, model, method string) (*Upstream, error) {
	gc := t.Google
	if gc == nil || gc.AccessToken == "" {
		return nil, errors.New("vertex_ai: the deployment has no access token (vertex_credentials); Claude models on Vertex AI need one")
	}
	if gc.Project == "" {
		return nil, errors.New("vertex_ai: the deployment has no vertex_project")
	}
	loc := gc.Location
	if loc == "" {
		loc = vertexDefaultLocation
	}
	def, err := VertexBase(loc)
	if err != nil {
		return nil, err
	}
	base, err := geminiBase(t.Base, def)
	if err != nil {
		return nil, err
	}
	p := geminiVersioned(base, "/v1") + "/projects/" + url.PathEscape(gc.Project) + "/locations/" + loc +
		"/publishers/anthropic/models/" + url.PathEscape(model) + ":" + method
	if base.RawQuery != "" {
		p += "?" + base.RawQuery
	}
	hs := []Header{{"content-type", "application/json"}, {"authorization", "Bearer " + gc.AccessToken}}
	return &Upstream{Path: p, Authority: geminiAuthority(base), Headers: geminiHeaders(hs, t.ExtraHeaders), Body: body}, nil
}

// anthropicCloudBody turns a Messages request body into the body a cloud's Claude
// endpoint takes: "model" removed (the model is in the path), "anthropic_version" set,
// and "stream" removed when dropStream is set (Bedrock picks streaming by path). It
// reports whether the client asked for a stream. A body that is not a JSON object is the
// client's mistake.
func anthropicCloudBody(body []byte, version string, dropStream bool) ([]byte, bool, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil || m == nil {
		return nil, false, &APIError{Status: 400, Type: "invalid_request_error", Code: "invalid_request",
			Message: "the request body is not a JSON object"}
	}
	var stream bool
	if raw, ok := m["stream"]; ok && json.Unmarshal(raw, &stream) != nil {
		return nil, false, &APIError{Status: 400, Type: "invalid_request_error", Param: "stream", Code: "invalid_type",
			Message: "'stream' must be a boolean"}
	}
	delete(m, "model")
	if dropStream {
		delete(m, "stream")
	}
	v, _ := json.Marshal(version)
	m["anthropic_version"] = v
	out, err := json.Marshal(m)
	if err != nil {
		return nil, false, fmt.Errorf("encode anthropic request: %w", err)
	}
	return out, stream, nil
}

// Response reads an Anthropic Messages response, as the anthropic/ translator does.
// Vertex AI's own errors (a Google error object, before the request reaches Claude) are
// read as Gemini's on Vertex AI are.
func (v vertexAnthropicTranslator) Response(ep Endpoint, status int, body []byte) ([]byte, Usage, error) {
	if status >= 400 {
		if eb, ok := geminiParseError(body); ok && (eb.Status != "" || eb.Code != 0) {
			e := geminiTranslator{vertex: true}.apiError(status, eb)
			if ep.Native() {
				return AnthropicErrorJSON(e), Usage{}, nil
			}
			return e.JSON(), Usage{}, nil
		}
		if status == 401 || status == 403 {
			e := StatusError(status, fmt.Sprintf("Vertex AI rejected the credentials configured for this deployment (HTTP %d): check its vertex_credentials, vertex_project and vertex_location", status))
			if ep.Native() {
				return AnthropicErrorJSON(e), Usage{}, nil
			}
			return e.JSON(), Usage{}, nil
		}
	}
	return v.anthropic.Response(ep, status, body)
}

// Stream reads an Anthropic event stream, as the anthropic/ translator does.
func (v vertexAnthropicTranslator) Stream(ep Endpoint, o StreamOptions) Stream {
	return v.anthropic.Stream(ep, o)
}
