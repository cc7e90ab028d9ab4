package extproc

import (
	"fmt"
	"regexp"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// jsonReply is the header set of every reply tollgate writes itself for request req-1.
func jsonReply(extra ...string) map[string]string {
	h := map[string]string{"content-type": "application/json", "x-tollgate-request-id": "req-1", "x-litellm-call-id": "req-1"}
	for i := 0; i+1 < len(extra); i += 2 {
		h[extra[i]] = extra[i+1]
	}
	return h
}

func errorJSON(message, typ, param, code string) *string {
	p := "null"
	if param != "" {
		p = strconv.Quote(param)
	}
	return ptr(fmt.Sprintf(`{"error":{"message":%q,"type":%q,"param":%s,"code":%q}}`, message, typ, p, code))
}

func TestRouterRequestHeaders(t *testing.T) {
	_, c := startServer(t, testConfig(), newFakeAuth())
	bearerMaster := "Bearer " + masterKey
	cases := []struct {
		name string
		req  []string // extra headers of a POST to path, or of a GET when get is set
		path string
		get  bool
		want outcome
	}{
		{
			name: "liveliness needs no key",
			path: "/health/liveliness", get: true,
			want: outcome{Phase: "immediate", Status: 200, Set: jsonReply(), Body: ptr(`"I'm alive!"`)},
		},
		{
			name: "readiness needs no key",
			path: "/health/readiness", get: true,
			want: outcome{Phase: "immediate", Status: 200, Set: jsonReply(), Body: ptr(`{"status":"healthy"}`)},
		},
		{
			name: "no key",
			path: "/v1/chat/completions",
			want: outcome{Phase: "immediate", Status: 401, Set: jsonReply(),
				Body: errorJSON("missing API key: send Authorization: Bearer sk-...", "authentication_error", "", "missing_api_key")},
		},
		{
			name: "wrong key",
			path: "/v1/chat/completions", req: []string{"authorization", "Bearer sk-wrong"},
			want: outcome{Phase: "immediate", Status: 401, Set: jsonReply(),
				Body: errorJSON("invalid API key: it is not the master key", "authentication_error", "", "invalid_api_key")},
		},
		{
			name: "authorization without the bearer scheme is not a bearer key",
			path: "/v1/chat/completions", req: []string{"authorization", "Basic " + masterKey},
			want: outcome{Phase: "immediate", Status: 401, Set: jsonReply(),
				Body: errorJSON("invalid API key: it is not the master key", "authentication_error", "", "invalid_api_key")},
		},
		{
			name: "expired key",
			path: "/v1/chat/completions", req: []string{"authorization", "Bearer sk-expired"},
			want: outcome{Phase: "immediate", Status: 401, Set: jsonReply(),
				Body: errorJSON("API key expired: it expired at 2026-01-01T00:00:00Z", "authentication_error", "", "key_expired")},
		},
		{
			name: "blocked key",
			path: "/v1/chat/completions", req: []string{"x-api-key", "sk-blocked"},
			want: outcome{Phase: "immediate", Status: 401, Set: jsonReply(),
				Body: errorJSON("API key blocked: an admin blocked it", "authentication_error", "", "key_blocked")},
		},
		{
			name: "key store failure is a 500 that does not leak the cause",
			path: "/v1/chat/completions", req: []string{"authorization", "Bearer sk-redis"},
			want: outcome{Phase: "immediate", Status: 500, Set: jsonReply(),
				Body: errorJSON("tollgate failed to process the request; the gateway log has the cause", "api_error", "", "internal_error")},
		},
		{
			name: "wrong method",
			path: "/v1/chat/completions", get: true, req: []string{"authorization", bearerMaster},
			want: outcome{Phase: "immediate", Status: 405, Set: jsonReply("allow", "POST"),
				Body: errorJSON("method GET is not allowed on /v1/chat/completions: use POST", "invalid_request_error", "", "method_not_allowed")},
		},
		{
			name: "unknown path names the supported endpoints",
			path: "/v1/images/generations?key=secret", req: []string{"authorization", bearerMaster},
			want: outcome{Phase: "immediate", Status: 404, Set: jsonReply(),
				Body: errorJSON(`unknown path "/v1/images/generations": tollgate serves `+supportedEndpoints, "invalid_request_error", "", "unknown_url")},
		},
		{
			name: "POST without a body",
			path: "/v1/chat/completions", get: true, req: []string{":method", "POST", "authorization", bearerMaster},
			want: outcome{Phase: "immediate", Status: 400, Set: jsonReply(),
				Body: errorJSON(`request body is empty: send a JSON body with a "model"`, "invalid_request_error", "", "invalid_request")},
		},
		{
			name: "client x-tollgate headers, its key and accept-encoding are removed",
			path: "/v1/chat/completions",
			req: []string{"authorization", bearerMaster, "x-tollgate-alias", "gpt-5.5", "x-tollgate-deployment", "gpt-5.5-1",
				"x-tollgate-endpoint", "embeddings", "accept-encoding", "gzip, br", "user-agent", "OpenAI/Python 2.0"},
			want: outcome{Phase: "request_headers",
				Remove: []string{"accept-encoding", "authorization", "x-tollgate-alias", "x-tollgate-deployment", "x-tollgate-endpoint"}},
		},
		{
			name: "x-api-key",
			path: "/chat/completions", req: []string{"x-api-key", masterKey},
			want: outcome{Phase: "request_headers", Remove: []string{"x-api-key"}},
		},
		{
			name: "api-key on an Azure OpenAI path",
			path: "/openai/deployments/gpt-5.5/chat/completions?api-version=2024-10-21", req: []string{"api-key", masterKey},
			want: outcome{Phase: "request_headers", Remove: []string{"api-key"}},
		},
		{
			name: "the configured key header wins over Authorization",
			path: "/v1/embeddings", req: []string{"x-litellm-api-key", bearerMaster, "authorization", "Bearer sk-provider-key-for-passthrough"},
			want: outcome{Phase: "request_headers", Remove: []string{"authorization", "x-litellm-api-key"}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			msg := post(tc.path, tc.req...)
			if tc.get {
				msg = get(tc.path, tc.req...)
			}
			got := summarize(routerStream(t, c).send(msg))
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("request headers response (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRouterGeneratesRequestIDs(t *testing.T) {
	_, c := startServer(t, testConfig(), NewMasterKey(masterKey))
	for _, clientID := range []string{"", "has spaces", string(make([]byte, 200))} {
		resp := routerStream(t, c).send(requestHeaders(true, ":method", "GET", ":path", "/health/readiness", "x-request-id", clientID))
		id := summarize(resp).Set[headerRequestID]
		if !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(id) {
			t.Errorf("client x-request-id %q: request id = %q, want a generated UUIDv4", clientID, id)
		}
	}
}

func TestModels(t *testing.T) {
	s, c := startServer(t, testConfig(), newFakeAuth())
	entry := func(id string) string {
		return fmt.Sprintf(`{"id":%q,"object":"model","created":%d,"owned_by":"tollgate"}`, id, s.created)
	}
	cases := []struct {
		name, path, key string
		want            outcome
	}{
		{
			name: "master key sees every alias in config order",
			path: "/v1/models", key: masterKey,
			want: outcome{Phase: "immediate", Status: 200, Set: jsonReply(), Body: ptr(`{"object":"list","data":[` +
				entry("gpt-5.5") + "," + entry("local-llama") + "," + entry("fast") + "," + entry("embedder") + `]}`)},
		},
		{
			name: "scoped key sees its aliases and those of its access groups",
			path: "/models?limit=10", key: scopedKey,
			want: outcome{Phase: "immediate", Status: 200, Set: jsonReply(),
				Body: ptr(`{"object":"list","data":[` + entry("local-llama") + "," + entry("embedder") + `]}`)},
		},
		{
			name: "one model",
			path: "/v1/models/local-llama", key: scopedKey,
			want: outcome{Phase: "immediate", Status: 200, Set: jsonReply(), Body: ptr(entry("local-llama"))},
		},
		{
			name: "a model the key may not use does not exist for it",
			path: "/v1/models/gpt-5.5", key: scopedKey,
			want: outcome{Phase: "immediate", Status: 404, Set: jsonReply(), Body: errorJSON(
				`model "gpt-5.5" not found: use one of the model_name aliases in config.yaml: local-llama, embedder`,
				"invalid_request_error", "model", "model_not_found")},
		},
		{
			name: "model list needs a key",
			path: "/v1/models",
			want: outcome{Phase: "immediate", Status: 401, Set: jsonReply(),
				Body: errorJSON("missing API key: send Authorization: Bearer sk-...", "authentication_error", "", "missing_api_key")},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var kv []string
			if tc.key != "" {
				kv = []string{"authorization", "Bearer " + tc.key}
			}
			got := summarize(routerStream(t, c).send(get(tc.path, kv...)))
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("response (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRouterRequestBody(t *testing.T) {
	_, c := startServer(t, testConfig(), newFakeAuth())
	routed := func(alias, endpoint string) outcome {
		return outcome{Phase: "request_body", ClearRouteCache: true, Set: map[string]string{
			"x-tollgate-alias": alias, "x-tollgate-endpoint": endpoint, "x-tollgate-request-id": "req-1"}}
	}
	big := fmt.Sprintf(`{"model":"gpt-5.5","messages":[{"role":"user","content":"%4096s"}]}`, "x")
	cases := []struct {
		name, path, key, body string
		want                  outcome
	}{
		{
			name: "chat completion", path: "/v1/chat/completions", key: masterKey,
			body: `{"model":"gpt-5.5","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}`,
			want: routed("gpt-5.5", "chat/completions"),
		},
		{
			name: "embeddings through an access group", path: "/embeddings", key: scopedKey,
			body: `{"input":"hello","model":"embedder"}`,
			want: routed("embedder", "embeddings"),
		},
		{
			name: "Azure path names the alias", path: "/openai/deployments/local-llama/completions?api-version=2024-10-21", key: scopedKey,
			body: `{"prompt":"hi"}`,
			want: routed("local-llama", "completions"),
		},
		{
			name: "body over the limit", path: "/v1/chat/completions", key: masterKey, body: big,
			want: outcome{Phase: "immediate", Status: 413, Set: jsonReply(), Body: errorJSON(
				fmt.Sprintf("request body is %d bytes; the limit is 4096 bytes (general_settings.max_request_size_mb)", len(big)),
				"invalid_request_error", "", "request_too_large")},
		},
		{
			name: "malformed JSON", path: "/v1/chat/completions", key: masterKey,
			body: `{"model":"gpt-5.5", "messages": [}`,
			want: outcome{Phase: "immediate", Status: 400, Set: jsonReply(), Body: errorJSON(
				"request body is not valid JSON: invalid character '}' looking for beginning of value (at byte offset 34)",
				"invalid_request_error", "", "invalid_request")},
		},
		{
			name: "not an object", path: "/v1/chat/completions", key: masterKey, body: `["gpt-5.5"]`,
			want: outcome{Phase: "immediate", Status: 400, Set: jsonReply(), Body: errorJSON(
				"request body must be a JSON object, not array", "invalid_request_error", "", "invalid_request")},
		},
		{
			name: "model of the wrong type", path: "/v1/chat/completions", key: masterKey, body: `{"model":5}`,
			want: outcome{Phase: "immediate", Status: 400, Set: jsonReply(), Body: errorJSON(
				`"model" must be a string, not number`, "invalid_request_error", "model", "invalid_request")},
		},
		{
			name: "missing model", path: "/v1/chat/completions", key: masterKey, body: `{"messages":[]}`,
			want: outcome{Phase: "immediate", Status: 400, Set: jsonReply(), Body: errorJSON(
				"you must provide a model parameter", "invalid_request_error", "model", "invalid_request")},
		},
		{
			name: "unknown alias lists the aliases", path: "/v1/chat/completions", key: masterKey,
			body: `{"model":"openai/gpt-5.5"}`,
			want: outcome{Phase: "immediate", Status: 404, Set: jsonReply(), Body: errorJSON(
				`model "openai/gpt-5.5" not found: use one of the model_name aliases in config.yaml: gpt-5.5, local-llama, fast, embedder`,
				"invalid_request_error", "model", "model_not_found")},
		},
		{
			name: "alias the key may not use", path: "/v1/chat/completions", key: scopedKey,
			body: `{"model":"gpt-5.5"}`,
			want: outcome{Phase: "immediate", Status: 401, Set: jsonReply(), Body: errorJSON(
				`this key may not use model "gpt-5.5"; this key may use: local-llama, embedder. Generate a key scoped to that model (/key/generate with "models")`,
				"authentication_error", "model", "key_model_access_denied")},
		},
		{
			name: "endpoint the alias does not serve", path: "/v1/embeddings", key: masterKey,
			body: `{"model":"fast","input":"x"}`,
			want: outcome{Phase: "immediate", Status: 400, Set: jsonReply(), Body: errorJSON(
				`model "fast" does not serve /v1/embeddings: none of its deployments' providers support it`,
				"invalid_request_error", "model", "unsupported_endpoint")},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := routerStream(t, c)
			if got := summarize(e.send(post(tc.path, "authorization", "Bearer "+tc.key))); got.Phase != "request_headers" {
				t.Fatalf("request headers answered %+v, want CONTINUE", got)
			}
			got := summarize(e.send(requestBody(tc.body)))
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("request body response (-want +got):\n%s", diff)
			}
		})
	}
}

// exchange runs a routed chat completion on e up to its response headers.
func exchange(t *testing.T, e *envoyStream, respHeaders ...string) outcome {
	t.Helper()
	e.send(post("/v1/chat/completions", "authorization", "Bearer "+masterKey))
	if got := summarize(e.send(requestBody(`{"model":"gpt-5.5","messages":[]}`))); got.Phase != "request_body" {
		t.Fatalf("request body answered %+v", got)
	}
	return summarize(e.send(responseHeaders(false, respHeaders...)))
}

func TestRouterBufferedResponse(t *testing.T) {
	_, c := startServer(t, testConfig(), NewMasterKey(masterKey))
	labels := map[string]string{
		"x-tollgate-request-id": "req-1", "x-litellm-call-id": "req-1",
		"x-litellm-model-group": "gpt-5.5", "x-litellm-model-id": "gpt-5.5-0",
	}
	envoyLabels := map[string]string{"x-tollgate-request-id": "req-1", "x-litellm-call-id": "req-1", "x-litellm-model-group": "gpt-5.5"}
	completion := `{"id":"chatcmpl-1","object":"chat.completion","model":"gpt-5.5","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}`
	upstreamTimeout := `{"error":{"message":"provider returned HTTP 504: upstream request timeout","type":"api_error","param":null,"code":null}}`
	noUpstream := `{"error":{"message":"the upstream request failed: no healthy upstream","type":"api_error","param":null,"code":"upstream_error"}}`
	cases := []struct {
		name        string
		headers     []string
		body        string
		wantHeaders outcome
		wantBody    outcome
	}{
		{
			name:        "success passes unchanged",
			headers:     []string{":status", "200", "content-type", "application/json", "content-length", strconv.Itoa(len(completion)), headerDeployment, "gpt-5.5-0"},
			body:        completion,
			wantHeaders: outcome{Phase: "response_headers", Set: labels, Remove: []string{headerDeployment}},
			wantBody:    outcome{Phase: "response_body"},
		},
		{
			name:        "OpenAI error passes with the provider's status",
			headers:     []string{":status", "429", "content-type", "application/json", headerDeployment, "gpt-5.5-0"},
			body:        `{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}`,
			wantHeaders: outcome{Phase: "response_headers", Set: labels, Remove: []string{headerDeployment}},
			wantBody:    outcome{Phase: "response_body"},
		},
		{
			name:        "Envoy's timeout reply for a deployment becomes an OpenAI error",
			headers:     []string{":status", "504", "content-type", "text/plain", "content-length", "24", headerDeployment, "gpt-5.5-0"},
			body:        "upstream request timeout",
			wantHeaders: outcome{Phase: "response_headers", Set: labels, Remove: []string{headerDeployment}},
			wantBody: outcome{Phase: "response_body", Body: ptr(upstreamTimeout),
				Set: map[string]string{"content-type": "application/json", "content-length": strconv.Itoa(len(upstreamTimeout))}},
		},
		{
			name:        "Envoy's own reply without a deployment keeps its text",
			headers:     []string{":status", "503", "content-type", "text/plain", "content-length", "19"},
			body:        "no healthy upstream",
			wantHeaders: outcome{Phase: "response_headers", Set: envoyLabels},
			wantBody: outcome{Phase: "response_body", Body: ptr(noUpstream),
				Set: map[string]string{"content-type": "application/json", "content-length": strconv.Itoa(len(noUpstream))}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := routerStream(t, c)
			if diff := cmp.Diff(tc.wantHeaders, exchange(t, e, tc.headers...)); diff != "" {
				t.Errorf("response headers response (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantBody, summarize(e.send(responseBody(tc.body, true)))); diff != "" {
				t.Errorf("response body response (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRouterNormalisesProviderErrors(t *testing.T) {
	// Ollama answers errors as {"error": "text"}: the client gets OpenAI's shape, with
	// Ollama's status and message.
	_, c := startServer(t, testConfig(), NewMasterKey(masterKey))
	e := routerStream(t, c)
	e.send(post("/v1/chat/completions", "authorization", "Bearer "+masterKey))
	e.send(requestBody(`{"model":"local-llama"}`))
	e.send(responseHeaders(false, ":status", "404", "content-type", "application/json", headerDeployment, "local-llama-0"))
	want := `{"error":{"message":"model \"llama3.1\" not found, try pulling it first","type":"invalid_request_error","param":null,"code":null}}`
	got := summarize(e.send(responseBody(`{"error":"model \"llama3.1\" not found, try pulling it first"}`, true)))
	if diff := cmp.Diff(outcome{Phase: "response_body", Body: ptr(want),
		Set: map[string]string{"content-type": "application/json", "content-length": strconv.Itoa(len(want))}}, got); diff != "" {
		t.Errorf("response body response (-want +got):\n%s", diff)
	}
}

func TestRouterErrorWithoutBody(t *testing.T) {
	_, c := startServer(t, testConfig(), NewMasterKey(masterKey))
	e := routerStream(t, c)
	e.send(post("/v1/chat/completions", "authorization", "Bearer "+masterKey))
	e.send(requestBody(`{"model":"gpt-5.5"}`))
	got := summarize(e.send(responseHeaders(true, ":status", "502", headerDeployment, "gpt-5.5-1")))
	want := outcome{Phase: "immediate", Status: 502,
		Set:  jsonReply("x-litellm-model-group", "gpt-5.5", "x-litellm-model-id", "gpt-5.5-1"),
		Body: ptr(`{"error":{"message":"provider returned HTTP 502: (empty body)","type":"api_error","param":null,"code":null}}`)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("response headers response (-want +got):\n%s", diff)
	}
}

func TestRouterStreamedResponse(t *testing.T) {
	_, c := startServer(t, testConfig(), NewMasterKey(masterKey))
	e := routerStream(t, c)
	got := exchange(t, e, ":status", "200", "content-type", "text/event-stream; charset=utf-8", "content-length", "999", headerDeployment, "gpt-5.5-0")
	want := outcome{Phase: "response_headers", StreamedBody: true,
		Set: map[string]string{"x-tollgate-request-id": "req-1", "x-litellm-call-id": "req-1",
			"x-litellm-model-group": "gpt-5.5", "x-litellm-model-id": "gpt-5.5-0"},
		Remove: []string{"content-length", headerDeployment}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("response headers response (-want +got):\n%s", diff)
	}

	event1 := `data: {"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Hel"}}]}` + "\n\n"
	event2 := `data: {"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"lo"}}]}` + "\n\n"
	done := "data: [DONE]\n\n"
	chunks := []struct {
		in   string
		eos  bool
		want outcome
	}{
		// A whole event passes as it is: no mutation to send.
		{in: event1, want: outcome{Phase: "response_body"}},
		// An event split across chunks is held until its end arrives.
		{in: event2[:30], want: outcome{Phase: "response_body", Body: ptr("")}},
		{in: event2[30:] + done, eos: true, want: outcome{Phase: "response_body", Body: ptr(event2 + done)}},
	}
	for i, ch := range chunks {
		got := summarize(e.send(responseBody(ch.in, ch.eos)))
		if diff := cmp.Diff(ch.want, got); diff != "" {
			t.Errorf("chunk %d response (-want +got):\n%s", i, diff)
		}
	}
}
