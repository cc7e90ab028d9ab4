package extproc

import (
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tollgate-dev/tollgate/translate"
)

func TestParseNativePaths(t *testing.T) {
	cases := []struct {
		path string
		want route
	}{
		{"/v1/messages", route{kind: routeInference, ep: translate.Messages}},
		{"/v1/messages?beta=true", route{kind: routeInference, ep: translate.Messages}},
		{"/messages/count_tokens", route{kind: routeInference, ep: translate.CountTokens}},
		{"/openai/deployments/claude/messages", route{}},
		{"/v1/messages/batches", route{}},
	}
	for _, tc := range cases {
		if diff := cmp.Diff(tc.want, parsePath(tc.path), cmp.AllowUnexported(route{})); diff != "" {
			t.Errorf("parsePath(%q) (-want +got):\n%s", tc.path, diff)
		}
	}
}

// TestRouterNativeAnthropic routes Anthropic clients' requests, and answers them in
// Anthropic's error shape.
func TestRouterNativeAnthropic(t *testing.T) {
	_, c := startServer(t, usageConfig(), NewMasterKey(masterKey))
	anthropicError := func(typ, msg string) *string {
		return ptr(`{"type":"error","error":{"type":"` + typ + `","message":` + strconv.Quote(msg) + `}}`)
	}
	routed := func(alias, endpoint string) outcome {
		return outcome{Phase: "request_body", ClearRouteCache: true, Set: map[string]string{
			"x-tollgate-alias": alias, "x-tollgate-endpoint": endpoint, "x-tollgate-request-id": "req-1"}}
	}
	cases := []struct {
		name, path, body string
		key              []string
		want             outcome
	}{
		{name: "messages with the key in x-api-key", path: "/v1/messages", key: []string{"x-api-key", masterKey},
			body: `{"model":"claude","max_tokens":5,"stream":true,"messages":[{"role":"user","content":"hi"}]}`,
			want: routed("claude", "messages")},
		{name: "count_tokens with a bearer key", path: "/v1/messages/count_tokens", key: []string{"authorization", "Bearer " + masterKey},
			body: `{"model":"claude","messages":[{"role":"user","content":"hi"}]}`,
			want: routed("claude", "messages/count_tokens")},
		{name: "an alias that may fall back to OpenAI", path: "/v1/messages", key: []string{"x-api-key", masterKey},
			body: `{"model":"claude-fb","max_tokens":5,"messages":[]}`,
			want: outcome{Phase: "immediate", Status: 400, Set: jsonReply(), Body: anthropicError("invalid_request_error",
				`model "claude-fb" cannot serve /v1/messages (Anthropic's Messages API): every deployment it may be sent to, fallbacks included, must be an Anthropic-format deployment (anthropic/, vertex_ai/claude-* or bedrock/anthropic.claude-*), and gpt-0 (openai) is not; call /v1/chat/completions for this model`)}},
		{name: "an OpenAI alias", path: "/v1/messages", key: []string{"x-api-key", masterKey},
			body: `{"model":"gpt","max_tokens":5,"messages":[]}`,
			want: outcome{Phase: "immediate", Status: 400, Set: jsonReply(), Body: anthropicError("invalid_request_error",
				`model "gpt" cannot serve /v1/messages (Anthropic's Messages API): every deployment it may be sent to, fallbacks included, must be an Anthropic-format deployment (anthropic/, vertex_ai/claude-* or bedrock/anthropic.claude-*), and gpt-0 (openai) is not; call /v1/chat/completions for this model`)}},
		{name: "unknown model", path: "/v1/messages", key: []string{"x-api-key", masterKey},
			body: `{"model":"nope","messages":[]}`,
			want: outcome{Phase: "immediate", Status: 404, Set: jsonReply(), Body: anthropicError("not_found_error",
				`model "nope" not found: use one of the model_name aliases in config.yaml: gpt, claude, claude-fb, bedrock`)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := routerStream(t, c)
			if got := summarize(e.send(post(tc.path, tc.key...))); got.Phase != "request_headers" {
				t.Fatalf("request headers answered %+v", got)
			}
			if diff := cmp.Diff(tc.want, summarize(e.send(requestBody(tc.body)))); diff != "" {
				t.Errorf("request body response (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("wrong key", func(t *testing.T) {
		got := summarize(routerStream(t, c).send(post("/v1/messages", "x-api-key", "sk-wrong")))
		want := outcome{Phase: "immediate", Status: 401, Set: jsonReply(),
			Body: anthropicError("authentication_error", "invalid API key: it is not the master key")}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})

	t.Run("stream passes unchanged", func(t *testing.T) {
		e := routerStream(t, c)
		e.send(post("/v1/messages", "x-api-key", masterKey))
		e.send(requestBody(`{"model":"claude","max_tokens":5,"stream":true,"messages":[{"role":"user","content":"hi"}]}`))
		if got := summarize(e.send(responseHeaders(false, ":status", "200", "content-type", "text/event-stream", headerDeployment, "claude-0"))); !got.StreamedBody {
			t.Fatalf("response headers answered %+v, want STREAMED", got)
		}
		events := "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\n" +
			"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"
		if got := summarize(e.send(responseBody(events, true))); !cmp.Equal(got, outcome{Phase: "response_body"}) {
			t.Errorf("response body answered %+v, want it unchanged", got)
		}
	})
}

func TestUpstreamNativeAnthropic(t *testing.T) {
	_, c := startServer(t, usageConfig(), NewMasterKey(masterKey))
	const body = `{"model":"claude","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`
	const sent = `{"model":"claude-sonnet-5","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`
	headers := routedHeaders(body)
	headers[headerAlias], headers[headerEndpoint], headers[":path"] = "claude", "messages", "/v1/messages"
	headers["anthropic-beta"] = "token-efficient-tools-2025-02-19"
	e := upstreamStream(t, c, "claude-0")
	e.send(requestHeaders(false, flatten(headers)...))
	got := summarize(e.send(requestBody(body)))
	want := outcome{Phase: "request_body", Body: ptr(sent),
		Set: map[string]string{":path": "/v1/messages", ":authority": "api.anthropic.com", "x-api-key": "sk-ant",
			"anthropic-version": "2023-06-01", "content-length": strconv.Itoa(len(sent))},
		Remove: removedExcept("x-api-key", "anthropic-version", "anthropic-beta")}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("request body response (-want +got):\n%s", diff)
	}
}

// TestSpeaksNativeClaudeOnClouds: Claude on Vertex AI and on Bedrock speak Anthropic's
// Messages API and count_tokens alongside anthropic/, each translated by its own
// provider; Gemini on Vertex AI and Bedrock's other models do not.
func TestSpeaksNativeClaudeOnClouds(t *testing.T) {
	dep := func(provider, model string) *deployment {
		spec, ok := translate.LookupModel(provider, model)
		if !ok {
			t.Fatalf("no spec for %s/%s", provider, model)
		}
		return &deployment{id: provider + "/" + model, spec: spec}
	}
	anthropic := dep("anthropic", "claude-sonnet-4-5")
	vertex := dep("vertex_ai", "claude-sonnet-4@20250514")
	bedrock := dep("bedrock", "us.anthropic.claude-sonnet-4-20250514-v1:0")
	cases := []struct {
		name  string
		chain []*deployment
		ep    translate.Endpoint
		want  bool
	}{
		{"all three Claude hosts", []*deployment{anthropic, vertex, bedrock}, translate.Messages, true},
		{"Vertex AI alone", []*deployment{vertex}, translate.Messages, true},
		{"Bedrock alone", []*deployment{bedrock}, translate.Messages, true},
		{"Gemini on Vertex AI as a fallback", []*deployment{vertex, dep("vertex_ai", "gemini-2.5-pro")}, translate.Messages, false},
		{"Nova on Bedrock", []*deployment{dep("bedrock", "amazon.nova-pro-v1:0")}, translate.Messages, false},
		{"count_tokens on all three", []*deployment{anthropic, vertex, bedrock}, translate.CountTokens, true},
		{"count_tokens with Gemini as a fallback", []*deployment{vertex, dep("vertex_ai", "gemini-2.5-pro")}, translate.CountTokens, false},
	}
	for _, tc := range cases {
		if got := (&alias{chain: tc.chain}).speaksNative(tc.ep); got != tc.want {
			t.Errorf("%s: speaksNative(%s) = %v, want %v", tc.name, tc.ep, got, tc.want)
		}
	}
}
