package translate

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestAnthropicNativeRequest(t *testing.T) {
	const body = `{"model":"claude","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`
	const want = `{"model":"claude-sonnet-4-5-20250929","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`
	tests := []struct {
		ep         Endpoint
		base, path string
	}{
		{Messages, "", "/v1/messages"},
		{CountTokens, "", "/v1/messages/count_tokens"},
		{Messages, "https://proxy.example/anthropic/v1", "/anthropic/v1/messages"},
		{CountTokens, "https://proxy.example/anthropic/v1/messages?team=a", "/anthropic/v1/messages/count_tokens?team=a"},
	}
	for _, tc := range tests {
		t.Run(tc.ep.String()+" "+tc.base, func(t *testing.T) {
			up, err := anthropicTestTranslator.Request(tc.ep, []byte(body), anthropicTarget(t, tc.base, "", map[string]string{"anthropic-beta": "tools-2024"}))
			if err != nil {
				t.Fatal(err)
			}
			wantHeaders := []Header{{"x-api-key", "sk-ant-test"}, {"anthropic-version", anthropicVersion}, {"anthropic-beta", "tools-2024"}}
			if diff := cmp.Diff([]any{tc.path, want, wantHeaders}, []any{up.Path, string(up.Body), up.Headers}); diff != "" {
				t.Errorf("path, body, headers (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAnthropicNativeResponse(t *testing.T) {
	message := `{"id":"msg_1","type":"message","role":"assistant","model":"claude","content":[{"type":"text","text":"hi"}],"stop_reason":"end_turn","usage":{"input_tokens":10,"cache_read_input_tokens":5,"output_tokens":3}}`
	overloaded := `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`
	tests := []struct {
		name      string
		ep        Endpoint
		status    int
		body      string
		want      string
		wantUsage Usage
	}{
		{"message passes with its usage", Messages, 200, message, message,
			Usage{PromptTokens: 15, CachedTokens: 5, CompletionTokens: 3, Known: true}},
		{"count_tokens passes and costs nothing", CountTokens, 200, `{"input_tokens":42}`, `{"input_tokens":42}`, Usage{}},
		{"Anthropic's error passes", Messages, 529, overloaded, overloaded, Usage{}},
		{"credential failure is not echoed", Messages, 401, `{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key sk-ant-abc"}}`,
			`{"type":"error","error":{"type":"authentication_error","message":"Anthropic rejected the credentials configured for this deployment (authentication_error): check its api_key"}}`, Usage{}},
		{"a proxy's page is rewrapped", Messages, 413, `<html>Request Entity Too Large</html>`,
			`{"type":"error","error":{"type":"request_too_large","message":"Anthropic returned HTTP 413 (Request Entity Too Large)"}}`, Usage{}},
		{"an OpenAI-shaped error is rewrapped", CountTokens, 503, `{"error":{"message":"no token","type":"api_error","param":null,"code":"x"}}`,
			`{"type":"error","error":{"type":"overloaded_error","message":"no token"}}`, Usage{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, u, err := anthropicTestTranslator.Response(tc.ep, tc.status, []byte(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, string(out)); diff != "" {
				t.Errorf("body (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantUsage, u); diff != "" {
				t.Errorf("usage (-want +got):\n%s", diff)
			}
		})
	}
	if _, _, err := anthropicTestTranslator.Response(Messages, 200, []byte(`{"ok":true}`)); err == nil {
		t.Error("a body that is not a Message was accepted")
	}
}

// TestAnthropicPassStream feeds every stream fixture, split at every byte offset: the
// client gets the provider's bytes unchanged, and the usage read is the one the OpenAI
// translation of the same stream reports.
func TestAnthropicPassStream(t *testing.T) {
	for _, path := range fixtures(t, anthropicTestdata, "stream", ".sse") {
		t.Run(filepath.Base(path), func(t *testing.T) {
			in, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			complete := in[:bytes.LastIndexByte(in, '\n')+1]
			want := string(complete)
			if !bytes.Contains(in, []byte("message_stop")) && !bytes.Contains(in, []byte("event: error")) {
				if !bytes.HasSuffix(complete, []byte("\n\n")) {
					want += "\n" // the open event is ended first
				}
				want += string(anthropicStreamError("the provider ended the stream before it was complete; retry the request"))
			}
			_, wantUsage := anthropicRunStream(anthropicTestTranslator, true, in)
			for k := 0; k <= len(in); k++ {
				s := anthropicTestTranslator.Stream(Messages, StreamOptions{})
				a, _ := s.Next(in[:k], false)
				a = append([]byte(nil), a...)
				b, _ := s.Next(in[k:], true)
				if diff := cmp.Diff(want, string(a)+string(b)); diff != "" {
					t.Fatalf("split at %d (-want +got):\n%s", k, diff)
				}
				if len(a) > 0 && a[len(a)-1] != '\n' {
					t.Fatalf("split at %d: a partial line was forwarded", k)
				}
				if diff := cmp.Diff(wantUsage, s.Usage()); diff != "" {
					t.Fatalf("split at %d: usage (-want +got):\n%s", k, diff)
				}
			}
		})
	}
}

func TestAnthropicErrorJSON(t *testing.T) {
	got := string(AnthropicErrorJSON(&APIError{Status: 404, Type: "invalid_request_error", Message: `model "x" not found`}))
	if want := `{"type":"error","error":{"type":"not_found_error","message":"model \"x\" not found"}}`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

func FuzzAnthropicPassStream(f *testing.F) {
	seed, _ := os.ReadFile(filepath.Join(anthropicTestdata, "stream", "tool_use.sse"))
	f.Add(seed, 40)
	f.Add([]byte("event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":\"x\"}}\n"), 7)
	f.Fuzz(func(t *testing.T, data []byte, cut int) {
		if cut < 0 || cut > len(data) {
			cut = len(data) / 2
		}
		s := anthropicTestTranslator.Stream(Messages, StreamOptions{})
		a, _ := s.Next(data[:cut], false)
		a = append([]byte(nil), a...)
		b, _ := s.Next(data[cut:], true)
		out := string(a) + string(b)
		complete := string(data[:bytes.LastIndexByte(data, '\n')+1])
		if !strings.HasPrefix(out, complete) {
			t.Fatalf("complete lines were not forwarded unchanged")
		}
	})
}
