package providertest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/document"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
	"github.com/aws/smithy-go"
	"github.com/google/go-cmp/cmp"
)

const (
	bedrockTestRegion = "us-west-2"
	bedrockTestKeyID  = "AKIDEXAMPLE"
	bedrockTestSecret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
	bedrockTestModel  = "anthropic.claude-3-haiku-20240307-v1:0"
)

// bedrockSDKClient is the official AWS SDK client pointed at the fake.
func bedrockSDKClient(url, secret string) *bedrockruntime.Client {
	return bedrockruntime.New(bedrockruntime.Options{
		Region:       bedrockTestRegion,
		BaseEndpoint: aws.String(url),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: bedrockTestKeyID, SecretAccessKey: secret}, nil
		}),
		RetryMaxAttempts: 1,
	})
}

func bedrockUserText(text string) types.Message {
	return types.Message{Role: types.ConversationRoleUser, Content: []types.ContentBlock{&types.ContentBlockMemberText{Value: text}}}
}

// TestBedrockSpeaksTheSDKsFormat drives the fake with the official AWS SDK, whose signer,
// JSON protocol and eventstream decoder are the real ones, so the fake the gateway's
// tests rely on is known to speak the format real clients use.
func TestBedrockSpeaksTheSDKsFormat(t *testing.T) {
	fake, srv := StartBedrock(t, bedrockTestRegion, bedrockTestKeyID, bedrockTestSecret)
	client := bedrockSDKClient(srv.URL, bedrockTestSecret)
	ctx := context.Background()

	t.Run("converse", func(t *testing.T) {
		out, err := client.Converse(ctx, &bedrockruntime.ConverseInput{
			ModelId:  aws.String(bedrockTestModel),
			System:   []types.SystemContentBlock{&types.SystemContentBlockMemberText{Value: "Be brief."}},
			Messages: []types.Message{bedrockUserText("ping pong")},
		})
		if err != nil {
			t.Fatal(err)
		}
		msg := out.Output.(*types.ConverseOutputMemberMessage).Value
		if got := msg.Content[0].(*types.ContentBlockMemberText).Value; got != "You said: ping pong" {
			t.Errorf("reply = %q", got)
		}
		if out.StopReason != types.StopReasonEndTurn || *out.Usage.InputTokens != 8 || *out.Usage.OutputTokens != 4 {
			t.Errorf("stop %q usage in %d out %d", out.StopReason, *out.Usage.InputTokens, *out.Usage.OutputTokens)
		}
		last := fake.Requests()[len(fake.Requests())-1]
		if want := "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse"; last.Path != want {
			t.Errorf("path = %q, want %q", last.Path, want)
		}
	})

	t.Run("tool use", func(t *testing.T) {
		out, err := client.Converse(ctx, &bedrockruntime.ConverseInput{
			ModelId:  aws.String(bedrockTestModel),
			Messages: []types.Message{bedrockUserText("weather in Paris")},
			ToolConfig: &types.ToolConfiguration{
				Tools: []types.Tool{&types.ToolMemberToolSpec{Value: types.ToolSpecification{
					Name:        aws.String("get_weather"),
					InputSchema: &types.ToolInputSchemaMemberJson{Value: document.NewLazyDocument(map[string]any{"type": "object"})},
				}}},
				ToolChoice: &types.ToolChoiceMemberAny{},
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		msg := out.Output.(*types.ConverseOutputMemberMessage).Value
		use := msg.Content[0].(*types.ContentBlockMemberToolUse).Value
		var input map[string]string
		if err := use.Input.UnmarshalSmithyDocument(&input); err != nil {
			t.Fatal(err)
		}
		if *use.Name != "get_weather" || input["prompt"] != "weather in Paris" || out.StopReason != types.StopReasonToolUse {
			t.Errorf("tool use %s(%v), stop %q", *use.Name, input, out.StopReason)
		}
	})

	t.Run("stream", func(t *testing.T) {
		out, err := client.ConverseStream(ctx, &bedrockruntime.ConverseStreamInput{
			ModelId:  aws.String(bedrockTestModel),
			Messages: []types.Message{bedrockUserText("stream me please")},
		})
		if err != nil {
			t.Fatal(err)
		}
		stream := out.GetStream()
		defer stream.Close()
		var text strings.Builder
		var events []string
		var usage *types.TokenUsage
		for ev := range stream.Events() {
			switch v := ev.(type) {
			case *types.ConverseStreamOutputMemberMessageStart:
				events = append(events, "messageStart")
			case *types.ConverseStreamOutputMemberContentBlockDelta:
				text.WriteString(v.Value.Delta.(*types.ContentBlockDeltaMemberText).Value)
			case *types.ConverseStreamOutputMemberContentBlockStop:
				events = append(events, "contentBlockStop")
			case *types.ConverseStreamOutputMemberMessageStop:
				events = append(events, "messageStop:"+string(v.Value.StopReason))
			case *types.ConverseStreamOutputMemberMetadata:
				events = append(events, "metadata")
				usage = v.Value.Usage
			}
		}
		if err := stream.Err(); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"messageStart", "contentBlockStop", "messageStop:end_turn", "metadata"}, events); diff != "" {
			t.Errorf("events (-want +got):\n%s", diff)
		}
		if text.String() != "You said: stream me please" || usage == nil || *usage.OutputTokens != 5 {
			t.Errorf("text %q usage %+v", text.String(), usage)
		}
	})

	t.Run("stream exception", func(t *testing.T) {
		fake.FailStreamNext("ThrottlingException")
		out, err := client.ConverseStream(ctx, &bedrockruntime.ConverseStreamInput{
			ModelId: aws.String(bedrockTestModel), Messages: []types.Message{bedrockUserText("hello there")}})
		if err != nil {
			t.Fatal(err)
		}
		stream := out.GetStream()
		defer stream.Close()
		for range stream.Events() {
		}
		var throttled *types.ThrottlingException
		if err := stream.Err(); !errors.As(err, &throttled) {
			t.Errorf("stream error = %v, want a ThrottlingException", err)
		}
	})

	t.Run("stream cut", func(t *testing.T) {
		fake.FailStreamNext("")
		out, err := client.ConverseStream(ctx, &bedrockruntime.ConverseStreamInput{
			ModelId: aws.String(bedrockTestModel), Messages: []types.Message{bedrockUserText("hello there")}})
		if err != nil {
			t.Fatal(err)
		}
		stream := out.GetStream()
		defer stream.Close()
		// The SDK reads an unexpected EOF as the end of the stream, so a cut shows as a
		// stream without its messageStop and metadata.
		var last types.ConverseStreamOutput
		for ev := range stream.Events() {
			last = ev
		}
		if _, ok := last.(*types.ConverseStreamOutputMemberContentBlockDelta); !ok {
			t.Errorf("last event %T, want the first text delta", last)
		}
	})

	t.Run("titan embeddings", func(t *testing.T) {
		out, err := client.InvokeModel(ctx, &bedrockruntime.InvokeModelInput{
			ModelId: aws.String("amazon.titan-embed-text-v2:0"), ContentType: aws.String("application/json"),
			Body: []byte(`{"inputText":"hello world","dimensions":256}`),
		})
		if err != nil {
			t.Fatal(err)
		}
		var resp struct {
			Embedding           []float64 `json:"embedding"`
			InputTextTokenCount int       `json:"inputTextTokenCount"`
		}
		if err := json.Unmarshal(out.Body, &resp); err != nil || len(resp.Embedding) != 256 || resp.InputTextTokenCount != 2 {
			t.Errorf("embedding of %d dims, %d tokens, %v", len(resp.Embedding), resp.InputTextTokenCount, err)
		}
	})

	t.Run("validation exception", func(t *testing.T) {
		_, err := client.Converse(ctx, &bedrockruntime.ConverseInput{
			ModelId: aws.String(bedrockTestModel),
			Messages: []types.Message{{Role: types.ConversationRoleAssistant,
				Content: []types.ContentBlock{&types.ContentBlockMemberText{Value: "hi"}}}},
		})
		var invalid *types.ValidationException
		if !errors.As(err, &invalid) || !strings.Contains(invalid.ErrorMessage(), "must start with a user message") {
			t.Errorf("err = %v, want a ValidationException", err)
		}
	})

	t.Run("wrong secret", func(t *testing.T) {
		_, err := bedrockSDKClient(srv.URL, "not-the-secret").Converse(ctx, &bedrockruntime.ConverseInput{
			ModelId: aws.String(bedrockTestModel), Messages: []types.Message{bedrockUserText("hi")}})
		var apiErr smithy.APIError
		if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "InvalidSignatureException" {
			t.Errorf("err = %v, want InvalidSignatureException", err)
		}
	})
}

// bedrockSigned builds a request signed as the SDK signs one, at the given time.
func bedrockSigned(t *testing.T, url string, body []byte, secret, region string, at time.Time) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	sum := sha256.Sum256(body)
	creds := aws.Credentials{AccessKeyID: bedrockTestKeyID, SecretAccessKey: secret}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "bedrock", region, at); err != nil {
		t.Fatal(err)
	}
	return req
}

// TestBedrockAuthentication checks each way the fake refuses a request, with the
// exception AWS's front door answers.
func TestBedrockAuthentication(t *testing.T) {
	fake, srv := StartBedrock(t, bedrockTestRegion, bedrockTestKeyID, bedrockTestSecret)
	fake.APIKey = "bedrock-api-key-abc"
	url := srv.URL + "/model/" + bedrockTestModel + "/converse"
	body := []byte(`{"messages":[{"role":"user","content":[{"text":"hi"}]}]}`)
	now := time.Now()
	tests := []struct {
		name          string
		req           func() *http.Request
		wantStatus    int
		wantException string
	}{
		{"valid", func() *http.Request { return bedrockSigned(t, url, body, bedrockTestSecret, bedrockTestRegion, now) }, 200, ""},
		{"api key", func() *http.Request {
			req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
			req.Header.Set("Authorization", "Bearer bedrock-api-key-abc")
			return req
		}, 200, ""},
		{"wrong api key", func() *http.Request {
			req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
			req.Header.Set("Authorization", "Bearer other")
			return req
		}, 403, "AccessDeniedException"},
		{"missing", func() *http.Request {
			req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
			return req
		}, 403, "MissingAuthenticationTokenException"},
		{"tampered body", func() *http.Request {
			req := bedrockSigned(t, url, body, bedrockTestSecret, bedrockTestRegion, now)
			tampered := bytes.Replace(body, []byte("hi"), []byte("ho"), 1)
			req.Body, req.ContentLength = io.NopCloser(bytes.NewReader(tampered)), int64(len(tampered))
			return req
		}, 403, "InvalidSignatureException"},
		{"tampered path", func() *http.Request {
			req := bedrockSigned(t, url, body, bedrockTestSecret, bedrockTestRegion, now)
			req.URL.Path = strings.Replace(req.URL.Path, "haiku", "sonnet", 1)
			return req
		}, 403, "InvalidSignatureException"},
		{"signed header changed", func() *http.Request {
			req := bedrockSigned(t, url, body, bedrockTestSecret, bedrockTestRegion, now)
			req.Header.Set("Content-Type", "text/plain")
			return req
		}, 403, "InvalidSignatureException"},
		{"wrong secret", func() *http.Request { return bedrockSigned(t, url, body, "other", bedrockTestRegion, now) }, 403, "InvalidSignatureException"},
		{"wrong region", func() *http.Request { return bedrockSigned(t, url, body, bedrockTestSecret, "eu-west-1", now) }, 403, "InvalidSignatureException"},
		{"expired", func() *http.Request {
			return bedrockSigned(t, url, body, bedrockTestSecret, bedrockTestRegion, now.Add(-time.Hour))
		}, 403, "InvalidSignatureException"},
		{"unknown key id", func() *http.Request {
			req := bedrockSigned(t, url, body, bedrockTestSecret, bedrockTestRegion, now)
			req.Header.Set("Authorization", strings.Replace(req.Header.Get("Authorization"), bedrockTestKeyID, "AKIDOTHER", 1))
			return req
		}, 403, "UnrecognizedClientException"},
		{"unexpected session token", func() *http.Request {
			req := bedrockSigned(t, url, body, bedrockTestSecret, bedrockTestRegion, now)
			req.Header.Set("X-Amz-Security-Token", "token")
			return req
		}, 403, "UnrecognizedClientException"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := http.DefaultClient.Do(tc.req())
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			exception, _, _ := strings.Cut(resp.Header.Get("X-Amzn-Errortype"), ":")
			if resp.StatusCode != tc.wantStatus || exception != tc.wantException {
				t.Errorf("got %d %q %s, want %d %q", resp.StatusCode, exception, b, tc.wantStatus, tc.wantException)
			}
		})
	}
}

// TestBedrockSessionToken: temporary credentials must carry their token, signed.
func TestBedrockSessionToken(t *testing.T) {
	fake, srv := StartBedrock(t, bedrockTestRegion, bedrockTestKeyID, bedrockTestSecret)
	fake.SessionToken = "session-token"
	url := srv.URL + "/model/" + bedrockTestModel + "/converse"
	body := []byte(`{"messages":[{"role":"user","content":[{"text":"hi"}]}]}`)
	for _, token := range []string{"", "session-token"} {
		req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
		sum := sha256.Sum256(body)
		creds := aws.Credentials{AccessKeyID: bedrockTestKeyID, SecretAccessKey: bedrockTestSecret, SessionToken: token}
		if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "bedrock", bedrockTestRegion, time.Now()); err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if want := map[string]int{"": 403, "session-token": 200}[token]; resp.StatusCode != want {
			t.Errorf("token %q: status %d, want %d", token, resp.StatusCode, want)
		}
	}
}

// TestBedrockValidation checks the request rules the fake enforces, with Bedrock's
// messages.
func TestBedrockValidation(t *testing.T) {
	fake, srv := StartBedrock(t, bedrockTestRegion, bedrockTestKeyID, bedrockTestSecret)
	fake.MaxInputTokens = 20
	tool := `"toolConfig":{"tools":[{"toolSpec":{"name":"f","inputSchema":{"json":{"type":"object"}}}}]}`
	use := `{"role":"assistant","content":[{"toolUse":{"toolUseId":"t1","name":"f","input":{}}}]}`
	tests := []struct {
		name, body, want string
	}{
		{"no messages", `{"messages":[]}`, "at least one message"},
		{"starts with assistant", `{"messages":[{"role":"assistant","content":[{"text":"x"}]}]}`, "must start with a user message"},
		{"not alternating", `{"messages":[{"role":"user","content":[{"text":"x"}]},{"role":"user","content":[{"text":"y"}]}]}`, "must alternate between user and assistant"},
		{"blank text", `{"messages":[{"role":"user","content":[{"text":" "}]}]}`, "messages.0.content.0 is blank"},
		{"two members", `{"messages":[{"role":"user","content":[{"text":"x","cachePoint":{"type":"default"}}]}]}`, "exactly one of the members"},
		{"bad image format", `{"messages":[{"role":"user","content":[{"image":{"format":"bmp","source":{"bytes":"AAAA"}}}]}]}`, "[png, jpeg, gif, webp]"},
		{"bad image bytes", `{"messages":[{"role":"user","content":[{"image":{"format":"png","source":{"bytes":"!!"}}}]}]}`, "not valid base64"},
		{"tool use without tools", `{"messages":[{"role":"user","content":[{"text":"x"}]},` + use + `]}`, "toolConfig field must be defined"},
		{"unmatched tool result", `{"messages":[{"role":"user","content":[{"text":"x"}]},` + use + `,{"role":"user","content":[{"toolResult":{"toolUseId":"t2","content":[]}}]}],` + tool + `}`, "for the following Ids: t1"},
		{"too many tool results", `{"messages":[{"role":"user","content":[{"text":"x"}]},` + use + `,{"role":"user","content":[{"toolResult":{"toolUseId":"t1","content":[]}},{"toolResult":{"toolUseId":"t1","content":[]}}]}],` + tool + `}`, "exceeds the number of toolUse blocks"},
		{"bad tool name", `{"messages":[{"role":"user","content":[{"text":"x"}]}],"toolConfig":{"tools":[{"toolSpec":{"name":"a b","inputSchema":{"json":{}}}}]}}`, "regular expression pattern"},
		{"unknown tool choice", `{"messages":[{"role":"user","content":[{"text":"x"}]}],` + strings.TrimSuffix(tool, "}") + `,"toolChoice":{"tool":{"name":"g"}}}}`, "not in toolConfig.tools"},
		{"temperature", `{"messages":[{"role":"user","content":[{"text":"x"}]}],"inferenceConfig":{"temperature":2}}`, "inferenceConfig.temperature"},
		{"too long", `{"messages":[{"role":"user","content":[{"text":"` + strings.Repeat("word ", 20) + `"}]}]}`, "Input is too long for requested model."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := http.DefaultClient.Do(bedrockSigned(t, srv.URL+"/model/m/converse", []byte(tc.body), bedrockTestSecret, bedrockTestRegion, time.Now()))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var e struct {
				Message string `json:"message"`
			}
			json.NewDecoder(resp.Body).Decode(&e)
			if resp.StatusCode != 400 || !strings.Contains(e.Message, tc.want) || !strings.HasPrefix(resp.Header.Get("X-Amzn-Errortype"), "ValidationException") {
				t.Errorf("got %d %q, want 400 ValidationException containing %q", resp.StatusCode, e.Message, tc.want)
			}
		})
	}
}

// TestBedrockFailNext answers the documented exception for each status.
func TestBedrockFailNext(t *testing.T) {
	fake, srv := StartBedrock(t, bedrockTestRegion, bedrockTestKeyID, bedrockTestSecret)
	fake.FailNext(429, 503)
	body := []byte(`{"messages":[{"role":"user","content":[{"text":"x"}]}]}`)
	for _, want := range []string{"ThrottlingException", "ServiceUnavailableException", ""} {
		resp, err := http.DefaultClient.Do(bedrockSigned(t, srv.URL+"/model/m/converse", body, bedrockTestSecret, bedrockTestRegion, time.Now()))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got, _, _ := strings.Cut(resp.Header.Get("X-Amzn-Errortype"), ":"); got != want {
			t.Errorf("exception %q, want %q", got, want)
		}
	}
}

// TestBedrockStreamFrames reads the raw ConverseStream body frame by frame with the SDK's
// decoder: every frame is an event with the headers Bedrock sends and a JSON payload.
func TestBedrockStreamFrames(t *testing.T) {
	_, srv := StartBedrock(t, bedrockTestRegion, bedrockTestKeyID, bedrockTestSecret)
	body := []byte(`{"messages":[{"role":"user","content":[{"text":"call get_time now"}]}],"toolConfig":{"tools":[{"toolSpec":{"name":"get_time","inputSchema":{"json":{"type":"object"}}}}]}}`)
	resp, err := http.DefaultClient.Do(bedrockSigned(t, srv.URL+"/model/m/converse-stream", body, bedrockTestSecret, bedrockTestRegion, time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/vnd.amazon.eventstream" {
		t.Fatalf("content-type %q", ct)
	}
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	dec := eventstream.NewDecoder()
	for r := bytes.NewReader(raw); r.Len() > 0; {
		if n := binary.BigEndian.Uint32(raw[len(raw)-r.Len():]); int(n) > r.Len() {
			t.Fatalf("frame of %d bytes with %d left", n, r.Len())
		}
		m, err := dec.Decode(r, nil)
		if err != nil {
			t.Fatal(err)
		}
		if mt := m.Headers.Get(":message-type").String(); mt != "event" || m.Headers.Get(":content-type").String() != "application/json" || !json.Valid(m.Payload) {
			t.Errorf("frame %s %s", mt, m.Payload)
		}
		got = append(got, m.Headers.Get(":event-type").String())
	}
	want := []string{"messageStart", "contentBlockDelta", "contentBlockDelta", "contentBlockStop",
		"contentBlockStart", "contentBlockDelta", "contentBlockDelta", "contentBlockStop", "messageStop", "metadata"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

// TestBedrockStreamCut: a cut drops the connection mid-body, which an HTTP client (and
// Envoy) sees as an unexpected EOF, not as the end of the response.
func TestBedrockStreamCut(t *testing.T) {
	fake, srv := StartBedrock(t, bedrockTestRegion, bedrockTestKeyID, bedrockTestSecret)
	fake.FailStreamNext("")
	body := []byte(`{"messages":[{"role":"user","content":[{"text":"hello there"}]}]}`)
	resp, err := http.DefaultClient.Do(bedrockSigned(t, srv.URL+"/model/m/converse-stream", body, bedrockTestSecret, bedrockTestRegion, time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if !errors.Is(err, io.ErrUnexpectedEOF) || len(raw) == 0 {
		t.Errorf("read %d bytes, err %v; want some frames then an unexpected EOF", len(raw), err)
	}
}
