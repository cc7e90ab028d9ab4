package translate

import (
	"bytes"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/packages/ssestream"
)

// Helpers shared by the translators' golden-file and client-compatibility tests.

var update = flag.Bool("update", false, "rewrite golden files under testdata")

// checkGolden compares got with the golden file, or rewrites it under -update.
func checkGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s (-want +got):\n%s", path, diff)
	}
}

// fixtures lists the fixtures of root/dir with extension ext, golden files excluded.
func fixtures(t testing.TB, root, dir, ext string) []string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(root, dir, "*"+ext))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no %s fixtures in %s: %v", ext, dir, err)
	}
	var out []string
	for _, p := range paths {
		if !strings.HasSuffix(p, ".golden.json") {
			out = append(out, p)
		}
	}
	return out
}

// readFixture decodes the JSON fixture at path into v.
func readFixture(t testing.TB, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// sdkStream is what a client reading a translated stream ends up with: the first
// choice's content, finish reason and tool calls (each name(arguments)), and for
// sdkWant the text the stream's error must contain ("" for none).
type sdkStream struct {
	content, finish string
	tools           []string
	errText         string
}

// sdkAccumulate reads an OpenAI event stream with openai-go's SSE decoder and
// accumulator.
func sdkAccumulate(sse []byte) (content, finish string, tools []string, err error) {
	res := &http.Response{Header: http.Header{"Content-Type": {"text/event-stream"}}, Body: io.NopCloser(bytes.NewReader(sse))}
	stream := ssestream.NewStream[openai.ChatCompletionChunk](ssestream.NewDecoder(res), nil)
	var acc openai.ChatCompletionAccumulator
	for stream.Next() {
		acc.AddChunk(stream.Current())
	}
	if len(acc.Choices) == 0 {
		return "", "", nil, stream.Err()
	}
	msg := acc.Choices[0].Message
	for _, tc := range msg.ToolCalls {
		tools = append(tools, tc.Function.Name+"("+tc.Function.Arguments+")")
	}
	return msg.Content, acc.Choices[0].FinishReason, tools, stream.Err()
}

// checkSDKStream reads the translated stream sse, named name, with openai-go and
// compares the outcome with want.
func checkSDKStream(t *testing.T, name string, sse []byte, want sdkStream) {
	t.Helper()
	content, finish, tools, err := sdkAccumulate(sse)
	if want.errText != "" {
		if err == nil || !strings.Contains(err.Error(), want.errText) {
			t.Errorf("%s: stream error %v, want one containing %q", name, err, want.errText)
		}
	} else if err != nil {
		t.Errorf("%s: %v", name, err)
	}
	got := struct {
		Content, Finish string
		Tools           []string
	}{content, finish, tools}
	wantGot := struct {
		Content, Finish string
		Tools           []string
	}{want.content, want.finish, want.tools}
	if diff := cmp.Diff(wantGot, got); diff != "" {
		t.Errorf("%s (-want +got):\n%s", name, diff)
	}
}

// checkUpstreamGolden compares an upstream request, its headers as "name: value", with
// the golden file beside the fixture at path.
func checkUpstreamGolden(t *testing.T, path string, up *Upstream) {
	t.Helper()
	out := struct {
		Path      string          `json:"path"`
		Authority string          `json:"authority"`
		Headers   []string        `json:"headers"`
		Body      json.RawMessage `json:"body"`
	}{Path: up.Path, Authority: up.Authority, Body: up.Body}
	for _, h := range up.Headers {
		out.Headers = append(out.Headers, h.Key+": "+h.Value)
	}
	got, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		t.Fatalf("%v\n%s", err, up.Body)
	}
	checkGolden(t, strings.TrimSuffix(path, ".json")+".golden.json", append(got, '\n'))
}
