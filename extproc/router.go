package extproc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"

	"github.com/tollgate-dev/tollgate/translate"
)

// router processes one HTTP request at the router level, from its first header to the
// last byte of its response.
type router struct {
	s   *Server
	ctx context.Context

	requestID string
	principal *Principal
	route     route
	alias     *alias
	stream    bool // the client asked for a streamed response
	// includeUsage is the client's stream_options.include_usage: its stream ends with the
	// usage chunk only then.
	includeUsage bool

	status    int         // the response's :status
	dep       *deployment // the deployment that answered; nil for Envoy's own replies
	streaming bool        // the response body arrives chunk by chunk (SSE)
	sse       translate.Stream
	sseFailed bool        // the stream translator failed: drop the rest of the provider's stream
	res       Reservation // budget and rate capacity held until the response ends

	start, firstByte time.Time // the request's arrival, its response body's first byte
	errCode          string    // the OpenAI error code the client got, if any
	endUser          string    // the body's "user"
	bodyLen          int       // the request body's size, for usage estimates
	metadata         []byte    // the body's "metadata" object, for the spend record
	attempts         int       // upstream attempts Envoy made (x-envoy-attempt-count)
	events           int       // server-sent events forwarded to the client
	finished         bool      // finish ran: reservation ended, spend recorded
}

// requestHeaders authenticates the request and answers everything that needs no
// deployment (health, model listings, errors) itself.
func (r *router) requestHeaders(h *extprocv3.HttpHeaders) *extprocv3.ProcessingResponse {
	var path, method, requestID string
	var keys [maxKeyHeaders]string // indexed like s.keyHeaders
	var remove []string
	for _, hv := range h.GetHeaders().GetHeaders() {
		switch k := hv.Key; {
		case k == ":path":
			path = value(hv)
		case k == ":method":
			method = value(hv)
		case k == "x-request-id":
			requestID = value(hv)
		case strings.HasPrefix(k, headerPrefix):
			// Only tollgate may set these: a client must not pick a route or deployment.
			remove = append(remove, k)
		case k == "accept-encoding":
			// Responses must arrive uncompressed for tollgate to translate them.
			remove = append(remove, k)
		default:
			for i, kh := range r.s.keyHeaders {
				if k == kh {
					keys[i] = value(hv)
					// The client's key is tollgate's, never the provider's: drop it here so
					// no upstream sees it, whatever its credential headers are.
					remove = append(remove, k)
				}
			}
		}
	}
	if validRequestID(requestID) {
		r.requestID = requestID
	} else {
		r.requestID = newRequestID()
	}

	r.route = parsePath(path)
	switch {
	case r.route.kind == routeUnknown:
		return r.reject(fail(errUnknownPath, "", "unknown path %q: tollgate serves %s", pathOnly(path), supportedEndpoints))
	case method != r.route.method():
		return r.reject(fail(errMethodNotAllowed, "", "method %s is not allowed on %s: use %s", method, pathOnly(path), r.route.method()),
			set("allow", r.route.method()))
	case r.route.kind == routeLiveness:
		return reply(http.StatusOK, []byte(`"I'm alive!"`), r.requestID)
	case r.route.kind == routeReadiness:
		return reply(http.StatusOK, []byte(`{"status":"healthy"}`), r.requestID)
	}

	key := ""
	for _, k := range keys {
		if k != "" {
			key = bearer(k)
			break
		}
	}
	if key == "" {
		return r.reject(fail(ErrNoKey, "", "missing API key: send Authorization: Bearer sk-..."))
	}
	p, err := r.s.auth.Authenticate(r.ctx, key)
	if err != nil {
		return r.reject(err) // its message is written for the client
	}
	r.principal = p

	switch r.route.kind {
	case routeModels:
		body := r.s.allModels
		if len(p.Models) > 0 {
			body = r.s.modelList(p)
		}
		return reply(http.StatusOK, body, r.requestID)
	case routeModel:
		a := r.s.aliases[r.route.model]
		if a == nil || !allowed(p, a) {
			return r.reject(fail(errModelNotFound, "model", "model %q not found: use one of the model_name aliases in config.yaml: %s",
				r.route.model, r.s.usable(p)))
		}
		b, _ := json.Marshal(r.s.modelObject(a)) // cannot fail: strings and numbers only
		return reply(http.StatusOK, b, r.requestID)
	}
	if h.EndOfStream {
		return r.reject(fail(errInvalidRequest, "", "request body is empty: send a JSON body with a \"model\""))
	}
	common := &extprocv3.CommonResponse{}
	if len(remove) > 0 {
		common.HeaderMutation = &extprocv3.HeaderMutation{RemoveHeaders: remove}
	}
	return headersResponse(true, common)
}

// bearer strips an optional "Bearer " scheme from a key header's value.
func bearer(v string) string {
	if len(v) >= 7 && strings.EqualFold(v[:7], "bearer ") {
		v = v[7:]
	}
	return strings.TrimSpace(v)
}

// pathOnly is a request path without its query, which may carry secrets (?key=...).
func pathOnly(path string) string {
	p, _, _ := strings.Cut(path, "?")
	return p
}

// requestBody resolves the model alias and routes the request to it: Envoy's route for
// the alias matches the x-tollgate-alias header once the route cache is cleared.
func (r *router) requestBody(b *extprocv3.HttpBody) *extprocv3.ProcessingResponse {
	if r.route.kind != routeInference {
		// Every other route was answered at request headers; nothing to do.
		return bodyResponse(true, &extprocv3.CommonResponse{})
	}
	if !b.EndOfStream {
		return r.reject(fail(errConfigMismatch, "",
			"request body arrived in chunks: envoy.yaml must set request_body_mode BUFFERED on the tollgate ext_proc filter"))
	}
	if limit := r.s.config.MaxRequestBytes; limit > 0 && int64(len(b.Body)) > limit {
		return r.reject(fail(errBodyTooLarge, "",
			"request body is %d bytes; the limit is %d bytes (general_settings.max_request_size_mb)", len(b.Body), limit))
	}
	req, err := parseRequest(b.Body)
	if err != nil {
		return r.reject(err)
	}
	name := req.Model
	if r.route.model != "" {
		name = r.route.model // Azure-style paths name the deployment; LiteLLM lets the path win
	}
	if name == "" {
		return r.reject(fail(errInvalidRequest, "model", "you must provide a model parameter"))
	}
	a := r.s.aliases[name]
	switch {
	case a == nil:
		return r.reject(fail(errModelNotFound, "model", "model %q not found: use one of the model_name aliases in config.yaml: %s",
			name, r.s.usable(r.principal)))
	case !allowed(r.principal, a):
		return r.reject(fail(errModelNotAllowed, "model",
			"this key may not use model %q; this key may use: %s. Generate a key scoped to that model (/key/generate with \"models\")",
			name, r.s.usable(r.principal)))
	case !a.serves(r.route.ep):
		return r.reject(unsupportedEndpoint(name, a, r.route.ep))
	}
	r.alias, r.stream, r.includeUsage = a, req.Stream, req.IncludeUsage
	r.endUser, r.bodyLen = req.User, len(b.Body)
	if req.Metadata != nil {
		r.metadata = bytes.Clone(req.Metadata) // the body's buffer belongs to the gRPC message
	}
	if err := r.reserve(len(b.Body), req.User); err != nil {
		return r.reject(err)
	}
	common := &extprocv3.CommonResponse{
		HeaderMutation: &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{
			set(headerAlias, a.name),
			set(headerEndpoint, r.route.ep.String()),
			set(headerRequestID, r.requestID),
		}},
		ClearRouteCache: true,
	}
	r.askStreamUsage(common, b.Body, req)
	return bodyResponse(true, common)
}

// bodyError explains why a request body is not JSON.
func bodyError(err error) error {
	if se, ok := errors.AsType[*json.SyntaxError](err); ok {
		return fail(errInvalidRequest, "", "request body is not valid JSON: %v (at byte offset %d)", se, se.Offset)
	}
	return fail(errInvalidRequest, "", "request body could not be read: %v", err)
}

// dataPrefix starts every server-sent event tollgate forwards.
var dataPrefix = []byte("data: ")

// sseMode switches the response body to STREAMED for the rest of the request, so each
// SSE chunk is translated and forwarded as it arrives.
var sseMode = &extprocfilterv3.ProcessingMode{ResponseBodyMode: extprocfilterv3.ProcessingMode_STREAMED}

// responseHeaders learns which deployment answered and how its body arrives, and labels
// the response for the client.
func (r *router) responseHeaders(h *extprocv3.HttpHeaders) *extprocv3.ProcessingResponse {
	var contentType string
	var hasLength, hasDeployment bool
	for _, hv := range h.GetHeaders().GetHeaders() {
		switch hv.Key {
		case ":status":
			r.status, _ = strconv.Atoi(value(hv))
		case "content-type":
			contentType = value(hv)
		case "content-length":
			hasLength = true
		case "x-envoy-attempt-count":
			r.attempts, _ = strconv.Atoi(value(hv))
		case headerDeployment:
			hasDeployment = true
			r.dep = r.s.deployments[value(hv)]
		}
	}

	// x-tollgate-deployment is internal protocol (Envoy's cluster name for the attempt);
	// clients get the same fact under LiteLLM's name, x-litellm-model-id, which is the
	// deployment's model_info.id just as in LiteLLM.
	mut := &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{
		set(headerRequestID, r.requestID),
		set("x-litellm-call-id", r.requestID),
	}}
	if hasDeployment {
		mut.RemoveHeaders = append(mut.RemoveHeaders, headerDeployment)
	}
	if r.alias != nil {
		mut.SetHeaders = append(mut.SetHeaders, set("x-litellm-model-group", r.alias.name))
	}
	if r.dep != nil {
		mut.SetHeaders = append(mut.SetHeaders, set("x-litellm-model-id", r.dep.id))
	}
	if r.attempts > 0 {
		mut.SetHeaders = append(mut.SetHeaders, set("x-litellm-attempted-retries", strconv.Itoa(r.attempts-1)))
	}
	if r.res != nil {
		for _, h := range r.res.Headers() {
			mut.SetHeaders = append(mut.SetHeaders, set(h.Key, h.Value))
		}
	}

	if h.EndOfStream {
		// No body follows, so an error status can only get its OpenAI body as a reply
		// of our own.
		if r.status >= 400 {
			out, _, err := r.translateBody(nil)
			if err != nil {
				return r.reject(err)
			}
			return reply(r.status, out, r.requestID, mut.SetHeaders...)
		}
		return headersResponse(false, &extprocv3.CommonResponse{HeaderMutation: mut})
	}
	resp := headersResponse(false, &extprocv3.CommonResponse{HeaderMutation: mut})
	if streamed, becomesSSE := streamedResponse(contentType); r.status < 400 && streamed {
		r.streaming = true
		if r.dep != nil {
			r.sse = r.dep.spec.Stream(r.route.ep, translate.StreamOptions{IncludeUsage: r.includeUsage})
		}
		if becomesSSE {
			mut.SetHeaders = append(mut.SetHeaders, set("content-type", "text/event-stream"))
		}
		if hasLength {
			mut.RemoveHeaders = append(mut.RemoveHeaders, "content-length")
		}
		resp.ModeOverride = sseMode
	}
	return resp
}

// responseBody translates the provider's response into OpenAI format: the whole body in
// BUFFERED mode, one chunk at a time in STREAMED mode.
func (r *router) responseBody(b *extprocv3.HttpBody) *extprocv3.ProcessingResponse {
	if r.firstByte.IsZero() {
		r.firstByte = time.Now()
	}
	if r.streaming {
		return r.streamChunk(b)
	}
	out, usage, err := r.translateBody(b.Body)
	if err != nil {
		return r.reject(err)
	}
	cost := r.done(usage)
	// Envoy still holds a buffered response's headers, so the cost can go in them.
	var costHeaders []*corev3.HeaderValueOption
	if cost.known {
		usd := strconv.FormatFloat(float64(cost.microUSD)/1e6, 'f', -1, 64)
		costHeaders = append(costHeaders, set("x-tollgate-response-cost", usd), set("x-litellm-response-cost", usd))
	}
	if bytes.Equal(out, b.Body) {
		common := &extprocv3.CommonResponse{}
		if len(costHeaders) > 0 {
			common.HeaderMutation = &extprocv3.HeaderMutation{SetHeaders: costHeaders}
		}
		return bodyResponse(false, common)
	}
	return bodyResponse(false, replaceBody(out, append(costHeaders, set("content-type", "application/json"))...))
}

// translateBody turns a whole response body into what the client receives. A deployment's
// response goes through its provider's translator, which also turns error statuses into
// OpenAI errors. Any other error response came from Envoy itself (no healthy upstream,
// timeouts, resets) and is wrapped the same way, keeping Envoy's text.
func (r *router) translateBody(body []byte) ([]byte, translate.Usage, error) {
	if r.dep != nil && r.route.kind == routeInference {
		out, u, err := r.dep.spec.Response(r.route.ep, r.status, body)
		if err != nil {
			return nil, u, fail(errBadProviderResponse, "",
				"deployment %s answered HTTP %d with a body tollgate could not read: %v", r.dep.id, r.status, err)
		}
		return out, u, nil
	}
	if r.status < 400 || isOpenAIError(body) {
		return body, translate.Usage{}, nil
	}
	text := strings.Join(strings.Fields(string(body)), " ")
	if len(text) > 300 {
		text = text[:300] + "..."
	}
	if text == "" {
		text = http.StatusText(r.status)
	}
	e := translate.StatusError(r.status, "the upstream request failed: "+text)
	e.Code = "upstream_error"
	return r.errorBody(e), translate.Usage{}, nil
}

// isOpenAIError reports whether body already is {"error": {"message": ...}}.
func isOpenAIError(body []byte) bool {
	var shaped struct {
		Error *struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	return json.Unmarshal(body, &shaped) == nil && shaped.Error != nil && shaped.Error.Message != ""
}

// streamChunk translates one chunk of an SSE response. Envoy expects exactly one body
// response per chunk, in order.
func (r *router) streamChunk(b *extprocv3.HttpBody) *extprocv3.ProcessingResponse {
	if r.sse == nil {
		if b.EndOfStream {
			r.done(translate.Usage{})
		}
		return bodyResponse(false, &extprocv3.CommonResponse{})
	}
	if r.sseFailed {
		return bodyResponse(false, &extprocv3.CommonResponse{
			BodyMutation: &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_ClearBody{ClearBody: true}},
		})
	}
	out, err := r.sse.Next(b.Body, b.EndOfStream)
	r.events += bytes.Count(out, dataPrefix)
	if err != nil {
		// The status line is long gone: end the client's stream with an error event.
		r.sseFailed = true
		r.s.log.Warn("stream translation failed", "request_id", r.requestID, "deployment", r.dep.id, "err", err)
		out = translate.StreamError(&translate.APIError{
			Status: http.StatusBadGateway, Type: "api_error", Code: "bad_provider_response",
			Message: fmt.Sprintf("deployment %s sent a stream tollgate could not read: %v", r.dep.id, err),
		})
	}
	if b.EndOfStream {
		r.done(r.sse.Usage())
	}
	if bytes.Equal(out, b.Body) {
		return bodyResponse(false, &extprocv3.CommonResponse{})
	}
	return bodyResponse(false, &extprocv3.CommonResponse{
		BodyMutation: &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_Body{Body: out}},
	})
}

// reject ends the request with err as an OpenAI error.
func (r *router) reject(err error, headers ...*corev3.HeaderValueOption) *extprocv3.ProcessingResponse {
	resp, e := r.s.rejectAs(r.ctx, err, r.requestID, r.errorBody, headers...)
	r.status, r.errCode = e.Status, e.Code
	return resp
}
