package extproc

import (
	"strings"

	"github.com/tollgate-dev/tollgate/translate"
)

// Native Anthropic clients call /v1/messages and /v1/messages/count_tokens in Anthropic's
// own format. Their bodies and streams pass through to Anthropic-format deployments:
// anthropic/ (model aside), Claude on Vertex AI (vertex_ai/claude-*, rawPredict) and
// Claude on Bedrock (bedrock/anthropic.claude-*, InvokeModel), each attempt translated by
// its own deployment's provider. So every deployment an attempt may reach must speak that format: an
// upstream stage cannot refuse an attempt in a way Envoy retries elsewhere. Their errors,
// tollgate's own included, take Anthropic's shape, which their SDKs parse.

// speaksNative reports whether every deployment of the alias's chain serves ep.
func (a *alias) speaksNative(ep translate.Endpoint) bool {
	for _, d := range a.chain {
		if !d.spec.Serves(ep) {
			return false
		}
	}
	return len(a.chain) > 0
}

// unsupportedEndpoint explains why alias name cannot serve ep.
func unsupportedEndpoint(name string, a *alias, ep translate.Endpoint) error {
	if !ep.Native() {
		return fail(errUnsupportedEndpoint, "model", "model %q does not serve /v1/%s: none of its deployments' providers support it", name, ep)
	}
	var others []string
	for _, d := range a.chain {
		if !d.spec.Serves(ep) {
			others = append(others, d.id+" ("+d.spec.Name+")")
		}
	}
	verb := "are"
	if len(others) == 1 {
		verb = "is"
	}
	return fail(errUnsupportedEndpoint, "model",
		"model %q cannot serve /v1/%s (Anthropic's Messages API): every deployment it may be sent to, fallbacks included, must be an Anthropic-format deployment (anthropic/, vertex_ai/claude-* or bedrock/anthropic.claude-*), and %s %s not; call /v1/chat/completions for this model",
		name, ep, strings.Join(others, ", "), verb)
}

// errorBody renders an error for this request's client: in Anthropic's shape for its
// native API, else in OpenAI's.
func (r *router) errorBody(e *translate.APIError) []byte {
	if r.route.ep.Native() {
		return translate.AnthropicErrorJSON(e)
	}
	return e.JSON()
}
