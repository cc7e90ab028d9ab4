package translate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/openai/openai-go/v3"

	"github.com/tollgate-dev/tollgate/translate/providertest"
)

const geminiTestdata = "testdata/gemini"

// geminiTestTranslator stamps a fixed "created" and numbers generated IDs 1, 2, ... so
// outputs are reproducible; each call starts its own count.
func geminiTestTranslator(vertex bool) geminiTranslator {
	n := 0
	return geminiTranslator{
		vertex: vertex,
		now:    func() time.Time { return time.Unix(1750000000, 0) },
		newID:  func() string { n++; return strconv.Itoa(n) },
	}
}

type geminiRequestFixture struct {
	Source   string `json:"source"`
	Endpoint string `json:"endpoint"` // "" is chat/completions
	Target   struct {
		Provider     string            `json:"provider"`
		Base         string            `json:"base"`
		Model        string            `json:"model"`
		Project      string            `json:"project"`
		Location     string            `json:"location"`
		APIKey       string            `json:"api_key"`
		ExtraHeaders map[string]string `json:"extra_headers"`
	} `json:"target"`
	OpenAI json.RawMessage `json:"openai"`
}

func (fx *geminiRequestFixture) vertex() bool { return fx.Target.Provider == "vertex_ai" }

func (fx *geminiRequestFixture) endpoint() Endpoint {
	if fx.Endpoint == "embeddings" {
		return Embeddings
	}
	return ChatCompletions
}

// target is the fixture's deployment: a gemini/ one has an API key; a vertex_ai/ one
// with a project has an access token, one without uses its API key (express mode).
func (fx *geminiRequestFixture) target(t testing.TB) *Target {
	t.Helper()
	tg := &Target{Provider: fx.Target.Provider, Model: fx.Target.Model, APIKey: fx.Target.APIKey, ExtraHeaders: fx.Target.ExtraHeaders}
	if fx.Target.Base != "" {
		u, err := url.Parse(fx.Target.Base)
		if err != nil {
			t.Fatal(err)
		}
		tg.Base = u
	}
	switch {
	case !fx.vertex() && tg.APIKey == "":
		tg.APIKey = "AIza-test-key"
	case fx.vertex() && fx.Target.Project != "":
		tg.Google = &GoogleCredentials{Project: fx.Target.Project, Location: fx.Target.Location, AccessToken: "ya29.test-token"}
	}
	return tg
}

func TestGeminiRequestGolden(t *testing.T) {
	for _, path := range fixtures(t, geminiTestdata, "request", ".json") {
		t.Run(filepath.Base(path), func(t *testing.T) {
			var fx geminiRequestFixture
			readFixture(t, path, &fx)
			if fx.Source == "" {
				t.Fatal("fixture names no source")
			}
			up, err := geminiTestTranslator(fx.vertex()).Request(fx.endpoint(), fx.OpenAI, fx.target(t))
			if err != nil {
				t.Fatal(err)
			}
			checkUpstreamGolden(t, path, up)
		})
	}
}

type geminiResponseFixture struct {
	Source   string          `json:"source"`
	Endpoint string          `json:"endpoint"`
	Vertex   bool            `json:"vertex"`
	Status   int             `json:"status"`
	Google   json.RawMessage `json:"google"`
	Raw      string          `json:"raw"` // a body that is not JSON
}

func (fx *geminiResponseFixture) body() []byte {
	if fx.Raw != "" {
		return []byte(fx.Raw)
	}
	return fx.Google
}

func (fx *geminiResponseFixture) endpoint() Endpoint {
	if fx.Endpoint == "embeddings" {
		return Embeddings
	}
	return ChatCompletions
}

func TestGeminiResponseGolden(t *testing.T) {
	for _, path := range fixtures(t, geminiTestdata, "response", ".json") {
		t.Run(filepath.Base(path), func(t *testing.T) {
			var fx geminiResponseFixture
			readFixture(t, path, &fx)
			if fx.Source == "" {
				t.Fatal("fixture names no source")
			}
			body, usage, err := geminiTestTranslator(fx.Vertex).Response(fx.endpoint(), fx.Status, fx.body())
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

// geminiRunStream feeds parts to a fresh stream, the last with end=true. Fixtures whose
// name starts with "vertex_" are Vertex AI streams.
func geminiRunStream(vertex, includeUsage bool, parts ...[]byte) ([]byte, Usage) {
	s := newGeminiStream(geminiTestTranslator(vertex), includeUsage)
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

func geminiStreamIsVertex(path string) bool {
	return strings.HasPrefix(filepath.Base(path), "vertex_")
}

func TestGeminiStreamGolden(t *testing.T) {
	for _, path := range fixtures(t, geminiTestdata, "stream", ".sse") {
		t.Run(filepath.Base(path), func(t *testing.T) {
			in, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(in, []byte(": source: ")) {
				t.Fatal("fixture names no source in its first comment line")
			}
			out, usage := geminiRunStream(geminiStreamIsVertex(path), true, in)
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

// TestGeminiStreamChunkBoundaries feeds every stream fixture split at every byte offset,
// and one byte at a time: the output must be the unsplit translation.
func TestGeminiStreamChunkBoundaries(t *testing.T) {
	for _, path := range fixtures(t, geminiTestdata, "stream", ".sse") {
		t.Run(filepath.Base(path), func(t *testing.T) {
			in, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			vertex := geminiStreamIsVertex(path)
			for _, includeUsage := range []bool{true, false} {
				t.Run(fmt.Sprintf("include_usage=%t", includeUsage), func(t *testing.T) {
					want, wantUsage := geminiRunStream(vertex, includeUsage, in)
					for k := 0; k <= len(in); k++ {
						got, gotUsage := geminiRunStream(vertex, includeUsage, in[:k], in[k:])
						if !bytes.Equal(got, want) || gotUsage != wantUsage {
							t.Fatalf("split at %d: (-want +got):\n%s", k, cmp.Diff(string(want), string(got)))
						}
					}
					bytewise := make([][]byte, 0, len(in)+1)
					for i := range in {
						bytewise = append(bytewise, in[i:i+1])
					}
					got, gotUsage := geminiRunStream(vertex, includeUsage, append(bytewise, nil)...)
					if diff := cmp.Diff(string(want), string(got)); diff != "" || gotUsage != wantUsage {
						t.Fatalf("byte by byte (-want +got):\n%s\nusage %+v, want %+v", diff, gotUsage, wantUsage)
					}
				})
			}
		})
	}
}

// TestGeminiStreamForwardsEachEvent: an event is translated as soon as its blank line
// arrives, before the response ends, so the first token reaches the client at once.
func TestGeminiStreamForwardsEachEvent(t *testing.T) {
	in, err := os.ReadFile(filepath.Join(geminiTestdata, "stream", "text.sse"))
	if err != nil {
		t.Fatal(err)
	}
	s := newGeminiStream(geminiTestTranslator(false), true)
	first := bytes.Index(in, []byte("\r\n\r\n")) + 4
	out, _ := s.Next(in[:first], false)
	if !bytes.Contains(out, []byte(`"delta":{"content":"The"}`)) {
		t.Fatalf("the first event was not forwarded: %q", out)
	}
	if bytes.Contains(out, []byte("[DONE]")) {
		t.Fatalf("the stream ended early: %q", out)
	}
}

func TestGeminiStreamIncludeUsage(t *testing.T) {
	in, err := os.ReadFile(filepath.Join(geminiTestdata, "stream", "text.sse"))
	if err != nil {
		t.Fatal(err)
	}
	with, _ := geminiRunStream(false, true, in)
	without, usage := geminiRunStream(false, false, in)
	usageChunk := `data: {"id":"resp-text-1","object":"chat.completion.chunk","created":1750000000,"model":"gemini-2.5-flash","choices":[],"usage":{"prompt_tokens":8,"completion_tokens":14,"total_tokens":22,"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}}` + "\n\n"
	if diff := cmp.Diff(string(with), strings.Replace(string(without), "data: [DONE]", usageChunk+"data: [DONE]", 1)); diff != "" {
		t.Errorf("the usage chunk is the only difference (-with +without):\n%s", diff)
	}
	if want := (Usage{PromptTokens: 8, CompletionTokens: 14, Known: true}); usage != want {
		t.Errorf("usage without the chunk = %+v, want %+v", usage, want)
	}
}

// TestGeminiStreamFailures checks that every way an upstream stream can go wrong ends the
// client's stream with an error event and [DONE].
func TestGeminiStreamFailures(t *testing.T) {
	const hello = "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Hello\"}],\"role\":\"model\"}}],\"responseId\":\"r\"}\r\n\r\n"
	streamErr := func(e *APIError) string { return string(StreamError(e)) }
	interrupted := func(msg string) string {
		return streamErr(&APIError{Status: 502, Type: "api_error", Code: "stream_interrupted", Message: msg})
	}
	tests := []struct {
		name    string
		vertex  bool
		in      string
		wantEnd string // the output's suffix
	}{
		{"empty response", false, "", interrupted("The Gemini API stream ended before the answer was complete; retry the request")},
		{"ends without finishReason", false, hello, interrupted("The Gemini API stream ended before the answer was complete; retry the request")},
		{"vertex ends without finishReason", true, hello, interrupted("Vertex AI stream ended before the answer was complete; retry the request")},
		{"one of two candidates unfinished", false, "data: {\"candidates\":[{\"index\":0,\"finishReason\":\"STOP\"},{\"index\":1,\"content\":{\"parts\":[{\"text\":\"x\"}]}}]}\n\n",
			interrupted("The Gemini API stream ended before the answer was complete; retry the request")},
		{"unreadable event", false, hello + "data: {not json}\n\n", interrupted("The Gemini API sent a stream event tollgate could not read")},
		{"a JSON array instead of events", false, "[{\"candidates\": []}]", interrupted("The Gemini API stream ended before the answer was complete; retry the request")},
		{"event too large", false, hello + "data: \"" + strings.Repeat("x", geminiMaxEvent) + "\"\n\n", interrupted("The Gemini API sent a stream event larger than tollgate accepts")},
		{"line too large without newline", false, hello + "data: " + strings.Repeat("x", geminiMaxEvent+1), interrupted("The Gemini API sent a stream event larger than tollgate accepts")},
		{"candidate out of range", false, "data: {\"candidates\":[{\"index\":8,\"content\":{\"parts\":[{\"text\":\"x\"}]}}]}\n\n", interrupted("The Gemini API sent a stream event for a candidate it was not asked for")},
		{"arguments not an object", false, "data: {\"candidates\":[{\"content\":{\"parts\":[{\"functionCall\":{\"name\":\"f\",\"args\":[1]}}]}}]}\n\n", interrupted("The Gemini API sent a function call whose arguments are not a JSON object")},
		{"overloaded", false, hello + "data: {\"error\":{\"code\":503,\"message\":\"The model is overloaded. Please try again later.\",\"status\":\"UNAVAILABLE\"}}\r\n\r\n",
			streamErr(&APIError{Status: 503, Type: "api_error", Code: "UNAVAILABLE", Message: "The model is overloaded. Please try again later."})},
		{"rate limited by status only", false, "data: {\"error\":{\"message\":\"Resource has been exhausted (e.g. check quota).\",\"status\":\"RESOURCE_EXHAUSTED\"}}\n\n",
			streamErr(&APIError{Status: 429, Type: "rate_limit_error", Code: "RESOURCE_EXHAUSTED", Message: "Resource has been exhausted (e.g. check quota)."})},
		{"context window", true, "data: {\"error\":{\"code\":400,\"message\":\"Unable to submit request because the input token count is 2000000 but model only supports up to 1048576.\",\"status\":\"INVALID_ARGUMENT\"}}\n\n",
			streamErr(&APIError{Status: 400, Type: "invalid_request_error", Code: "context_length_exceeded", Message: "Unable to submit request because the input token count is 2000000 but model only supports up to 1048576."})},
		{"error without message", false, hello + "data: {\"error\":{}}\n\n",
			streamErr(&APIError{Status: 500, Type: "api_error", Message: "The Gemini API reported an error in the stream"})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, _ := geminiRunStream(tc.vertex, true, []byte(tc.in))
			if !strings.HasSuffix(string(out), tc.wantEnd) {
				t.Errorf("output ends\n%q\nwant suffix\n%q", geminiTail(out), tc.wantEnd)
			}
			if n := strings.Count(string(out), "data: [DONE]"); n != 1 {
				t.Errorf("[DONE] sent %d times", n)
			}
		})
	}
}

func geminiTail(b []byte) string {
	if len(b) > 300 {
		return "..." + string(b[len(b)-300:])
	}
	return string(b)
}

func TestGeminiStreamIgnoresInputAfterDone(t *testing.T) {
	s := newGeminiStream(geminiTestTranslator(false), true)
	if out, _ := s.Next([]byte("data: {\"error\":{\"code\":500,\"message\":\"boom\"}}\n\n"), false); !bytes.HasSuffix(out, []byte("data: [DONE]\n\n")) {
		t.Fatalf("the error event did not end the stream: %q", out)
	}
	for _, end := range []bool{false, true} {
		if out, err := s.Next([]byte("data: {\"candidates\":[{\"finishReason\":\"STOP\"}]}\n\n"), end); err != nil || len(out) != 0 {
			t.Errorf("Next after [DONE] (end=%v) = %q, %v; want nothing", end, out, err)
		}
	}
}

// TestGeminiStreamLineEndings: LF and CRLF line endings, multi-line data and comments are
// all the event stream format; none may change the translation.
func TestGeminiStreamLineEndings(t *testing.T) {
	in, err := os.ReadFile(filepath.Join(geminiTestdata, "stream", "function_call.sse"))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := geminiRunStream(false, true, in)
	lf := bytes.ReplaceAll(in, []byte("\r\n"), []byte("\n"))
	// A data field split over two lines joins with a newline, which JSON reads as space.
	split := bytes.Replace(lf, []byte(`"role":"model"},`), []byte("\"role\":\"model\"}\n: a comment\nevent: message\ndata: ,"), 1)
	for name, variant := range map[string][]byte{"lf": lf, "multi-line data": split} {
		if bytes.Equal(variant, in) {
			t.Fatalf("%s: the variant is the fixture itself", name)
		}
		got, _ := geminiRunStream(false, true, variant)
		if diff := cmp.Diff(string(want), string(got)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", name, diff)
		}
	}
}

// TestGeminiOutputReadsWithOpenAISDK decodes every translated response and stream with
// the official openai-go SDK, as a client would.
func TestGeminiOutputReadsWithOpenAISDK(t *testing.T) {
	t.Run("responses", func(t *testing.T) {
		for _, path := range fixtures(t, geminiTestdata, "response", ".json") {
			var fx geminiResponseFixture
			readFixture(t, path, &fx)
			body, _, err := geminiTestTranslator(fx.Vertex).Response(fx.endpoint(), fx.Status, fx.body())
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case fx.Status >= 400:
				var e struct {
					Error openai.ErrorObject `json:"error"`
				}
				if err := json.Unmarshal(body, &e); err != nil || e.Error.Message == "" {
					t.Errorf("%s: error body %s does not decode as an OpenAI error: %v", path, body, err)
				}
			case fx.endpoint() == Embeddings:
				var list openai.CreateEmbeddingResponse
				if err := json.Unmarshal(body, &list); err != nil || len(list.Data) == 0 || len(list.Data[0].Embedding) == 0 {
					t.Errorf("%s: %s does not decode as an embedding list: %v", path, body, err)
				}
			default:
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
		}
	})
	t.Run("streams", func(t *testing.T) {
		want := map[string]sdkStream{
			"text.sse":                  {content: "The quick brown fox jumps over \"the\" lazy dog.\n<end> & done", finish: "stop"},
			"function_call.sse":         {content: "Let me check.", finish: "tool_calls", tools: []string{`get_weather({"location":"Boston, MA","unit":"celsius"})`, `get_time({})`}},
			"thinking.sse":              {content: "The GCD is **21**.", finish: "stop"},
			"cached_max_tokens.sse":     {content: "Once upon a time", finish: "length"},
			"error_event.sse":           {content: "Hello", errText: "The model is overloaded"},
			"cut.sse":                   {content: "Hello wor", errText: "ended before the answer was complete"},
			"prompt_blocked.sse":        {finish: "content_filter"},
			"vertex_no_final_blank.sse": {content: "Scones and tea.", finish: "stop"},
			"two_candidates.sse":        {content: "Heads!", finish: "stop"},
		}
		for _, path := range fixtures(t, geminiTestdata, "stream", ".sse") {
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
			out, _ := geminiRunStream(geminiStreamIsVertex(path), true, in)
			checkSDKStream(t, name, out, w)
		}
	})
}

func TestGeminiRequestErrors(t *testing.T) {
	const user = `"messages":[{"role":"user","content":"hi"}]`
	const fn = `"tools":[{"type":"function","function":{"name":"a","parameters":{"type":"object","properties":{"x":{"type":"string"}}}}}]`
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
		{"trailing data", `{` + user + `} {}`, invalid("", "The request body has data after its JSON object")},
		{"wrong type", `{` + user + `,"temperature":"hot"}`, invalid("temperature", "Invalid type for 'temperature': expected a number, got string")},
		{"unknown parameter", `{` + user + `,"temprature":0.2}`, invalid("temprature", "Unrecognized request argument supplied: temprature")},
		{"unknown fields inside messages are fine", `{"messages":[{"role":"user","content":"hi","annotations":[]}],"mesages":[]}`, invalid("mesages", "Unrecognized request argument supplied: mesages")},
		{"no messages", `{"model":"m"}`, invalid("messages", "'messages' must contain at least one message")},
		{"only system", `{"messages":[{"role":"system","content":"be brief"}]}`, invalid("messages", "'messages' must contain a user message besides system messages")},
		{"logprobs", `{` + user + `,"logprobs":true}`, unsupported("logprobs", "Unsupported parameter: 'logprobs' is not translated for Gemini deployments")},
		{"top_logprobs", `{` + user + `,"top_logprobs":2}`, unsupported("top_logprobs", "Unsupported parameter: 'top_logprobs' is not translated for Gemini deployments")},
		{"logit_bias", `{` + user + `,"logit_bias":{"50256":-100}}`, unsupported("logit_bias", "Unsupported parameter: 'logit_bias' is not supported by Gemini")},
		{"audio output", `{` + user + `,"modalities":["text","audio"]}`, unsupported("modalities", `Unsupported parameter: 'modalities' may only be ["text"] for Gemini deployments`)},
		{"functions", `{` + user + `,"functions":[{"name":"f"}]}`, unsupported("functions", "Unsupported parameter: 'functions' is deprecated; use 'tools' and 'tool_choice'")},
		{"no parallel tool calls", `{` + user + `,` + fn + `,"parallel_tool_calls":false}`, unsupported("parallel_tool_calls", "Unsupported parameter: 'parallel_tool_calls' cannot be false: Gemini decides how many functions to call in a turn")},
		{"max_tokens zero", `{` + user + `,"max_tokens":0}`, invalid("max_tokens", "max_tokens must be at least 1, got 0")},
		{"n zero", `{` + user + `,"n":0}`, invalid("n", "n must be at least 1, got 0")},
		{"stop of the wrong type", `{` + user + `,"stop":7}`, invalid("stop", "Invalid value for 'stop': json: cannot unmarshal number into Go value of type []string")},
		{"bad reasoning_effort", `{` + user + `,"reasoning_effort":"max"}`, invalid("reasoning_effort", `Invalid value for 'reasoning_effort': "max" (use none, minimal, low, medium or high)`)},
		{"reasoning_effort and thinking", `{` + user + `,"reasoning_effort":"low","thinking":{"type":"enabled","budget_tokens":1024}}`, invalid("reasoning_effort", "Set either 'reasoning_effort' or 'thinking', not both")},
		{"bad thinking", `{` + user + `,"thinking":{"type":"enabled"}}`, invalid("thinking", `Invalid value for 'thinking': use {"type": "enabled", "budget_tokens": N} or {"type": "disabled"}`)},
		{"safety_settings not a list", `{` + user + `,"safety_settings":{"x":1}}`, invalid("safety_settings", "Invalid value for 'safety_settings': expected an array of Gemini safety settings")},
		{"unknown role", `{"messages":[{"role":"robot","content":"hi"}]}`, invalid("messages[0].role", `Invalid value for 'messages[0].role': "robot"`)},
		{"function role", `{"messages":[{"role":"user","content":"hi"},{"role":"function","name":"f","content":"x"}]}`, unsupported("messages[1].role", "Unsupported parameter: 'messages[1].role' 'function' is deprecated; answer tool calls with role 'tool'")},
		{"empty user content", `{"messages":[{"role":"user","content":[]}]}`, invalid("messages[0].content", "messages[0]: a user message must have non-empty content")},
		{"text part without text", `{"messages":[{"role":"user","content":[{"type":"text"}]}]}`, invalid("messages[0].content[0]", "messages[0].content[0]: a text part needs 'text'")},
		{"image in system", `{"messages":[{"role":"system","content":[{"type":"image_url","image_url":{"url":"https://x/y.png"}}]},{"role":"user","content":"hi"}]}`, invalid("messages[0].content[0]", `messages[0].content[0]: content part type "image_url" is not allowed here`)},
		{"ftp image", `{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"ftp://x/y.png"}}]}]}`, invalid("messages[0].content[0].image_url.url", "messages[0].content[0].image_url.url must be an http(s) or gs:// URL, or a base64 data URL")},
		{"image without extension", `{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://example.com/render?id=7"}}]}]}`, invalid("messages[0].content[0].image_url.url", `messages[0].content[0].image_url.url: the media type of "https://example.com/render?id=7" cannot be told from its extension; send the file as a base64 data URL`)},
		{"bad audio format", `{"messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"AAAA","format":"m4a"}}]}]}`, invalid("messages[0].content[0].input_audio.format", "messages[0].content[0].input_audio.format must be wav, mp3, aiff, aac, ogg or flac")},
		{"openai file id", `{"messages":[{"role":"user","content":[{"type":"file","file":{"file_id":"file-abc"}}]}]}`, unsupported("messages[0].content[0].file", "Unsupported parameter: 'messages[0].content[0].file' needs 'file_data', or a URL in 'file_id': OpenAI file IDs cannot be sent to Gemini")},
		{"file data not a data URL", `{"messages":[{"role":"user","content":[{"type":"file","file":{"file_data":"JVBERi0="}}]}]}`, invalid("messages[0].content[0].file.file_data", "messages[0].content[0].file.file_data must be a base64 data URL")},
		{"tool without id", `{"messages":[{"role":"user","content":"hi"},{"role":"tool","content":"x"}]}`, invalid("messages[1].tool_call_id", "messages[1].tool_call_id is required for a tool message")},
		{"tool answering nothing", `{"messages":[{"role":"user","content":"hi"},{"role":"tool","tool_call_id":"call_9","content":"x"}]}`, invalid("messages[1].tool_call_id", `messages[1].tool_call_id "call_9" answers no tool call of an earlier assistant message`)},
		{"tool call arguments not an object", `{"messages":[{"role":"user","content":"hi"},{"role":"assistant","tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"[1]"}}]}]}`, invalid("messages[1].tool_calls[0].function.arguments", "messages[1].tool_calls[0].function.arguments must be a JSON object: Gemini function arguments are an object")},
		{"tool call without name", `{"messages":[{"role":"user","content":"hi"},{"role":"assistant","tool_calls":[{"id":"c1","type":"function","function":{"arguments":"{}"}}]}]}`, invalid("messages[1].tool_calls[0]", "messages[1].tool_calls[0] needs an 'id' and a 'function.name'")},
		{"custom tool call", `{"messages":[{"role":"user","content":"hi"},{"role":"assistant","tool_calls":[{"id":"c1","type":"custom","custom":{"name":"x"}}]}]}`, unsupported("messages[1].tool_calls[0].type", `Unsupported parameter: 'messages[1].tool_calls[0].type' "custom": only function tool calls can be sent to Gemini`)},
		{"custom tool", `{` + user + `,"tools":[{"type":"custom","custom":{"name":"x"}}]}`, unsupported("tools[0].type", `Unsupported parameter: 'tools[0].type' "custom": only function tools can be sent to Gemini`)},
		{"tool without name", `{` + user + `,"tools":[{"type":"function","function":{}}]}`, invalid("tools[0].function.name", "tools[0].function.name is required")},
		{"tool schema not an object", `{` + user + `,"tools":[{"type":"function","function":{"name":"a","parameters":[1]}}]}`, invalid("tools[0].function.parameters", "Invalid schema in 'tools[0].function.parameters': must be a JSON Schema object")},
		{"recursive schema", `{` + user + `,"tools":[{"type":"function","function":{"name":"a","parameters":{"type":"object","properties":{"n":{"$ref":"#/$defs/N"}},"$defs":{"N":{"type":"object","properties":{"next":{"$ref":"#/$defs/N"}}}}}}}]}`,
			invalid("tools[0].function.parameters", "Invalid schema in 'tools[0].function.parameters': it refers to itself through $ref, or nests too deeply; a Gemini schema cannot be recursive")},
		{"unknown $ref", `{` + user + `,"tools":[{"type":"function","function":{"name":"a","parameters":{"type":"object","properties":{"n":{"$ref":"#/components/N"}}}}}]}`,
			invalid("tools[0].function.parameters", "Invalid schema in 'tools[0].function.parameters': $ref #/components/N does not name a schema in $defs or definitions")},
		{"allOf of several", `{` + user + `,"tools":[{"type":"function","function":{"name":"a","parameters":{"type":"object","properties":{"n":{"allOf":[{"type":"string"},{"minLength":1}]}}}}}]}`,
			invalid("tools[0].function.parameters", "Invalid schema in 'tools[0].function.parameters': allOf of several schemas cannot be expressed in a Gemini schema")},
		{"tool_choice without tools", `{` + user + `,"tool_choice":"auto"}`, invalid("tool_choice", "'tool_choice' is only allowed when 'tools' are specified")},
		{"tool_choice unknown name", `{` + user + `,` + fn + `,"tool_choice":{"type":"function","function":{"name":"b"}}}`, invalid("tool_choice", `tool_choice names function "b", which is not in 'tools'`)},
		{"tool_choice bad string", `{` + user + `,` + fn + `,"tool_choice":"sometimes"}`, invalid("tool_choice", `Invalid value for 'tool_choice': "sometimes"`)},
		{"tool_choice allowed_tools", `{` + user + `,` + fn + `,"tool_choice":{"type":"allowed_tools"}}`, unsupported("tool_choice", `Unsupported parameter: 'tool_choice' of type "allowed_tools" cannot be sent to Gemini`)},
		{"response_format unknown", `{` + user + `,"response_format":{"type":"yaml"}}`, invalid("response_format", `Invalid value for 'response_format.type': "yaml"`)},
		{"json_schema without schema object", `{` + user + `,"response_format":{"type":"json_schema"}}`, invalid("response_format.json_schema", "response_format of type json_schema needs 'json_schema'")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tg := &Target{Provider: "gemini", Model: "gemini-2.5-flash", APIKey: "k"}
			up, err := geminiTestTranslator(false).Request(ChatCompletions, []byte(tc.body), tg)
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

func TestGeminiEmbeddingRequestErrors(t *testing.T) {
	tests := []struct {
		name, body string
		want       *APIError
	}{
		{"no input", `{"model":"m"}`, &APIError{Status: 400, Type: "invalid_request_error", Param: "input", Message: "'input' is required"}},
		{"empty list", `{"input":[]}`, &APIError{Status: 400, Type: "invalid_request_error", Param: "input", Message: "'input' must not be empty"}},
		{"empty text", `{"input":["a",""]}`, &APIError{Status: 400, Type: "invalid_request_error", Param: "input[1]", Message: "input[1] must not be empty"}},
		{"tokens", `{"input":[[1,2,3]]}`, &APIError{Status: 400, Type: "invalid_request_error", Param: "input", Code: "unsupported_parameter", Message: "Unsupported parameter: 'input' must be a string or an array of strings: token arrays cannot be sent to Gemini"}},
		{"encoding", `{"input":"a","encoding_format":"int8"}`, &APIError{Status: 400, Type: "invalid_request_error", Param: "encoding_format", Message: `Invalid value for 'encoding_format': "int8" (use float or base64)`}},
		{"dimensions", `{"input":"a","dimensions":0}`, &APIError{Status: 400, Type: "invalid_request_error", Param: "dimensions", Message: "dimensions must be at least 1, got 0"}},
		{"dimensions type", `{"input":"a","dimensions":"big"}`, &APIError{Status: 400, Type: "invalid_request_error", Param: "dimensions", Message: "Invalid type for 'dimensions': expected an integer, got string"}},
	}
	for _, vertex := range []bool{false, true} {
		for _, tc := range tests {
			t.Run(tc.name+map[bool]string{true: "/vertex"}[vertex], func(t *testing.T) {
				tg := &Target{Model: "text-embedding-005", APIKey: "k"}
				_, err := geminiTestTranslator(vertex).Request(Embeddings, []byte(tc.body), tg)
				var got *APIError
				if !errors.As(err, &got) {
					t.Fatalf("err = %v; want an *APIError", err)
				}
				if diff := cmp.Diff(tc.want, got); diff != "" {
					t.Errorf("(-want +got):\n%s", diff)
				}
			})
		}
	}
}

func TestGeminiRequestEndpoint(t *testing.T) {
	for _, vertex := range []bool{false, true} {
		_, err := geminiTestTranslator(vertex).Request(Completions, []byte(`{"prompt":"x"}`), &Target{Model: "gemini-2.5-flash", APIKey: "k"})
		prefix := map[bool]string{false: "gemini", true: "vertex_ai"}[vertex]
		want := &APIError{Status: 400, Type: "invalid_request_error", Code: "unsupported_endpoint", Message: prefix + " deployments serve chat/completions and embeddings, not completions"}
		var got *APIError
		if !errors.As(err, &got) {
			t.Fatalf("err = %v", err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	}
	_, err := geminiTestTranslator(true).Request(ChatCompletions, []byte(`{"messages":[{"role":"user","content":"hi"}]}`),
		&Target{Model: "claude-sonnet-4-5@20250929", Google: &GoogleCredentials{Project: "p", AccessToken: "t"}})
	var e *APIError
	if !errors.As(err, &e) || e.Code != "unsupported_model" || e.Param != "model" {
		t.Errorf("a Claude model on vertex_ai: err = %v, want an unsupported_model APIError", err)
	}
}

// TestGeminiRoutes pins where requests go: paths, hosts and credentials for the Gemini
// API, Vertex AI (regional, global, express mode) and api_base overrides.
func TestGeminiRoutes(t *testing.T) {
	const chat = `{"messages":[{"role":"user","content":"hi"}]}`
	const stream = `{"messages":[{"role":"user","content":"hi"}],"stream":true}`
	tests := []struct {
		name          string
		vertex        bool
		base          string
		key           string
		google        *GoogleCredentials
		body          string
		wantPath      string
		wantAuthority string
		wantCred      Header
	}{
		{"gemini default", false, "", "AIza1", nil, chat, "/v1beta/models/gemini-2.5-flash:generateContent", "generativelanguage.googleapis.com", Header{"x-goog-api-key", "AIza1"}},
		{"gemini stream", false, "", "AIza1", nil, stream, "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse", "generativelanguage.googleapis.com", Header{"x-goog-api-key", "AIza1"}},
		{"gemini base with version", false, "https://proxy.internal/v1", "AIza1", nil, chat, "/v1/models/gemini-2.5-flash:generateContent", "proxy.internal", Header{"x-goog-api-key", "AIza1"}},
		{"gemini base with path and query", false, "http://127.0.0.1:8080/g/?x=1", "AIza1", nil, stream, "/g/v1beta/models/gemini-2.5-flash:streamGenerateContent?x=1&alt=sse", "127.0.0.1:8080", Header{"x-goog-api-key", "AIza1"}},
		{"gemini base default port", false, "https://gemini.example:443", "AIza1", nil, chat, "/v1beta/models/gemini-2.5-flash:generateContent", "gemini.example", Header{"x-goog-api-key", "AIza1"}},
		{"vertex default location", true, "", "", &GoogleCredentials{Project: "p-1", AccessToken: "tok"}, chat, "/v1/projects/p-1/locations/us-central1/publishers/google/models/gemini-2.5-flash:generateContent", "us-central1-aiplatform.googleapis.com", Header{"authorization", "Bearer tok"}},
		{"vertex region stream", true, "", "", &GoogleCredentials{Project: "p-1", Location: "asia-northeast1", AccessToken: "tok"}, stream, "/v1/projects/p-1/locations/asia-northeast1/publishers/google/models/gemini-2.5-flash:streamGenerateContent?alt=sse", "asia-northeast1-aiplatform.googleapis.com", Header{"authorization", "Bearer tok"}},
		{"vertex global", true, "", "", &GoogleCredentials{Project: "p-1", Location: "global", AccessToken: "tok"}, chat, "/v1/projects/p-1/locations/global/publishers/google/models/gemini-2.5-flash:generateContent", "aiplatform.googleapis.com", Header{"authorization", "Bearer tok"}},
		{"vertex api_base", true, "https://private.example/aip/v1beta1", "", &GoogleCredentials{Project: "p-1", Location: "europe-west4", AccessToken: "tok"}, chat, "/aip/v1beta1/projects/p-1/locations/europe-west4/publishers/google/models/gemini-2.5-flash:generateContent", "private.example", Header{"authorization", "Bearer tok"}},
		{"vertex token wins over key", true, "", "AQ.key", &GoogleCredentials{Project: "p-1", AccessToken: "tok"}, chat, "/v1/projects/p-1/locations/us-central1/publishers/google/models/gemini-2.5-flash:generateContent", "us-central1-aiplatform.googleapis.com", Header{"authorization", "Bearer tok"}},
		{"vertex express", true, "", "AQ.key", &GoogleCredentials{Project: "p-1"}, chat, "/v1/publishers/google/models/gemini-2.5-flash:generateContent", "aiplatform.googleapis.com", Header{"x-goog-api-key", "AQ.key"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tg := &Target{Model: "gemini-2.5-flash", APIKey: tc.key, Google: tc.google}
			if tc.base != "" {
				u, err := url.Parse(tc.base)
				if err != nil {
					t.Fatal(err)
				}
				tg.Base = u
			}
			up, err := geminiTestTranslator(tc.vertex).Request(ChatCompletions, []byte(tc.body), tg)
			if err != nil {
				t.Fatal(err)
			}
			if up.Path != tc.wantPath || up.Authority != tc.wantAuthority {
				t.Errorf("path, authority = %q, %q; want %q, %q", up.Path, up.Authority, tc.wantPath, tc.wantAuthority)
			}
			want := []Header{{"content-type", "application/json"}, tc.wantCred}
			if diff := cmp.Diff(want, up.Headers); diff != "" {
				t.Errorf("headers (-want +got):\n%s", diff)
			}
			for _, h := range up.Headers[1:] {
				if !geminiIsCredentialHeader(h.Key) {
					t.Errorf("header %q is not in CredentialHeaders, so a fallback attempt would keep it", h.Key)
				}
			}
			if strings.Contains(up.Path, tc.key+"&") || (tc.key != "" && strings.Contains(up.Path, "key=")) {
				t.Errorf("the API key is in the path %q", up.Path)
			}
		})
	}
}

func geminiIsCredentialHeader(k string) bool {
	for _, c := range CredentialHeaders {
		if c == k {
			return true
		}
	}
	return false
}

// TestGeminiMisconfiguredVertex: a vertex_ai/ deployment that cannot authenticate is a
// configuration fault (a plain error), not the client's (an *APIError).
func TestGeminiMisconfiguredVertex(t *testing.T) {
	tests := []struct {
		name   string
		target Target
		want   string
	}{
		{"no credentials", Target{Model: "m"}, "vertex_ai: the deployment has no access token (vertex_credentials) and no api_key"},
		{"token without project", Target{Model: "m", Google: &GoogleCredentials{AccessToken: "t"}}, "vertex_ai: the deployment has no vertex_project"},
		{"bad location", Target{Model: "m", Google: &GoogleCredentials{Project: "p", Location: "evil.com/x", AccessToken: "t"}}, `vertex_ai: location "evil.com/x" is not a location name`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := geminiTestTranslator(true).Request(ChatCompletions, []byte(`{"messages":[{"role":"user","content":"hi"}]}`), &tc.target)
			var apiErr *APIError
			if err == nil || errors.As(err, &apiErr) || err.Error() != tc.want {
				t.Errorf("err = %v, want the configuration error %q", err, tc.want)
			}
		})
	}
}

func TestVertexBase(t *testing.T) {
	tests := []struct{ location, want, err string }{
		{"", "https://us-central1-aiplatform.googleapis.com", ""},
		{"europe-west4", "https://europe-west4-aiplatform.googleapis.com", ""},
		{"global", "https://aiplatform.googleapis.com", ""},
		{"US-central1", "", `vertex_ai: location "US-central1" is not a location name`},
		{"a.b", "", `vertex_ai: location "a.b" is not a location name`},
		{strings.Repeat("a", 33), "", `vertex_ai: location "` + strings.Repeat("a", 33) + `" is not a location name`},
	}
	for _, tc := range tests {
		got, err := VertexBase(tc.location)
		if got != tc.want || (err == nil) != (tc.err == "") || (err != nil && err.Error() != tc.err) {
			t.Errorf("VertexBase(%q) = %q, %v; want %q, %q", tc.location, got, err, tc.want, tc.err)
		}
	}
}

func TestGeminiExtraHeaders(t *testing.T) {
	tg := &Target{Model: "gemini-2.5-flash", APIKey: "AIza1", ExtraHeaders: map[string]string{"X-Trace": "1", "Content-Type": "application/json; charset=utf-8", "x-goog-api-key": "AIza2"}}
	up, err := geminiTestTranslator(false).Request(ChatCompletions, []byte(`{"messages":[{"role":"user","content":"hi"}]}`), tg)
	if err != nil {
		t.Fatal(err)
	}
	want := []Header{{"content-type", "application/json; charset=utf-8"}, {"x-goog-api-key", "AIza2"}, {"x-trace", "1"}}
	if diff := cmp.Diff(want, up.Headers); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// TestGeminiSchemaConversion pins how JSON Schemas are reduced to Gemini's Schema.
func TestGeminiSchemaConversion(t *testing.T) {
	tests := []struct {
		name     string
		ordering bool
		in, want string
		props    bool
	}{
		{"kept as is", false, `{"type":"object","properties":{"a":{"type":"string","description":"d","minLength":1}},"required":["a"]}`,
			`{"type":"object","properties":{"a":{"type":"string","description":"d","minLength":1}},"required":["a"]}`, true},
		{"unsupported keys dropped", false, `{"$schema":"x","$id":"y","type":"object","additionalProperties":false,"properties":{"a":{"type":"number","multipleOf":2,"examples":[2]}},"unevaluatedProperties":false}`,
			`{"type":"object","properties":{"a":{"type":"number"}}}`, true},
		{"empty object", false, `{"type":"object","properties":{},"required":["x"]}`, `{"type":"object"}`, false},
		{"no parameters at all", false, `{}`, `{}`, false},
		{"nullable type list", false, `{"type":["integer","null"],"format":"int64"}`, `{"type":"integer","format":"int64","nullable":true}`, false},
		{"type list of several", false, `{"type":["string","number"]}`, `{"anyOf":[{"type":"string"},{"type":"number"}]}`, false},
		{"optional via anyOf", false, `{"anyOf":[{"type":"string","maxLength":3},{"type":"null"}],"description":"code"}`, `{"description":"code","type":"string","maxLength":3,"nullable":true}`, false},
		{"oneOf becomes anyOf", false, `{"oneOf":[{"type":"string"},{"type":"integer"}]}`, `{"anyOf":[{"type":"string"},{"type":"integer"}]}`, false},
		{"allOf of one", false, `{"allOf":[{"$ref":"#/$defs/A"}],"$defs":{"A":{"type":"string","enum":["x","y"]}}}`, `{"type":"string","enum":["x","y"]}`, false},
		{"ref with description", false, `{"type":"object","properties":{"a":{"$ref":"#/definitions/A","description":"the a"}},"definitions":{"A":{"type":"boolean"}}}`,
			`{"type":"object","properties":{"a":{"type":"boolean","description":"the a"}}}`, true},
		{"const", false, `{"const":"x"}`, `{"enum":["x"],"type":"string"}`, false},
		{"enum of numbers dropped", false, `{"type":"integer","enum":[1,2]}`, `{"type":"integer"}`, false},
		{"enum with null", false, `{"type":"string","enum":["a",null]}`, `{"type":"string","enum":["a"],"nullable":true}`, false},
		{"formats", false, `{"type":"object","properties":{"a":{"type":"string","format":"email"},"b":{"type":"string","format":"date-time"},"c":{"type":"number","format":"double"}}}`,
			`{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"string","format":"date-time"},"c":{"type":"number","format":"double"}}}`, true},
		{"tuple items dropped", false, `{"type":"array","items":[{"type":"string"}],"minItems":1}`, `{"type":"array","minItems":1}`, false},
		{"required filtered", false, `{"type":"object","properties":{"a":{"type":"string"}},"required":["a","b"]}`, `{"type":"object","properties":{"a":{"type":"string"}},"required":["a"]}`, true},
		{"boolean property schema", false, `{"type":"object","properties":{"any":true}}`, `{"type":"object","properties":{"any":{}}}`, true},
		{"ordering", true, `{"type":"object","properties":{"z":{"type":"string"},"a":{"type":"object","properties":{"y":{"type":"string"},"b":{"type":"string"}}}}}`,
			`{"type":"object","properties":{"z":{"type":"string"},"a":{"type":"object","properties":{"y":{"type":"string"},"b":{"type":"string"}},"propertyOrdering":["y","b"]}},"propertyOrdering":["z","a"]}`, true},
		{"ordering given", true, `{"type":"object","properties":{"z":{"type":"string"},"a":{"type":"string"}},"propertyOrdering":["a","z"]}`,
			`{"type":"object","properties":{"z":{"type":"string"},"a":{"type":"string"}},"propertyOrdering":["a","z"]}`, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := geminiSchemaConverter{param: "p", ordering: tc.ordering}
			got, props, err := c.root(json.RawMessage(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, string(got)); diff != "" || props != tc.props {
				t.Errorf("(-want +got):\n%s\nproperties %v, want %v", diff, props, tc.props)
			}
		})
	}
}

// TestGeminiThinking pins reasoning_effort and "thinking" for Gemini 2.5 and 3 models.
func TestGeminiThinking(t *testing.T) {
	tests := []struct {
		model, params, want string
	}{
		{"gemini-2.5-flash", `"reasoning_effort":"low"`, `{"includeThoughts":true,"thinkingBudget":1024}`},
		{"gemini-2.5-pro", `"reasoning_effort":"minimal"`, `{"includeThoughts":true,"thinkingBudget":128}`},
		{"gemini-2.5-flash", `"reasoning_effort":"high"`, `{"includeThoughts":true,"thinkingBudget":4096}`},
		{"gemini-2.5-flash", `"reasoning_effort":"none"`, `{"thinkingBudget":0}`},
		{"gemini-3-pro-preview", `"reasoning_effort":"none"`, `{"thinkingLevel":"low"}`},
		{"gemini-3-pro-preview", `"reasoning_effort":"minimal"`, `{"includeThoughts":true,"thinkingLevel":"low"}`},
		{"gemini-3-flash-preview", `"reasoning_effort":"medium"`, `{"includeThoughts":true,"thinkingLevel":"high"}`},
		{"gemini-2.5-flash", `"thinking":{"type":"enabled","budget_tokens":2000}`, `{"includeThoughts":true,"thinkingBudget":2000}`},
		{"gemini-2.5-flash", `"thinking":{"type":"disabled"}`, `{"thinkingBudget":0}`},
	}
	for _, tc := range tests {
		t.Run(tc.model+" "+tc.params, func(t *testing.T) {
			body := `{"messages":[{"role":"user","content":"hi"}],` + tc.params + `}`
			up, err := geminiTestTranslator(false).Request(ChatCompletions, []byte(body), &Target{Model: tc.model, APIKey: "k"})
			if err != nil {
				t.Fatal(err)
			}
			var got struct {
				GenerationConfig struct {
					ThinkingConfig json.RawMessage `json:"thinkingConfig"`
				} `json:"generationConfig"`
			}
			if err := json.Unmarshal(up.Body, &got); err != nil {
				t.Fatal(err)
			}
			if string(got.GenerationConfig.ThinkingConfig) != tc.want {
				t.Errorf("thinkingConfig = %s, want %s", got.GenerationConfig.ThinkingConfig, tc.want)
			}
		})
	}
}

// TestGeminiToolCallIDsRoundTrip: a signed call's ID carries its thought signature, and
// sending the ID back puts the signature back on the call, as Gemini 3 requires.
func TestGeminiToolCallIDsRoundTrip(t *testing.T) {
	in, err := os.ReadFile(filepath.Join(geminiTestdata, "response", "function_calls.json"))
	if err != nil {
		t.Fatal(err)
	}
	var fx geminiResponseFixture
	if err := json.Unmarshal(in, &fx); err != nil {
		t.Fatal(err)
	}
	body, _, err := geminiTranslator{}.Response(ChatCompletions, 200, fx.Google)
	if err != nil {
		t.Fatal(err)
	}
	var cc struct {
		Choices []struct {
			Message json.RawMessage `json:"message"`
		} `json:"choices"`
	}
	if err := json.Unmarshal(body, &cc); err != nil {
		t.Fatal(err)
	}
	var msg gemChatMessage
	if err := json.Unmarshal(cc.Choices[0].Message, &msg); err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, tc := range msg.ToolCalls {
		if ids[tc.ID] || !strings.HasPrefix(tc.ID, "call_") {
			t.Errorf("tool call ID %q is not a fresh call_ ID", tc.ID)
		}
		ids[tc.ID] = true
	}
	next := map[string]any{"messages": []any{
		map[string]any{"role": "user", "content": "party"},
		json.RawMessage(cc.Choices[0].Message),
		map[string]any{"role": "tool", "tool_call_id": msg.ToolCalls[0].ID, "content": "ok"},
		map[string]any{"role": "tool", "tool_call_id": msg.ToolCalls[1].ID, "content": "ok"},
		map[string]any{"role": "tool", "tool_call_id": msg.ToolCalls[2].ID, "content": "ok"},
	}}
	req, err := json.Marshal(next)
	if err != nil {
		t.Fatal(err)
	}
	up, err := geminiTranslator{}.Request(ChatCompletions, req, &Target{Model: "gemini-3-pro-preview", APIKey: "k"})
	if err != nil {
		t.Fatal(err)
	}
	var got geminiRequest
	if err := json.Unmarshal(up.Body, &got); err != nil {
		t.Fatal(err)
	}
	var sigs, names []string
	for _, p := range got.Contents[1].Parts {
		sigs = append(sigs, p.ThoughtSignature)
	}
	for _, p := range got.Contents[2].Parts {
		names = append(names, p.FunctionResponse.Name)
	}
	if diff := cmp.Diff([]string{"CiQBVKhc7ZrLq6cIqtKrgtWZ8eWnU5w/U+ac2ycUgMm8rX/ogZc=", "", ""}, sigs); diff != "" {
		t.Errorf("signatures (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"power_disco_ball", "start_music", "dim_lights"}, names); diff != "" {
		t.Errorf("function responses (-want +got):\n%s", diff)
	}
}

// TestGeminiErrorsHideCredentials: whatever Google says on a credential failure, the
// client reads tollgate's message, never a fragment of the deployment's key or token.
func TestGeminiErrorsHideCredentials(t *testing.T) {
	bodies := []struct {
		status int
		body   string
	}{
		{400, `{"error":{"code":400,"message":"API key not valid: AIzaSECRET","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID"}]}}`},
		{400, `{"error":{"code":400,"message":"API key expired. Please renew the API key AIzaSECRET.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_EXPIRED"}]}}`},
		{401, `{"error":{"code":401,"message":"token ya29.SECRET expired","status":"UNAUTHENTICATED"}}`},
		{403, `{"error":{"code":403,"message":"caller SECRET@x.iam lacks permission","status":"PERMISSION_DENIED"}}`},
		{403, `not json SECRET`},
	}
	for _, vertex := range []bool{false, true} {
		for _, b := range bodies {
			out, _, err := geminiTestTranslator(vertex).Response(ChatCompletions, b.status, []byte(b.body))
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(out, []byte("SECRET")) || !bytes.Contains(out, []byte("configured for this deployment")) {
				t.Errorf("vertex=%v status %d body %q gave %s", vertex, b.status, b.body, out)
			}
		}
	}
}

func TestGeminiResponseMalformed(t *testing.T) {
	for _, tc := range []struct {
		ep   Endpoint
		body string
	}{
		{ChatCompletions, ``}, {ChatCompletions, `{`}, {ChatCompletions, `{"modelVersion":"x"}`}, {ChatCompletions, `[]`},
		{ChatCompletions, `{"candidates":[{"content":{"parts":[{"functionCall":{"name":"f","args":"x"}}]}}]}`},
		{Embeddings, `{}`}, {Embeddings, `{"embeddings":[{}]}`}, {Embeddings, `[`},
	} {
		_, _, err := geminiTestTranslator(false).Response(tc.ep, 200, []byte(tc.body))
		var e *APIError
		if !errors.As(err, &e) || e.Status != 502 {
			t.Errorf("%s body %q: err = %v, want a 502 APIError", tc.ep, tc.body, err)
		}
	}
}

// TestGeminiUsageNormalisation pins OpenAI's convention: prompt tokens include cached
// tokens, completion tokens include thoughts.
func TestGeminiUsageNormalisation(t *testing.T) {
	got := geminiUsageOf(&geminiUsageMetadata{PromptTokenCount: 1000, CachedContentTokenCount: 800, CandidatesTokenCount: 50,
		ThoughtsTokenCount: 200, ToolUsePromptTokenCount: 10, TotalTokenCount: 1260})
	want := Usage{PromptTokens: 1010, CompletionTokens: 250, CachedTokens: 800, ReasoningTokens: 200, Known: true}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if got.PromptTokens+got.CompletionTokens != 1260 {
		t.Errorf("prompt + completion = %d, want Google's total 1260", got.PromptTokens+got.CompletionTokens)
	}
	if u := geminiUsageOf(nil); u.Known {
		t.Errorf("no usageMetadata gave %+v", u)
	}
}

// TestGeminiThroughFakeProvider sends every request fixture, translated, to the fake
// Gemini API or Vertex AI, which checks it as the real API does, and translates the answer
// back, whole and streamed: the translator's output must be a request the API accepts,
// and the round trip must reach the client in OpenAI's shape.
func TestGeminiThroughFakeProvider(t *testing.T) {
	_, geminiSrv := providertest.StartGemini(t, "AIza-test-key")
	for _, path := range fixtures(t, geminiTestdata, "request", ".json") {
		var fx geminiRequestFixture
		readFixture(t, path, &fx)
		for _, stream := range []bool{false, true} {
			if stream && fx.endpoint() == Embeddings {
				continue
			}
			t.Run(filepath.Base(path)+map[bool]string{true: "/stream"}[stream], func(t *testing.T) {
				tg := fx.target(t)
				srvURL := geminiSrv.URL
				if fx.vertex() {
					loc := fx.Target.Location
					if loc == "" {
						loc = vertexDefaultLocation
					}
					fake, srv := providertest.StartVertex(t, googleFixtureProject(fx), loc)
					fake.Key = fx.Target.APIKey
					if tg.Google != nil {
						tg.Google.AccessToken = fake.AccessToken()
					}
					srvURL = srv.URL
				}
				base, err := url.Parse(srvURL)
				if err != nil {
					t.Fatal(err)
				}
				tg.Base = base
				var body map[string]any
				if err := json.Unmarshal(fx.OpenAI, &body); err != nil {
					t.Fatal(err)
				}
				if fx.endpoint() == ChatCompletions {
					body["stream"] = stream
				}
				raw, err := json.Marshal(body)
				if err != nil {
					t.Fatal(err)
				}
				tr := geminiTestTranslator(fx.vertex())
				up, err := tr.Request(fx.endpoint(), raw, tg)
				if err != nil {
					t.Fatal(err)
				}
				status, out := geminiPost(t, srvURL, up)
				if status != 200 {
					t.Fatalf("the fake refused the translated request: %d %s\nrequest: %s", status, out, up.Body)
				}
				switch {
				case fx.endpoint() == Embeddings:
					res, u, err := tr.Response(Embeddings, status, out)
					if err != nil {
						t.Fatal(err)
					}
					var list openai.CreateEmbeddingResponse
					if err := json.Unmarshal(res, &list); err != nil || len(list.Data) == 0 {
						t.Fatalf("embeddings %s: %v", res, err)
					}
					if fx.vertex() != u.Known {
						t.Errorf("usage = %+v; Vertex AI reports token counts, the Gemini API does not", u)
					}
				case stream:
					s := tr.Stream(ChatCompletions, StreamOptions{IncludeUsage: true})
					// Two chunks split mid-event, as a network delivers them.
					first, _ := s.Next(out[:len(out)/2], false)
					rest, _ := s.Next(out[len(out)/2:], true)
					content, finish := geminiStreamText(t, append(first, rest...))
					if !strings.Contains(content, "You said: ") || (finish != "stop" && finish != "tool_calls") {
						t.Errorf("client sees content %q, finish_reason %q", content, finish)
					}
					if u := s.Usage(); !u.Known || u.CompletionTokens == 0 {
						t.Errorf("stream usage = %+v", u)
					}
				default:
					res, u, err := tr.Response(ChatCompletions, status, out)
					if err != nil {
						t.Fatal(err)
					}
					var cc openai.ChatCompletion
					if err := json.Unmarshal(res, &cc); err != nil || len(cc.Choices) == 0 {
						t.Fatalf("translated response %s: %v", res, err)
					}
					content := cc.Choices[0].Message.Content
					for _, tc := range cc.Choices[0].Message.ToolCalls {
						content += tc.Function.Arguments
					}
					if finish := cc.Choices[0].FinishReason; !strings.Contains(content, "You said: ") || (finish != "stop" && finish != "tool_calls") {
						t.Errorf("client sees content %q, finish_reason %q", content, finish)
					}
					if !u.Known || u.PromptTokens == 0 {
						t.Errorf("usage = %+v", u)
					}
				}
			})
		}
	}
}

func googleFixtureProject(fx geminiRequestFixture) string {
	if fx.Target.Project == "" {
		return "express-mode"
	}
	return fx.Target.Project
}

// geminiPost sends an Upstream to a fake provider at base, as Envoy would.
func geminiPost(t *testing.T, base string, up *Upstream) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+up.Path, bytes.NewReader(up.Body))
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range up.Headers {
		req.Header.Set(h.Key, h.Value)
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

// geminiStreamText joins the content and tool call arguments of an OpenAI chunk stream's
// first choice and returns its finish reason; it fails the test on anything but chunks
// and a final [DONE].
func geminiStreamText(t *testing.T, sse []byte) (content, finish string) {
	t.Helper()
	events := strings.Split(strings.TrimSuffix(string(sse), "\n\n"), "\n\n")
	if events[len(events)-1] != "data: [DONE]" {
		t.Fatalf("stream does not end with [DONE]: %q", sse)
	}
	for _, ev := range events[:len(events)-1] {
		var chunk openai.ChatCompletionChunk
		payload, ok := strings.CutPrefix(ev, "data: ")
		if !ok || json.Unmarshal([]byte(payload), &chunk) != nil || chunk.Object != "chat.completion.chunk" {
			t.Fatalf("not a chunk: %q", ev)
		}
		for _, c := range chunk.Choices {
			if c.Index != 0 {
				continue
			}
			content += c.Delta.Content
			for _, tc := range c.Delta.ToolCalls {
				content += tc.Function.Arguments
			}
			if c.FinishReason != "" {
				finish = c.FinishReason
			}
		}
	}
	return content, finish
}

// TestGeminiFakeProviderErrors: errors from the fake (as the real APIs send them) reach
// the client as OpenAI errors: a bad key, a context window exceeded, a stream broken by an
// error event or a dropped connection.
func TestGeminiFakeProviderErrors(t *testing.T) {
	fake, srv := providertest.StartGemini(t, "AIza-right")
	fake.MaxInputTokens = 5
	base, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	tr := geminiTestTranslator(false)
	send := func(key, prompt string, stream bool) (int, []byte) {
		body, _ := json.Marshal(map[string]any{"messages": []any{map[string]any{"role": "user", "content": prompt}}, "stream": stream})
		up, err := tr.Request(ChatCompletions, body, &Target{Model: "gemini-2.5-flash", Base: base, APIKey: key})
		if err != nil {
			t.Fatal(err)
		}
		return geminiPost(t, srv.URL, up)
	}
	errorOf := func(status int, out []byte) *APIError {
		body, _, err := tr.Response(ChatCompletions, status, out)
		if err != nil {
			t.Fatal(err)
		}
		var e struct {
			Error struct {
				Message string `json:"message"`
				Type    string `json:"type"`
				Code    string `json:"code"`
			} `json:"error"`
		}
		if err := json.Unmarshal(body, &e); err != nil {
			t.Fatal(err)
		}
		return &APIError{Status: status, Message: e.Error.Message, Type: e.Error.Type, Code: e.Error.Code}
	}

	status, out := send("AIza-wrong", "hi", false)
	if e := errorOf(status, out); status != 400 || e.Code != "API_KEY_INVALID" || strings.Contains(e.Message, "AIza") {
		t.Errorf("wrong key: %d %+v", status, e)
	}
	status, out = send("AIza-right", "one two three four five six", false)
	if e := errorOf(status, out); status != 400 || e.Code != "context_length_exceeded" {
		t.Errorf("long prompt: %d %+v", status, e)
	}
	fake.FailNext(429)
	status, out = send("AIza-right", "hi", false)
	if e := errorOf(status, out); status != 429 || e.Type != "rate_limit_error" || e.Code != "RESOURCE_EXHAUSTED" {
		t.Errorf("rate limited: %d %+v", status, e)
	}
	for _, brk := range []struct{ status, want string }{{"UNAVAILABLE", "told to break this stream"}, {"", "ended before the answer was complete"}} {
		fake.BreakNextStream(brk.status)
		status, out = send("AIza-right", "a b c", true)
		if status != 200 {
			t.Fatalf("stream: %d %s", status, out)
		}
		sse, _ := tr.Stream(ChatCompletions, StreamOptions{IncludeUsage: true}).Next(out, true)
		if !bytes.Contains(sse, []byte(brk.want)) || !bytes.HasSuffix(sse, []byte("data: [DONE]\n\n")) {
			t.Errorf("broken stream (%q) reached the client as %q", brk.status, sse)
		}
	}
}

// FuzzGeminiStream feeds arbitrary bytes, split at an arbitrary offset: translation must
// not panic, must end with exactly one [DONE], must emit only data lines carrying JSON,
// and must not depend on where the input was split.
func FuzzGeminiStream(f *testing.F) {
	paths, err := filepath.Glob(filepath.Join(geminiTestdata, "stream", "*.sse"))
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
	f.Add([]byte("data: {\"candidates\":[{\"index\":-1}]}\n\n"), uint(3))
	f.Add([]byte("data: {\"candidates\":[{\"finishReason\":\"STOP\"}]}"), uint(0))
	f.Add([]byte("data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"\\ud800\",\"functionCall\":{\"name\":\"\\u2028\",\"args\":{}}}]}}]}\r\n\r\n"), uint(9))
	f.Add([]byte("\r\r\n\n:\ndata\ndata:\n\n"), uint(2))
	f.Fuzz(func(t *testing.T, in []byte, split uint) {
		k := int(split % uint(len(in)+1))
		whole, usage := geminiRunStream(false, true, in)
		parts, partsUsage := geminiRunStream(false, true, in[:k], in[k:])
		if !bytes.Equal(whole, parts) || usage != partsUsage {
			t.Fatalf("split at %d changes the output:\n%s", k, cmp.Diff(string(whole), string(parts)))
		}
		if !bytes.HasSuffix(whole, []byte("data: [DONE]\n\n")) || bytes.Count(whole, []byte("data: [DONE]")) != 1 {
			t.Fatalf("output does not end with exactly one [DONE]:\n%s", geminiTail(whole))
		}
		for _, ev := range bytes.Split(bytes.TrimSuffix(whole, []byte("\n\n")), []byte("\n\n")) {
			payload, ok := bytes.CutPrefix(ev, []byte("data: "))
			if !ok || (!bytes.Equal(payload, []byte("[DONE]")) && !json.Valid(payload)) {
				t.Fatalf("bad output event %q", ev)
			}
		}
	})
}

// FuzzGeminiRequest: any body either translates to a JSON request or is refused with a
// 400 APIError; nothing panics.
func FuzzGeminiRequest(f *testing.F) {
	for _, p := range fixtures(f, geminiTestdata, "request", ".json") {
		var fx geminiRequestFixture
		b, err := os.ReadFile(p)
		if err == nil && json.Unmarshal(b, &fx) == nil && fx.endpoint() == ChatCompletions {
			f.Add([]byte(fx.OpenAI))
		}
	}
	f.Add([]byte(`{"messages":[{"role":"assistant","tool_calls":[{"id":"x__thought__","function":{"name":"f","arguments":" "}}]},{"role":"tool","tool_call_id":"x__thought__","content":"{"}]}`))
	f.Add([]byte(`{"messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_schema","json_schema":{"schema":{"anyOf":[{"type":"null"}],"items":true,"properties":{"a":{"$ref":"#"}}}}}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		tg := &Target{Model: "gemini-3-pro-preview", APIKey: "k"}
		up, err := geminiTestTranslator(false).Request(ChatCompletions, body, tg)
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

func BenchmarkGeminiRequest(b *testing.B) {
	for _, name := range []string{"chat_basic", "tool_results"} {
		b.Run(name, func(b *testing.B) {
			var fx geminiRequestFixture
			readFixture(b, filepath.Join(geminiTestdata, "request", name+".json"), &fx)
			tg := fx.target(b)
			tr := geminiTranslator{}
			b.SetBytes(int64(len(fx.OpenAI)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := tr.Request(ChatCompletions, fx.OpenAI, tg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkGeminiResponse(b *testing.B) {
	var fx geminiResponseFixture
	readFixture(b, filepath.Join(geminiTestdata, "response", "function_calls.json"), &fx)
	tr := geminiTranslator{}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := tr.Response(ChatCompletions, 200, fx.Google); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGeminiStreamEvent measures one streamed event (one op) through a started
// stream: the per-token cost of streaming.
func BenchmarkGeminiStreamEvent(b *testing.B) {
	for _, bc := range []struct{ name, event string }{
		{"text", "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\" the quick brown fox\"}],\"role\":\"model\"},\"index\":0}],\"usageMetadata\":{\"promptTokenCount\":8,\"candidatesTokenCount\":10,\"totalTokenCount\":18},\"modelVersion\":\"gemini-2.5-flash\",\"responseId\":\"r1\"}\r\n\r\n"},
		{"function_call", "data: {\"candidates\":[{\"content\":{\"parts\":[{\"functionCall\":{\"name\":\"get_weather\",\"args\":{\"location\":\"Boston, MA\"}}}],\"role\":\"model\"},\"index\":0}],\"modelVersion\":\"gemini-2.5-flash\",\"responseId\":\"r1\"}\r\n\r\n"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s := newGeminiStream(geminiTranslator{}, true)
			ev := []byte(bc.event)
			if _, err := s.Next(ev, false); err != nil {
				b.Fatal(err)
			}
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

// TestGeminiRegistered: the gemini/ and vertex_ai/ prefixes resolve to this translator.
func TestGeminiRegistered(t *testing.T) {
	for name, want := range map[string]*Spec{"gemini": geminiSpec, "vertex_ai": vertexSpec} {
		spec, ok := Lookup(name)
		if !ok || spec != want {
			t.Errorf("translate has no %q provider: add %q: %s to the registry in providers.go", name, name, map[string]string{"gemini": "geminiSpec", "vertex_ai": "vertexSpec"}[name])
		}
	}
}
