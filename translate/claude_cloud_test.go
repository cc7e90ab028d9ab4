package translate

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
	"github.com/google/go-cmp/cmp"
)

const claudeCloudTestdata = "testdata/claude_cloud"

// claudeCloudFixture is a request to Claude on Vertex AI or Bedrock.
type claudeCloudFixture struct {
	Source   string          `json:"source"`
	Endpoint string          `json:"endpoint"`
	Provider string          `json:"provider"`
	Model    string          `json:"model"`
	Location string          `json:"location"`
	Body     json.RawMessage `json:"body"`
}

func (fx *claudeCloudFixture) endpoint() Endpoint {
	if fx.Endpoint == "messages" {
		return Messages
	}
	return ChatCompletions
}

// translator is the spec LookupModel picks, with the test clocks where it signs.
func (fx *claudeCloudFixture) translator(t *testing.T) Translator {
	spec, ok := LookupModel(fx.Provider, fx.Model)
	if !ok {
		t.Fatalf("no spec for %s/%s", fx.Provider, fx.Model)
	}
	switch spec {
	case vertexAnthropicSpec:
		return vertexAnthropicTranslator{anthropic: anthropicTestTranslator}
	case bedrockAnthropicSpec:
		return bedrockAnthropicTranslator{bedrock: bedrockTestTranslator}
	}
	t.Fatalf("%s/%s is not a Claude deployment (spec %s)", fx.Provider, fx.Model, spec.Name)
	return nil
}

func (fx *claudeCloudFixture) target() *Target {
	tg := &Target{Provider: fx.Provider, Model: fx.Model}
	if fx.Provider == "vertex_ai" {
		tg.Google = &GoogleCredentials{Project: "test-project", Location: fx.Location, AccessToken: "ya29.test-token"}
	} else {
		tg.AWS = &AWSCredentials{Region: "us-east-1", AccessKeyID: bedrockTestKeyID, SecretAccessKey: bedrockTestSecret}
	}
	return tg
}

func TestClaudeCloudRequestGolden(t *testing.T) {
	for _, path := range fixtures(t, claudeCloudTestdata, "request", ".json") {
		t.Run(filepath.Base(path), func(t *testing.T) {
			var fx claudeCloudFixture
			readFixture(t, path, &fx)
			if fx.Source == "" {
				t.Fatal("fixture names no source")
			}
			up, err := fx.translator(t).Request(fx.endpoint(), fx.Body, fx.target())
			if err != nil {
				t.Fatal(err)
			}
			checkUpstreamGolden(t, path, up)
		})
	}
}

func TestLookupModelClaude(t *testing.T) {
	cases := []struct {
		provider, model string
		want            *Spec
	}{
		{"vertex_ai", "claude-sonnet-4@20250514", vertexAnthropicSpec},
		{"vertex_ai", "gemini-2.5-pro", vertexSpec},
		{"bedrock", "anthropic.claude-3-haiku-20240307-v1:0", bedrockAnthropicSpec},
		{"bedrock", "us.anthropic.claude-sonnet-4-20250514-v1:0", bedrockAnthropicSpec},
		{"bedrock", "converse/anthropic.claude-3-haiku-20240307-v1:0", bedrockAnthropicSpec},
		{"bedrock", "amazon.nova-pro-v1:0", bedrockSpec},
		{"anthropic", "claude-sonnet-4-5", anthropicSpec},
	}
	for _, tc := range cases {
		got, ok := LookupModel(tc.provider, tc.model)
		if !ok || got != tc.want {
			t.Errorf("LookupModel(%q, %q) = %v, want %s", tc.provider, tc.model, got.Name, tc.want.Name)
		}
	}
}

// claudeInvokeEvents is the Anthropic event stream of
// https://docs.anthropic.com/en/api/messages-streaming (basic example), as Bedrock's
// InvokeModelWithResponseStream sends it: one event per chunk.
var claudeInvokeEvents = []string{
	`{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"claude","stop_reason":null,"usage":{"input_tokens":25,"output_tokens":1}}}`,
	`{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`,
	`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}`,
	`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"!"}}`,
	`{"type":"content_block_stop","index":0}`,
	`{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":15}}`,
	`{"type":"message_stop","amazon-bedrock-invocationMetrics":{"inputTokenCount":25,"outputTokenCount":15}}`,
}

// claudeInvokeStream encodes events as InvokeModelWithResponseStream chunk frames.
func claudeInvokeStream(t testing.TB, events []string) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := eventstream.NewEncoder()
	for _, ev := range events {
		payload, _ := json.Marshal(map[string]string{"bytes": base64.StdEncoding.EncodeToString([]byte(ev))})
		if err := enc.Encode(&buf, eventstream.Message{Headers: eventstream.Headers{
			{Name: ":message-type", Value: eventstream.StringValue("event")},
			{Name: ":event-type", Value: eventstream.StringValue("chunk")},
			{Name: ":content-type", Value: eventstream.StringValue("application/json")},
		}, Payload: payload}); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

// claudeInvokeWant is the Anthropic SSE a native client receives for events.
func claudeInvokeWant(events []string) string {
	var b strings.Builder
	for _, ev := range events {
		var typ struct {
			Type string `json:"type"`
		}
		json.Unmarshal([]byte(ev), &typ)
		b.WriteString("event: " + typ.Type + "\ndata: " + ev + "\n\n")
	}
	return b.String()
}

// TestBedrockInvokeStreamChunkBoundaries feeds the stream split at every byte offset,
// and one byte at a time: the output is the same Anthropic SSE either way.
func TestBedrockInvokeStreamChunkBoundaries(t *testing.T) {
	stream := claudeInvokeStream(t, claudeInvokeEvents)
	want := claudeInvokeWant(claudeInvokeEvents)
	wantUsage := Usage{PromptTokens: 25, CompletionTokens: 15, Known: true}
	run := func(parts ...[]byte) (string, Usage) {
		s := bedrockAnthropicTranslator{}.Stream(Messages, StreamOptions{})
		var out []byte
		for i, p := range parts {
			got, err := s.Next(p, i == len(parts)-1)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, got...)
		}
		return string(out), s.Usage()
	}
	for i := 0; i <= len(stream); i++ {
		got, usage := run(stream[:i:i], stream[i:])
		if got != want || usage != wantUsage {
			t.Fatalf("split at %d:\n%s\nusage %+v (-want +got):\n%s", i, got, usage, cmp.Diff(want, got))
		}
	}
	bytewise := make([][]byte, len(stream))
	for i := range stream {
		bytewise[i] = stream[i : i+1]
	}
	if got, _ := run(bytewise...); got != want {
		t.Errorf("byte by byte (-want +got):\n%s", cmp.Diff(want, got))
	}
}

func TestBedrockInvokeStreamFailures(t *testing.T) {
	cut := claudeInvokeStream(t, claudeInvokeEvents[:3])
	var exc bytes.Buffer
	eventstream.NewEncoder().Encode(&exc, eventstream.Message{Headers: eventstream.Headers{
		{Name: ":message-type", Value: eventstream.StringValue("exception")},
		{Name: ":exception-type", Value: eventstream.StringValue("throttlingException")},
	}, Payload: []byte(`{"message":"Too many requests"}`)})
	cases := []struct {
		name  string
		input []byte
		want  string
	}{
		{"cut short", cut, claudeInvokeWant(claudeInvokeEvents[:3]) + string(anthropicStreamError("the provider ended the stream before it was complete; retry the request"))},
		{"exception", append(append([]byte(nil), cut...), exc.Bytes()...), claudeInvokeWant(claudeInvokeEvents[:3]) +
			"event: error\ndata: " + `{"type":"error","error":{"type":"api_error","message":"Too many requests"}}` + "\n\n"},
		{"garbage", []byte("not an event stream at all"), "event: error\ndata: " +
			`{"type":"error","error":{"type":"api_error","message":"Bedrock sent a stream frame tollgate could not read"}}` + "\n\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newBedrockInvokeStream()
			got, _ := s.Next(tc.input, true)
			if diff := cmp.Diff(tc.want, string(got)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// FuzzBedrockInvokeStream checks that any input, split anywhere, ends the client's
// stream with message_stop or an error event, and never panics.
func FuzzBedrockInvokeStream(f *testing.F) {
	f.Add(claudeInvokeStream(f, claudeInvokeEvents), uint16(7))
	f.Add(claudeInvokeStream(f, claudeInvokeEvents[:2]), uint16(100))
	f.Add([]byte{0, 0, 0, 16, 0, 0, 0, 0}, uint16(3))
	f.Fuzz(func(t *testing.T, data []byte, split uint16) {
		i := int(split) % (len(data) + 1)
		s := newBedrockInvokeStream()
		a, _ := s.Next(data[:i:i], false)
		b, _ := s.Next(data[i:], true)
		out := string(a) + string(b)
		if !strings.Contains(out, "event: message_stop") && !strings.Contains(out, "event: error") {
			t.Fatalf("stream ended without message_stop or an error event:\n%s", out)
		}
	})
}

// TestClaudeCloudResponseErrors: each cloud's own errors take the client's shape (OpenAI's
// for chat, Anthropic's for messages) and never repeat a credential failure's text;
// Claude's own errors read as Anthropic's do.
func TestClaudeCloudResponseErrors(t *testing.T) {
	googleDenied := `{"error":{"code":403,"message":"Permission denied on projects/p (secret detail)","status":"PERMISSION_DENIED"}}`
	anthropicBad := `{"type":"error","error":{"type":"invalid_request_error","message":"max_tokens: Field required"}}`
	cases := []struct {
		name   string
		tr     Translator
		ep     Endpoint
		status int
		body   string
		want   string
	}{
		{"Vertex AI credentials, chat", vertexAnthropicTranslator{}, ChatCompletions, 403, googleDenied,
			`{"error":{"message":"Vertex AI rejected the credentials configured for this deployment (PERMISSION_DENIED): check its vertex_credentials, vertex_project and vertex_location (or api_key), and that the service account may use Vertex AI there","type":"permission_error","param":null,"code":"PERMISSION_DENIED"}}`},
		{"Vertex AI credentials, messages", vertexAnthropicTranslator{}, Messages, 403, googleDenied,
			`{"type":"error","error":{"type":"permission_error","message":"Vertex AI rejected the credentials configured for this deployment (PERMISSION_DENIED): check its vertex_credentials, vertex_project and vertex_location (or api_key), and that the service account may use Vertex AI there"}}`},
		{"Claude's error on Vertex AI, messages", vertexAnthropicTranslator{}, Messages, 400, anthropicBad, anthropicBad},
		{"Bedrock credentials, messages", bedrockAnthropicTranslator{}, Messages, 403, `{"message":"The security token included in the request is invalid."}`,
			`{"type":"error","error":{"type":"permission_error","message":"Amazon Bedrock rejected the AWS credentials configured for this deployment (HTTP 403): check its aws_access_key_id, aws_secret_access_key, aws_session_token and region, and that they may invoke this model"}}`},
		{"Bedrock validation, messages", bedrockAnthropicTranslator{}, Messages, 400, `{"message":"prompt is too long: 300000 tokens > 200000 maximum"}`,
			`{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 300000 tokens \u003e 200000 maximum"}}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, _, err := tc.tr.Response(tc.ep, tc.status, []byte(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, string(got)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
	msg := `{"id":"msg_1","type":"message","role":"assistant","model":"claude","content":[{"type":"text","text":"hi"}],"stop_reason":"end_turn","usage":{"input_tokens":3,"output_tokens":1}}`
	for _, tr := range []Translator{vertexAnthropicTranslator{}, bedrockAnthropicTranslator{}} {
		got, usage, err := tr.Response(Messages, 200, []byte(msg))
		if err != nil || string(got) != msg || usage != (Usage{PromptTokens: 3, CompletionTokens: 1, Known: true}) {
			t.Errorf("%T: a Message passes with its usage: got %s, %+v, %v", tr, got, usage, err)
		}
	}
}

// BenchmarkBedrockInvokeStreamEvent measures one InvokeModelWithResponseStream chunk
// frame: decoded, unwrapped and written as an Anthropic event.
func BenchmarkBedrockInvokeStreamEvent(b *testing.B) {
	frame := claudeInvokeStream(b, claudeInvokeEvents[2:3])
	s := newBedrockInvokeStream()
	s.Next(claudeInvokeStream(b, claudeInvokeEvents[:2]), false)
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Next(frame, false); err != nil {
			b.Fatal(err)
		}
	}
}

// TestBedrockCountBody: CountTokens carries the InvokeModel body base64-encoded, with the
// max_tokens InvokeModel requires and count_tokens requests lack.
func TestBedrockCountBody(t *testing.T) {
	for _, tc := range []struct{ invoke, wantMax string }{
		{`{"anthropic_version":"bedrock-2023-05-31","messages":[]}`, "1"},
		{`{"anthropic_version":"bedrock-2023-05-31","thinking":{"type":"enabled","budget_tokens":2048},"messages":[]}`, "2049"},
		{`{"anthropic_version":"bedrock-2023-05-31","max_tokens":300,"messages":[]}`, "300"},
	} {
		out, err := bedrockCountBody([]byte(tc.invoke))
		if err != nil {
			t.Fatal(err)
		}
		var req struct {
			Input struct {
				InvokeModel struct {
					Body []byte `json:"body"`
				} `json:"invokeModel"`
			} `json:"input"`
		}
		if err := json.Unmarshal(out, &req); err != nil {
			t.Fatalf("%s: %v", out, err)
		}
		var inner map[string]json.RawMessage
		if err := json.Unmarshal(req.Input.InvokeModel.Body, &inner); err != nil {
			t.Fatalf("inner body %q: %v", req.Input.InvokeModel.Body, err)
		}
		if got := string(inner["max_tokens"]); got != tc.wantMax || string(inner["anthropic_version"]) != `"bedrock-2023-05-31"` {
			t.Errorf("%s: max_tokens %s, body %s; want %s", tc.invoke, got, req.Input.InvokeModel.Body, tc.wantMax)
		}
	}
}
