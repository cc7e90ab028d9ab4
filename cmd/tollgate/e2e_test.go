package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/tollgate-dev/tollgate/translate/providertest"
)

const masterKey = "sk-master-e2e"

// gatewayUnderTest is a whole gateway started through run("dev"), as `make run` starts
// it: the Envoy emulator in front of tollgate's ext_proc server, over real gRPC.
type gatewayUnderTest struct {
	URL string
	// Stop cancels run's context, as SIGTERM does in main, and waits for it to return:
	// in-flight requests end and spend records are drained.
	Stop func()
}

// startDev writes config to a file and runs `tollgate dev` on a free port until the
// test ends.
func startDev(t testing.TB, config string, args ...string) *gatewayUnderTest {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	out, w := io.Pipe()
	var logs bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"dev", "--config", path, "--listen", "127.0.0.1:0"}, args...), w, &syncWriter{w: &logs})
		w.Close()
	}()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		cancel()
		t.Fatalf("tollgate dev did not start: %v (run: %v)\nlogs:\n%s", err, <-done, logs.String())
	}
	go io.Copy(io.Discard, out)
	_, rest, _ := strings.Cut(line, "http://")
	addr, _, _ := strings.Cut(rest, " ")
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("tollgate dev: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Error("tollgate dev did not stop within 30s of cancellation")
			}
		})
	}
	t.Cleanup(stop)
	return &gatewayUnderTest{URL: "http://" + addr, Stop: stop}
}

func (g *gatewayUnderTest) client(key string) openai.Client {
	return openai.NewClient(option.WithBaseURL(g.URL+"/v1"), option.WithAPIKey(key), option.WithMaxRetries(0))
}

// post sends a raw request, for what an SDK will not send.
func (g *gatewayUnderTest) post(t *testing.T, path, key string, body []byte, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, g.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// syncWriter collects the gateway's log lines, written from several goroutines.
type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func oneProvider(t *testing.T) (*providertest.OpenAI, string) {
	fake, srv := providertest.StartOpenAI(t, "sk-upstream")
	return fake, fmt.Sprintf(`
model_list:
  - model_name: gpt-5.5
    litellm_params:
      model: openai/gpt-real
      api_base: %[1]s/v1
      api_key: sk-upstream
  - model_name: embedder
    litellm_params:
      model: openai/text-embedding-real
      api_base: %[1]s/v1
      api_key: sk-upstream
general_settings:
  master_key: %[2]s
  max_request_size_mb: 1
`, srv.URL, masterKey)
}

func TestEndToEndChatCompletion(t *testing.T) {
	fake, cfg := oneProvider(t)
	gw := startDev(t, cfg)
	client := gw.client(masterKey)

	resp, err := client.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{
		Model:    "gpt-5.5",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Summarize this in one line.")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.Choices[0].Message.Content; got != "You said: Summarize this in one line." {
		t.Errorf("reply = %q", got)
	}
	reqs := fake.Requests()
	if len(reqs) != 1 {
		t.Fatalf("provider got %d requests, want 1", len(reqs))
	}
	got := reqs[0]
	if got.Path != "/v1/chat/completions" {
		t.Errorf("provider path = %q", got.Path)
	}
	if a := got.Header.Get("Authorization"); a != "Bearer sk-upstream" {
		t.Errorf("provider Authorization = %q, want the deployment's key", a)
	}
	if strings.Contains(fmt.Sprint(got.Header), masterKey) {
		t.Errorf("the client's key reached the provider: %v", got.Header)
	}
	var body struct {
		Model    string `json:"model"`
		Messages []struct{ Role, Content string }
	}
	if err := json.Unmarshal(got.Body, &body); err != nil {
		t.Fatal(err)
	}
	if body.Model != "gpt-real" || len(body.Messages) != 1 || body.Messages[0].Content != "Summarize this in one line." {
		t.Errorf("provider body = %s", got.Body)
	}
}

func TestEndToEndStreaming(t *testing.T) {
	_, cfg := oneProvider(t)
	gw := startDev(t, cfg)
	client := gw.client(masterKey)
	stream := client.Chat.Completions.NewStreaming(context.Background(), openai.ChatCompletionNewParams{
		Model:         "gpt-5.5",
		Messages:      []openai.ChatCompletionMessageParamUnion{openai.UserMessage("one two three")},
		StreamOptions: openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)},
	})
	var acc openai.ChatCompletionAccumulator
	chunks := 0
	for stream.Next() {
		acc.AddChunk(stream.Current())
		chunks++
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if got := acc.Choices[0].Message.Content; got != "You said: one two three" {
		t.Errorf("streamed reply = %q", got)
	}
	if chunks < 5 {
		t.Errorf("got %d chunks: the stream was not forwarded chunk by chunk", chunks)
	}
	if acc.Usage.TotalTokens == 0 {
		t.Error("no usage chunk although include_usage was asked for")
	}
}

func TestEndToEndEmbeddingsAndModels(t *testing.T) {
	_, cfg := oneProvider(t)
	gw := startDev(t, cfg)
	client := gw.client(masterKey)
	ctx := context.Background()

	emb, err := client.Embeddings.New(ctx, openai.EmbeddingNewParams{
		Model: "embedder", Input: openai.EmbeddingNewParamsInputUnion{OfString: openai.String("hello")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(emb.Data) != 1 || len(emb.Data[0].Embedding) != 8 {
		t.Errorf("embeddings = %+v", emb.Data)
	}

	page, err := client.Models.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range page.Data {
		ids = append(ids, m.ID)
	}
	slices.Sort(ids)
	if diff := cmp.Diff([]string{"embedder", "gpt-5.5"}, ids); diff != "" {
		t.Errorf("models (-want +got):\n%s", diff)
	}
}

func TestEndToEndErrors(t *testing.T) {
	fake, cfg := oneProvider(t)
	gw := startDev(t, cfg)
	chat := []byte(`{"model":"gpt-5.5","messages":[{"role":"user","content":"hi"}]}`)
	tests := []struct {
		name       string
		path, key  string
		body       []byte
		wantStatus int
		wantCode   string
		wantInMsg  string
	}{
		{"no key", "/v1/chat/completions", "", chat, 401, "", "API key"},
		{"wrong key", "/v1/chat/completions", "sk-wrong", chat, 401, "", ""},
		{"unknown model lists aliases", "/v1/chat/completions", masterKey, []byte(`{"model":"gpt-4","messages":[]}`), 404, "model_not_found", "gpt-5.5, embedder"},
		{"malformed JSON", "/v1/chat/completions", masterKey, []byte(`{"model":`), 400, "", ""},
		{"missing model", "/v1/chat/completions", masterKey, []byte(`{"messages":[]}`), 400, "", "model"},
		{"body over the limit", "/v1/chat/completions", masterKey, bytes.Repeat([]byte("x"), 2<<20), 413, "", ""},
		{"no /v1 prefix works", "/chat/completions", masterKey, chat, 200, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := gw.post(t, tc.path, tc.key, tc.body)
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", resp.StatusCode, tc.wantStatus, body)
			}
			if tc.wantStatus == 200 {
				return
			}
			e := decodeError(t, body)
			if e.Message == "" || e.Type == "" {
				t.Errorf("error without message or type: %s", body)
			}
			if tc.wantCode != "" && e.Code != tc.wantCode {
				t.Errorf("code = %q, want %q", e.Code, tc.wantCode)
			}
			if !strings.Contains(e.Message, tc.wantInMsg) {
				t.Errorf("message %q does not mention %q", e.Message, tc.wantInMsg)
			}
		})
	}

	t.Run("provider error passes through in OpenAI shape", func(t *testing.T) {
		fake.FailNext(400)
		resp, body := gw.post(t, "/v1/chat/completions", masterKey, chat)
		if resp.StatusCode != 400 {
			t.Fatalf("status = %d, want the provider's 400; body %s", resp.StatusCode, body)
		}
		if e := decodeError(t, body); !strings.Contains(e.Message, "told to fail with 400") {
			t.Errorf("message = %q, want the provider's", e.Message)
		}
	})

	t.Run("SDK sees a typed error", func(t *testing.T) {
		client := gw.client(masterKey)
		_, err := client.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{
			Model: "nope", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("x")},
		})
		var apiErr *openai.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != 404 || apiErr.Code != "model_not_found" {
			t.Errorf("err = %v, want a 404 model_not_found *openai.Error", err)
		}
	})
}

type apiError struct {
	Message string `json:"message"`
	Type    string `json:"type"`
	Param   any    `json:"param"`
	Code    any    `json:"code"`
}

func decodeError(t *testing.T, body []byte) struct{ Message, Type, Code string } {
	t.Helper()
	var e struct {
		Error *apiError `json:"error"`
	}
	if err := json.Unmarshal(body, &e); err != nil || e.Error == nil {
		t.Fatalf("not an OpenAI error body: %s", body)
	}
	code, _ := e.Error.Code.(string)
	return struct{ Message, Type, Code string }{e.Error.Message, e.Error.Type, code}
}

// TestEndToEndFallback makes the first provider fail: Envoy's retry policy, emitted by
// tollgate, moves the request to the fallback alias's deployment, whose per-attempt
// ext_proc stream injects that deployment's own key.
func TestEndToEndFallback(t *testing.T) {
	primary, srvA := providertest.StartOpenAI(t, "sk-a")
	backup, srvB := providertest.StartOpenAI(t, "sk-b")
	gw := startDev(t, fmt.Sprintf(`
model_list:
  - model_name: gpt-5.5
    litellm_params: {model: openai/gpt-a, api_base: %s/v1, api_key: sk-a}
  - model_name: claude-sonnet
    litellm_params: {model: azure/claude-deployment, api_base: %s, api_key: sk-b, api_version: "2024-10-21"}
litellm_settings:
  num_retries: 1
  fallbacks: [{"gpt-5.5": ["claude-sonnet"]}]
general_settings:
  master_key: %s
`, srvA.URL, srvB.URL, masterKey))
	primary.FailNext(500, 503)

	client := gw.client(masterKey)
	resp, err := client.Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{
		Model: "gpt-5.5", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("still there?")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.Choices[0].Message.Content; got != "You said: still there?" {
		t.Errorf("reply = %q", got)
	}
	if n := len(primary.Requests()); n != 2 {
		t.Errorf("primary got %d attempts, want 2 (the first try and num_retries: 1)", n)
	}
	b := backup.Requests()
	if len(b) != 1 {
		t.Fatalf("backup got %d requests, want 1", len(b))
	}
	if b[0].Path != "/openai/deployments/claude-deployment/chat/completions?api-version=2024-10-21" {
		t.Errorf("backup path = %q", b[0].Path)
	}
	if b[0].Header.Get("Api-Key") != "sk-b" || b[0].Header.Get("Authorization") != "" {
		t.Errorf("backup credentials: api-key %q, authorization %q: want only its own api-key",
			b[0].Header.Get("Api-Key"), b[0].Header.Get("Authorization"))
	}

	// The client is told how many retries and fallbacks the request took.
	primary.FailNext(500, 503)
	r, body := gw.post(t, "/v1/chat/completions", masterKey, []byte(`{"model":"gpt-5.5","messages":[{"role":"user","content":"again"}]}`))
	if r.StatusCode != 200 || r.Header.Get("X-Litellm-Attempted-Retries") != "2" {
		t.Errorf("status %d, x-litellm-attempted-retries %q, want 200 and 2: %s", r.StatusCode, r.Header.Get("X-Litellm-Attempted-Retries"), body)
	}
}

func TestEndToEndStripsInternalHeaders(t *testing.T) {
	fake, cfg := oneProvider(t)
	gw := startDev(t, cfg)
	chat := []byte(`{"model":"gpt-5.5","messages":[{"role":"user","content":"hi"}]}`)
	resp, body := gw.post(t, "/v1/chat/completions", masterKey, chat,
		"x-tollgate-spoof", "1", "x-envoy-max-retries", "9")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	h := fake.Requests()[0].Header
	if h.Get("X-Tollgate-Spoof") != "" || h.Get("X-Envoy-Max-Retries") != "" {
		t.Errorf("client-sent internal headers reached the provider: %v", h)
	}
	if resp.Header.Get("X-Tollgate-Request-Id") == "" {
		t.Error("no x-tollgate-request-id on the response")
	}
}
