package translate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/openai/openai-go/v3"
)

// anthropicTestTranslator stamps a fixed "created" so outputs are reproducible.
var anthropicTestTranslator = anthropicTranslator{now: func() time.Time { return time.Unix(1750000000, 0) }}

const anthropicTestdata = "testdata/anthropic"

func anthropicTarget(t testing.TB, base, model string, extra map[string]string) *Target {
	t.Helper()
	if base == "" {
		base = "https://api.anthropic.com"
	}
	if model == "" {
		model = "claude-sonnet-4-5-20250929"
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	return &Target{Provider: "anthropic", Model: model, Base: u, APIKey: "sk-ant-test", ExtraHeaders: extra}
}

type anthropicRequestFixture struct {
	Source string `json:"source"`
	Target struct {
		Base         string            `json:"base"`
		Model        string            `json:"model"`
		ExtraHeaders map[string]string `json:"extra_headers"`
	} `json:"target"`
	OpenAI json.RawMessage `json:"openai"`
}

func TestAnthropicRequestGolden(t *testing.T) {
	for _, path := range fixtures(t, anthropicTestdata, "request", ".json") {
		t.Run(filepath.Base(path), func(t *testing.T) {
			var fx anthropicRequestFixture
			readFixture(t, path, &fx)
			if fx.Source == "" {
				t.Fatal("fixture names no source")
			}
			tg := anthropicTarget(t, fx.Target.Base, fx.Target.Model, fx.Target.ExtraHeaders)
			up, err := anthropicTestTranslator.Request(ChatCompletions, fx.OpenAI, tg)
			if err != nil {
				t.Fatal(err)
			}
			checkUpstreamGolden(t, path, up)
		})
	}
}

type anthropicResponseFixture struct {
	Source    string          `json:"source"`
	Status    int             `json:"status"`
	Anthropic json.RawMessage `json:"anthropic"`
	Raw       string          `json:"raw"` // a body that is not JSON
}

func (fx anthropicResponseFixture) body() []byte {
	if fx.Raw != "" {
		return []byte(fx.Raw)
	}
	return fx.Anthropic
}

func TestAnthropicResponseGolden(t *testing.T) {
	for _, path := range fixtures(t, anthropicTestdata, "response", ".json") {
		t.Run(filepath.Base(path), func(t *testing.T) {
			var fx anthropicResponseFixture
			readFixture(t, path, &fx)
			if fx.Source == "" {
				t.Fatal("fixture names no source")
			}
			body, usage, err := anthropicTestTranslator.Response(ChatCompletions, fx.Status, fx.body())
			if err != nil {
				t.Fatal(err)
			}
			out := struct {
				Body  json.RawMessage `json:"body"`
				Usage Usage           `json:"usage"`
			}{body, usage}
			got, err := json.MarshalIndent(out, "", "  ")
			if err != nil {
				t.Fatalf("%v\n%s", err, body)
			}
			checkGolden(t, strings.TrimSuffix(path, ".json")+".golden.json", append(got, '\n'))
		})
	}
}

// anthropicRunStream feeds parts to a fresh stream, the last with end=true.
func anthropicRunStream(tr anthropicTranslator, includeUsage bool, parts ...[]byte) ([]byte, Usage) {
	s := newAnthropicStream(tr, includeUsage)
	var out []byte
	for i, p := range parts {
		b, err := s.Next(p, i == len(parts)-1)
		if err != nil {
			panic(err) // Next documents a nil error
		}
		out = append(out, b...)
	}
	return out, s.Usage()
}

func TestAnthropicStreamGolden(t *testing.T) {
	for _, path := range fixtures(t, anthropicTestdata, "stream", ".sse") {
		t.Run(filepath.Base(path), func(t *testing.T) {
			in, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(in, []byte(": source: ")) {
				t.Fatal("fixture names no source in its first comment line")
			}
			out, usage := anthropicRunStream(anthropicTestTranslator, true, in)
			u, err := json.Marshal(usage)
			if err != nil {
				t.Fatal(err)
			}
			got := append(out, ": tollgate usage "...)
			got = append(append(got, u...), '\n')
			checkGolden(t, strings.TrimSuffix(path, ".sse")+".golden", got)
		})
	}
}

// TestAnthropicStreamChunkBoundaries feeds every stream fixture split at every byte
// offset, and one byte at a time, with and without the usage chunk: the output must be
// the unsplit translation.
func TestAnthropicStreamChunkBoundaries(t *testing.T) {
	for _, path := range fixtures(t, anthropicTestdata, "stream", ".sse") {
		t.Run(filepath.Base(path), func(t *testing.T) {
			in, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			for _, includeUsage := range []bool{true, false} {
				t.Run(fmt.Sprintf("include_usage=%t", includeUsage), func(t *testing.T) {
					want, wantUsage := anthropicRunStream(anthropicTestTranslator, includeUsage, in)
					for k := 0; k <= len(in); k++ {
						got, gotUsage := anthropicRunStream(anthropicTestTranslator, includeUsage, in[:k], in[k:])
						if !bytes.Equal(got, want) || gotUsage != wantUsage {
							t.Fatalf("split at %d: (-want +got):\n%s", k, cmp.Diff(string(want), string(got)))
						}
					}
					bytewise := make([][]byte, 0, len(in)+1)
					for i := range in {
						bytewise = append(bytewise, in[i:i+1])
					}
					got, gotUsage := anthropicRunStream(anthropicTestTranslator, includeUsage, append(bytewise, nil)...)
					if diff := cmp.Diff(string(want), string(got)); diff != "" || gotUsage != wantUsage {
						t.Fatalf("byte by byte (-want +got):\n%s\nusage %+v, want %+v", diff, gotUsage, wantUsage)
					}
				})
			}
		})
	}
}

func TestAnthropicStreamIncludeUsage(t *testing.T) {
	in, err := os.ReadFile(filepath.Join(anthropicTestdata, "stream", "text.sse"))
	if err != nil {
		t.Fatal(err)
	}
	with, _ := anthropicRunStream(anthropicTestTranslator, true, in)
	without, usage := anthropicRunStream(anthropicTestTranslator, false, in)
	usageChunk := `data: {"id":"msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY","object":"chat.completion.chunk","created":1750000000,"model":"claude-opus-4-6","choices":[],"usage":{"prompt_tokens":25,"completion_tokens":15,"total_tokens":40,"prompt_tokens_details":{"cached_tokens":0}}}` + "\n\n"
	if diff := cmp.Diff(string(with), strings.Replace(string(without), "data: [DONE]", usageChunk+"data: [DONE]", 1)); diff != "" {
		t.Errorf("the usage chunk is the only difference (-with +without):\n%s", diff)
	}
	if want := (Usage{PromptTokens: 25, CompletionTokens: 15, Known: true}); usage != want {
		t.Errorf("usage without the chunk = %+v, want %+v", usage, want)
	}
}

// TestAnthropicStreamFailures checks that every way an upstream stream can go wrong ends
// the client's stream with an error event and [DONE].
func TestAnthropicStreamFailures(t *testing.T) {
	const start = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"model\":\"m\",\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\n"
	streamErr := func(e *APIError) string { return string(StreamError(e)) }
	cut := &APIError{Status: 502, Type: "api_error", Code: "stream_interrupted",
		Message: "the Anthropic stream ended before the message was complete; retry the request"}
	unreadable := &APIError{Status: 502, Type: "api_error", Code: "stream_interrupted",
		Message: "Anthropic sent a stream event tollgate could not read"}
	tooLarge := &APIError{Status: 502, Type: "api_error", Code: "stream_interrupted",
		Message: "Anthropic sent a stream event larger than tollgate accepts"}
	tests := []struct {
		name    string
		in      string
		wantEnd string // the output's suffix
	}{
		{"empty stream", "", streamErr(cut)},
		{"ends after message_start", start, streamErr(cut)},
		{"ends after message_delta", start + "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":2}}\n\n", streamErr(cut)},
		{"unreadable event", start + "data: {not json}\n\n", streamErr(unreadable)},
		{"event too large", start + "data: \"" + strings.Repeat("x", anthropicMaxEvent) + "\"\n\n", streamErr(tooLarge)},
		{"line too large without newline", start + "data: " + strings.Repeat("x", anthropicMaxEvent+1), streamErr(tooLarge)},
		{"overloaded", start + "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n",
			streamErr(&APIError{Status: 529, Type: "api_error", Code: "overloaded_error", Message: "Overloaded"})},
		{"rate limited", start + "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\",\"message\":\"slow down\"}}\n\n",
			streamErr(&APIError{Status: 429, Type: "rate_limit_error", Code: "rate_limit_error", Message: "slow down"})},
		{"prompt too long", "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\",\"message\":\"prompt is too long: 208310 tokens > 200000 maximum\"}}\n\n",
			streamErr(&APIError{Status: 400, Type: "invalid_request_error", Code: "context_length_exceeded", Message: "prompt is too long: 208310 tokens > 200000 maximum"})},
		{"error without body", start + "data: {\"type\":\"error\"}\n\n",
			streamErr(&APIError{Status: 500, Type: "api_error", Code: "api_error", Message: "Anthropic reported an error in the stream"})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, _ := anthropicRunStream(anthropicTestTranslator, true, []byte(tc.in))
			if !strings.HasSuffix(string(out), tc.wantEnd) {
				t.Errorf("output ends\n%q\nwant suffix\n%q", anthropicTail(out), tc.wantEnd)
			}
			if n := strings.Count(string(out), "data: [DONE]"); n != 1 {
				t.Errorf("[DONE] sent %d times", n)
			}
		})
	}
}

func anthropicTail(b []byte) string {
	if len(b) > 300 {
		return "..." + string(b[len(b)-300:])
	}
	return string(b)
}

func TestAnthropicStreamIgnoresInputAfterDone(t *testing.T) {
	in, err := os.ReadFile(filepath.Join(anthropicTestdata, "stream", "text.sse"))
	if err != nil {
		t.Fatal(err)
	}
	s := newAnthropicStream(anthropicTestTranslator, true)
	if _, err := s.Next(in, false); err != nil {
		t.Fatal(err)
	}
	for _, end := range []bool{false, true} {
		if out, err := s.Next(in, end); err != nil || len(out) != 0 {
			t.Errorf("Next after message_stop (end=%v) = %q, %v; want nothing", end, out, err)
		}
	}
}

// TestAnthropicStreamLineEndings: CRLF line endings, multi-line data and comments are part
// of the event stream format; they must not change the translation.
func TestAnthropicStreamLineEndings(t *testing.T) {
	in, err := os.ReadFile(filepath.Join(anthropicTestdata, "stream", "text.sse"))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := anthropicRunStream(anthropicTestTranslator, true, in)
	crlf := bytes.ReplaceAll(in, []byte("\n"), []byte("\r\n"))
	// A data field split over two lines joins with a newline, which JSON reads as space.
	split := bytes.Replace(in, []byte(`"text": "Hello"}}`), []byte("\"text\": \"Hello\"}\n: a comment\ndata: }"), 1)
	for name, variant := range map[string][]byte{"crlf": crlf, "multi-line data": split} {
		got, _ := anthropicRunStream(anthropicTestTranslator, true, variant)
		if diff := cmp.Diff(string(want), string(got)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", name, diff)
		}
	}
}

// TestAnthropicOutputReadsWithOpenAISDK decodes every translated response and stream with
// the official openai-go SDK, as a client would.
func TestAnthropicOutputReadsWithOpenAISDK(t *testing.T) {
	t.Run("responses", func(t *testing.T) {
		for _, path := range fixtures(t, anthropicTestdata, "response", ".json") {
			var fx anthropicResponseFixture
			readFixture(t, path, &fx)
			body, _, err := anthropicTestTranslator.Response(ChatCompletions, fx.Status, fx.body())
			if err != nil {
				t.Fatal(err)
			}
			if fx.Status >= 400 {
				var e struct {
					Error openai.ErrorObject `json:"error"`
				}
				if err := json.Unmarshal(body, &e); err != nil || e.Error.Message == "" {
					t.Errorf("%s: error body %s does not decode as an OpenAI error: %v", path, body, err)
				}
				continue
			}
			var cc openai.ChatCompletion
			if err := json.Unmarshal(body, &cc); err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			for _, tc := range cc.Choices[0].Message.ToolCalls {
				if !json.Valid([]byte(tc.Function.Arguments)) {
					t.Errorf("%s: tool call arguments %q are not JSON", path, tc.Function.Arguments)
				}
			}
			if cc.Object != "chat.completion" || cc.Choices[0].FinishReason == "" {
				t.Errorf("%s: decoded %+v", path, cc)
			}
		}
	})
	t.Run("streams", func(t *testing.T) {
		want := map[string]sdkStream{
			"text.sse":        {content: "Hello!", finish: "stop"},
			"tool_use.sse":    {content: "Okay, let me check the weather for San Francisco, CA — \"quoted\":", finish: "tool_calls", tools: []string{`get_weather({"location": "San Francisco, CA", "unit": "fahrenheit"})`, `get_time({})`}},
			"thinking.sse":    {content: "The greatest common divisor of 1071 and 462 is **21**.", finish: "stop"},
			"cache_usage.sse": {content: "Hello! I'm doing well.", finish: "length"},
			"json_mode.sse":   {content: `{"name": "science fair", "date": "Friday"}`, finish: "stop"},
			"error_event.sse": {content: "Hello", errText: "Overloaded"},
			"cut.sse":         {content: "Hello", errText: "ended before the message was complete"},
		}
		for _, path := range fixtures(t, anthropicTestdata, "stream", ".sse") {
			name := filepath.Base(path)
			w, ok := want[name]
			if !ok {
				t.Errorf("no expectation for %s", name)
				continue
			}
			in, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			out, _ := anthropicRunStream(anthropicTestTranslator, true, in)
			checkSDKStream(t, name, out, w)
		}
	})
}

func TestAnthropicRequestErrors(t *testing.T) {
	const user = `"messages":[{"role":"user","content":"hi"}]`
	invalid := func(param, msg string) *APIError {
		return &APIError{Status: 400, Type: "invalid_request_error", Param: param, Message: msg}
	}
	unsupported := func(param, msg string) *APIError {
		return &APIError{Status: 400, Type: "invalid_request_error", Param: param, Code: "unsupported_parameter", Message: msg}
	}
	tests := []struct {
		name string
		body string
		want *APIError
	}{
		{"not an object", `[1]`, invalid("", "The request body must be a JSON object")},
		{"not JSON", `{"messages":`, invalid("", "The request body is not valid JSON: unexpected end of JSON input")},
		{"trailing data", `{"messages":[{"role":"user","content":"hi"}]} {}`, invalid("", "The request body has data after its JSON object")},
		{"message field of the wrong type", `{"messages":[{"role":"user","content":"hi","tool_calls":"x"}]}`, invalid("messages.tool_calls", "Invalid type for 'messages.tool_calls': expected an array, got string")},
		{"unknown fields inside messages are fine, outside are not", `{"messages":[{"role":"user","content":"hi","refusal":null,"annotations":[]}],"mesages":[]}`, invalid("mesages", "Unrecognized request argument supplied: mesages")},
		{"no messages", `{"model":"m"}`, invalid("messages", "'messages' must contain at least one message")},
		{"only system", `{"messages":[{"role":"system","content":"be brief"}]}`, invalid("messages", "'messages' must contain a user message besides system messages")},
		{"starts with assistant", `{"messages":[{"role":"assistant","content":"hello"},{"role":"user","content":"hi"}]}`, invalid("messages", "Anthropic requires the conversation to start with a user message (system messages aside)")},
		{"n", `{` + user + `,"n":2}`, unsupported("n", "Unsupported parameter: 'n' must be 1: Anthropic returns one choice per request")},
		{"logprobs", `{` + user + `,"logprobs":true}`, unsupported("logprobs", "Unsupported parameter: 'logprobs' is not available from Anthropic")},
		{"top_logprobs", `{` + user + `,"top_logprobs":2}`, unsupported("top_logprobs", "Unsupported parameter: 'top_logprobs' is not available from Anthropic")},
		{"presence_penalty", `{` + user + `,"presence_penalty":0.5}`, unsupported("presence_penalty", "Unsupported parameter: 'presence_penalty' is not supported by Anthropic")},
		{"frequency_penalty", `{` + user + `,"frequency_penalty":-1}`, unsupported("frequency_penalty", "Unsupported parameter: 'frequency_penalty' is not supported by Anthropic")},
		{"logit_bias", `{` + user + `,"logit_bias":{"50256":-100}}`, unsupported("logit_bias", "Unsupported parameter: 'logit_bias' is not supported by Anthropic")},
		{"seed", `{` + user + `,"seed":7}`, unsupported("seed", "Unsupported parameter: 'seed' is not supported by Anthropic")},
		{"audio modality", `{` + user + `,"modalities":["text","audio"]}`, unsupported("modalities", `Unsupported parameter: 'modalities' may only be ["text"]: Anthropic answers in text`)},
		{"functions", `{` + user + `,"functions":[{"name":"f"}]}`, unsupported("functions", "Unsupported parameter: 'functions' is deprecated; use 'tools' and 'tool_choice'")},
		{"unknown parameter", `{` + user + `,"temprature":0.2}`, invalid("temprature", "Unrecognized request argument supplied: temprature")},
		{"first of several problems by name", `{` + user + `,"seed":1,"n":3}`, unsupported("n", "Unsupported parameter: 'n' must be 1: Anthropic returns one choice per request")},
		{"max_tokens zero", `{` + user + `,"max_tokens":0}`, invalid("max_tokens", "max_tokens must be at least 1, got 0")},
		{"max_tokens not a number", `{` + user + `,"max_tokens":"many"}`, invalid("max_tokens", "Invalid type for 'max_tokens': expected an integer, got string")},
		{"max_tokens under thinking budget", `{` + user + `,"max_tokens":1000,"reasoning_effort":"medium"}`, invalid("max_tokens", "max_tokens (1000) must be greater than the thinking budget (2048 tokens)")},
		{"bad reasoning_effort", `{` + user + `,"reasoning_effort":"max"}`, invalid("reasoning_effort", `Invalid value for 'reasoning_effort': "max" (use low, medium or high)`)},
		{"reasoning_effort and thinking", `{` + user + `,"reasoning_effort":"low","thinking":{"type":"enabled","budget_tokens":1024}}`, invalid("reasoning_effort", "Set either 'reasoning_effort' or 'thinking', not both")},
		{"unknown role", `{"messages":[{"role":"robot","content":"hi"}]}`, invalid("messages[0].role", `Invalid value for 'messages[0].role': "robot"`)},
		{"function role", `{"messages":[{"role":"user","content":"hi"},{"role":"function","name":"f","content":"x"}]}`, unsupported("messages[1].role", "Unsupported parameter: 'messages[1].role' 'function' is deprecated; answer tool calls with role 'tool'")},
		{"empty user content", `{"messages":[{"role":"user","content":""}]}`, invalid("messages[0].content", "messages[0]: a user message must have non-empty content")},
		{"image in system", `{"messages":[{"role":"system","content":[{"type":"image_url","image_url":{"url":"https://x/y.png"}}]},{"role":"user","content":"hi"}]}`, invalid("messages[0].content[0]", `messages[0].content[0]: content part type "image_url" is not allowed here`)},
		{"ftp image", `{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"ftp://x/y.png"}}]}]}`, invalid("messages[0].content[0].image_url.url", "messages[0].content[0].image_url.url must be an http(s) URL or a base64 data URL")},
		{"audio input", `{"messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"AAAA","format":"wav"}}]}]}`, unsupported("messages[0].content[0]", "Unsupported parameter: 'messages[0].content[0]' (input_audio) cannot be sent to Anthropic, which accepts no audio")},
		{"file id", `{"messages":[{"role":"user","content":[{"type":"file","file":{"file_id":"file-abc"}}]}]}`, unsupported("messages[0].content[0].file", "Unsupported parameter: 'messages[0].content[0].file' needs 'file_data': OpenAI file IDs cannot be sent to Anthropic")},
		{"non-pdf file", `{"messages":[{"role":"user","content":[{"type":"file","file":{"file_data":"data:text/csv;base64,YSxi"}}]}]}`, invalid("messages[0].content[0].file.file_data", "messages[0].content[0].file.file_data must be a base64 data URL of a PDF")},
		{"tool without id", `{"messages":[{"role":"user","content":"hi"},{"role":"tool","content":"x"}]}`, invalid("messages[1].tool_call_id", "messages[1].tool_call_id is required for a tool message")},
		{"tool call arguments not an object", `{"messages":[{"role":"user","content":"hi"},{"role":"assistant","tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"[1]"}}]}]}`, invalid("messages[1].tool_calls[0].function.arguments", "messages[1].tool_calls[0].function.arguments must be a JSON object: Anthropic tool input is an object")},
		{"tool call without name", `{"messages":[{"role":"user","content":"hi"},{"role":"assistant","tool_calls":[{"id":"c1","type":"function","function":{"arguments":"{}"}}]}]}`, invalid("messages[1].tool_calls[0]", "messages[1].tool_calls[0] needs an 'id' and a 'function.name'")},
		{"assistant function_call", `{"messages":[{"role":"user","content":"hi"},{"role":"assistant","function_call":{"name":"f","arguments":"{}"}}]}`, unsupported("messages[1].function_call", "Unsupported parameter: 'messages[1].function_call' is deprecated; use 'tool_calls'")},
		{"bad thinking block", `{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"x","thinking_blocks":[{"type":"text"}]}]}`, invalid("messages[1].thinking_blocks[0].type", "messages[1].thinking_blocks[0].type must be thinking or redacted_thinking")},
		{"custom tool", `{` + user + `,"tools":[{"type":"custom","custom":{"name":"x"}}]}`, unsupported("tools[0].type", `Unsupported parameter: 'tools[0].type' "custom": only function tools can be sent to Anthropic`)},
		{"tool without name", `{` + user + `,"tools":[{"type":"function","function":{}}]}`, invalid("tools[0].function.name", "tools[0].function.name is required")},
		{"reserved tool name", `{` + user + `,"tools":[{"type":"function","function":{"name":"json_tool_call"}}]}`, invalid("tools[0].function.name", `tools[0].function.name: the name "json_tool_call" is reserved for response_format`)},
		{"max_completion_tokens zero", `{` + user + `,"max_completion_tokens":0,"max_tokens":10}`, invalid("max_completion_tokens", "max_completion_tokens must be at least 1, got 0")},
		{"tool_choice without tools", `{` + user + `,"tool_choice":"auto"}`, invalid("tool_choice", "'tool_choice' is only allowed when 'tools' are specified")},
		{"tool_choice unknown name", `{` + user + `,"tools":[{"type":"function","function":{"name":"a"}}],"tool_choice":{"type":"function","function":{"name":"b"}}}`, invalid("tool_choice", `tool_choice names function "b", which is not in 'tools'`)},
		{"tool_choice bad string", `{` + user + `,"tools":[{"type":"function","function":{"name":"a"}}],"tool_choice":"sometimes"}`, invalid("tool_choice", `Invalid value for 'tool_choice': "sometimes"`)},
		{"tool_choice allowed_tools", `{` + user + `,"tools":[{"type":"function","function":{"name":"a"}}],"tool_choice":{"type":"allowed_tools"}}`, unsupported("tool_choice", `Unsupported parameter: 'tool_choice' of type "allowed_tools" cannot be sent to Anthropic`)},
		{"response_format with tools", `{` + user + `,"tools":[{"type":"function","function":{"name":"a"}}],"response_format":{"type":"json_object"}}`, unsupported("response_format", "Unsupported parameter: 'response_format' cannot be combined with 'tools' for Anthropic models: tollgate serves JSON output through a forced tool")},
		{"response_format array schema", `{` + user + `,"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{"type":"array"}}}}`, unsupported("response_format.json_schema.schema", `Unsupported parameter: 'response_format.json_schema.schema' must describe an object ("type": "object"): Anthropic returns structured output as tool input, which is an object`)},
		{"response_format unknown", `{` + user + `,"response_format":{"type":"yaml"}}`, invalid("response_format", `Invalid value for 'response_format.type': "yaml"`)},
		{"thinking not an object", `{` + user + `,"thinking":true}`, invalid("thinking", "Invalid value for 'thinking': expected an object")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			up, err := anthropicTestTranslator.Request(ChatCompletions, []byte(tc.body), anthropicTarget(t, "", "", nil))
			var got *APIError
			if !errors.As(err, &got) {
				t.Fatalf("Request = %v, %v; want an *APIError", up, err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestAnthropicRequestEndpoint(t *testing.T) {
	_, err := anthropicTestTranslator.Request(Embeddings, []byte(`{"input":"x"}`), anthropicTarget(t, "", "", nil))
	want := &APIError{Status: 400, Type: "invalid_request_error", Code: "unsupported_endpoint", Message: "anthropic deployments serve chat/completions, messages and messages/count_tokens, not embeddings"}
	var got *APIError
	if !errors.As(err, &got) {
		t.Fatalf("err = %v", err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestAnthropicPath(t *testing.T) {
	tests := []struct{ base, want string }{
		{"https://api.anthropic.com", "/v1/messages"},
		{"https://api.anthropic.com/", "/v1/messages"},
		{"https://api.anthropic.com/v1", "/v1/messages"},
		{"https://api.anthropic.com/v1/", "/v1/messages"},
		{"https://api.anthropic.com/v1/messages", "/v1/messages"},
		{"https://proxy.internal/anthropic", "/anthropic/v1/messages"},
		{"https://proxy.internal/anthropic/v1", "/anthropic/v1/messages"},
		{"https://proxy.internal/a%20b?tenant=7", "/a%20b/v1/messages?tenant=7"},
	}
	for _, tc := range tests {
		t.Run(tc.base, func(t *testing.T) {
			up, err := anthropicTestTranslator.Request(ChatCompletions, []byte(`{"messages":[{"role":"user","content":"hi"}]}`), anthropicTarget(t, tc.base, "", nil))
			if err != nil {
				t.Fatal(err)
			}
			if up.Path != tc.want {
				t.Errorf("path = %q, want %q", up.Path, tc.want)
			}
		})
	}
	t.Run("no base uses the default", func(t *testing.T) {
		tg := anthropicTarget(t, "", "", nil)
		tg.Base = nil
		up, err := anthropicTestTranslator.Request(ChatCompletions, []byte(`{"messages":[{"role":"user","content":"hi"}]}`), tg)
		if err != nil {
			t.Fatal(err)
		}
		if up.Path != "/v1/messages" || up.Authority != "api.anthropic.com" {
			t.Errorf("path, authority = %q, %q", up.Path, up.Authority)
		}
	})
}

func TestAnthropicHeaders(t *testing.T) {
	tests := []struct {
		name  string
		key   string
		extra map[string]string
		want  []Header
	}{
		{"defaults", "sk-ant-1", nil, []Header{{"x-api-key", "sk-ant-1"}, {"anthropic-version", "2023-06-01"}}},
		{"no key configured", "", nil, []Header{{"anthropic-version", "2023-06-01"}}},
		{"extra headers lower-cased, sorted, overriding", "sk-ant-1",
			map[string]string{"X-Trace": "1", "Anthropic-Version": "2024-01-01", "anthropic-beta": "b1"},
			[]Header{{"x-api-key", "sk-ant-1"}, {"anthropic-version", "2024-01-01"}, {"anthropic-beta", "b1"}, {"x-trace", "1"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tg := anthropicTarget(t, "", "", tc.extra)
			tg.APIKey = tc.key
			up, err := anthropicTestTranslator.Request(ChatCompletions, []byte(`{"messages":[{"role":"user","content":"hi"}]}`), tg)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, up.Headers); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			for _, h := range up.Headers {
				if !anthropicIsCredentialHeader(h.Key) && h.Key != "x-trace" {
					t.Errorf("header %q is not in CredentialHeaders, so a fallback attempt would keep it", h.Key)
				}
			}
		})
	}
}

func anthropicIsCredentialHeader(k string) bool {
	for _, c := range CredentialHeaders {
		if c == k {
			return true
		}
	}
	return false
}

// TestAnthropicMaxTokens covers the max_tokens rules: the documented default, the newer
// name winning, and room for a thinking budget.
func TestAnthropicMaxTokens(t *testing.T) {
	tests := []struct {
		name   string
		params string
		want   int
	}{
		{"default", ``, anthropicDefaultMaxTokens},
		{"max_tokens", `,"max_tokens":77`, 77},
		{"max_completion_tokens", `,"max_completion_tokens":88`, 88},
		{"max_completion_tokens wins", `,"max_tokens":77,"max_completion_tokens":88`, 88},
		{"null max_completion_tokens", `,"max_tokens":77,"max_completion_tokens":null`, 77},
		{"default leaves room for thinking", `,"reasoning_effort":"high"`, anthropicDefaultMaxTokens + 4096},
		{"default leaves room for raw thinking", `,"thinking":{"type":"enabled","budget_tokens":10000}`, anthropicDefaultMaxTokens + 10000},
		{"minimal effort has no thinking", `,"reasoning_effort":"minimal"`, anthropicDefaultMaxTokens},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := `{"messages":[{"role":"user","content":"hi"}]` + tc.params + `}`
			up, err := anthropicTestTranslator.Request(ChatCompletions, []byte(body), anthropicTarget(t, "", "", nil))
			if err != nil {
				t.Fatal(err)
			}
			var got struct {
				MaxTokens int             `json:"max_tokens"`
				Thinking  json.RawMessage `json:"thinking"`
			}
			if err := json.Unmarshal(up.Body, &got); err != nil {
				t.Fatal(err)
			}
			if got.MaxTokens != tc.want {
				t.Errorf("max_tokens = %d, want %d (thinking %s)", got.MaxTokens, tc.want, got.Thinking)
			}
		})
	}
}

// TestAnthropicErrorsHideCredentials: whatever Anthropic says on a credential failure,
// the client reads tollgate's message, never a fragment of the deployment's key.
func TestAnthropicErrorsHideCredentials(t *testing.T) {
	for _, status := range []int{401, 403} {
		for _, body := range []string{
			`{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key sk-ant-api03-SECRET"}}`,
			`not json sk-ant-api03-SECRET`,
		} {
			out, _, err := anthropicTestTranslator.Response(ChatCompletions, status, []byte(body))
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(out, []byte("SECRET")) || !bytes.Contains(out, []byte("credentials configured for this deployment")) {
				t.Errorf("status %d body %q gave %s", status, body, out)
			}
		}
	}
}

func TestAnthropicResponseMalformed(t *testing.T) {
	for _, body := range []string{``, `{`, `{"type":"message"}`, `[]`} {
		_, _, err := anthropicTestTranslator.Response(ChatCompletions, 200, []byte(body))
		var e *APIError
		if !errors.As(err, &e) || e.Status != 502 {
			t.Errorf("body %q: err = %v, want a 502 APIError", body, err)
		}
	}
}

// TestAnthropicUsageNormalisation pins the OpenAI convention: prompt tokens count cache
// reads and writes too, and later counts replace earlier ones.
func TestAnthropicUsageNormalisation(t *testing.T) {
	n := func(v int) *int { return &v }
	u := anthropicUsageOf(anthropicUsage{InputTokens: n(10), CacheReadInputTokens: n(100), CacheCreationInputTokens: n(20), OutputTokens: n(1)}, Usage{})
	want := Usage{PromptTokens: 130, CompletionTokens: 1, CachedTokens: 100, CacheCreationTokens: 20, Known: true}
	if diff := cmp.Diff(want, u); diff != "" {
		t.Errorf("message_start (-want +got):\n%s", diff)
	}
	u = anthropicUsageOf(anthropicUsage{OutputTokens: n(42)}, u)
	want.CompletionTokens = 42
	if diff := cmp.Diff(want, u); diff != "" {
		t.Errorf("message_delta with output only (-want +got):\n%s", diff)
	}
	u = anthropicUsageOf(anthropicUsage{InputTokens: n(11), CacheReadInputTokens: n(0)}, u)
	want.PromptTokens, want.CachedTokens = 31, 0
	if diff := cmp.Diff(want, u); diff != "" {
		t.Errorf("message_delta replacing input counts (-want +got):\n%s", diff)
	}
}

func TestAppendJSONString(t *testing.T) {
	for _, s := range []string{"", "plain", "quote \" backslash \\ slash /", "ctl \x00\x01\x1f\t\r\n", "é ✓ 😀", "bad \xff utf8 \xc3", "line\u2028sep\u2029", "<html>&"} {
		got := appendJSONString(nil, s)
		var back string
		if err := json.Unmarshal(got, &back); err != nil {
			t.Errorf("%q encoded as %s: %v", s, got, err)
			continue
		}
		want, _ := json.Marshal(s)
		var wantBack string
		_ = json.Unmarshal(want, &wantBack)
		if back != wantBack {
			t.Errorf("%q round-trips to %q, encoding/json gives %q", s, back, wantBack)
		}
	}
}

// FuzzAnthropicStream feeds arbitrary bytes, split at an arbitrary offset: translation
// must not panic, must end with exactly one [DONE], must emit only data lines carrying
// JSON, and must not depend on where the input was split.
func FuzzAnthropicStream(f *testing.F) {
	paths, err := filepath.Glob(filepath.Join(anthropicTestdata, "stream", "*.sse"))
	if err != nil {
		f.Fatal(err)
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, uint(len(b)/2))
	}
	f.Add([]byte("data: {\"type\":\"content_block_delta\",\"index\":-5,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"x\"}}\n\n"), uint(3))
	f.Add([]byte("data: {\"type\":\"message_stop\"}"), uint(0))
	f.Add([]byte("\r\r\n\n:\ndata\ndata:\n\n"), uint(2))
	f.Fuzz(func(t *testing.T, in []byte, split uint) {
		k := int(split % uint(len(in)+1))
		whole, usage := anthropicRunStream(anthropicTestTranslator, true, in)
		parts, partsUsage := anthropicRunStream(anthropicTestTranslator, true, in[:k], in[k:])
		if !bytes.Equal(whole, parts) || usage != partsUsage {
			t.Fatalf("split at %d changes the output:\n%s", k, cmp.Diff(string(whole), string(parts)))
		}
		if !bytes.HasSuffix(whole, []byte("data: [DONE]\n\n")) || bytes.Count(whole, []byte("data: [DONE]")) != 1 {
			t.Fatalf("output does not end with exactly one [DONE]:\n%s", anthropicTail(whole))
		}
		for _, ev := range bytes.Split(bytes.TrimSuffix(whole, []byte("\n\n")), []byte("\n\n")) {
			payload, ok := bytes.CutPrefix(ev, []byte("data: "))
			if !ok || (!bytes.Equal(payload, []byte("[DONE]")) && !json.Valid(payload)) {
				t.Fatalf("bad output event %q", ev)
			}
		}
	})
}

// FuzzAnthropicRequest: any body either translates to a JSON request or is refused with
// a 400 APIError; nothing panics.
func FuzzAnthropicRequest(f *testing.F) {
	paths, err := filepath.Glob(filepath.Join(anthropicTestdata, "request", "*.json"))
	if err != nil {
		f.Fatal(err)
	}
	for _, p := range paths {
		var fx anthropicRequestFixture
		b, err := os.ReadFile(p)
		if err == nil && json.Unmarshal(b, &fx) == nil && len(fx.OpenAI) > 0 {
			f.Add([]byte(fx.OpenAI))
		}
	}
	f.Add([]byte(`{"messages":[{"role":"assistant","tool_calls":[{"id":"x","function":{"name":"f","arguments":" "}}]}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		tg := &Target{Model: "m", Base: &url.URL{Scheme: "https", Host: "api.anthropic.com"}, APIKey: "k"}
		up, err := anthropicTestTranslator.Request(ChatCompletions, body, tg)
		if err != nil {
			var e *APIError
			if !errors.As(err, &e) || e.Status != 400 {
				t.Fatalf("error %v is not a 400 APIError", err)
			}
			return
		}
		if !json.Valid(up.Body) {
			t.Fatalf("translated body is not JSON: %s", up.Body)
		}
	})
}

func BenchmarkAnthropicRequest(b *testing.B) {
	var fx anthropicRequestFixture
	raw, err := os.ReadFile(filepath.Join(anthropicTestdata, "request", "tool_results.json"))
	if err != nil {
		b.Fatal(err)
	}
	if err := json.Unmarshal(raw, &fx); err != nil {
		b.Fatal(err)
	}
	tg := anthropicTarget(b, "", "", nil)
	b.SetBytes(int64(len(fx.OpenAI)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := anthropicTestTranslator.Request(ChatCompletions, fx.OpenAI, tg); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAnthropicResponse(b *testing.B) {
	var fx anthropicResponseFixture
	raw, err := os.ReadFile(filepath.Join(anthropicTestdata, "response", "tool_use.json"))
	if err != nil {
		b.Fatal(err)
	}
	if err := json.Unmarshal(raw, &fx); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := anthropicTestTranslator.Response(ChatCompletions, 200, fx.Anthropic); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAnthropicStreamEvent measures one content_block_delta event (one op) through
// a started stream: the per-token cost of streaming.
func BenchmarkAnthropicStreamEvent(b *testing.B) {
	for _, bc := range []struct{ name, event string }{
		{"text_delta", "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\" the quick brown fox\"}}\n\n"},
		{"input_json_delta", "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"\\\"unit\\\": \\\"fah\"}}\n\n"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s := newAnthropicStream(anthropicTestTranslator, true)
			start := "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"model\":\"claude\",\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\n" +
				"data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n" +
				"data: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"f\",\"input\":{}}}\n\n"
			if _, err := s.Next([]byte(start), false); err != nil {
				b.Fatal(err)
			}
			ev := []byte(bc.event)
			b.SetBytes(int64(len(ev)))
			b.ReportAllocs()
			for b.Loop() {
				if out, _ := s.Next(ev, false); len(out) == 0 {
					b.Fatal("no output")
				}
			}
		})
	}
}
