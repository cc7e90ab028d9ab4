package extproc

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/tollgate-dev/tollgate/translate"
)

// routeKind is what a request path asks the router stage for.
type routeKind int

const (
	routeUnknown   routeKind = iota
	routeInference           // an LLM call, forwarded to a deployment
	routeModels              // GET /v1/models
	routeModel               // GET /v1/models/{id}
	routeLiveness            // GET /health/liveliness
	routeReadiness           // GET /health/readiness
)

// route is a parsed request path.
type route struct {
	kind  routeKind
	ep    translate.Endpoint // routeInference
	model string             // routeModel: the id; routeInference: an alias named by the path
}

// method is the HTTP method the route answers.
func (r route) method() string {
	if r.kind == routeInference {
		return http.MethodPost
	}
	return http.MethodGet
}

// supportedEndpoints names what tollgate serves, for the unknown-path error.
const supportedEndpoints = "POST /v1/chat/completions, POST /v1/completions, POST /v1/embeddings, " +
	"POST /v1/messages, POST /v1/messages/count_tokens, " +
	"GET /v1/models, GET /v1/models/{model}, GET /health/liveliness, GET /health/readiness"

// inferenceEndpoints maps the path after /v1/ (or after an Azure deployment) to its
// endpoint.
var inferenceEndpoints = map[string]translate.Endpoint{
	"chat/completions": translate.ChatCompletions,
	"completions":      translate.Completions,
	"embeddings":       translate.Embeddings,
	// Anthropic's Messages API, for Anthropic SDK clients.
	"messages":              translate.Messages,
	"messages/count_tokens": translate.CountTokens,
}

// parsePath maps a request path to its route. The query string is ignored; "/v1" is
// optional, as it is for LiteLLM and the OpenAI SDKs' base URLs; Azure OpenAI clients'
// /openai/deployments/{model}/... paths name the alias in the path.
func parsePath(path string) route {
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	path = strings.TrimSuffix(path, "/")
	switch path {
	case "/health/liveliness", "/health/liveness":
		return route{kind: routeLiveness}
	case "/health/readiness":
		return route{kind: routeReadiness}
	}
	if rest, ok := strings.CutPrefix(path, "/openai/deployments/"); ok {
		name, op, ok := strings.Cut(rest, "/")
		ep, known := inferenceEndpoints[op]
		if !ok || !known || name == "" || ep.Native() {
			return route{}
		}
		if unescaped, err := url.PathUnescape(name); err == nil {
			name = unescaped
		}
		return route{kind: routeInference, ep: ep, model: name}
	}
	rest := strings.TrimPrefix(path, "/v1")
	rest, ok := strings.CutPrefix(rest, "/")
	if !ok {
		return route{}
	}
	if ep, ok := inferenceEndpoints[rest]; ok {
		return route{kind: routeInference, ep: ep}
	}
	if rest == "models" {
		return route{kind: routeModels}
	}
	// Aliases may contain slashes ("meta-llama/Llama-3.1-8B"), so the id is the rest.
	if id, ok := strings.CutPrefix(rest, "models/"); ok && id != "" {
		if unescaped, err := url.PathUnescape(id); err == nil {
			id = unescaped
		}
		return route{kind: routeModel, model: id}
	}
	return route{}
}
