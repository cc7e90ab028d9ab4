package extproc

import (
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tollgate-dev/tollgate/translate"
)

// routedHeaders are the request headers an upstream filter sees for a chat completion the
// router stage accepted: the client's, minus its key, plus the routing headers.
func routedHeaders(body string) map[string]string {
	return map[string]string{
		":method": "POST", ":path": "/v1/chat/completions", ":scheme": "https", ":authority": "gateway.example",
		"content-type": "application/json", "content-length": strconv.Itoa(len(body)), "x-request-id": "req-1",
		"x-tollgate-alias": "gpt-5.5", "x-tollgate-endpoint": "chat/completions", "x-tollgate-request-id": "req-1",
	}
}

// removedExcept is every credential header but those a provider sets.
func removedExcept(set ...string) []string {
	var out []string
	for _, h := range translate.CredentialHeaders {
		if !slices.Contains(set, h) {
			out = append(out, h)
		}
	}
	sort.Strings(out)
	return out
}

func TestUpstreamRequest(t *testing.T) {
	_, c := startServer(t, testConfig(), NewMasterKey(masterKey))
	const body = `{"model":"gpt-5.5","messages":[{"role":"user","content":"hi"}]}`
	openaiBody := body
	azureBody := `{"model":"gpt55-eastus","messages":[{"role":"user","content":"hi"}]}`
	cases := []struct {
		deployment string
		want       outcome
	}{
		{
			deployment: "gpt-5.5-0",
			want: outcome{Phase: "request_body", Body: ptr(openaiBody),
				Set: map[string]string{
					":path": "/v1/chat/completions", ":authority": "api.openai.com",
					"authorization": "Bearer sk-openai-secret", "openai-organization": "org-1",
					"content-length": strconv.Itoa(len(openaiBody)),
				},
				Remove: removedExcept("authorization", "openai-organization")},
		},
		{
			deployment: "gpt-5.5-1",
			want: outcome{Phase: "request_body", Body: ptr(azureBody),
				Set: map[string]string{
					":path":      "/openai/deployments/gpt55-eastus/chat/completions?api-version=2024-10-21",
					":authority": "tg.openai.azure.com", "api-key": "azure-secret",
					"content-length": strconv.Itoa(len(azureBody)),
				},
				Remove: removedExcept("api-key")},
		},
	}
	for _, tc := range cases {
		t.Run(tc.deployment, func(t *testing.T) {
			e := upstreamStream(t, c, tc.deployment)
			if got := summarize(e.send(requestHeaders(false, flatten(routedHeaders(body))...))); !cmp.Equal(got, outcome{Phase: "request_headers"}) {
				t.Fatalf("request headers answered %+v, want CONTINUE without changes", got)
			}
			got := summarize(e.send(requestBody(body)))
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("request body response (-want +got):\n%s", diff)
			}
		})
	}
}

// TestUpstreamAttemptsShareHeaders replays a request's fallback chain the way Envoy runs
// it: each attempt's filter sees the header map as the previous attempt left it.
func TestUpstreamAttemptsShareHeaders(t *testing.T) {
	_, c := startServer(t, testConfig(), NewMasterKey(masterKey))
	const body = `{"model":"gpt-5.5","messages":[{"role":"user","content":"hi"}]}`
	headers := routedHeaders(body)
	attempts := []struct {
		deployment  string
		credentials map[string]string
		path        string
		body        string
	}{
		{"gpt-5.5-0", map[string]string{"authorization": "Bearer sk-openai-secret", "openai-organization": "org-1"},
			"/v1/chat/completions", body},
		{"gpt-5.5-1", map[string]string{"api-key": "azure-secret"},
			"/openai/deployments/gpt55-eastus/chat/completions?api-version=2024-10-21",
			`{"model":"gpt55-eastus","messages":[{"role":"user","content":"hi"}]}`},
		{"local-llama-0", map[string]string{}, "/v1/chat/completions",
			`{"model":"llama3.1","messages":[{"role":"user","content":"hi"}]}`},
	}
	for _, a := range attempts {
		e := upstreamStream(t, c, a.deployment)
		e.send(requestHeaders(false, flatten(headers)...))
		resp := e.send(requestBody(body)) // every attempt gets the client's body
		common := resp.GetRequestBody().GetResponse()
		if common == nil {
			t.Fatalf("%s: answered %+v, want a body response", a.deployment, summarize(resp))
		}
		applyMutation(headers, common.GetHeaderMutation())

		gotCreds := map[string]string{}
		for _, h := range translate.CredentialHeaders {
			if v, ok := headers[h]; ok {
				gotCreds[h] = v
			}
		}
		if diff := cmp.Diff(a.credentials, gotCreds); diff != "" {
			t.Errorf("%s: credential headers after the attempt (-want +got):\n%s", a.deployment, diff)
		}
		gotBody := string(common.GetBodyMutation().GetBody())
		got := []string{headers[":path"], gotBody, headers["content-length"], headers["x-tollgate-endpoint"], headers["x-tollgate-request-id"]}
		want := []string{a.path, a.body, strconv.Itoa(len(a.body)), "chat/completions", "req-1"}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: path, body, content-length, routing headers (-want +got):\n%s", a.deployment, diff)
		}
	}
}

func TestUpstreamErrors(t *testing.T) {
	_, c := startServer(t, testConfig(), NewMasterKey(masterKey))
	const body = `{"model":"gpt-5.5"}`
	withoutEndpoint := routedHeaders(body)
	delete(withoutEndpoint, headerEndpoint)
	embeddings := routedHeaders(body)
	embeddings[headerEndpoint] = "embeddings"
	cases := []struct {
		name, deployment string
		headers          map[string]string
		atHeaders        bool // the error comes at request headers
		want             outcome
	}{
		{
			name: "deployment missing from config.yaml", deployment: "gpt-5.5-7", headers: routedHeaders(body), atHeaders: true,
			want: outcome{Phase: "immediate", Status: 500, Set: jsonReply(), Body: errorJSON(
				"envoy.yaml sends this request to deployment \"gpt-5.5-7\", which config.yaml does not define: config.yaml and envoy.yaml disagree (render envoy.yaml again with `tollgate envoy`)",
				"api_error", "", "config_mismatch")},
		},
		{
			name: "request that skipped the router stage", deployment: "gpt-5.5-0", headers: withoutEndpoint,
			want: outcome{Phase: "immediate", Status: 500, Set: jsonReply(), Body: errorJSON(
				"x-tollgate-endpoint missing: request did not pass the router-level ext_proc filter",
				"api_error", "", "config_mismatch")},
		},
		{
			name: "endpoint the deployment does not serve", deployment: "fast-0", headers: embeddings,
			want: outcome{Phase: "immediate", Status: 400, Set: jsonReply(), Body: errorJSON(
				"deployment fast-0 (groq) does not serve /v1/embeddings", "invalid_request_error", "", "unsupported_endpoint")},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := upstreamStream(t, c, tc.deployment)
			got := summarize(e.send(requestHeaders(false, flatten(tc.headers)...)))
			if !tc.atHeaders {
				if got.Phase != "request_headers" {
					t.Fatalf("request headers answered %+v, want CONTINUE", got)
				}
				got = summarize(e.send(requestBody(body)))
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("response (-want +got):\n%s", diff)
			}
		})
	}
}

// TestLargeBody sends a body bigger than grpc-go's default 4 MiB message limit through
// both stages: BUFFERED bodies arrive as one message, so the server must accept messages
// as big as the configured request limit.
func TestLargeBody(t *testing.T) {
	cfg := testConfig()
	cfg.MaxRequestBytes = 8 << 20
	_, c := startServer(t, cfg, NewMasterKey(masterKey))
	body := `{"model":"gpt-5.5","input":"` + strings.Repeat("a", 6<<20) + `"}`

	router := routerStream(t, c)
	router.send(post("/v1/embeddings", "authorization", "Bearer "+masterKey))
	if got := summarize(router.send(requestBody(body))); got.Set[headerAlias] != "gpt-5.5" {
		t.Fatalf("router stage answered %+v, want the request routed to gpt-5.5", got)
	}

	headers := routedHeaders(body)
	headers[headerEndpoint] = "embeddings"
	up := upstreamStream(t, c, "gpt-5.5-1")
	up.send(requestHeaders(false, flatten(headers)...))
	got := up.send(requestBody(body)).GetRequestBody().GetResponse()
	wantBody := strings.Replace(body, `"gpt-5.5"`, `"gpt55-eastus"`, 1)
	if string(got.GetBodyMutation().GetBody()) != wantBody {
		t.Errorf("upstream body is %d bytes, want the %d-byte Azure body", len(got.GetBodyMutation().GetBody()), len(wantBody))
	}
}
