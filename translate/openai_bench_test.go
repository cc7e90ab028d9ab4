package translate

import (
	"bytes"
	"net/url"
	"os"
	"testing"
)

// BenchmarkOpenAIRequest is the upstream stage's translation of a chat request for an
// OpenAI-compatible deployment: the model replaced, path, host and key set.
func BenchmarkOpenAIRequest(b *testing.B) {
	body := []byte(`{"model":"gpt-5.5","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Summarize this in one line: the quick brown fox jumps over the lazy dog."}],"temperature":0.2,"stream":false}`)
	base, _ := url.Parse("https://api.openai.com/v1")
	t := &Target{Provider: "openai", Model: "gpt-5.5-2026-01-01", Base: base, APIKey: "sk-provider"}
	spec, _ := Lookup("openai")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := spec.Request(ChatCompletions, body, t); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOpenAIResponse reads the usage of a whole chat completion.
func BenchmarkOpenAIResponse(b *testing.B) {
	body, err := os.ReadFile("testdata/openai/chat_completion.json")
	if err != nil {
		b.Fatal(err)
	}
	spec, _ := Lookup("openai")
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := spec.Response(ChatCompletions, 200, body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOpenAIStreamEvent forwards one content chunk of an OpenAI stream.
func BenchmarkOpenAIStreamEvent(b *testing.B) {
	stream, err := os.ReadFile("testdata/openai/chat_stream.sse")
	if err != nil {
		b.Fatal(err)
	}
	event := stream[:bytes.Index(stream, []byte("\n\n"))+2]
	s := ChatCompletions.stream(true)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Next(event, false); err != nil {
			b.Fatal(err)
		}
	}
}
