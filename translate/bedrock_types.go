package translate

import "encoding/json"

// Wire types for the bedrock translator: the Amazon Bedrock Runtime Converse and
// ConverseStream APIs (https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html,
// https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ConverseStream.html),
// the Titan and Cohere embedding bodies of InvokeModel, and the parts of OpenAI's Chat
// Completions and Embeddings APIs the translator reads and writes. Every name starts with
// "bedrock" so the other translators in this package can declare their own wire types.

// bedrockConverseRequest is the body of POST /model/{modelId}/converse (and
// converse-stream, which takes the same body).
type bedrockConverseRequest struct {
	Messages        []bedrockMessage        `json:"messages"`
	System          []bedrockBlock          `json:"system,omitempty"`
	InferenceConfig *bedrockInferenceConfig `json:"inferenceConfig,omitempty"`
	ToolConfig      *bedrockToolConfig      `json:"toolConfig,omitempty"`
	// AdditionalModelRequestFields carries model-specific parameters Converse does not
	// model itself; tollgate sends Anthropic's "thinking" there.
	AdditionalModelRequestFields map[string]json.RawMessage `json:"additionalModelRequestFields,omitempty"`
}

type bedrockInferenceConfig struct {
	MaxTokens     *int     `json:"maxTokens,omitempty"`
	Temperature   *float64 `json:"temperature,omitempty"`
	TopP          *float64 `json:"topP,omitempty"`
	StopSequences []string `json:"stopSequences,omitempty"`
}

// bedrockMessage is one conversation turn, in requests and in a Converse response's
// output.message.
type bedrockMessage struct {
	Role    string         `json:"role"`
	Content []bedrockBlock `json:"content"`
}

// bedrockBlock is a ContentBlock, a SystemContentBlock or a ToolResultContentBlock: a
// union of which exactly one member is set
// (https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ContentBlock.html).
type bedrockBlock struct {
	Text             *string            `json:"text,omitempty"`
	Image            *bedrockImage      `json:"image,omitempty"`
	Document         *bedrockDocument   `json:"document,omitempty"`
	ToolUse          *bedrockToolUse    `json:"toolUse,omitempty"`
	ToolResult       *bedrockToolResult `json:"toolResult,omitempty"`
	ReasoningContent *bedrockReasoning  `json:"reasoningContent,omitempty"`
	CachePoint       *bedrockCachePoint `json:"cachePoint,omitempty"`
	JSON             json.RawMessage    `json:"json,omitempty"` // tool results only
}

// bedrockImage is an ImageBlock; Converse accepts image bytes only, never URLs.
type bedrockImage struct {
	Format string        `json:"format"` // png, jpeg, gif, webp
	Source bedrockSource `json:"source"`
}

type bedrockDocument struct {
	Format string        `json:"format"`
	Name   string        `json:"name"`
	Source bedrockSource `json:"source"`
}

// bedrockSource carries a blob, which the JSON protocol sends base64-encoded.
type bedrockSource struct {
	Bytes string `json:"bytes"`
}

type bedrockToolUse struct {
	ToolUseID string          `json:"toolUseId"`
	Name      string          `json:"name"`
	Input     json.RawMessage `json:"input"`
}

type bedrockToolResult struct {
	ToolUseID string         `json:"toolUseId"`
	Content   []bedrockBlock `json:"content"`
	Status    string         `json:"status,omitempty"`
}

// bedrockReasoning is a ReasoningContentBlock: signed reasoning text, or reasoning the
// model provider encrypted (base64).
type bedrockReasoning struct {
	ReasoningText   *bedrockReasoningText `json:"reasoningText,omitempty"`
	RedactedContent string                `json:"redactedContent,omitempty"`
}

type bedrockReasoningText struct {
	Text      string `json:"text"`
	Signature string `json:"signature,omitempty"`
}

// bedrockCachePoint marks the end of a prompt prefix to cache
// (https://docs.aws.amazon.com/bedrock/latest/userguide/prompt-caching.html).
type bedrockCachePoint struct {
	Type string `json:"type"` // default
}

type bedrockToolConfig struct {
	Tools      []bedrockTool      `json:"tools"`
	ToolChoice *bedrockToolChoice `json:"toolChoice,omitempty"`
}

// bedrockTool is a Tool union: a tool specification, or a cache point after the tools
// before it.
type bedrockTool struct {
	ToolSpec   *bedrockToolSpec   `json:"toolSpec,omitempty"`
	CachePoint *bedrockCachePoint `json:"cachePoint,omitempty"`
}

type bedrockToolSpec struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	InputSchema struct {
		JSON json.RawMessage `json:"json"`
	} `json:"inputSchema"`
}

// bedrockToolChoice is a ToolChoice union; an empty struct pointer marshals as {}.
type bedrockToolChoice struct {
	Auto *struct{}        `json:"auto,omitempty"`
	Any  *struct{}        `json:"any,omitempty"`
	Tool *bedrockToolName `json:"tool,omitempty"`
}

type bedrockToolName struct {
	Name string `json:"name"`
}

// bedrockConverseResponse is the body a Converse call answers with.
type bedrockConverseResponse struct {
	Output struct {
		Message *bedrockMessage `json:"message"`
	} `json:"output"`
	StopReason string        `json:"stopReason"`
	Usage      *bedrockUsage `json:"usage"`
}

// bedrockUsage is a TokenUsage object. For Anthropic models inputTokens excludes the
// tokens read from or written to the prompt cache, as on Anthropic's own API.
type bedrockUsage struct {
	InputTokens           int `json:"inputTokens"`
	OutputTokens          int `json:"outputTokens"`
	TotalTokens           int `json:"totalTokens"`
	CacheReadInputTokens  int `json:"cacheReadInputTokens"`
	CacheWriteInputTokens int `json:"cacheWriteInputTokens"`
}

// bedrockStreamEvent is the JSON payload of one ConverseStream event frame; which fields
// are set depends on the frame's :event-type
// (https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ConverseStreamOutput.html).
type bedrockStreamEvent struct {
	ContentBlockIndex int `json:"contentBlockIndex"`
	Start             *struct {
		ToolUse *struct {
			ToolUseID string `json:"toolUseId"`
			Name      string `json:"name"`
		} `json:"toolUse"`
	} `json:"start"`
	Delta *struct {
		Text    *string `json:"text"`
		ToolUse *struct {
			Input string `json:"input"`
		} `json:"toolUse"`
		ReasoningContent *struct {
			Text            string `json:"text"`
			Signature       string `json:"signature"`
			RedactedContent string `json:"redactedContent"`
		} `json:"reasoningContent"`
	} `json:"delta"`
	StopReason string        `json:"stopReason"`
	Usage      *bedrockUsage `json:"usage"`
}

// bedrockErrorBody is an error response. Bedrock sends {"message": ...} with the
// exception name in the x-amzn-ErrorType header; some front ends put the name in the body
// as "__type" or "code", and AWS's authentication layer capitalises "Message".
type bedrockErrorBody struct {
	Message      string `json:"message"`
	MessageUpper string `json:"Message"`
	Type         string `json:"__type"`
	Code         string `json:"code"`
}

// bedrockChatMessage is one message of an OpenAI chat completion request.
type bedrockChatMessage struct {
	Role         string          `json:"role"`
	Content      json.RawMessage `json:"content"` // string, array of parts, or null
	ToolCalls    []chatToolCall  `json:"tool_calls"`
	ToolCallID   string          `json:"tool_call_id"`
	FunctionCall json.RawMessage `json:"function_call"` // deprecated, refused
	// ThinkingBlocks and CacheControl are LiteLLM's extensions: an assistant turn's signed
	// reasoning, and a prompt-cache breakpoint after the message.
	ThinkingBlocks []bedrockChatThinking `json:"thinking_blocks"`
	CacheControl   json.RawMessage       `json:"cache_control"`
}

// bedrockChatThinking is a LiteLLM thinking block: reasoning text with its signature, or
// redacted reasoning.
type bedrockChatThinking struct {
	Type      string `json:"type"` // thinking or redacted_thinking
	Thinking  string `json:"thinking,omitempty"`
	Signature string `json:"signature,omitempty"`
	Data      string `json:"data,omitempty"`
}

type bedrockChatOutMessage struct {
	Role             string                `json:"role"`
	Content          *string               `json:"content"`
	Refusal          *string               `json:"refusal"`
	ToolCalls        []chatToolCall        `json:"tool_calls,omitempty"`
	ReasoningContent string                `json:"reasoning_content,omitempty"`
	ThinkingBlocks   []bedrockChatThinking `json:"thinking_blocks,omitempty"`
}

// bedrockTitanEmbedRequest is the InvokeModel body of the Amazon Titan text embedding
// models (https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-titan-embed-text.html).
type bedrockTitanEmbedRequest struct {
	InputText  string `json:"inputText"`
	Dimensions *int   `json:"dimensions,omitempty"` // Titan Text Embeddings V2 only
}

// bedrockCohereEmbedRequest is the InvokeModel body of the Cohere Embed models
// (https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-embed-v3.html).
type bedrockCohereEmbedRequest struct {
	Texts     []string `json:"texts"`
	InputType string   `json:"input_type"`
}

// bedrockEmbeddingList is the OpenAI embeddings response.
type bedrockEmbeddingList struct {
	Object string             `json:"object"`
	Data   []bedrockEmbedding `json:"data"`
	Model  string             `json:"model"`
	Usage  struct {
		PromptTokens int `json:"prompt_tokens"`
		TotalTokens  int `json:"total_tokens"`
	} `json:"usage"`
}

type bedrockEmbedding struct {
	Object    string          `json:"object"`
	Index     int             `json:"index"`
	Embedding json.RawMessage `json:"embedding"`
}
