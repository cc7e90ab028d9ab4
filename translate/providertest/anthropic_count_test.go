package providertest

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestAnthropicCountTokens(t *testing.T) {
	_, srv := StartAnthropic(t, "sk-ant-fake")
	tests := []struct {
		name, body string
		drop       []string
		wantStatus int
		want       string
	}{
		{"counts system and messages", `{"model":"claude","system":"Be brief.","messages":[{"role":"user","content":"one two three"}]}`, nil,
			200, `{"input_tokens":5}`},
		{"generation settings are refused", `{"model":"claude","max_tokens":5,"messages":[{"role":"user","content":"x"}]}`, nil,
			400, `{"error":{"message":"max_tokens: Extra inputs are not permitted","type":"invalid_request_error"},"request_id":"req_fake","type":"error"}`},
		{"messages are checked", `{"model":"claude","messages":[{"role":"assistant","content":"x"}]}`, nil,
			400, ""},
		{"credentials are checked", `{"model":"claude","messages":[{"role":"user","content":"x"}]}`, []string{"x-api-key"},
			401, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, body := postAnthropic(t, srv.URL, "/v1/messages/count_tokens", tc.body, tc.drop, nil)
			if status != tc.wantStatus {
				t.Fatalf("status %d, want %d: %s", status, tc.wantStatus, body)
			}
			if tc.want != "" {
				if diff := cmp.Diff(tc.want+"\n", string(body)); diff != "" {
					t.Errorf("body (-want +got):\n%s", diff)
				}
			}
		})
	}
}
