package main

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"

	"github.com/tollgate-dev/tollgate/translate/providertest"
)

// TestEndToEndAnthropic drives an anthropic/ deployment with the unmodified OpenAI SDK:
// the per-attempt ext_proc stream translates the body to the Messages API (the fake
// rejects anything the real API would), and the router stage translates the answer back,
// whole or event by event.
func TestEndToEndAnthropic(t *testing.T) {
	fake, srv := providertest.StartAnthropic(t, "sk-ant-upstream")
	gw := startDev(t, fmt.Sprintf(`
model_list:
  - model_name: claude-sonnet
    litellm_params:
      model: anthropic/claude-sonnet-5
      api_key: sk-ant-upstream
      api_base: %s
general_settings:
  master_key: %s
`, srv.URL, masterKey))
	client := gw.client(masterKey)
	ctx := context.Background()
	params := openai.ChatCompletionNewParams{
		Model: "claude-sonnet",
		Messages: []openai.ChatCompletionMessageParamUnion{
			openai.SystemMessage("Be brief."),
			openai.UserMessage("Summarize this in one line."),
		},
	}

	resp, err := client.Chat.Completions.New(ctx, params)
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.Choices[0].Message.Content; got != "You said: Summarize this in one line." {
		t.Errorf("reply = %q", got)
	}
	if resp.Choices[0].FinishReason != "stop" || resp.Usage.PromptTokens == 0 {
		t.Errorf("finish_reason %q, usage %+v", resp.Choices[0].FinishReason, resp.Usage)
	}
	req := fake.Requests()[0]
	if req.Path != "/v1/messages" || req.Header.Get("X-Api-Key") != "sk-ant-upstream" || req.Header.Get("Anthropic-Version") == "" {
		t.Errorf("provider got path %q, x-api-key %q, anthropic-version %q", req.Path, req.Header.Get("X-Api-Key"), req.Header.Get("Anthropic-Version"))
	}
	if req.Header.Get("Authorization") != "" {
		t.Error("an Authorization header reached Anthropic")
	}
	if !strings.Contains(string(req.Body), `"system"`) || !strings.Contains(string(req.Body), `"claude-sonnet-5"`) {
		t.Errorf("provider body = %s", req.Body)
	}

	params.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
	stream := client.Chat.Completions.NewStreaming(ctx, params)
	var acc openai.ChatCompletionAccumulator
	for stream.Next() {
		acc.AddChunk(stream.Current())
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if got := acc.Choices[0].Message.Content; got != "You said: Summarize this in one line." {
		t.Errorf("streamed reply = %q", got)
	}
	if acc.Usage.CompletionTokens == 0 {
		t.Errorf("streamed usage = %+v", acc.Usage)
	}
}
