package translate

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
	"github.com/google/go-cmp/cmp"
	"github.com/openai/openai-go/v3"

	"github.com/tollgate-dev/tollgate/translate/providertest"
)

// bedrockTestTime is the fixed signing time and "created" of every golden output.
var bedrockTestTime = time.Unix(1750000000, 0).UTC()

// bedrockTestTranslator signs at a fixed time and names completions with a fixed ID, so
// outputs and signatures are reproducible.
var bedrockTestTranslator = bedrockTranslator{
	now:   func() time.Time { return bedrockTestTime },
	newID: func() string { return "chatcmpl-bedrock-test" },
}

// The access key of AWS's own SigV4 documentation examples.
const (
	bedrockTestKeyID  = "AKIDEXAMPLE"
	bedrockTestSecret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
)

const bedrockTestdata = "testdata/bedrock"

// bedrockTargetSpec describes a deployment in a request fixture.
type bedrockTargetSpec struct {
	Base         string            `json:"base"`
	Model        string            `json:"model"`
	Region       string            `json:"region"`
	SessionToken string            `json:"session_token"`
	APIKey       string            `json:"api_key"`
	NoAWS        bool              `json:"no_aws"` // no access key: the API key alone
	ExtraHeaders map[string]string `json:"extra_headers"`
}

func (s bedrockTargetSpec) target(t testing.TB) *Target {
	t.Helper()
	tg := &Target{Provider: "bedrock", Model: s.Model, APIKey: s.APIKey, ExtraHeaders: s.ExtraHeaders}
	region := s.Region
	if region == "" {
		region = "us-east-1"
	}
	if s.Base != "" {
		u, err := url.Parse(s.Base)
		if err != nil {
			t.Fatal(err)
		}
		tg.Base = u
	}
	tg.AWS = &AWSCredentials{Region: region}
	if !s.NoAWS {
		tg.AWS.AccessKeyID, tg.AWS.SecretAccessKey, tg.AWS.SessionToken = bedrockTestKeyID, bedrockTestSecret, s.SessionToken
	}
	return tg
}

type bedrockRequestFixture struct {
	Source   string            `json:"source"`
	Endpoint string            `json:"endpoint"`
	Target   bedrockTargetSpec `json:"target"`
	OpenAI   json.RawMessage   `json:"openai"`
}

func (fx bedrockRequestFixture) endpoint() Endpoint {
	if fx.Endpoint == Embeddings.String() {
		return Embeddings
	}
	return ChatCompletions
}

func TestBedrockRequestGolden(t *testing.T) {
	for _, path := range fixtures(t, bedrockTestdata, "request", ".json") {
		t.Run(filepath.Base(path), func(t *testing.T) {
			var fx bedrockRequestFixture
			readFixture(t, path, &fx)
			if fx.Source == "" {
				t.Fatal("fixture names no source")
			}
			up, err := bedrockTestTranslator.Request(fx.endpoint(), fx.OpenAI, fx.Target.target(t))
			if err != nil {
				t.Fatal(err)
			}
			out := struct {
				Path      string          `json:"path"`
				Authority string          `json:"authority"`
				Headers   []Header        `json:"headers"`
				Body      json.RawMessage `json:"body"`
			}{up.Path, up.Authority, up.Headers, up.Body}
			got, err := json.MarshalIndent(out, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, strings.TrimSuffix(path, ".json")+".golden.json", append(got, '\n'))
		})
	}
}

type bedrockResponseFixture struct {
	Source   string          `json:"source"`
	Status   int             `json:"status"`
	Endpoint string          `json:"endpoint"`
	Bedrock  json.RawMessage `json:"bedrock"`
	Raw      string          `json:"raw"` // a body that is not JSON
}

func (fx bedrockResponseFixture) body() []byte {
	if fx.Raw != "" {
		return []byte(fx.Raw)
	}
	return fx.Bedrock
}

func (fx bedrockResponseFixture) endpoint() Endpoint {
	if fx.Endpoint == Embeddings.String() {
		return Embeddings
	}
	return ChatCompletions
}

func TestBedrockResponseGolden(t *testing.T) {
	for _, path := range fixtures(t, bedrockTestdata, "response", ".json") {
		t.Run(filepath.Base(path), func(t *testing.T) {
			var fx bedrockResponseFixture
			readFixture(t, path, &fx)
			if fx.Source == "" {
				t.Fatal("fixture names no source")
			}
			body, usage, err := bedrockTestTranslator.Response(fx.endpoint(), fx.Status, fx.body())
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

// bedrockStreamFixture lists a stream's frames as their documented JSON; the test
// encodes them with the AWS SDK's eventstream encoder.
type bedrockStreamFixture struct {
	Source string `json:"source"`
	Frames []struct {
		Event        string          `json:"event"`
		Exception    string          `json:"exception"`
		ErrorCode    string          `json:"error_code"`
		ErrorMessage string          `json:"error_message"`
		Payload      json.RawMessage `json:"payload"`
	} `json:"frames"`
	Truncate int `json:"truncate"` // bytes cut from the end: a stream cut mid-frame
}

// bedrockEncodeStream reads a stream fixture and returns the ConverseStream body.
func bedrockEncodeStream(t testing.TB, path string) []byte {
	t.Helper()
	var fx bedrockStreamFixture
	readFixture(t, path, &fx)
	if fx.Source == "" {
		t.Fatalf("%s names no source", path)
	}
	var buf bytes.Buffer
	enc := eventstream.NewEncoder()
	for _, f := range fx.Frames {
		str := func(name, v string) eventstream.Header {
			return eventstream.Header{Name: name, Value: eventstream.StringValue(v)}
		}
		var hs eventstream.Headers
		switch {
		case f.Event != "":
			hs = eventstream.Headers{str(":event-type", f.Event), str(":content-type", "application/json"), str(":message-type", "event")}
		case f.Exception != "":
			hs = eventstream.Headers{str(":exception-type", f.Exception), str(":content-type", "application/json"), str(":message-type", "exception")}
		default:
			hs = eventstream.Headers{str(":error-code", f.ErrorCode), str(":error-message", f.ErrorMessage), str(":message-type", "error")}
		}
		if err := enc.Encode(&buf, eventstream.Message{Headers: hs, Payload: f.Payload}); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()[:buf.Len()-fx.Truncate]
}

// bedrockRunStream feeds parts to a fresh stream, the last with end=true.
func bedrockRunStream(tr bedrockTranslator, includeUsage bool, parts ...[]byte) ([]byte, Usage) {
	s := newBedrockStream(tr, includeUsage)
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

func TestBedrockStreamGolden(t *testing.T) {
	for _, path := range fixtures(t, bedrockTestdata, "stream", ".json") {
		t.Run(filepath.Base(path), func(t *testing.T) {
			out, usage := bedrockRunStream(bedrockTestTranslator, true, bedrockEncodeStream(t, path))
			u, err := json.Marshal(usage)
			if err != nil {
				t.Fatal(err)
			}
			got := append(out, ": tollgate usage "...)
			got = append(append(got, u...), '\n')
			checkGolden(t, strings.TrimSuffix(path, ".json")+".golden", got)
		})
	}
}

// TestBedrockStreamChunkBoundaries feeds every stream fixture split at every byte
// offset, and one byte at a time, with and without the usage chunk: the output must be
// the unsplit translation.
func TestBedrockStreamChunkBoundaries(t *testing.T) {
	for _, path := range fixtures(t, bedrockTestdata, "stream", ".json") {
		t.Run(filepath.Base(path), func(t *testing.T) {
			in := bedrockEncodeStream(t, path)
			for _, includeUsage := range []bool{true, false} {
				t.Run(fmt.Sprintf("include_usage=%t", includeUsage), func(t *testing.T) {
					want, wantUsage := bedrockRunStream(bedrockTestTranslator, includeUsage, in)
					for k := 0; k <= len(in); k++ {
						got, gotUsage := bedrockRunStream(bedrockTestTranslator, includeUsage, in[:k], in[k:])
						if !bytes.Equal(got, want) || gotUsage != wantUsage {
							t.Fatalf("split at %d: (-want +got):\n%s", k, cmp.Diff(string(want), string(got)))
						}
					}
					bytewise := make([][]byte, 0, len(in)+1)
					for i := range in {
						bytewise = append(bytewise, in[i:i+1])
					}
					got, gotUsage := bedrockRunStream(bedrockTestTranslator, includeUsage, append(bytewise, nil)...)
					if diff := cmp.Diff(string(want), string(got)); diff != "" || gotUsage != wantUsage {
						t.Fatalf("byte by byte (-want +got):\n%s\nusage %+v, want %+v", diff, gotUsage, wantUsage)
					}
				})
			}
		})
	}
}

// TestBedrockStreamForwardsEachEvent: every complete frame is translated by the Next call
// that completes it, not held back for later ones.
func TestBedrockStreamForwardsEachEvent(t *testing.T) {
	in := bedrockEncodeStream(t, filepath.Join(bedrockTestdata, "stream", "text.json"))
	s := newBedrockStream(bedrockTestTranslator, true)
	first := binary.BigEndian.Uint32(in) // messageStart's frame, then the first delta's
	second := first + binary.BigEndian.Uint32(in[first:])
	out, _ := s.Next(in[:second], false)
	if !strings.Contains(string(out), `"delta":{"content":"Hello"}`) {
		t.Errorf("after the first text delta's frame, output is %q", out)
	}
}

func TestBedrockStreamIncludeUsage(t *testing.T) {
	in := bedrockEncodeStream(t, filepath.Join(bedrockTestdata, "stream", "text.json"))
	with, _ := bedrockRunStream(bedrockTestTranslator, true, in)
	without, usage := bedrockRunStream(bedrockTestTranslator, false, in)
	usageChunk := `data: {"id":"chatcmpl-bedrock-test","object":"chat.completion.chunk","created":1750000000,"model":"","choices":[],"usage":{"prompt_tokens":25,"completion_tokens":15,"total_tokens":40,"prompt_tokens_details":{"cached_tokens":0}}}` + "\n\n"
	if diff := cmp.Diff(string(with), strings.Replace(string(without), "data: [DONE]", usageChunk+"data: [DONE]", 1)); diff != "" {
		t.Errorf("the usage chunk is the only difference (-with +without):\n%s", diff)
	}
	if want := (Usage{PromptTokens: 25, CompletionTokens: 15, Known: true}); usage != want {
		t.Errorf("usage without the chunk = %+v, want %+v", usage, want)
	}
}

// TestBedrockStreamFailures checks that every way an upstream stream can go wrong ends
// the client's stream with an error event and [DONE].
func TestBedrockStreamFailures(t *testing.T) {
	start := bedrockEncodeStream(t, filepath.Join(bedrockTestdata, "stream", "cut.json"))
	frame := func(payload string) []byte {
		var buf bytes.Buffer
		eventstream.NewEncoder().Encode(&buf, eventstream.Message{Headers: eventstream.Headers{
			{Name: ":event-type", Value: eventstream.StringValue("contentBlockDelta")},
			{Name: ":message-type", Value: eventstream.StringValue("event")},
		}, Payload: []byte(payload)})
		return buf.Bytes()
	}
	corrupt := frame(`{"contentBlockIndex":0,"delta":{"text":"x"}}`)
	corrupt[len(corrupt)-6] ^= 0xff // payload byte: the message CRC no longer matches
	huge := []byte{0x7f, 0, 0, 0, 0, 0, 0, 0}
	tiny := []byte{0, 0, 0, 4, 0, 0, 0, 0}
	streamErr := func(msg string) string {
		return string(StreamError(&APIError{Status: 502, Type: "api_error", Code: "stream_interrupted", Message: msg}))
	}
	unreadable := streamErr("Bedrock sent a stream frame tollgate could not read")
	tests := []struct {
		name    string
		in      []byte
		wantEnd string // the output's suffix
	}{
		{"empty stream", nil, streamErr("the Bedrock stream ended before the message was complete; retry the request")},
		{"bad message CRC", append(append([]byte{}, start...), corrupt...), unreadable},
		{"frame longer than allowed", append(append([]byte{}, start...), huge...), unreadable},
		{"frame shorter than a prelude", append(append([]byte{}, start...), tiny...), unreadable},
		{"frame without a message type", append(append([]byte{}, start...), func() []byte {
			var buf bytes.Buffer
			eventstream.NewEncoder().Encode(&buf, eventstream.Message{Payload: []byte(`{}`)})
			return buf.Bytes()
		}()...), streamErr("Bedrock sent a stream frame without a message type")},
		{"payload not JSON", append(append([]byte{}, start...), frame(`{"delta":`)...), streamErr("Bedrock sent a stream event tollgate could not read")},
		{"unknown exception without a message", append(append([]byte{}, start...), bedrockExceptionFrame("SomethingNewException", `{}`)...),
			string(StreamError(&APIError{Status: 500, Type: "api_error", Code: "SomethingNewException", Message: "Amazon Bedrock reported SomethingNewException in the stream"}))},
		{"access denied", bedrockExceptionFrame("AccessDeniedException", `{"message":"User: arn:aws:iam::123456789012:user/x is not authorized"}`),
			string(StreamError(&APIError{Status: 403, Type: "permission_error", Code: "AccessDeniedException",
				Message: "Amazon Bedrock rejected the AWS credentials configured for this deployment (AccessDeniedException): check its aws_access_key_id, aws_secret_access_key, aws_session_token and region, and that they may invoke this model"}))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, _ := bedrockRunStream(bedrockTestTranslator, true, tc.in)
			if !strings.HasSuffix(string(out), tc.wantEnd) {
				t.Errorf("output ends\n%q\nwant suffix\n%q", bedrockTail(out), tc.wantEnd)
			}
			if n := strings.Count(string(out), "data: [DONE]"); n != 1 {
				t.Errorf("[DONE] sent %d times", n)
			}
		})
	}
}

func bedrockExceptionFrame(exception, payload string) []byte {
	var buf bytes.Buffer
	eventstream.NewEncoder().Encode(&buf, eventstream.Message{Headers: eventstream.Headers{
		{Name: ":exception-type", Value: eventstream.StringValue(exception)},
		{Name: ":message-type", Value: eventstream.StringValue("exception")},
	}, Payload: []byte(payload)})
	return buf.Bytes()
}

func bedrockTail(b []byte) string {
	if len(b) > 300 {
		return "..." + string(b[len(b)-300:])
	}
	return string(b)
}

func TestBedrockStreamIgnoresInputAfterDone(t *testing.T) {
	in := bedrockEncodeStream(t, filepath.Join(bedrockTestdata, "stream", "text.json"))
	s := newBedrockStream(bedrockTestTranslator, true)
	if out, err := s.Next(in, false); err != nil || !bytes.HasSuffix(out, []byte("data: [DONE]\n\n")) {
		t.Fatalf("Next = %q, %v", bedrockTail(out), err)
	}
	for _, end := range []bool{false, true} {
		if out, err := s.Next(in, end); err != nil || len(out) != 0 {
			t.Errorf("Next after metadata (end=%v) = %q, %v; want nothing", end, out, err)
		}
	}
}

// TestBedrockOutputReadsWithOpenAISDK decodes every translated response and stream with
// the official openai-go SDK, as a client would.
func TestBedrockOutputReadsWithOpenAISDK(t *testing.T) {
	t.Run("responses", func(t *testing.T) {
		for _, path := range fixtures(t, bedrockTestdata, "response", ".json") {
			var fx bedrockResponseFixture
			readFixture(t, path, &fx)
			body, _, err := bedrockTestTranslator.Response(fx.endpoint(), fx.Status, fx.body())
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
				var resp openai.CreateEmbeddingResponse
				if err := json.Unmarshal(body, &resp); err != nil || len(resp.Data) == 0 || len(resp.Data[0].Embedding) == 0 {
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
			"text.json":                   {content: "Hello! How can I help \"you\" today?\n", finish: "stop"},
			"tool_use.json":               {content: "Let me look that up.", finish: "tool_calls", tools: []string{`top_song({"sign": "WZPZ"})`, `get_time({})`}},
			"thinking.json":               {content: "It is 4077.", finish: "stop"},
			"json_mode.json":              {content: `{"name": "science fair", "date": "Friday"}`, finish: "stop"},
			"cache_usage.json":            {content: "Clause 5 covers", finish: "length"},
			"exception_throttling.json":   {content: "Hello", errText: "Too many tokens"},
			"exception_context.json":      {errText: "Input is too long"},
			"exception_model_stream.json": {errText: "while streaming"},
			"cut.json":                    {content: "Hello", errText: "ended before the message was complete"},
			"cut_mid_frame.json":          {content: "Hello", errText: "ended before the message was complete"},
			"no_metadata.json":            {content: "Hello", finish: "stop", errText: "ended before the message was complete"},
			"error_message.json":          {errText: "An internal error occurred."},
		}
		for _, path := range fixtures(t, bedrockTestdata, "stream", ".json") {
			name := filepath.Base(path)
			w, ok := want[name]
			if !ok {
				t.Errorf("no expectation for %s", name)
				continue
			}
			out, _ := bedrockRunStream(bedrockTestTranslator, true, bedrockEncodeStream(t, path))
			checkSDKStream(t, name, out, w)
		}
	})
}

func TestBedrockRequestErrors(t *testing.T) {
	const user = `"messages":[{"role":"user","content":"hi"}]`
	const tools = `"tools":[{"type":"function","function":{"name":"a"}}]`
	const toolTurns = `"messages":[{"role":"user","content":"hi"},{"role":"assistant","tool_calls":[{"id":"c1","type":"function","function":{"name":"a","arguments":"{}"}}]},{"role":"tool","tool_call_id":"c1","content":"x"}]`
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
		{"not an object", `[1]`, invalid("", "The request body is not a JSON object: json: cannot unmarshal array into Go value of type map[string]json.RawMessage")},
		{"no messages", `{"model":"m"}`, invalid("messages", "'messages' must contain at least one message")},
		{"only system", `{"messages":[{"role":"system","content":"be brief"}]}`, invalid("messages", "'messages' must contain a user message besides system messages")},
		{"starts with assistant", `{"messages":[{"role":"assistant","content":"hello"},{"role":"user","content":"hi"}]}`, invalid("messages", "Bedrock requires the conversation to start with a user message (system messages aside)")},
		{"n", `{` + user + `,"n":2}`, unsupported("n", "Unsupported parameter: 'n' must be 1: Bedrock returns one choice per request")},
		{"logprobs", `{` + user + `,"logprobs":true}`, unsupported("logprobs", "Unsupported parameter: 'logprobs' is not available from Bedrock")},
		{"top_logprobs", `{` + user + `,"top_logprobs":2}`, unsupported("top_logprobs", "Unsupported parameter: 'top_logprobs' is not available from Bedrock")},
		{"presence_penalty", `{` + user + `,"presence_penalty":0.5}`, unsupported("presence_penalty", "Unsupported parameter: 'presence_penalty' is not supported by Bedrock's Converse API")},
		{"logit_bias", `{` + user + `,"logit_bias":{"50256":-100}}`, unsupported("logit_bias", "Unsupported parameter: 'logit_bias' is not supported by Bedrock's Converse API")},
		{"seed", `{` + user + `,"seed":7}`, unsupported("seed", "Unsupported parameter: 'seed' is not supported by Bedrock's Converse API")},
		{"top_k", `{` + user + `,"top_k":40}`, unsupported("top_k", "Unsupported parameter: 'top_k' is not supported by Bedrock's Converse API")},
		{"audio modality", `{` + user + `,"modalities":["text","audio"]}`, unsupported("modalities", `Unsupported parameter: 'modalities' may only be ["text"]: Bedrock's Converse API answers in text`)},
		{"functions", `{` + user + `,"functions":[{"name":"f"}]}`, unsupported("functions", "Unsupported parameter: 'functions' is deprecated; use 'tools' and 'tool_choice'")},
		{"unknown parameter", `{` + user + `,"temprature":0.2}`, invalid("temprature", "Unrecognized request argument supplied: temprature")},
		{"first of several problems by name", `{` + user + `,"seed":1,"n":3}`, unsupported("n", "Unsupported parameter: 'n' must be 1: Bedrock returns one choice per request")},
		{"max_tokens zero", `{` + user + `,"max_tokens":0}`, invalid("max_tokens", "max_tokens must be at least 1, got 0")},
		{"max_tokens not a number", `{` + user + `,"max_tokens":"many"}`, invalid("max_tokens", "Invalid value for 'max_tokens': json: cannot unmarshal string into Go value of type int")},
		{"max_tokens under thinking budget", `{` + user + `,"max_tokens":1000,"reasoning_effort":"medium"}`, invalid("max_tokens", "max_tokens (1000) must be greater than the thinking budget (2048 tokens)")},
		{"bad reasoning_effort", `{` + user + `,"reasoning_effort":"max"}`, invalid("reasoning_effort", `Invalid value for 'reasoning_effort': "max" (use low, medium or high)`)},
		{"reasoning_effort and thinking", `{` + user + `,"reasoning_effort":"low","thinking":{"type":"enabled","budget_tokens":1024}}`, invalid("reasoning_effort", "Set either 'reasoning_effort' or 'thinking', not both")},
		{"thinking not an object", `{` + user + `,"thinking":true}`, invalid("thinking", "Invalid value for 'thinking': expected an object")},
		{"unknown role", `{"messages":[{"role":"robot","content":"hi"}]}`, invalid("messages[0].role", `Invalid value for 'messages[0].role': "robot"`)},
		{"function role", `{"messages":[{"role":"user","content":"hi"},{"role":"function","name":"f","content":"x"}]}`, unsupported("messages[1].role", "Unsupported parameter: 'messages[1].role' 'function' is deprecated; answer tool calls with role 'tool'")},
		{"empty user content", `{"messages":[{"role":"user","content":""}]}`, invalid("messages[0].content", "messages[0]: a user message must have non-empty content")},
		{"image in system", `{"messages":[{"role":"system","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]},{"role":"user","content":"hi"}]}`, invalid("messages[0].content[0]", `messages[0].content[0]: content part type "image_url" is not allowed here`)},
		{"https image", `{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://example.com/cat.png"}}]}]}`,
			unsupported("messages[0].content[0].image_url.url", "Unsupported parameter: 'messages[0].content[0].image_url.url' is an http(s) URL: Bedrock's Converse API accepts images only as bytes; send the image as a base64 data URL (data:image/png;base64,...)")},
		{"ftp image", `{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"ftp://x/y.png"}}]}]}`, invalid("messages[0].content[0].image_url.url", "messages[0].content[0].image_url.url must be a base64 data URL")},
		{"svg image", `{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/svg+xml;base64,PHN2Zz4="}}]}]}`, unsupported("messages[0].content[0].image_url.url", `Unsupported parameter: 'messages[0].content[0].image_url.url' has media type "image/svg+xml": Bedrock accepts png, jpeg, gif and webp images`)},
		{"audio input", `{"messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"AAAA","format":"wav"}}]}]}`, unsupported("messages[0].content[0]", "Unsupported parameter: 'messages[0].content[0]' (input_audio) cannot be sent to Bedrock's Converse API")},
		{"file id", `{"messages":[{"role":"user","content":[{"type":"file","file":{"file_id":"file-abc"}}]}]}`, unsupported("messages[0].content[0].file", "Unsupported parameter: 'messages[0].content[0].file' needs 'file_data': OpenAI file IDs cannot be sent to Bedrock")},
		{"zip file", `{"messages":[{"role":"user","content":[{"type":"file","file":{"file_data":"data:application/zip;base64,UEsDBA=="}}]}]}`, unsupported("messages[0].content[0].file.file_data", `Unsupported parameter: 'messages[0].content[0].file.file_data' has media type "application/zip", which Bedrock does not accept as a document`)},
		{"tool without id", `{"messages":[{"role":"user","content":"hi"},{"role":"tool","content":"x"}]}`, invalid("messages[1].tool_call_id", "messages[1].tool_call_id is required for a tool message")},
		{"tool call arguments not an object", `{"messages":[{"role":"user","content":"hi"},{"role":"assistant","tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"[1]"}}]}]}`, invalid("messages[1].tool_calls[0].function.arguments", "messages[1].tool_calls[0].function.arguments must be a JSON object: Bedrock tool input is an object")},
		{"tool call without name", `{"messages":[{"role":"user","content":"hi"},{"role":"assistant","tool_calls":[{"id":"c1","type":"function","function":{"arguments":"{}"}}]}]}`, invalid("messages[1].tool_calls[0]", "messages[1].tool_calls[0] needs an 'id' and a 'function.name'")},
		{"assistant function_call", `{"messages":[{"role":"user","content":"hi"},{"role":"assistant","function_call":{"name":"f","arguments":"{}"}}]}`, unsupported("messages[1].function_call", "Unsupported parameter: 'messages[1].function_call' is deprecated; use 'tool_calls'")},
		{"bad thinking block", `{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"x","thinking_blocks":[{"type":"text"}]}]}`, invalid("messages[1].thinking_blocks[0].type", "messages[1].thinking_blocks[0].type must be thinking or redacted_thinking")},
		{"custom tool", `{` + user + `,"tools":[{"type":"custom","custom":{"name":"x"}}]}`, unsupported("tools[0].type", `Unsupported parameter: 'tools[0].type' "custom": only function tools can be sent to Bedrock`)},
		{"tool without name", `{` + user + `,"tools":[{"type":"function","function":{}}]}`, invalid("tools[0].function.name", "tools[0].function.name is required")},
		{"tool_choice without tools", `{` + user + `,"tool_choice":"auto"}`, invalid("tool_choice", "'tool_choice' is only allowed when 'tools' are specified")},
		{"tool_choice unknown name", `{` + user + `,` + tools + `,"tool_choice":{"type":"function","function":{"name":"b"}}}`, invalid("tool_choice", `tool_choice names function "b", which is not in 'tools'`)},
		{"tool_choice bad string", `{` + user + `,` + tools + `,"tool_choice":"sometimes"}`, invalid("tool_choice", `Invalid value for 'tool_choice': "sometimes"`)},
		{"tool_choice allowed_tools", `{` + user + `,` + tools + `,"tool_choice":{"type":"allowed_tools"}}`, unsupported("tool_choice", `Unsupported parameter: 'tool_choice' of type "allowed_tools" cannot be sent to Bedrock`)},
		{"parallel_tool_calls false", `{` + user + `,` + tools + `,"parallel_tool_calls":false}`, unsupported("parallel_tool_calls", "Unsupported parameter: 'parallel_tool_calls' cannot be false: Bedrock's Converse API has no way to limit a model to one tool call")},
		{"tool history without tools", `{` + toolTurns + `}`, invalid("tools", "Bedrock requires 'tools' when the conversation contains tool calls or tool results: send the tools with every request")},
		{"tool_choice none with tool history", `{` + toolTurns + `,` + tools + `,"tool_choice":"none"}`, unsupported("tool_choice", "Unsupported parameter: 'tool_choice' 'none' cannot be sent to Bedrock in a conversation that has tool calls: Converse then requires the tools, and cannot forbid calling them")},
		{"response_format with tools", `{` + user + `,` + tools + `,"response_format":{"type":"json_object"}}`, unsupported("response_format", "Unsupported parameter: 'response_format' cannot be combined with 'tools' for Bedrock models: tollgate serves JSON output through a forced tool")},
		{"response_format array schema", `{` + user + `,"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{"type":"array"}}}}`, unsupported("response_format.json_schema.schema", `Unsupported parameter: 'response_format.json_schema.schema' must describe an object ("type": "object"): Bedrock returns structured output as tool input, which is an object`)},
		{"response_format unknown", `{` + user + `,"response_format":{"type":"yaml"}}`, invalid("response_format", `Invalid value for 'response_format.type': "yaml"`)},
	}
	tg := bedrockTargetSpec{Model: "anthropic.claude-3-haiku-20240307-v1:0"}.target(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			up, err := bedrockTestTranslator.Request(ChatCompletions, []byte(tc.body), tg)
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

// TestBedrockToolChoiceNone: "none" without tool history sends no tools at all, which is
// how Converse is told not to call any.
func TestBedrockToolChoiceNone(t *testing.T) {
	body := `{"messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"a"}}],"tool_choice":"none"}`
	up, err := bedrockTestTranslator.Request(ChatCompletions, []byte(body), bedrockTargetSpec{Model: "m"}.target(t))
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"messages":[{"role":"user","content":[{"text":"hi"}]}]}`; string(up.Body) != want {
		t.Errorf("body = %s, want %s", up.Body, want)
	}
}

func TestBedrockEmbeddingRequestErrors(t *testing.T) {
	tests := []struct {
		name, model, body string
		want              *APIError
	}{
		{"titan with two inputs", "amazon.titan-embed-text-v2:0", `{"input":["a","b"]}`,
			&APIError{Status: 400, Type: "invalid_request_error", Param: "input", Code: "unsupported_parameter", Message: "Unsupported parameter: 'input' must be one string for Amazon Titan embedding models, which embed one text per request"}},
		{"token arrays", "cohere.embed-english-v3", `{"input":[[1,2,3]]}`,
			&APIError{Status: 400, Type: "invalid_request_error", Param: "input", Code: "unsupported_parameter", Message: "Unsupported parameter: 'input' must be a string or an array of strings: token arrays cannot be sent to Bedrock"}},
		{"no input", "cohere.embed-english-v3", `{"model":"x"}`,
			&APIError{Status: 400, Type: "invalid_request_error", Param: "input", Message: "'input' is required"}},
		{"empty input", "cohere.embed-english-v3", `{"input":[]}`,
			&APIError{Status: 400, Type: "invalid_request_error", Param: "input", Message: "'input' must not be empty"}},
		{"cohere dimensions", "cohere.embed-english-v3", `{"input":"a","dimensions":256}`,
			&APIError{Status: 400, Type: "invalid_request_error", Param: "dimensions", Code: "unsupported_parameter", Message: "Unsupported parameter: 'dimensions' is not supported for Cohere Embed models on Bedrock"}},
		{"bad encoding_format", "amazon.titan-embed-text-v2:0", `{"input":"a","encoding_format":"int8"}`,
			&APIError{Status: 400, Type: "invalid_request_error", Param: "encoding_format", Message: `Invalid value for 'encoding_format': "int8" (use float or base64)`}},
		{"chat model", "anthropic.claude-3-haiku-20240307-v1:0", `{"input":"a"}`,
			&APIError{Status: 400, Type: "invalid_request_error", Param: "model", Code: "unsupported_model", Message: `bedrock embeddings support Amazon Titan (amazon.titan-embed-*) and Cohere Embed (cohere.embed-*) models, not "anthropic.claude-3-haiku-20240307-v1:0"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			up, err := bedrockTestTranslator.Request(Embeddings, []byte(tc.body), bedrockTargetSpec{Model: tc.model}.target(t))
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

func TestBedrockRequestEndpoint(t *testing.T) {
	_, err := bedrockTestTranslator.Request(Completions, []byte(`{"prompt":"x"}`), bedrockTargetSpec{Model: "m"}.target(t))
	want := &APIError{Status: 400, Type: "invalid_request_error", Code: "unsupported_endpoint", Message: "bedrock deployments serve chat/completions and embeddings, not completions"}
	var got *APIError
	if !errors.As(err, &got) {
		t.Fatalf("err = %v", err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// TestBedrockDeploymentFaults: a deployment without usable credentials or region is a
// configuration fault, reported as a plain error (a 500 the gateway logs), never as a
// client error, and never quoting a secret.
func TestBedrockDeploymentFaults(t *testing.T) {
	body := []byte(`{"messages":[{"role":"user","content":"hi"}]}`)
	tests := []struct {
		name   string
		target *Target
		want   string
	}{
		{"no credentials", &Target{Model: "m", AWS: &AWSCredentials{Region: "us-east-1"}}, "no AWS credentials"},
		{"no AWS at all", &Target{Model: "m"}, "AWS region \"\" is not a region name"},
		{"no secret", &Target{Model: "m", AWS: &AWSCredentials{Region: "us-east-1", AccessKeyID: "AKID"}}, "no aws_secret_access_key"},
		{"no region with api_base", &Target{Model: "m", Base: &url.URL{Scheme: "https", Host: "proxy"}, AWS: &AWSCredentials{AccessKeyID: "AKID", SecretAccessKey: "s3cr3t"}}, "no AWS region to sign for"},
		{"region that is not a host label", &Target{Model: "m", AWS: &AWSCredentials{Region: "evil.com/x", AccessKeyID: "AKID", SecretAccessKey: "s3cr3t"}}, "is not a region name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := bedrockTestTranslator.Request(ChatCompletions, body, tc.target)
			var apiErr *APIError
			if err == nil || errors.As(err, &apiErr) || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("err = %v, want a plain error containing %q", err, tc.want)
			}
		})
	}
}

// TestBedrockRegistered: bedrock/ deployments reach this translator through the
// registry, serving chat completions and embeddings, with no fixed API base (it is the
// region's, BedrockBase) and no api_key required (AWS credentials sign instead).
func TestBedrockRegistered(t *testing.T) {
	spec, ok := Lookup("bedrock")
	if !ok || spec != bedrockSpec {
		t.Fatal(`translate has no "bedrock" provider: add "bedrock": bedrockSpec to the registry in providers.go`)
	}
	if !spec.Serves(ChatCompletions) || !spec.Serves(Embeddings) || spec.Serves(Completions) || spec.DefaultBase != "" || spec.KeyRequired {
		t.Errorf("spec = %+v", spec)
	}
}

func TestBedrockBase(t *testing.T) {
	for region, want := range map[string]string{
		"us-east-1":     "https://bedrock-runtime.us-east-1.amazonaws.com",
		"eu-central-2":  "https://bedrock-runtime.eu-central-2.amazonaws.com",
		"us-gov-west-1": "https://bedrock-runtime.us-gov-west-1.amazonaws.com",
		"":              "",
		"US-EAST-1":     "",
		"a.b":           "",
	} {
		got, err := BedrockBase(region)
		if got != want || (err != nil) != (want == "") {
			t.Errorf("BedrockBase(%q) = %q, %v; want %q", region, got, err, want)
		}
	}
}

// TestBedrockSignatureCoversBody: the signature is over the final body, so a different
// body, time or key signs differently, and the body hash header is the body's.
func TestBedrockSignatureCoversBody(t *testing.T) {
	tg := bedrockTargetSpec{Model: "m"}.target(t)
	sign := func(tr bedrockTranslator, body string, secret string) map[string]string {
		tg.AWS.SecretAccessKey = secret
		up, err := tr.Request(ChatCompletions, []byte(body), tg)
		if err != nil {
			t.Fatal(err)
		}
		hs := map[string]string{}
		for _, h := range up.Headers {
			hs[h.Key] = h.Value
		}
		return hs
	}
	base := sign(bedrockTestTranslator, `{"messages":[{"role":"user","content":"hi"}]}`, bedrockTestSecret)
	later := bedrockTestTranslator
	later.now = func() time.Time { return bedrockTestTime.Add(time.Second) }
	for name, hs := range map[string]map[string]string{
		"body":   sign(bedrockTestTranslator, `{"messages":[{"role":"user","content":"ho"}]}`, bedrockTestSecret),
		"time":   sign(later, `{"messages":[{"role":"user","content":"hi"}]}`, bedrockTestSecret),
		"secret": sign(bedrockTestTranslator, `{"messages":[{"role":"user","content":"hi"}]}`, "other"),
	} {
		if hs["authorization"] == base["authorization"] {
			t.Errorf("a different %s signs the same", name)
		}
	}
	for _, h := range []string{"authorization", "x-amz-date", "x-amz-content-sha256", "x-amz-security-token"} {
		if !slices.Contains(CredentialHeaders, h) {
			t.Errorf("%s is not in CredentialHeaders, so a fallback attempt would carry it", h)
		}
	}
}

// TestBedrockExtraHeaders: extra_headers are sent and signed, but cannot replace the
// headers signing computes.
func TestBedrockExtraHeaders(t *testing.T) {
	tg := bedrockTargetSpec{Model: "m", ExtraHeaders: map[string]string{
		"X-Amzn-Bedrock-GuardrailIdentifier": "gr-1", "Authorization": "Bearer x", "X-Amz-Date": "19700101T000000Z"}}.target(t)
	up, err := bedrockTestTranslator.Request(ChatCompletions, []byte(`{"messages":[{"role":"user","content":"hi"}]}`), tg)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, h := range up.Headers {
		keys = append(keys, h.Key)
	}
	want := []string{"content-type", "x-amzn-bedrock-guardrailidentifier", "x-amz-content-sha256", "x-amz-date", "authorization"}
	if diff := cmp.Diff(want, keys); diff != "" {
		t.Errorf("header names (-want +got):\n%s", diff)
	}
	if auth := up.Headers[len(up.Headers)-1].Value; !strings.Contains(auth, "SignedHeaders=content-length;content-type;host;x-amz-content-sha256;x-amz-date;x-amzn-bedrock-guardrailidentifier,") {
		t.Errorf("authorization %q does not sign the extra header", auth)
	}
}

// TestBedrockAgainstFake sends translated requests over HTTP to the fake Bedrock, which
// verifies their SigV4 signatures with the AWS SDK's signer and the Converse request
// rules, and translates its answers back, as an attempt through the gateway would.
func TestBedrockAgainstFake(t *testing.T) {
	fake, srv := providertest.StartBedrock(t, "eu-west-1", bedrockTestKeyID, bedrockTestSecret)
	fake.SessionToken = "session-token"
	fake.Now = func() time.Time { return bedrockTestTime.Add(time.Minute) }
	base, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	target := func(model string) *Target {
		return &Target{Provider: "bedrock", Model: model, Base: base, AWS: &AWSCredentials{
			Region: "eu-west-1", AccessKeyID: bedrockTestKeyID, SecretAccessKey: bedrockTestSecret, SessionToken: "session-token"}}
	}
	send := func(t *testing.T, up *Upstream, body []byte) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, srv.URL+up.Path, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Host = up.Authority
		for _, h := range up.Headers {
			req.Header.Set(h.Key, h.Value)
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
	arn := "arn:aws:bedrock:eu-west-1:123456789012:inference-profile/eu.anthropic.claude-3-7-sonnet-20250219-v1:0"

	t.Run("converse", func(t *testing.T) {
		up, err := bedrockTestTranslator.Request(ChatCompletions, []byte(`{"model":"x","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"ping pong"}],"max_tokens":50}`), target(arn))
		if err != nil {
			t.Fatal(err)
		}
		resp, body := send(t, up, up.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
		out, usage, err := bedrockTestTranslator.Response(ChatCompletions, resp.StatusCode, body)
		if err != nil {
			t.Fatal(err)
		}
		var cc openai.ChatCompletion
		if err := json.Unmarshal(out, &cc); err != nil {
			t.Fatal(err)
		}
		if got := cc.Choices[0].Message.Content; got != "You said: ping pong" || usage != (Usage{PromptTokens: 8, CompletionTokens: 4, Known: true}) {
			t.Errorf("reply %q, usage %+v", got, usage)
		}
		last := fake.Requests()[len(fake.Requests())-1]
		if want := "/model/arn%3Aaws%3Abedrock%3Aeu-west-1%3A123456789012%3Ainference-profile%2Feu.anthropic.claude-3-7-sonnet-20250219-v1%3A0/converse"; last.Path != want {
			t.Errorf("path %q, want %q", last.Path, want)
		}
	})

	t.Run("tampered body is refused", func(t *testing.T) {
		up, err := bedrockTestTranslator.Request(ChatCompletions, []byte(`{"messages":[{"role":"user","content":"ping"}]}`), target("m"))
		if err != nil {
			t.Fatal(err)
		}
		tampered := bytes.Replace(up.Body, []byte("ping"), []byte("pong"), 1)
		resp, body := send(t, up, tampered)
		out, _, err := bedrockTestTranslator.Response(ChatCompletions, resp.StatusCode, body)
		if err != nil {
			t.Fatal(err)
		}
		want := `{"error":{"message":"Amazon Bedrock rejected the AWS credentials configured for this deployment (HTTP 403): check its aws_access_key_id, aws_secret_access_key, aws_session_token and region, and that they may invoke this model","type":"permission_error","param":null,"code":null}}`
		if resp.StatusCode != 403 || string(out) != want {
			t.Errorf("status %d, translated %s\nwant %s", resp.StatusCode, out, want)
		}
	})

	t.Run("stream with a tool call, fed in small chunks", func(t *testing.T) {
		up, err := bedrockTestTranslator.Request(ChatCompletions, []byte(`{"messages":[{"role":"user","content":"what does get_time say"}],"stream":true,"tools":[{"type":"function","function":{"name":"get_time"}}]}`), target("anthropic.claude-3-haiku-20240307-v1:0"))
		if err != nil {
			t.Fatal(err)
		}
		resp, body := send(t, up, up.Body)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/vnd.amazon.eventstream" {
			t.Fatalf("status %d %s: %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
		s := bedrockTestTranslator.Stream(ChatCompletions, StreamOptions{IncludeUsage: true})
		var out []byte
		for i := 0; i < len(body); i += 7 {
			chunk, err := s.Next(body[i:min(i+7, len(body))], i+7 >= len(body))
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, chunk...)
		}
		content, finish, tools, err := sdkAccumulate(out)
		if err != nil {
			t.Fatal(err)
		}
		if content != "Calling get_time." || finish != "tool_calls" || fmt.Sprint(tools) != `[get_time({"prompt":"what does get_time say"})]` {
			t.Errorf("content %q, finish %q, tools %v", content, finish, tools)
		}
		if u := s.Usage(); !u.Known || u.PromptTokens != 8 {
			t.Errorf("usage %+v", u)
		}
	})

	t.Run("context window", func(t *testing.T) {
		fake.MaxInputTokens = 5
		defer func() { fake.MaxInputTokens = 0 }()
		up, err := bedrockTestTranslator.Request(ChatCompletions, []byte(`{"messages":[{"role":"user","content":"one two three four five six"}]}`), target("m"))
		if err != nil {
			t.Fatal(err)
		}
		resp, body := send(t, up, up.Body)
		out, _, err := bedrockTestTranslator.Response(ChatCompletions, resp.StatusCode, body)
		if err != nil {
			t.Fatal(err)
		}
		var e struct {
			Error openai.ErrorObject `json:"error"`
		}
		if err := json.Unmarshal(out, &e); err != nil || resp.StatusCode != 400 || e.Error.Code != "context_length_exceeded" {
			t.Errorf("status %d, error %s", resp.StatusCode, out)
		}
	})

	t.Run("embeddings", func(t *testing.T) {
		up, err := bedrockTestTranslator.Request(Embeddings, []byte(`{"input":"hello world","model":"e","dimensions":256}`), target("amazon.titan-embed-text-v2:0"))
		if err != nil {
			t.Fatal(err)
		}
		resp, body := send(t, up, up.Body)
		out, usage, err := bedrockTestTranslator.Response(Embeddings, resp.StatusCode, body)
		if err != nil {
			t.Fatal(err)
		}
		var list openai.CreateEmbeddingResponse
		if err := json.Unmarshal(out, &list); err != nil || len(list.Data) != 1 || len(list.Data[0].Embedding) != 256 || usage.PromptTokens != 2 {
			t.Errorf("status %d, %d vectors, usage %+v, %v", resp.StatusCode, len(list.Data), usage, err)
		}
	})
}

// FuzzBedrockStream checks, for any bytes split at any point, that the translation does
// not panic, is the same however the input is split, and always ends the client's stream
// with exactly one [DONE], every event before it being JSON.
func FuzzBedrockStream(f *testing.F) {
	paths, err := filepath.Glob(filepath.Join(bedrockTestdata, "stream", "*.json"))
	if err != nil {
		f.Fatal(err)
	}
	for _, p := range paths {
		if !strings.HasSuffix(p, ".golden.json") {
			in := bedrockEncodeStream(f, p)
			f.Add(in, uint16(len(in)/2))
		}
	}
	f.Add([]byte{0, 0, 0, 16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, uint16(3))
	f.Fuzz(func(t *testing.T, in []byte, split uint16) {
		k := int(split) % (len(in) + 1)
		whole, _ := bedrockRunStream(bedrockTestTranslator, true, in)
		parts, _ := bedrockRunStream(bedrockTestTranslator, true, in[:k], in[k:])
		if !bytes.Equal(whole, parts) {
			t.Fatalf("split at %d changes the output:\n%s", k, cmp.Diff(string(whole), string(parts)))
		}
		events := strings.Split(strings.TrimSuffix(string(whole), "\n\n"), "\n\n")
		if events[len(events)-1] != "data: [DONE]" {
			t.Fatalf("output does not end with [DONE]: %q", bedrockTail(whole))
		}
		for _, ev := range events[:len(events)-1] {
			payload, ok := strings.CutPrefix(ev, "data: ")
			if !ok || !json.Valid([]byte(payload)) {
				t.Fatalf("event %q is not a JSON data event", ev)
			}
		}
	})
}

// FuzzBedrockStreamEvents fuzzes the events inside well-formed frames, which random
// bytes rarely reach past the CRCs: any event type and payload between a messageStart and
// the closing messageStop and metadata must still give one JSON event per chunk and one
// [DONE] (the JSON check rules out a second one).
func FuzzBedrockStreamEvents(f *testing.F) {
	paths, err := filepath.Glob(filepath.Join(bedrockTestdata, "stream", "*.json"))
	if err != nil {
		f.Fatal(err)
	}
	for _, p := range paths {
		var fx bedrockStreamFixture
		readFixture(f, p, &fx)
		for _, fr := range fx.Frames {
			if fr.Event != "" {
				f.Add(fr.Event, []byte(fr.Payload))
			}
		}
	}
	frame := func(event string, payload []byte) []byte {
		var buf bytes.Buffer
		eventstream.NewEncoder().Encode(&buf, eventstream.Message{Headers: eventstream.Headers{
			{Name: ":event-type", Value: eventstream.StringValue(event)},
			{Name: ":message-type", Value: eventstream.StringValue("event")},
		}, Payload: payload})
		return buf.Bytes()
	}
	f.Fuzz(func(t *testing.T, event string, payload []byte) {
		if len(event) > 255 || len(payload) > bedrockMaxFrame/2 {
			return // not encodable as one frame
		}
		var in []byte
		in = append(in, frame("messageStart", []byte(`{"role":"assistant"}`))...)
		in = append(in, frame(event, payload)...)
		in = append(in, frame("messageStop", []byte(`{"stopReason":"end_turn"}`))...)
		in = append(in, frame("metadata", []byte(`{"usage":{"inputTokens":1,"outputTokens":1}}`))...)
		out, _ := bedrockRunStream(bedrockTestTranslator, true, in)
		events := strings.Split(strings.TrimSuffix(string(out), "\n\n"), "\n\n")
		if events[len(events)-1] != "data: [DONE]" {
			t.Fatalf("output does not end with [DONE]: %q", bedrockTail(out))
		}
		for _, ev := range events[:len(events)-1] {
			payload, ok := strings.CutPrefix(ev, "data: ")
			if !ok || !json.Valid([]byte(payload)) {
				t.Fatalf("event %q is not a JSON data event", ev)
			}
		}
	})
}

func BenchmarkBedrockRequest(b *testing.B) {
	var fx bedrockRequestFixture
	readFixture(b, filepath.Join(bedrockTestdata, "request", "tool_results.json"), &fx)
	tg := fx.Target.target(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := bedrockTestTranslator.Request(ChatCompletions, fx.OpenAI, tg); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBedrockResponse(b *testing.B) {
	var fx bedrockResponseFixture
	readFixture(b, filepath.Join(bedrockTestdata, "response", "tool_use.json"), &fx)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := bedrockTestTranslator.Response(ChatCompletions, 200, fx.Bedrock); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBedrockStreamEvent measures one text delta frame: decoded, translated, and
// written as a chunk.
func BenchmarkBedrockStreamEvent(b *testing.B) {
	var buf bytes.Buffer
	eventstream.NewEncoder().Encode(&buf, eventstream.Message{Headers: eventstream.Headers{
		{Name: ":event-type", Value: eventstream.StringValue("contentBlockDelta")},
		{Name: ":content-type", Value: eventstream.StringValue("application/json")},
		{Name: ":message-type", Value: eventstream.StringValue("event")},
	}, Payload: []byte(`{"contentBlockIndex":0,"delta":{"text":"Hello, world! "},"p":"abcdefghijk"}`)})
	frame := buf.Bytes()
	s := newBedrockStream(bedrockTestTranslator, true)
	s.Next(bedrockEncodeStream(b, filepath.Join(bedrockTestdata, "stream", "cut.json")), false)
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Next(frame, false); err != nil {
			b.Fatal(err)
		}
	}
}
