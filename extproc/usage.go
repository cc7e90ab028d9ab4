package extproc

import (
	"strings"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"

	"github.com/tollgate-dev/tollgate/translate"
)

// Streamed usage. Spend must be exact, but an OpenAI-compatible server reports a stream's
// usage only when the client sets stream_options.include_usage. So when a client streams
// without it, the router stage sets it in the body before any attempt is made, and the
// OpenAI stream translator drops the usage chunk the client did not ask for after reading
// it (translate.StreamOptions). Other providers report usage in their own stream formats
// and ignore stream_options; the body reaches them too when they are fallbacks.

// streamUsage reports whether a deployment of the alias's chain (where its attempts may
// go) needs stream_options.include_usage to report a stream's usage.
func (a *alias) streamUsage() bool {
	for _, d := range a.chain {
		if d.spec.StreamUsage {
			return true
		}
	}
	return false
}

// askStreamUsage adds stream_options.include_usage to a streamed request's body when the
// client did not ask for it and a deployment of the alias's chain needs it, keeping the
// client's other stream_options. The new body goes into common with its content-length:
// in BUFFERED mode Envoy fails a request whose content-length disagrees with a replaced
// body.
func (r *router) askStreamUsage(common *extprocv3.CommonResponse, body []byte, req requestFields) {
	if !req.Stream || req.IncludeUsage || !r.alias.streamUsage() ||
		(r.route.ep != translate.ChatCompletions && r.route.ep != translate.Completions) {
		return
	}
	opts := []byte(`{"include_usage":true}`)
	if req.StreamOptions != nil {
		opts = translate.SetMember(req.StreamOptions, "include_usage", []byte("true"))
	}
	out := translate.SetMember(body, "stream_options", opts)
	common.BodyMutation = &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_Body{Body: out}}
	if common.HeaderMutation == nil {
		common.HeaderMutation = &extprocv3.HeaderMutation{}
	}
	common.HeaderMutation.SetHeaders = append(common.HeaderMutation.SetHeaders, contentLength(len(out)))
}

// eventStreamType is the content-type of Bedrock's streamed responses: AWS's binary event
// stream, which the translator turns into server-sent events.
const eventStreamType = "application/vnd.amazon.eventstream"

// streamedResponse reports whether a response body of this content-type is a stream of
// events, translated chunk by chunk, and whether its content-type changes to
// text/event-stream for the client on the way.
func streamedResponse(contentType string) (streamed, becomesSSE bool) {
	switch {
	case strings.HasPrefix(contentType, "text/event-stream"):
		return true, false
	case strings.HasPrefix(contentType, eventStreamType):
		return true, true
	}
	return false, false
}
