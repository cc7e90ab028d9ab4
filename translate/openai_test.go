package translate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func target(t *testing.T, provider, base, model string) *Target {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	return &Target{Provider: provider, Model: model, Base: u, APIKey: "sk-provider"}
}

func TestOpenAIRequest(t *testing.T) {
	body := []byte(`{"model": "gpt-5.5", "messages": [{"role":"user","content":"hi \"model\": x"}], "stream": true}`)
	tests := []struct {
		name       string
		provider   string
		base       string
		ep         Endpoint
		apiVersion string
		wantPath   string
		wantAuth   Header
	}{
		{"openai", "openai", "https://api.openai.com/v1", ChatCompletions, "", "/v1/chat/completions", Header{"authorization", "Bearer sk-provider"}},
		{"openai embeddings", "openai", "https://api.openai.com/v1/", Embeddings, "", "/v1/embeddings", Header{"authorization", "Bearer sk-provider"}},
		{"groq", "groq", "https://api.groq.com/openai/v1", ChatCompletions, "", "/openai/v1/chat/completions", Header{"authorization", "Bearer sk-provider"}},
		{"perplexity at root", "perplexity", "https://api.perplexity.ai", ChatCompletions, "", "/chat/completions", Header{"authorization", "Bearer sk-provider"}},
		{"ollama root gets /v1", "ollama", "http://ollama:11434", ChatCompletions, "", "/v1/chat/completions", Header{"authorization", "Bearer sk-provider"}},
		{"ollama /v1 kept", "ollama_chat", "http://ollama:11434/v1", Completions, "", "/v1/completions", Header{"authorization", "Bearer sk-provider"}},
		{"azure default version", "azure", "https://res.openai.azure.com", ChatCompletions, "", "/openai/deployments/my%20dep/chat/completions?api-version=" + azureAPIVersion, Header{"api-key", "sk-provider"}},
		{"azure explicit version", "azure", "https://res.openai.azure.com/openai/", Embeddings, "2025-04-01-preview", "/openai/deployments/my%20dep/embeddings?api-version=2025-04-01-preview", Header{"api-key", "sk-provider"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			spec, ok := Lookup(tc.provider)
			if !ok {
				t.Fatalf("provider %q not registered", tc.provider)
			}
			model := "real-model"
			if tc.provider == "azure" {
				model = "my dep"
			}
			tg := target(t, tc.provider, tc.base, model)
			tg.APIVersion = tc.apiVersion
			up, err := spec.Request(tc.ep, body, tg)
			if err != nil {
				t.Fatal(err)
			}
			if up.Path != tc.wantPath {
				t.Errorf("path = %q, want %q", up.Path, tc.wantPath)
			}
			if up.Authority != tg.Base.Host {
				t.Errorf("authority = %q, want %q", up.Authority, tg.Base.Host)
			}
			if diff := cmp.Diff([]Header{tc.wantAuth}, up.Headers); diff != "" {
				t.Errorf("headers (-want +got):\n%s", diff)
			}
			var got map[string]any
			if err := json.Unmarshal(up.Body, &got); err != nil {
				t.Fatalf("translated body is not JSON: %v\n%s", err, up.Body)
			}
			want := map[string]any{"model": model, "stream": true, "messages": []any{map[string]any{"role": "user", "content": `hi "model": x`}}}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("body (-want +got):\n%s", diff)
			}
		})
	}
}

func TestOpenAIRequestHeaders(t *testing.T) {
	spec, _ := Lookup("openai")
	tg := target(t, "openai", "https://api.openai.com/v1", "gpt-5.5")
	tg.Organization = "org-1"
	tg.ExtraHeaders = map[string]string{"X-Team": "blue"}
	up, err := spec.Request(ChatCompletions, []byte(`{"model":"a"}`), tg)
	if err != nil {
		t.Fatal(err)
	}
	want := []Header{{"authorization", "Bearer sk-provider"}, {"openai-organization", "org-1"}, {"x-team", "blue"}}
	if diff := cmp.Diff(want, up.Headers); diff != "" {
		t.Errorf("headers (-want +got):\n%s", diff)
	}
	tg.APIKey = ""
	up, _ = spec.Request(ChatCompletions, []byte(`{"model":"a"}`), &Target{Model: "m", Base: tg.Base})
	if len(up.Headers) != 0 {
		t.Errorf("no key configured, yet headers %v", up.Headers)
	}
}

func TestSetTopLevel(t *testing.T) {
	tests := []struct{ in, want string }{
		{`{"model":"a"}`, `{"model":"b"}`},
		{` { "x": {"model": "nested"}, "model" : "a" , "y":[1,"model"]}`, ` { "x": {"model": "nested"}, "model" : "b" , "y":[1,"model"]}`},
		{`{"m\"odel":"a","model":null}`, `{"m\"odel":"a","model":"b"}`},
		{`{}`, `{"model":"b"}`},
		{`{"n":1}`, `{"model":"b","n":1}`},
		{`{"n":true,"model":12.5e3}`, `{"n":true,"model":"b"}`},
		{`{"model":"a","model":"gpt-raw"}`, `{"model":"b","model":"b"}`},
	}
	for _, tc := range tests {
		if got := string(setTopLevel([]byte(tc.in), "model", []byte(`"b"`))); got != tc.want {
			t.Errorf("setTopLevel(%s) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestOpenAIResponseUsage(t *testing.T) {
	body, err := os.ReadFile("testdata/openai/chat_completion.json")
	if err != nil {
		t.Fatal(err)
	}
	spec, _ := Lookup("openai")
	out, u, err := spec.Response(ChatCompletions, 200, body)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, body) {
		t.Error("a successful OpenAI response must pass through unchanged")
	}
	want := Usage{PromptTokens: 1117, CompletionTokens: 46, CachedTokens: 1024, ReasoningTokens: 12, Known: true}
	if diff := cmp.Diff(want, u); diff != "" {
		t.Errorf("usage (-want +got):\n%s", diff)
	}
}

func TestOpenAIErrors(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		want   APIError
	}{
		{"openai shape kept", 400, `{"error":{"message":"This model's maximum context length is 128000 tokens.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}`,
			APIError{Status: 400, Message: "This model's maximum context length is 128000 tokens.", Type: "invalid_request_error", Param: "messages", Code: "context_length_exceeded"}},
		{"ollama string error", 404, `{"error":"model \"llama9\" not found, try pulling it first"}`,
			APIError{Status: 404, Message: `model "llama9" not found, try pulling it first`, Type: "invalid_request_error"}},
		{"vllm detail", 400, `{"detail":"bad"}`, APIError{Status: 400, Message: "bad", Type: "invalid_request_error"}},
		{"html from a proxy", 502, "<html>\n<body>Bad   Gateway</body></html>",
			APIError{Status: 502, Message: "provider returned HTTP 502: <html> <body>Bad Gateway</body></html>", Type: "api_error"}},
		{"credentials never echoed", 401, `{"error":{"message":"Incorrect API key provided: sk-abc***xyz.","type":"invalid_request_error","code":"invalid_api_key"}}`,
			APIError{Status: 401, Message: "the provider rejected this deployment's credentials (HTTP 401): check the api_key configured for it", Type: "invalid_request_error", Code: "invalid_api_key"}},
		{"rate limit", 429, `{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}`,
			APIError{Status: 429, Message: "Rate limit reached", Type: "requests", Code: "rate_limit_exceeded"}},
	}
	spec, _ := Lookup("openai")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, _, err := spec.Response(ChatCompletions, tc.status, []byte(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(string(tc.want.JSON()), string(out)); diff != "" {
				t.Errorf("error body (-want +got):\n%s", diff)
			}
		})
	}
}

// TestOpenAIStreamChunkBoundaries feeds the documented stream split at every byte
// offset: the client must receive the same bytes (without the usage chunk when it did not
// ask for it), and the usage must be read, however the provider's writes were cut.
func TestOpenAIStreamChunkBoundaries(t *testing.T) {
	stream, err := os.ReadFile("testdata/openai/chat_stream.sse")
	if err != nil {
		t.Fatal(err)
	}
	usageEvent := regexp.MustCompile(`(?m)^data: \{[^\n]*"choices":\[\],"usage":\{[^\n]*\n\n`)
	if n := len(usageEvent.FindAll(stream, -1)); n != 1 {
		t.Fatalf("fixture has %d usage chunks, want 1", n)
	}
	wantUsage := Usage{PromptTokens: 9, CompletionTokens: 2, Known: true}
	for _, includeUsage := range []bool{true, false} {
		t.Run(fmt.Sprintf("include_usage=%t", includeUsage), func(t *testing.T) {
			want := stream
			if !includeUsage {
				want = usageEvent.ReplaceAll(stream, nil)
			}
			for cut := 0; cut <= len(stream); cut++ {
				s := ChatCompletions.stream(includeUsage)
				a, err1 := s.Next(stream[:cut], false)
				b, err2 := s.Next(stream[cut:], true)
				if err1 != nil || err2 != nil {
					t.Fatalf("cut %d: %v %v", cut, err1, err2)
				}
				if diff := cmp.Diff(string(want), string(a)+string(b)); diff != "" {
					t.Fatalf("cut %d: output (-want +got):\n%s", cut, diff)
				}
				if bytes.HasSuffix(a, []byte("\n")) != (len(a) > 0) {
					t.Fatalf("cut %d: a partial line was forwarded: %q", cut, a)
				}
				if diff := cmp.Diff(wantUsage, s.Usage()); diff != "" {
					t.Fatalf("cut %d: usage (-want +got):\n%s", cut, diff)
				}
			}
		})
	}
}

// TestOpenAIStreamHidesUsage checks which chunks a client that did not ask for usage
// loses: only a usage-only chunk and the blank line ending its event, wherever the line
// breaks fall.
func TestOpenAIStreamHidesUsage(t *testing.T) {
	const (
		text  = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}],\"usage\":null}\n\n"
		both  = "data: {\"choices\":[{\"index\":0,\"delta\":{}}],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4}}\n\n"
		usage = "data: {\"id\":\"x\",\"choices\": [ ],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":6}}\r\n\r\n"
		done  = "data: [DONE]\n\n"
	)
	tests := []struct {
		name, in, want string
		usage          Usage
	}{
		{"usage chunk dropped", text + usage + done, text + done, Usage{PromptTokens: 5, CompletionTokens: 6, Known: true}},
		{"usage with choices kept", text + both + done, text + both + done, Usage{PromptTokens: 3, CompletionTokens: 4, Known: true}},
		{"null usage kept", text + done, text + done, Usage{}},
		{"usage chunk without its blank line", text + strings.TrimSuffix(usage, "\r\n") + done, text + done, Usage{PromptTokens: 5, CompletionTokens: 6, Known: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := ChatCompletions.stream(false)
			var got []byte
			for i := range len(tc.in) {
				out, err := s.Next([]byte(tc.in[i:i+1]), i == len(tc.in)-1)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, out...)
			}
			if diff := cmp.Diff(tc.want, string(got)); diff != "" {
				t.Errorf("client stream (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.usage, s.Usage()); diff != "" {
				t.Errorf("usage (-want +got):\n%s", diff)
			}
		})
	}
}

func (e Endpoint) stream(includeUsage bool) Stream {
	spec, _ := Lookup("openai")
	return spec.Stream(e, StreamOptions{IncludeUsage: includeUsage})
}

func TestOpenAIStreamCut(t *testing.T) {
	s := ChatCompletions.stream(true)
	out, err := s.Next([]byte("data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\n\ndata: {\"choi"), true)
	if err != nil {
		t.Fatal(err)
	}
	want := "data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\n\n" +
		`data: {"error":{"message":"the provider ended the stream before it was complete; retry the request","type":"api_error","param":null,"code":"stream_interrupted"}}` +
		"\n\ndata: [DONE]\n\n"
	if diff := cmp.Diff(want, string(out)); diff != "" {
		t.Errorf("cut stream (-want +got):\n%s", diff)
	}
}

func FuzzOpenAIStream(f *testing.F) {
	seed, _ := os.ReadFile("testdata/openai/chat_stream.sse")
	f.Add(seed, 10)
	f.Add([]byte("data: {\"usage\":{\"prompt_tokens\":\"x\"}}\n\ndata: [DONE]\n"), 3)
	f.Add([]byte("data: {\"usage\"\r\n:"), 0)
	f.Add([]byte("data: {\"choices\":[],\"usage\":{}}\ndata: x\n\n"), 5)
	f.Fuzz(func(t *testing.T, data []byte, cut int) {
		if cut < 0 || cut > len(data) {
			cut = len(data) / 2
		}
		run := func(includeUsage bool) []byte {
			s := ChatCompletions.stream(includeUsage)
			a, _ := s.Next(data[:cut], false)
			b, _ := s.Next(data[cut:], true)
			return append(append([]byte(nil), a...), b...) // a may share data's array
		}
		all := run(true)
		complete := data[:bytes.LastIndexByte(data, '\n')+1]
		if !bytes.HasPrefix(all, complete) {
			t.Fatalf("complete lines were not forwarded unchanged")
		}
		// Without include_usage, the client gets the same lines minus usage-only chunks
		// and the blank lines after them.
		hidden := bytes.SplitAfter(run(false), []byte("\n"))
		for _, line := range bytes.SplitAfter(all, []byte("\n")) {
			if len(hidden) > 0 && bytes.Equal(hidden[0], line) {
				hidden = hidden[1:]
				continue
			}
			payload, _ := bytes.CutPrefix(bytes.TrimSpace(line), dataPrefix)
			u, _ := openAIUsage(bytes.TrimSpace(payload))
			if len(bytes.TrimSpace(line)) > 0 && !(u.Known && noChoices(bytes.TrimSpace(payload))) {
				t.Fatalf("line %q was dropped without include_usage", line)
			}
		}
		if len(hidden) > 0 {
			t.Fatalf("lines %q were not in the stream", hidden)
		}
	})
}

func FuzzSetTopLevel(f *testing.F) {
	f.Add([]byte(`{"model":"a","x":[{"model":1}]}`))
	f.Add([]byte(`{"a":"\\\"","model":{}}`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		if !json.Valid(doc) || bytes.TrimSpace(doc)[0] != '{' {
			return
		}
		out := setTopLevel(doc, "model", []byte(`"m"`))
		var got map[string]json.RawMessage
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("setTopLevel(%s) = %s: not JSON: %v", doc, out, err)
		}
		if string(got["model"]) != `"m"` {
			t.Fatalf("setTopLevel(%s) = %s: model not set", doc, out)
		}
	})
}

// azure_ai/ (Azure AI model inference, Foundry and serverless endpoints) keeps the model
// in the body, adds an api-version and sends the key both ways Azure reads it.
func TestAzureAIRequest(t *testing.T) {
	spec, _ := Lookup("azure_ai")
	tests := []struct {
		base, version string
		ep            Endpoint
		wantPath      string
	}{
		{"https://res.services.ai.azure.com/models", "", ChatCompletions, "/models/chat/completions?api-version=" + azureAIAPIVersion},
		{"https://mistral-x.eastus2.models.ai.azure.com/", "2024-08-01", Embeddings, "/embeddings?api-version=2024-08-01"},
	}
	for _, tc := range tests {
		tg := target(t, "azure_ai", tc.base, "mistral-large-2411")
		tg.APIVersion = tc.version
		up, err := spec.Request(tc.ep, []byte(`{"model":"alias","input":"x"}`), tg)
		if err != nil {
			t.Fatal(err)
		}
		if up.Path != tc.wantPath || string(up.Body) != `{"model":"mistral-large-2411","input":"x"}` {
			t.Errorf("%s: path %q body %s", tc.base, up.Path, up.Body)
		}
		want := []Header{{"api-key", "sk-provider"}, {"authorization", "Bearer sk-provider"}}
		if diff := cmp.Diff(want, up.Headers); diff != "" {
			t.Errorf("headers (-want +got):\n%s", diff)
		}
	}
}
