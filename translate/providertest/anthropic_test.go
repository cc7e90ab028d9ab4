package providertest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tollgate-dev/tollgate/translate"
)

// postAnthropic sends body to the fake with the documented headers, minus those named in
// drop, plus extra.
func postAnthropic(t *testing.T, base, path, body string, drop []string, extra map[string]string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("content-type", "application/json")
	req.Header.Set("x-api-key", "sk-ant-fake")
	req.Header.Set("anthropic-version", "2023-06-01")
	for _, h := range drop {
		req.Header.Del(h)
	}
	for k, v := range extra {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, b
}

type anthropicErr struct {
	Type  string `json:"type"`
	Error struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	} `json:"error"`
}

func TestAnthropicRejectsWhatTheAPIRejects(t *testing.T) {
	_, srv := StartAnthropic(t, "sk-ant-fake")
	const hi = `"messages":[{"role":"user","content":"hi"}]`
	tests := []struct {
		name     string
		path     string
		body     string
		drop     []string
		extra    map[string]string
		status   int
		errType  string
		contains string
	}{
		{"no x-api-key", "", `{"model":"m","max_tokens":5,` + hi + `}`, []string{"x-api-key"}, nil, 401, "authentication_error", "x-api-key header is required"},
		{"wrong x-api-key", "", `{"model":"m","max_tokens":5,` + hi + `}`, nil, map[string]string{"x-api-key": "sk-ant-other"}, 401, "authentication_error", "invalid x-api-key"},
		{"no anthropic-version", "", `{"model":"m","max_tokens":5,` + hi + `}`, []string{"anthropic-version"}, nil, 400, "invalid_request_error", "anthropic-version: header is required"},
		{"unknown anthropic-version", "", `{"model":"m","max_tokens":5,` + hi + `}`, nil, map[string]string{"anthropic-version": "2099-01-01"}, 400, "invalid_request_error", "not a valid version"},
		{"wrong path", "/v1/chat/completions", `{}`, nil, nil, 404, "not_found_error", "Not Found"},
		{"not JSON", "", `{`, nil, nil, 400, "invalid_request_error", "error parsing the body"},
		{"no max_tokens", "", `{"model":"m",` + hi + `}`, nil, nil, 400, "invalid_request_error", "max_tokens: Field required"},
		{"no model", "", `{"max_tokens":5,` + hi + `}`, nil, nil, 400, "invalid_request_error", "model: Field required"},
		{"no messages", "", `{"model":"m","max_tokens":5}`, nil, nil, 400, "invalid_request_error", "messages: Field required"},
		{"extra field", "", `{"model":"m","max_tokens":5,"n":2,` + hi + `}`, nil, nil, 400, "invalid_request_error", "n: Extra inputs are not permitted"},
		{"system role in messages", "", `{"model":"m","max_tokens":5,"messages":[{"role":"system","content":"x"},{"role":"user","content":"hi"}]}`, nil, nil, 400, "invalid_request_error", `Unexpected role "system"`},
		{"starts with assistant", "", `{"model":"m","max_tokens":5,"messages":[{"role":"assistant","content":"x"}]}`, nil, nil, 400, "invalid_request_error", `first message must use the "user" role`},
		{"turns do not alternate", "", `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"a"},{"role":"user","content":"b"}]}`, nil, nil, 400, "invalid_request_error", "roles must alternate"},
		{"empty content", "", `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":""}]}`, nil, nil, 400, "invalid_request_error", "non-empty content"},
		{"empty text block", "", `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"text","text":""}]}]}`, nil, nil, 400, "invalid_request_error", "text content blocks must be non-empty"},
		{"tool_use in a user turn", "", `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"tool_use","id":"t","name":"f","input":{}}]}]}`, nil, nil, 400, "invalid_request_error", `"tool_use" blocks are not allowed in user messages`},
		{"tool_use without result", "", `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"a"},{"role":"assistant","content":[{"type":"tool_use","id":"toolu_1","name":"f","input":{}}]},{"role":"user","content":"b"}]}`, nil, nil, 400, "invalid_request_error", "`tool_use` ids were found without `tool_result` blocks immediately after: toolu_1"},
		{"orphan tool_result", "", `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_9"}]}]}`, nil, nil, 400, "invalid_request_error", "unexpected `tool_use_id` found in `tool_result` blocks: toolu_9"},
		{"tool input not an object", "", `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"a"},{"role":"assistant","content":[{"type":"tool_use","id":"t","name":"f","input":"x"}]}]}`, nil, nil, 400, "invalid_request_error", "input: Input should be a valid dictionary"},
		{"bad image type", "", `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"image","source":{"type":"base64","media_type":"image/bmp","data":"AAAA"}}]}]}`, nil, nil, 400, "invalid_request_error", "source.media_type"},
		{"bad base64", "", `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"image","source":{"type":"base64","media_type":"image/png","data":"not base64!"}}]}]}`, nil, nil, 400, "invalid_request_error", "invalid base64"},
		{"temperature above 1", "", `{"model":"m","max_tokens":5,"temperature":1.5,` + hi + `}`, nil, nil, 400, "invalid_request_error", "temperature"},
		{"metadata other than user_id", "", `{"model":"m","max_tokens":5,"metadata":{"tag":"x"},` + hi + `}`, nil, nil, 400, "invalid_request_error", "metadata.tag: Extra inputs are not permitted"},
		{"tool without object schema", "", `{"model":"m","max_tokens":5,"tools":[{"name":"f","input_schema":{"type":"string"}}],` + hi + `}`, nil, nil, 400, "invalid_request_error", "tools.0.input_schema"},
		{"bad tool name", "", `{"model":"m","max_tokens":5,"tools":[{"name":"get weather","input_schema":{"type":"object"}}],` + hi + `}`, nil, nil, 400, "invalid_request_error", "tools.0.name"},
		{"tool_choice names a missing tool", "", `{"model":"m","max_tokens":5,"tools":[{"name":"f","input_schema":{"type":"object"}}],"tool_choice":{"type":"tool","name":"g"},` + hi + `}`, nil, nil, 400, "invalid_request_error", "Tool 'g' not found"},
		{"tool_choice without tools", "", `{"model":"m","max_tokens":5,"tool_choice":{"type":"any"},` + hi + `}`, nil, nil, 400, "invalid_request_error", "tool_choice may only be specified while providing tools"},
		{"thinking budget over max_tokens", "", `{"model":"m","max_tokens":2000,"thinking":{"type":"enabled","budget_tokens":4096},` + hi + `}`, nil, nil, 400, "invalid_request_error", "`max_tokens` must be greater than `thinking.budget_tokens`"},
		{"thinking budget too small", "", `{"model":"m","max_tokens":5000,"thinking":{"type":"enabled","budget_tokens":100},` + hi + `}`, nil, nil, 400, "invalid_request_error", "budget_tokens: Input should be greater than or equal to 1024"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := tc.path
			if path == "" {
				path = "/v1/messages"
			}
			status, body := postAnthropic(t, srv.URL, path, tc.body, tc.drop, tc.extra)
			var e anthropicErr
			if err := json.Unmarshal(body, &e); err != nil {
				t.Fatalf("error body %q: %v", body, err)
			}
			if status != tc.status || e.Type != "error" || e.Error.Type != tc.errType || !strings.Contains(e.Error.Message, tc.contains) {
				t.Errorf("got %d %s, want %d %s containing %q", status, body, tc.status, tc.errType, tc.contains)
			}
		})
	}
}

func TestAnthropicAnswersMessages(t *testing.T) {
	fake, srv := StartAnthropic(t, "sk-ant-fake")
	body := `{"model":"claude-test","max_tokens":50,"system":[{"type":"text","text":"be brief","cache_control":{"type":"ephemeral"}}],"messages":[{"role":"user","content":"ping pong"}]}`
	var usages []map[string]int
	for range 2 {
		status, out := postAnthropic(t, srv.URL, "/v1/messages", body, nil, nil)
		if status != 200 {
			t.Fatalf("status %d: %s", status, out)
		}
		var msg struct {
			Type       string           `json:"type"`
			Role       string           `json:"role"`
			Model      string           `json:"model"`
			StopReason string           `json:"stop_reason"`
			Content    []map[string]any `json:"content"`
			Usage      map[string]int   `json:"usage"`
		}
		if err := json.Unmarshal(out, &msg); err != nil {
			t.Fatal(err)
		}
		if msg.Type != "message" || msg.Role != "assistant" || msg.Model != "claude-test" || msg.StopReason != "end_turn" ||
			len(msg.Content) != 1 || msg.Content[0]["text"] != "You said: ping pong" {
			t.Errorf("message = %s", out)
		}
		usages = append(usages, msg.Usage)
	}
	want := []map[string]int{
		{"input_tokens": 2, "cache_creation_input_tokens": 2, "cache_read_input_tokens": 0, "output_tokens": 4},
		{"input_tokens": 2, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 2, "output_tokens": 4},
	}
	if diff := cmp.Diff(want, usages); diff != "" {
		t.Errorf("usage: first request writes the cached prefix, the second reads it (-want +got):\n%s", diff)
	}
	if n := len(fake.Requests()); n != 2 {
		t.Errorf("recorded %d requests, want 2", n)
	}
}

// anthropicEvents reads an event stream into its event names and data.
func anthropicEvents(t *testing.T, b []byte) (names []string, data []map[string]any) {
	t.Helper()
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		if name, ok := strings.CutPrefix(line, "event: "); ok {
			names = append(names, name)
		}
		if d, ok := strings.CutPrefix(line, "data: "); ok {
			var v map[string]any
			if err := json.Unmarshal([]byte(d), &v); err != nil {
				t.Fatalf("data %q: %v", d, err)
			}
			if v["type"] != names[len(names)-1] {
				t.Errorf("event %q carries type %v", names[len(names)-1], v["type"])
			}
			data = append(data, v)
		}
	}
	return names, data
}

func TestAnthropicStreamsTheDocumentedEvents(t *testing.T) {
	fake, srv := StartAnthropic(t, "sk-ant-fake")
	text := `{"model":"m","max_tokens":50,"stream":true,"messages":[{"role":"user","content":"a b"}]}`
	tool := `{"model":"m","max_tokens":50,"stream":true,"tools":[{"name":"json_tool_call","input_schema":{"type":"object"}}],"tool_choice":{"type":"tool","name":"json_tool_call"},"messages":[{"role":"user","content":"a b"}]}`
	tests := []struct {
		name, body, brk string
		broken          bool
		want            []string
	}{
		{"text", text, "", false, []string{"message_start", "ping", "content_block_start", "content_block_delta", "content_block_delta", "content_block_delta", "content_block_delta", "content_block_stop", "message_delta", "message_stop"}},
		{"tool", tool, "", false, []string{"message_start", "ping", "content_block_start", "content_block_delta", "content_block_delta", "content_block_stop", "message_delta", "message_stop"}},
		{"error event", text, "overloaded_error", true, []string{"message_start", "ping", "content_block_start", "content_block_delta", "error"}},
		{"cut", text, "", true, []string{"message_start", "ping", "content_block_start", "content_block_delta"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.broken {
				fake.BreakNextStream(tc.brk)
			}
			status, out := postAnthropic(t, srv.URL, "/v1/messages", tc.body, nil, nil)
			if status != 200 {
				t.Fatalf("status %d: %s", status, out)
			}
			names, data := anthropicEvents(t, out)
			if diff := cmp.Diff(tc.want, names); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
			if tc.name == "tool" {
				var input string
				for _, d := range data {
					if delta, ok := d["delta"].(map[string]any); ok && delta["type"] == "input_json_delta" {
						input += delta["partial_json"].(string)
					}
				}
				if input != `{"text":"You said: a b"}` {
					t.Errorf("tool input = %q", input)
				}
			}
		})
	}
}

func TestAnthropicFailNext(t *testing.T) {
	fake, srv := StartAnthropic(t, "sk-ant-fake")
	fake.FailNext(529, 429)
	body := `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`
	for _, want := range []struct {
		status int
		typ    string
	}{{529, "overloaded_error"}, {429, "rate_limit_error"}, {200, ""}} {
		status, out := postAnthropic(t, srv.URL, "/v1/messages", body, nil, nil)
		var e anthropicErr
		_ = json.Unmarshal(out, &e)
		if status != want.status || e.Error.Type != want.typ {
			t.Errorf("got %d %s, want %d %s", status, out, want.status, want.typ)
		}
	}
}

// TestTranslatedRequestsPassAnthropicValidation sends every request fixture of the
// anthropic translator, translated, to the fake, and translates the answer back: the
// translator's output must be a request the API accepts, and the round trip must reach
// the client in OpenAI's shape.
func TestTranslatedRequestsPassAnthropicValidation(t *testing.T) {
	spec, ok := translate.Lookup("anthropic")
	if !ok {
		t.Fatal(`translate has no "anthropic" provider: add "anthropic": anthropicSpec to the registry in providers.go`)
	}
	fake, srv := StartAnthropic(t, "sk-ant-fake")
	base, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	paths, err := filepath.Glob("../testdata/anthropic/request/*.json")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no request fixtures: %v", err)
	}
	for _, path := range paths {
		if strings.HasSuffix(path, ".golden.json") {
			continue
		}
		for _, stream := range []bool{false, true} {
			t.Run(filepath.Base(path)+map[bool]string{false: "", true: "/stream"}[stream], func(t *testing.T) {
				var fx struct {
					OpenAI map[string]any `json:"openai"`
				}
				raw, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				if err := json.Unmarshal(raw, &fx); err != nil {
					t.Fatal(err)
				}
				fx.OpenAI["stream"] = stream
				body, err := json.Marshal(fx.OpenAI)
				if err != nil {
					t.Fatal(err)
				}
				up, err := spec.Request(translate.ChatCompletions, body, &translate.Target{
					Provider: "anthropic", Model: "claude-test", Base: base, APIKey: "sk-ant-fake",
				})
				if err != nil {
					t.Fatal(err)
				}
				hdr := map[string]string{}
				for _, h := range up.Headers {
					hdr[h.Key] = h.Value
				}
				status, out := postAnthropic(t, srv.URL, up.Path, string(up.Body), []string{"x-api-key", "anthropic-version"}, hdr)
				if status != 200 {
					t.Fatalf("the fake refused the translated request: %d %s\nrequest: %s", status, out, up.Body)
				}
				var content, finish string
				if stream {
					s := spec.Stream(translate.ChatCompletions, translate.StreamOptions{IncludeUsage: true})
					// Two chunks split mid-event, as a network delivers them.
					first, _ := s.Next(out[:len(out)/2], false)
					rest, _ := s.Next(out[len(out)/2:], true)
					content, finish = openAIStreamText(t, append(first, rest...))
					if u := s.Usage(); !u.Known || u.CompletionTokens == 0 {
						t.Errorf("stream usage = %+v", u)
					}
				} else {
					res, u, err := spec.Response(translate.ChatCompletions, status, out)
					if err != nil {
						t.Fatal(err)
					}
					var cc struct {
						Choices []struct {
							Message struct {
								Content   *string `json:"content"`
								ToolCalls []struct {
									Function struct {
										Arguments string `json:"arguments"`
									} `json:"function"`
								} `json:"tool_calls"`
							} `json:"message"`
							FinishReason string `json:"finish_reason"`
						} `json:"choices"`
					}
					if err := json.Unmarshal(res, &cc); err != nil || len(cc.Choices) != 1 {
						t.Fatalf("translated response %s: %v", res, err)
					}
					if c := cc.Choices[0].Message.Content; c != nil {
						content = *c
					}
					for _, tc := range cc.Choices[0].Message.ToolCalls {
						content += tc.Function.Arguments
					}
					finish = cc.Choices[0].FinishReason
					if !u.Known || u.PromptTokens == 0 {
						t.Errorf("usage = %+v", u)
					}
				}
				if !strings.Contains(content, "You said: ") || (finish != "stop" && finish != "tool_calls") {
					t.Errorf("client sees content %q, finish_reason %q", content, finish)
				}
			})
		}
	}
	if len(fake.Requests()) == 0 {
		t.Error("the fake received nothing")
	}
}

// openAIStreamText joins the content deltas of an OpenAI chunk stream and returns the
// finish reason; it fails the test on anything but chunks and a final [DONE].
func openAIStreamText(t *testing.T, sse []byte) (content, finish string) {
	t.Helper()
	events := strings.Split(strings.TrimSuffix(string(sse), "\n\n"), "\n\n")
	if events[len(events)-1] != "data: [DONE]" {
		t.Fatalf("stream does not end with [DONE]: %q", sse)
	}
	for _, ev := range events[:len(events)-1] {
		var chunk struct {
			Object  string `json:"object"`
			Choices []struct {
				Delta struct {
					Content   string `json:"content"`
					ToolCalls []struct {
						Function struct {
							Arguments string `json:"arguments"`
						} `json:"function"`
					} `json:"tool_calls"`
				} `json:"delta"`
				FinishReason *string `json:"finish_reason"`
			} `json:"choices"`
		}
		payload, ok := strings.CutPrefix(ev, "data: ")
		if !ok || json.Unmarshal([]byte(payload), &chunk) != nil || chunk.Object != "chat.completion.chunk" {
			t.Fatalf("not a chunk: %q", ev)
		}
		for _, c := range chunk.Choices {
			content += c.Delta.Content
			for _, tc := range c.Delta.ToolCalls {
				content += tc.Function.Arguments
			}
			if c.FinishReason != nil {
				finish = *c.FinishReason
			}
		}
	}
	return content, finish
}
