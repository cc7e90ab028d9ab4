package translate

import (
	"net/url"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestStreamOptionsIgnored: the router stage asks every stream for usage by setting
// stream_options.include_usage when an alias's chain has an OpenAI-compatible
// deployment, and the same body reaches every fallback. Providers with their own formats
// must translate it exactly as they translate the body without it.
func TestStreamOptionsIgnored(t *testing.T) {
	base := func(s string) *url.URL {
		u, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	targets := map[string]*Target{
		"anthropic": {Provider: "anthropic", Model: "claude-sonnet-5", Base: base("https://api.anthropic.com"), APIKey: "sk-ant"},
		"bedrock": {Provider: "bedrock", Model: "anthropic.claude-3-haiku-20240307-v1:0", Base: base("https://bedrock-runtime.us-east-1.amazonaws.com"),
			AWS: &AWSCredentials{Region: "us-east-1", AccessKeyID: "AKID", SecretAccessKey: "secret"}},
		"gemini":    {Provider: "gemini", Model: "gemini-2.5-flash", APIKey: "AIza"},
		"vertex_ai": {Provider: "vertex_ai", Model: "gemini-2.5-flash", Google: &GoogleCredentials{Project: "p", AccessToken: "ya29.x"}},
	}
	const without = `{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}`
	for _, opts := range []string{`{"include_usage":true}`, `{"include_usage":false}`, `null`, `{}`} {
		with := `{"model":"m","stream":true,"stream_options":` + opts + `,"messages":[{"role":"user","content":"hi"}]}`
		for provider, target := range targets {
			t.Run(provider+" "+opts, func(t *testing.T) {
				spec, _ := Lookup(provider)
				want, err := spec.Request(ChatCompletions, []byte(without), target)
				if err != nil {
					t.Fatal(err)
				}
				got, err := spec.Request(ChatCompletions, []byte(with), target)
				if err != nil {
					t.Fatalf("stream_options %s refused: %v", opts, err)
				}
				if diff := cmp.Diff(string(want.Body), string(got.Body)); diff != "" {
					t.Errorf("body (-without +with):\n%s", diff)
				}
				if got.Path != want.Path {
					t.Errorf("path %q, want %q", got.Path, want.Path)
				}
			})
		}
	}
}
