package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tollgate-dev/tollgate/translate/providertest"
)

// nativeStream reads an Anthropic Messages event stream as a native client does: the
// event types in order (repeats folded) and the text of the deltas.
func nativeStream(t *testing.T, body []byte) (types []string, text string) {
	t.Helper()
	var b strings.Builder
	for _, line := range strings.Split(string(body), "\n") {
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			continue
		}
		var ev struct {
			Type  string
			Delta struct{ Text string }
		}
		if err := json.Unmarshal([]byte(data), &ev); err != nil {
			t.Fatalf("event %q: %v", data, err)
		}
		if len(types) == 0 || types[len(types)-1] != ev.Type {
			types = append(types, ev.Type)
		}
		b.WriteString(ev.Delta.Text)
	}
	return types, b.String()
}

// nativeMessage reads a Messages API response body: its text and whether it has usage.
func nativeMessage(t *testing.T, body []byte) (text string, usage bool) {
	t.Helper()
	var msg struct {
		Type    string
		Content []struct{ Type, Text string }
		Usage   struct {
			InputTokens  int `json:"input_tokens"`
			OutputTokens int `json:"output_tokens"`
		}
	}
	if err := json.Unmarshal(body, &msg); err != nil || msg.Type != "message" || len(msg.Content) != 1 {
		t.Fatalf("not a Message: %s", body)
	}
	return msg.Content[0].Text, msg.Usage.InputTokens > 0 && msg.Usage.OutputTokens > 0
}

var wantNativeEvents = "message_start ping content_block_start content_block_delta content_block_stop message_delta message_stop"

// checkMessages sends model one Anthropic-format /v1/messages request as JSON and one
// streamed, and checks each answer and the provider path it reached (lastPath also
// checks the request's credentials).
func checkMessages(t *testing.T, gw *gatewayUnderTest, model string, lastPath func() string, jsonPath, streamPath string) {
	headers := []string{"x-api-key", masterKey, "anthropic-version", "2023-06-01"}
	t.Run("messages JSON", func(t *testing.T) {
		resp, body := gw.post(t, "/v1/messages", "", []byte(`{"model":"`+model+`","max_tokens":64,"system":"Be brief.","messages":[{"role":"user","content":"one two"}]}`), headers...)
		if resp.StatusCode != 200 {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
		if text, usage := nativeMessage(t, body); text != "You said: one two" || !usage {
			t.Errorf("message %s", body)
		}
		if p := lastPath(); p != jsonPath {
			t.Errorf("provider path %q, want %q", p, jsonPath)
		}
	})
	t.Run("messages stream", func(t *testing.T) {
		resp, body := gw.post(t, "/v1/messages", "", []byte(`{"model":"`+model+`","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"three four five"}]}`), headers...)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
			t.Fatalf("status %d, content-type %q: %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
		if types, text := nativeStream(t, body); strings.Join(types, " ") != wantNativeEvents || text != "You said: three four five" {
			t.Errorf("events %v, text %q\n%s", types, text, body)
		}
		if p := lastPath(); p != streamPath {
			t.Errorf("provider path %q, want %q", p, streamPath)
		}
	})
}

// TestEndToEndVertexClaude drives a vertex_ai/claude-* deployment with the OpenAI SDK and
// with raw Anthropic-format requests: both reach the fake's rawPredict and
// streamRawPredict, which check anthropic_version, the missing model field and the
// gateway's access token.
func TestEndToEndVertexClaude(t *testing.T) {
	fake, srv := providertest.StartVertex(t, "proj-claude", "us-east5")
	keyFile := filepath.Join(t.TempDir(), "sa.json")
	if err := os.WriteFile(keyFile, fake.ServiceAccountJSON(t), 0o600); err != nil {
		t.Fatal(err)
	}
	gw := startDev(t, fmt.Sprintf(`
model_list:
  - model_name: claude-vertex
    litellm_params:
      model: vertex_ai/claude-sonnet-4@20250514
      api_base: %s
      vertex_project: proj-claude
      vertex_location: us-east5
      vertex_credentials: %s
general_settings:
  master_key: %s
`, srv.URL, keyFile, masterKey))
	client := gw.client(masterKey)
	const prefix = "/v1/projects/proj-claude/locations/us-east5/publishers/anthropic/models/claude-sonnet-4@20250514"
	lastPath := func() string {
		reqs := fake.Requests()
		r := reqs[len(reqs)-1]
		if r.Header.Get("Authorization") != "Bearer ya29.fake-0001" {
			t.Errorf("Authorization = %q, want the token the gateway obtained", r.Header.Get("Authorization"))
		}
		return r.Path
	}

	t.Run("chat JSON", func(t *testing.T) {
		resp, err := client.Chat.Completions.New(context.Background(), userChat("claude-vertex", "one two three"))
		if err != nil {
			t.Fatal(err)
		}
		if got := resp.Choices[0].Message.Content; got != "You said: one two three" || resp.Usage.TotalTokens == 0 || resp.Choices[0].FinishReason != "stop" {
			t.Errorf("reply %q, finish %q, usage %+v", got, resp.Choices[0].FinishReason, resp.Usage)
		}
		if p := lastPath(); p != prefix+":rawPredict" {
			t.Errorf("provider path %q", p)
		}
	})
	t.Run("chat stream", func(t *testing.T) {
		r := streamChat(t, client, withUsage(userChat("claude-vertex", "four five")))
		if got := r.acc.Choices[0].Message.Content; got != "You said: four five" {
			t.Errorf("streamed reply %q", got)
		}
		r.checkUsageChunk(t, true)
		if p := lastPath(); p != prefix+":streamRawPredict" {
			t.Errorf("provider path %q", p)
		}
	})
	headers := []string{"x-api-key", masterKey, "anthropic-version", "2023-06-01"}
	checkMessages(t, gw, "claude-vertex", lastPath, prefix+":rawPredict", prefix+":streamRawPredict")
	t.Run("count tokens", func(t *testing.T) {
		resp, body := gw.post(t, "/v1/messages/count_tokens", "", []byte(`{"model":"claude-vertex","system":"Be brief.","messages":[{"role":"user","content":"ten eleven twelve"}]}`), headers...)
		if resp.StatusCode != 200 || strings.TrimSpace(string(body)) != `{"input_tokens":5}` { // a token a word in the fake
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
		// The endpoint is not a model's: the model goes in the body.
		if p := lastPath(); p != "/v1/projects/proj-claude/locations/us-east5/publishers/anthropic/models/count-tokens:rawPredict" {
			t.Errorf("provider path %q", p)
		}
		reqs := fake.Requests()
		if sent := string(reqs[len(reqs)-1].Body); !strings.Contains(sent, `"model":"claude-sonnet-4@20250514"`) {
			t.Errorf("count-tokens body %s does not name the deployment's model", sent)
		}
	})
}

// TestEndToEndBedrockClaudeNative drives a bedrock/anthropic.claude-* deployment with
// raw Anthropic-format requests: they reach InvokeModel and
// InvokeModelWithResponseStream, SigV4-signed (the fake recomputes the signature), and the
// event-stream answer reaches the client as Anthropic's server-sent events.
func TestEndToEndBedrockClaudeNative(t *testing.T) {
	fake, srv := providertest.StartBedrock(t, "us-west-2", "AKIDCLAUDE", "claude-secret")
	gw := startDev(t, fmt.Sprintf(`
model_list:
  - model_name: claude-bedrock
    litellm_params:
      model: bedrock/%[1]s
      api_base: %[2]s
      aws_region_name: us-west-2
      aws_access_key_id: AKIDCLAUDE
      aws_secret_access_key: claude-secret
  - model_name: claude-bedrock-profile
    litellm_params:
      model: bedrock/us.%[1]s
      api_base: %[2]s
      aws_region_name: us-west-2
      aws_access_key_id: AKIDCLAUDE
      aws_secret_access_key: claude-secret
general_settings:
  master_key: %[3]s
`, bedrockModel, srv.URL, masterKey))
	headers := []string{"x-api-key", masterKey, "anthropic-version", "2023-06-01"}
	const prefix = "/model/anthropic.claude-3-haiku-20240307-v1%3A0" // the ":" escaped, as SigV4 signs it
	lastPath := func() string {
		reqs := fake.Requests()
		r := reqs[len(reqs)-1]
		if !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 Credential=AKIDCLAUDE/") {
			t.Errorf("Authorization = %q, want a SigV4 signature", r.Header.Get("Authorization"))
		}
		return r.Path
	}

	checkMessages(t, gw, "claude-bedrock", lastPath, prefix+"/invoke", prefix+"/invoke-with-response-stream")
	for _, alias := range []string{"claude-bedrock", "claude-bedrock-profile"} {
		t.Run("count tokens with "+alias, func(t *testing.T) {
			resp, body := gw.post(t, "/v1/messages/count_tokens", "", []byte(`{"model":"`+alias+`","system":"Be brief.","messages":[{"role":"user","content":"ten eleven twelve"}]}`), headers...)
			if resp.StatusCode != 200 || strings.TrimSpace(string(body)) != `{"input_tokens":5}` { // a token a word in the fake
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			// CountTokens takes the foundation model, not the cross-region profile.
			if p := lastPath(); p != prefix+"/count-tokens" {
				t.Errorf("provider path %q", p)
			}
		})
	}
	t.Run("chat still uses Converse", func(t *testing.T) {
		client := gw.client(masterKey)
		resp, err := client.Chat.Completions.New(context.Background(), userChat("claude-bedrock", "six"))
		if err != nil {
			t.Fatal(err)
		}
		if got := resp.Choices[0].Message.Content; got != "You said: six" {
			t.Errorf("reply %q", got)
		}
		if p := lastPath(); p != prefix+"/converse" {
			t.Errorf("provider path %q", p)
		}
	})
}

// TestEndToEndNativeFallbackAnthropicToBedrock: a native /v1/messages alias may fall back
// from anthropic/ to Claude on Bedrock; the second attempt is translated by Bedrock's
// provider (InvokeModel, signed) and carries none of the first attempt's credentials.
func TestEndToEndNativeFallbackAnthropicToBedrock(t *testing.T) {
	anthropic, asrv := providertest.StartAnthropic(t, "sk-ant-primary")
	bedrock, bsrv := providertest.StartBedrock(t, "us-east-1", "AKIDBACKUP", "backup-secret")
	gw := startDev(t, fmt.Sprintf(`
model_list:
  - model_name: primary
    litellm_params: {model: anthropic/claude-sonnet-5, api_key: sk-ant-primary, api_base: %s}
  - model_name: backup
    litellm_params:
      model: bedrock/%s
      api_base: %s
      aws_region_name: us-east-1
      aws_access_key_id: AKIDBACKUP
      aws_secret_access_key: backup-secret
litellm_settings:
  num_retries: 0
  fallbacks: [{"primary": ["backup"]}]
general_settings:
  master_key: %s
`, asrv.URL, bedrockModel, bsrv.URL, masterKey))
	anthropic.FailNext(503)
	resp, body := gw.post(t, "/v1/messages", "", []byte(`{"model":"primary","max_tokens":64,"messages":[{"role":"user","content":"still there?"}]}`),
		"x-api-key", masterKey, "anthropic-version", "2023-06-01")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if text, _ := nativeMessage(t, body); text != "You said: still there?" {
		t.Errorf("message %s", body)
	}
	if n := len(anthropic.Requests()); n != 1 {
		t.Errorf("Anthropic got %d requests, want 1", n)
	}
	b := bedrock.Requests()
	if len(b) != 1 {
		t.Fatalf("Bedrock got %d requests, want 1", len(b))
	}
	if v := b[0].Header.Get("X-Api-Key"); v != "" {
		t.Errorf("attempt 1's x-api-key reached Bedrock: %q", v)
	}
	if strings.Contains(string(b[0].Body), `"model"`) || !strings.Contains(string(b[0].Body), `"anthropic_version":"bedrock-2023-05-31"`) {
		t.Errorf("Bedrock body %s", b[0].Body)
	}
}
