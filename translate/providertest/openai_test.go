package providertest

import (
	"context"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
)

// TestOpenAISpeaksTheSDKsFormat drives the fake with the official SDK, so the fake the
// gateway's tests rely on is known to speak the format real clients parse.
func TestOpenAISpeaksTheSDKsFormat(t *testing.T) {
	fake, srv := StartOpenAI(t, "sk-upstream")
	client := openai.NewClient(option.WithBaseURL(srv.URL+"/v1"), option.WithAPIKey("sk-upstream"), option.WithMaxRetries(0))
	ctx := context.Background()

	resp, err := client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
		Model:    "gpt-test",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("ping pong")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.Choices[0].Message.Content; got != "You said: ping pong" {
		t.Errorf("reply = %q", got)
	}
	if resp.Usage.CompletionTokens != 4 {
		t.Errorf("completion tokens = %d, want 4", resp.Usage.CompletionTokens)
	}

	stream := client.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{
		Model:         "gpt-test",
		Messages:      []openai.ChatCompletionMessageParamUnion{openai.UserMessage("a b")},
		StreamOptions: openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)},
	})
	var acc openai.ChatCompletionAccumulator
	for stream.Next() {
		acc.AddChunk(stream.Current())
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if got := acc.Choices[0].Message.Content; got != "You said: a b" {
		t.Errorf("streamed reply = %q", got)
	}
	if acc.Usage.TotalTokens == 0 {
		t.Error("include_usage asked for, no usage chunk")
	}

	emb, err := client.Embeddings.New(ctx, openai.EmbeddingNewParams{
		Model: "emb", Input: openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: []string{"x", "y"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(emb.Data) != 2 || len(emb.Data[0].Embedding) != 8 {
		t.Errorf("embeddings = %+v", emb.Data)
	}

	bad := openai.NewClient(option.WithBaseURL(srv.URL+"/v1"), option.WithAPIKey("sk-wrong-key"), option.WithMaxRetries(0))
	_, err = bad.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: "m", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("x")}})
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("wrong key: err = %v, want a 401", err)
	}
	if n := len(fake.Requests()); n != 4 {
		t.Errorf("recorded %d requests, want 4", n)
	}
}
