// Package providertest runs fake provider APIs over real HTTP for tests and for
// `tollgate dev`: each speaks its provider's documented wire format (JSON, server-sent
// events), checks requests the way the real API does, and records what it received.
// Proxy stands between tollgate and a store or provider to cut the connection.
package providertest

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// OpenAI is a fake OpenAI-compatible API: chat completions (JSON and streamed),
// completions, embeddings and models, under /v1 and under Azure's deployments path. It
// answers deterministically: a chat reply repeats the last user message.
type OpenAI struct {
	// Key, when set, must arrive as "Authorization: Bearer <Key>" (or "api-key: <Key>" on
	// the Azure path), as the real APIs require.
	Key string
	// Usage, when set, is the usage object every chat completion reports, JSON or
	// streamed, in place of the word counts: for prompt_tokens_details.cached_tokens and
	// completion_tokens_details.reasoning_tokens, which the word counts leave at 0.
	Usage map[string]any
	// StreamDelay, when positive, is the pause before each streamed chunk after the
	// first, as a model generating token by token makes: a long reply then streams for
	// as long as a client needs to leave in the middle of it.
	StreamDelay time.Duration

	// recorder keeps the requests. FailNext failures fall on every request, with
	// OpenAI-shaped error bodies.
	recorder
}

// StartOpenAI serves a fake OpenAI API on a loopback port until the test ends. Its API
// base (for api_base in config.yaml) is URL + "/v1".
func StartOpenAI(t testing.TB, key string) (*OpenAI, *httptest.Server) {
	t.Helper()
	f := &OpenAI{Key: key}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

func (f *OpenAI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		writeOpenAIError(w, 400, "could not read the request body", "invalid_request_error", "")
		return
	}
	f.record(r, body)
	fail := f.nextFailure()

	op, azure := strings.CutPrefix(r.URL.Path, "/openai/deployments/")
	if azure {
		// /openai/deployments/{deployment}/{operation}?api-version=...
		_, op, _ = strings.Cut(op, "/")
		if r.URL.Query().Get("api-version") == "" {
			writeOpenAIError(w, 404, "Resource not found", "invalid_request_error", "404")
			return
		}
	} else {
		op = strings.TrimPrefix(r.URL.Path, "/v1/")
	}
	if !f.authorized(r, azure) {
		writeOpenAIError(w, 401, "Incorrect API key provided: "+maskKey(r.Header.Get("Authorization"))+". You can find your API key at your provider's dashboard.", "invalid_request_error", "invalid_api_key")
		return
	}
	if fail != 0 {
		writeOpenAIError(w, fail, fmt.Sprintf("the fake provider was told to fail with %d", fail), "api_error", "")
		return
	}
	switch {
	case op == "models" && r.Method == http.MethodGet:
		writeJSON(w, map[string]any{"object": "list", "data": []any{}})
	case r.Method != http.MethodPost:
		writeOpenAIError(w, 405, "method not allowed", "invalid_request_error", "")
	case op == "chat/completions":
		f.chat(w, r, body)
	case op == "completions":
		f.completion(w, body)
	case op == "embeddings":
		f.embeddings(w, body)
	default:
		writeOpenAIError(w, 404, "Invalid URL ("+r.Method+" "+r.URL.Path+")", "invalid_request_error", "")
	}
}

func (f *OpenAI) authorized(r *http.Request, azure bool) bool {
	if f.Key == "" {
		return true
	}
	got := r.Header.Get("Authorization")
	want := "Bearer " + f.Key
	if azure {
		got, want = r.Header.Get("api-key"), f.Key
	}
	return subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

type chatRequest struct {
	Model    string `json:"model"`
	Messages []struct {
		Role    string          `json:"role"`
		Content json.RawMessage `json:"content"`
	} `json:"messages"`
	Stream        bool `json:"stream"`
	StreamOptions *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
}

func (f *OpenAI) chat(w http.ResponseWriter, r *http.Request, body []byte) {
	var req chatRequest
	if err := json.Unmarshal(body, &req); err != nil {
		writeOpenAIError(w, 400, "We could not parse the JSON body of your request. ("+err.Error()+")", "invalid_request_error", "")
		return
	}
	if req.Model == "" {
		writeOpenAIError(w, 400, "you must provide a model parameter", "invalid_request_error", "")
		return
	}
	if len(req.Messages) == 0 {
		writeOpenAIError(w, 400, "[] is too short - 'messages'", "invalid_request_error", "")
		return
	}
	var prompt string
	for _, m := range req.Messages {
		if m.Role == "" {
			writeOpenAIError(w, 400, "Missing required parameter: 'messages[].role'.", "invalid_request_error", "missing_required_parameter")
			return
		}
		if m.Role == "user" {
			prompt = contentText(m.Content)
		}
	}
	reply := "You said: " + prompt
	usage := f.Usage
	if usage == nil {
		usage = usageFor(req.Messages, reply)
	}
	id := "chatcmpl-fake" + fmt.Sprint(time.Now().UnixNano())
	if req.Stream {
		f.streamChat(w, r, id, req, reply, usage)
		return
	}
	writeJSON(w, map[string]any{
		"id": id, "object": "chat.completion", "created": time.Now().Unix(), "model": req.Model,
		"choices": []any{map[string]any{
			"index": 0, "finish_reason": "stop", "logprobs": nil,
			"message": map[string]any{"role": "assistant", "content": reply, "refusal": nil},
		}},
		"usage": usage,
	})
}

// streamChat answers in the documented chunk format: a role chunk, one chunk per word,
// a finish chunk, the usage chunk when asked for, then [DONE]; each event is flushed
// as it is written so a client sees the first word before the last is sent. It stops
// when the client goes away.
func (f *OpenAI) streamChat(w http.ResponseWriter, r *http.Request, id string, req chatRequest, reply string, usage map[string]any) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	flusher, _ := w.(http.Flusher)
	created := time.Now().Unix()
	includeUsage := req.StreamOptions != nil && req.StreamOptions.IncludeUsage
	first := true
	send := func(delta map[string]any, finish any) {
		if !first && f.StreamDelay > 0 {
			select {
			case <-time.After(f.StreamDelay):
			case <-r.Context().Done():
			}
		}
		first = false
		chunk := map[string]any{
			"id": id, "object": "chat.completion.chunk", "created": created, "model": req.Model,
			"choices": []any{map[string]any{"index": 0, "delta": delta, "logprobs": nil, "finish_reason": finish}},
		}
		if includeUsage {
			chunk["usage"] = nil
		}
		writeEvent(w, chunk)
		if flusher != nil {
			flusher.Flush()
		}
	}
	send(map[string]any{"role": "assistant", "content": ""}, nil)
	words := strings.SplitAfter(reply, " ")
	for _, word := range words {
		if r.Context().Err() != nil {
			return
		}
		send(map[string]any{"content": word}, nil)
	}
	send(map[string]any{}, "stop")
	if includeUsage {
		writeEvent(w, map[string]any{
			"id": id, "object": "chat.completion.chunk", "created": created, "model": req.Model,
			"choices": []any{}, "usage": usage,
		})
	}
	io.WriteString(w, "data: [DONE]\n\n")
	if flusher != nil {
		flusher.Flush()
	}
}

func (f *OpenAI) completion(w http.ResponseWriter, body []byte) {
	var req struct {
		Model  string `json:"model"`
		Prompt any    `json:"prompt"`
	}
	if err := json.Unmarshal(body, &req); err != nil || req.Model == "" {
		writeOpenAIError(w, 400, "you must provide a model parameter", "invalid_request_error", "")
		return
	}
	prompt := fmt.Sprint(req.Prompt)
	text := " and so on."
	writeJSON(w, map[string]any{
		"id": "cmpl-fake", "object": "text_completion", "created": time.Now().Unix(), "model": req.Model,
		"choices": []any{map[string]any{"text": text, "index": 0, "logprobs": nil, "finish_reason": "stop"}},
		"usage":   map[string]any{"prompt_tokens": countTokens(prompt), "completion_tokens": countTokens(text), "total_tokens": countTokens(prompt) + countTokens(text)},
	})
}

func (f *OpenAI) embeddings(w http.ResponseWriter, body []byte) {
	var req struct {
		Model          string          `json:"model"`
		Input          json.RawMessage `json:"input"`
		EncodingFormat string          `json:"encoding_format"`
	}
	if err := json.Unmarshal(body, &req); err != nil || req.Model == "" {
		writeOpenAIError(w, 400, "you must provide a model parameter", "invalid_request_error", "")
		return
	}
	var inputs []string
	var one string
	if json.Unmarshal(req.Input, &one) == nil {
		inputs = []string{one}
	} else if json.Unmarshal(req.Input, &inputs) != nil || len(inputs) == 0 {
		writeOpenAIError(w, 400, "'input' must be a string or an array of strings", "invalid_request_error", "")
		return
	}
	data := make([]any, len(inputs))
	tokens := 0
	for i, in := range inputs {
		vec := embed(in)
		var value any = vec
		if req.EncodingFormat == "base64" {
			buf := make([]byte, 4*len(vec))
			for j, x := range vec {
				binary.LittleEndian.PutUint32(buf[4*j:], math.Float32bits(x))
			}
			value = base64.StdEncoding.EncodeToString(buf)
		}
		data[i] = map[string]any{"object": "embedding", "index": i, "embedding": value}
		tokens += countTokens(in)
	}
	writeJSON(w, map[string]any{
		"object": "list", "data": data, "model": req.Model,
		"usage": map[string]any{"prompt_tokens": tokens, "total_tokens": tokens},
	})
}

// embed is a deterministic 8-dimension unit vector derived from the text.
func embed(text string) []float32 {
	sum := sha256.Sum256([]byte(text))
	vec := make([]float32, 8)
	var norm float64
	for i := range vec {
		vec[i] = float32(int8(sum[i])) / 128
		norm += float64(vec[i]) * float64(vec[i])
	}
	for i := range vec {
		vec[i] /= float32(math.Sqrt(norm) + 1e-9)
	}
	return vec
}

func contentText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	json.Unmarshal(raw, &parts)
	var b strings.Builder
	for _, p := range parts {
		b.WriteString(p.Text)
	}
	return b.String()
}

func usageFor(messages []struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}, reply string) map[string]any {
	prompt := 0
	for _, m := range messages {
		prompt += 4 + countTokens(contentText(m.Content))
	}
	completion := countTokens(reply)
	return map[string]any{
		"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
		"prompt_tokens_details":     map[string]any{"cached_tokens": 0},
		"completion_tokens_details": map[string]any{"reasoning_tokens": 0},
	}
}

// countTokens approximates a tokenizer: one token per word.
func countTokens(s string) int { return len(strings.Fields(s)) }

func maskKey(auth string) string {
	key := strings.TrimPrefix(auth, "Bearer ")
	if len(key) < 8 {
		return "***"
	}
	return key[:3] + "***" + key[len(key)-3:]
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

func writeEvent(w io.Writer, v any) {
	b, _ := json.Marshal(v)
	fmt.Fprintf(w, "data: %s\n\n", b)
}

func writeOpenAIError(w http.ResponseWriter, status int, message, typ, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	var c any
	if code != "" {
		c = code
	}
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"message": message, "type": typ, "param": nil, "code": c}})
}
