package extproc

import (
	"context"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"

	"github.com/tollgate-dev/tollgate/translate"
)

// upstream processes one attempt of a request in a deployment cluster's upstream filter
// chain: it rewrites the OpenAI request the router stage accepted into that deployment's
// request. It is stateless beyond the attempt: everything it needs is config plus the
// headers the router stage set, so any tollgate replica can serve any attempt.
type upstream struct {
	s         *Server
	ctx       context.Context
	id        string      // the deployment the stream's metadata names
	dep       *deployment // nil when config.yaml has no such deployment
	endpoint  string      // x-tollgate-endpoint, as the router stage set it
	requestID string
}

// endpointsByName maps x-tollgate-endpoint values back to endpoints.
var endpointsByName = map[string]translate.Endpoint{
	translate.ChatCompletions.String(): translate.ChatCompletions,
	translate.Completions.String():     translate.Completions,
	translate.Embeddings.String():      translate.Embeddings,
	translate.Messages.String():        translate.Messages,
	translate.CountTokens.String():     translate.CountTokens,
}

func (s *Server) newUpstream(ctx context.Context, id string) *upstream {
	return &upstream{s: s, ctx: ctx, id: id, dep: s.deployments[id]}
}

// requestHeaders reads what the router stage decided and waits for the body.
func (u *upstream) requestHeaders(h *extprocv3.HttpHeaders) *extprocv3.ProcessingResponse {
	for _, hv := range h.GetHeaders().GetHeaders() {
		switch hv.Key {
		case headerEndpoint:
			u.endpoint = value(hv)
		case headerRequestID:
			u.requestID = value(hv)
		}
	}
	if u.dep == nil {
		return u.reject(fail(errConfigMismatch, "",
			"envoy.yaml sends this request to deployment %q, which config.yaml does not define: config.yaml and envoy.yaml disagree (render envoy.yaml again with `tollgate envoy`)", u.id))
	}
	if h.EndOfStream {
		return u.reject(fail(errInvalidRequest, "", "request to deployment %s has no body", u.id))
	}
	return headersResponse(true, &extprocv3.CommonResponse{})
}

// requestBody translates the body for the deployment and points the request at it. The
// header map is shared by every attempt of the request, so this attempt sets its
// provider's whole credential set and removes every other credential header: a fallback
// must never carry the previous provider's key.
func (u *upstream) requestBody(b *extprocv3.HttpBody) *extprocv3.ProcessingResponse {
	if u.dep == nil { // answered at request headers; only a misbehaving client gets here
		return u.reject(fail(errConfigMismatch, "", "deployment %q is not in config.yaml", u.id))
	}
	if !b.EndOfStream {
		return u.reject(fail(errConfigMismatch, "",
			"request body arrived in chunks: envoy.yaml must set request_body_mode BUFFERED on the tollgate_upstream ext_proc filter"))
	}
	if u.endpoint == "" {
		return u.reject(fail(errConfigMismatch, "",
			"x-tollgate-endpoint missing: request did not pass the router-level ext_proc filter"))
	}
	ep, ok := endpointsByName[u.endpoint]
	if !ok {
		return u.reject(fail(errConfigMismatch, "", "x-tollgate-endpoint %q is not an endpoint tollgate knows", u.endpoint))
	}
	if !u.dep.spec.Serves(ep) {
		return u.reject(fail(errUnsupportedEndpoint, "", "deployment %s (%s) does not serve /v1/%s", u.id, u.dep.spec.Name, ep))
	}
	target, err := u.dep.attemptTarget(time.Now())
	if err != nil {
		return u.reject(err)
	}
	up, err := u.dep.spec.Request(ep, b.Body, target)
	if err != nil {
		return u.reject(err)
	}

	body := b.Body
	if up.Body != nil {
		body = up.Body
	}
	headers := make([]*corev3.HeaderValueOption, 0, len(up.Headers)+3)
	headers = append(headers, set(":path", up.Path), set(":authority", up.Authority))
	for _, h := range up.Headers {
		headers = append(headers, set(h.Key, h.Value))
	}
	headers = append(headers, contentLength(len(body)))
	var remove []string
	for _, c := range translate.CredentialHeaders {
		// A native Anthropic client's anthropic-beta opts into API features; every
		// deployment of its chain speaks Anthropic's API (alias.speaksNative), so it stays.
		if !setsHeader(up.Headers, c) && (c != "anthropic-beta" || !ep.Native()) {
			remove = append(remove, c)
		}
	}
	common := &extprocv3.CommonResponse{
		HeaderMutation: &extprocv3.HeaderMutation{SetHeaders: headers, RemoveHeaders: remove},
	}
	if up.Body != nil {
		common.BodyMutation = &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_Body{Body: up.Body}}
	}
	return bodyResponse(true, common)
}

func setsHeader(headers []translate.Header, key string) bool {
	for _, h := range headers {
		if strings.EqualFold(h.Key, key) {
			return true
		}
	}
	return false
}

// The upstream filter is configured with response_header SKIP and response_body NONE:
// responses are translated at router level, where retries have been decided. Should an
// envoy.yaml send them anyway, they pass unchanged.

func (u *upstream) responseHeaders(*extprocv3.HttpHeaders) *extprocv3.ProcessingResponse {
	return headersResponse(false, &extprocv3.CommonResponse{})
}

func (u *upstream) responseBody(*extprocv3.HttpBody) *extprocv3.ProcessingResponse {
	return bodyResponse(false, &extprocv3.CommonResponse{})
}

func (u *upstream) reject(err error) *extprocv3.ProcessingResponse {
	return u.s.reject(u.ctx, err, u.requestID)
}
