package providertest

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestVertexClaudeValidation: rawPredict refuses what Vertex AI refuses for Claude (a
// model field, a missing or wrong anthropic_version, no token) and answers the rest in
// Anthropic's format, streamRawPredict as Anthropic's events.
func TestVertexClaudeValidation(t *testing.T) {
	fake, srv := StartVertex(t, "p", "us-east5")
	const path = "/v1/projects/p/locations/us-east5/publishers/anthropic/models/claude-sonnet-4@20250514:"
	bearer := map[string]string{"authorization": "Bearer " + fake.AccessToken()}
	const msgs = `"max_tokens":9,"messages":[{"role":"user","content":"hi there"}]`
	tests := []struct {
		name, method, body string
		headers            map[string]string
		status             int
		want               string
	}{
		{"no token", "rawPredict", `{"anthropic_version":"vertex-2023-10-16",` + msgs + `}`, nil, 401, "CREDENTIALS_MISSING"},
		{"model in the body", "rawPredict", `{"anthropic_version":"vertex-2023-10-16","model":"claude",` + msgs + `}`, bearer, 400, "model: Extra inputs are not permitted"},
		{"no anthropic_version", "rawPredict", `{` + msgs + `}`, bearer, 400, `anthropic_version: Input should be \"vertex-2023-10-16\"`},
		{"Bedrock's anthropic_version", "rawPredict", `{"anthropic_version":"bedrock-2023-05-31",` + msgs + `}`, bearer, 400, "anthropic_version"},
		{"message", "rawPredict", `{"anthropic_version":"vertex-2023-10-16",` + msgs + `}`, bearer, 200, `"text":"You said: hi there"`},
		{"stream", "streamRawPredict", `{"anthropic_version":"vertex-2023-10-16","stream":true,` + msgs + `}`, bearer, 200, "event: message_stop"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, body := postGoogle(t, srv.URL, path+tc.method, tc.body, tc.headers)
			if status != tc.status || !strings.Contains(string(body), tc.want) {
				t.Errorf("got %d %s, want %d containing %s", status, body, tc.status, tc.want)
			}
		})
	}
}

// TestBedrockClaudeInvoke: InvokeModel refuses a Claude body with model or stream in it,
// or without Bedrock's anthropic_version, and answers a Message; the streaming operation
// answers chunk frames.
func TestBedrockClaudeInvoke(t *testing.T) {
	_, srv := StartBedrock(t, bedrockTestRegion, bedrockTestKeyID, bedrockTestSecret)
	const model = "/model/anthropic.claude-3-haiku-20240307-v1%3A0/"
	const msgs = `"max_tokens":9,"messages":[{"role":"user","content":"hi there"}]`
	tests := []struct {
		name, op, body string
		status         int
		want           string
	}{
		{"model in the body", "invoke", `{"anthropic_version":"bedrock-2023-05-31","model":"claude",` + msgs + `}`, 400, "model: Extra inputs are not permitted"},
		{"stream in the body", "invoke-with-response-stream", `{"anthropic_version":"bedrock-2023-05-31","stream":true,` + msgs + `}`, 400, "stream: Extra inputs are not permitted"},
		{"Vertex AI's anthropic_version", "invoke", `{"anthropic_version":"vertex-2023-10-16",` + msgs + `}`, 400, "anthropic_version"},
		{"message", "invoke", `{"anthropic_version":"bedrock-2023-05-31",` + msgs + `}`, 200, `"text":"You said: hi there"`},
		{"stream", "invoke-with-response-stream", `{"anthropic_version":"bedrock-2023-05-31",` + msgs + `}`, 200, ":event-type\x07\x00\x05chunk"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := http.DefaultClient.Do(bedrockSigned(t, srv.URL+model+tc.op, []byte(tc.body), bedrockTestSecret, bedrockTestRegion, time.Now()))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status || !strings.Contains(string(body), tc.want) {
				t.Errorf("got %d %q, want %d containing %q", resp.StatusCode, body, tc.status, tc.want)
			}
			if tc.status == 400 {
				var e struct{ Message string }
				if json.Unmarshal(body, &e) != nil || resp.Header.Get("X-Amzn-Errortype") == "" {
					t.Errorf("not a Bedrock error: %s", body)
				}
			}
		})
	}
}
