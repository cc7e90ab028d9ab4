package extproc

import (
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tollgate-dev/tollgate/config"
)

// usageConfig has an OpenAI alias, an Anthropic alias on its own, and an Anthropic alias
// that falls back to the OpenAI one.
func usageConfig() *config.Config {
	return &config.Config{
		Deployments: []*config.Deployment{
			{ID: "gpt-0", Alias: "gpt", Provider: "openai", Model: "gpt-5.5", APIBase: "https://api.openai.com/v1", APIKey: "sk-openai"},
			{ID: "claude-0", Alias: "claude", Provider: "anthropic", Model: "claude-sonnet-5", APIBase: "https://api.anthropic.com", APIKey: "sk-ant"},
			{ID: "claude-fb-0", Alias: "claude-fb", Provider: "anthropic", Model: "claude-sonnet-5", APIBase: "https://api.anthropic.com", APIKey: "sk-ant"},
			{ID: "bedrock-0", Alias: "bedrock", Provider: "bedrock", Model: "anthropic.claude-3-haiku-20240307-v1:0",
				APIBase: "https://bedrock-runtime.us-east-1.amazonaws.com", AWSRegion: "us-east-1", AWSAccessKeyID: "AKID", AWSSecretAccessKey: "secret"},
		},
		Fallbacks:       map[string][]string{"claude-fb": {"gpt"}},
		MaxRequestBytes: 4096,
	}
}

// TestRouterAsksForStreamUsage checks when the router stage adds
// stream_options.include_usage to a request: for streams the client did not ask usage
// for, when an OpenAI-compatible deployment may answer them.
func TestRouterAsksForStreamUsage(t *testing.T) {
	_, c := startServer(t, usageConfig(), NewMasterKey(masterKey))
	const msgs = `"messages":[{"role":"user","content":"hi"}]`
	cases := []struct {
		name, path, body string
		want             string // the body sent on; "" means unchanged
	}{
		{"stream without stream_options", "/v1/chat/completions", `{"model":"gpt","stream":true,` + msgs + `}`,
			`{"stream_options":{"include_usage":true},"model":"gpt","stream":true,` + msgs + `}`},
		{"client's other stream_options are kept", "/v1/chat/completions", `{"model":"gpt","stream":true,"stream_options":{"include_obfuscation":false,"include_usage":false},` + msgs + `}`,
			`{"model":"gpt","stream":true,"stream_options":{"include_obfuscation":false,"include_usage":true},` + msgs + `}`},
		{"null stream_options", "/v1/completions", `{"model":"gpt","prompt":"x","stream":true,"stream_options":null}`,
			`{"model":"gpt","prompt":"x","stream":true,"stream_options":{"include_usage":true}}`},
		{"fallback to an OpenAI deployment", "/v1/chat/completions", `{"model":"claude-fb","stream":true,` + msgs + `}`,
			`{"stream_options":{"include_usage":true},"model":"claude-fb","stream":true,` + msgs + `}`},
		{"client asked for usage", "/v1/chat/completions", `{"model":"gpt","stream":true,"stream_options":{"include_usage":true},` + msgs + `}`, ""},
		{"not a stream", "/v1/chat/completions", `{"model":"gpt",` + msgs + `}`, ""},
		{"no OpenAI deployment in the chain", "/v1/chat/completions", `{"model":"claude","stream":true,` + msgs + `}`, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := routerStream(t, c)
			e.send(post(tc.path, "authorization", "Bearer "+masterKey))
			got := summarize(e.send(requestBody(tc.body)))
			if got.Phase != "request_body" {
				t.Fatalf("request body answered %+v", got)
			}
			want := map[string]string{"x-tollgate-alias": got.Set["x-tollgate-alias"], "x-tollgate-endpoint": got.Set["x-tollgate-endpoint"],
				"x-tollgate-request-id": "req-1"}
			var wantBody *string
			if tc.want != "" {
				want["content-length"] = strconv.Itoa(len(tc.want))
				wantBody = &tc.want
			}
			if diff := cmp.Diff(want, got.Set); diff != "" {
				t.Errorf("headers set (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(wantBody, got.Body); diff != "" {
				t.Errorf("body sent on (-want +got):\n%s", diff)
			}
		})
	}
}

// TestRouterHidesInjectedUsage runs a stream whose usage the router asked for: the
// client, which did not ask, does not get the usage chunk.
func TestRouterHidesInjectedUsage(t *testing.T) {
	_, c := startServer(t, usageConfig(), NewMasterKey(masterKey))
	const (
		text  = `data: {"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"hi"}}],"usage":null}` + "\n\n"
		usage = `data: {"id":"c1","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}` + "\n\n"
		done  = "data: [DONE]\n\n"
	)
	for _, includeUsage := range []bool{false, true} {
		t.Run("include_usage="+strconv.FormatBool(includeUsage), func(t *testing.T) {
			e := routerStream(t, c)
			e.send(post("/v1/chat/completions", "authorization", "Bearer "+masterKey))
			e.send(requestBody(`{"model":"gpt","stream":true,"stream_options":{"include_usage":` + strconv.FormatBool(includeUsage) + `},"messages":[]}`))
			e.send(responseHeaders(false, ":status", "200", "content-type", "text/event-stream", headerDeployment, "gpt-0"))
			got := summarize(e.send(responseBody(text+usage+done, true)))
			want := outcome{Phase: "response_body", Body: ptr(text + done)}
			if includeUsage {
				want = outcome{Phase: "response_body"} // passes unchanged
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("response body response (-want +got):\n%s", diff)
			}
		})
	}
}

// TestRouterEventStream: Bedrock streams arrive as AWS event streams; the client gets
// server-sent events, so the content-type changes with the body mode.
func TestRouterEventStream(t *testing.T) {
	_, c := startServer(t, usageConfig(), NewMasterKey(masterKey))
	e := routerStream(t, c)
	e.send(post("/v1/chat/completions", "authorization", "Bearer "+masterKey))
	if got := summarize(e.send(requestBody(`{"model":"bedrock","stream":true,"messages":[]}`))); got.Phase != "request_body" || got.Body != nil {
		t.Fatalf("request body answered %+v, want it routed unchanged", got)
	}
	got := summarize(e.send(responseHeaders(false, ":status", "200", "content-type", "application/vnd.amazon.eventstream",
		"content-length", "1234", headerDeployment, "bedrock-0")))
	want := outcome{Phase: "response_headers", StreamedBody: true,
		Set: map[string]string{"x-tollgate-request-id": "req-1", "x-litellm-call-id": "req-1",
			"x-litellm-model-group": "bedrock", "x-litellm-model-id": "bedrock-0", "content-type": "text/event-stream"},
		Remove: []string{"content-length", headerDeployment}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("response headers response (-want +got):\n%s", diff)
	}

	// A Bedrock error is JSON, translated whole.
	e = routerStream(t, c)
	e.send(post("/v1/chat/completions", "authorization", "Bearer "+masterKey))
	e.send(requestBody(`{"model":"bedrock","stream":true,"messages":[]}`))
	got = summarize(e.send(responseHeaders(false, ":status", "429", "content-type", "application/json", headerDeployment, "bedrock-0")))
	if got.StreamedBody || got.Set["content-type"] != "" {
		t.Errorf("an error response was switched to a stream: %+v", got)
	}
}
