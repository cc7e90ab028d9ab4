package translate

import "encoding/json"

// Wire types for the anthropic translator: the Anthropic Messages API
// (https://docs.anthropic.com/en/api/messages) and the parts of OpenAI's Chat Completions
// API (https://platform.openai.com/docs/api-reference/chat) it reads and writes. Every
// name starts with "anthropic" or "anthChat" so other translators in this package can
// declare their own wire types freely.

// anthropicRequest is the body of POST /v1/messages.
type anthropicRequest struct {
	Model         string               `json:"model"`
	MaxTokens     int                  `json:"max_tokens"`
	System        any                  `json:"system,omitempty"` // string or []anthropicBlock
	Messages      []anthropicMessage   `json:"messages"`
	Metadata      *anthropicMetadata   `json:"metadata,omitempty"`
	StopSequences []string             `json:"stop_sequences,omitempty"`
	Stream        bool                 `json:"stream,omitempty"`
	Temperature   *float64             `json:"temperature,omitempty"`
	TopP          *float64             `json:"top_p,omitempty"`
	TopK          *int                 `json:"top_k,omitempty"`
	Tools         []anthropicTool      `json:"tools,omitempty"`
	ToolChoice    *anthropicToolChoice `json:"tool_choice,omitempty"`
	Thinking      json.RawMessage      `json:"thinking,omitempty"`
}

type anthropicMetadata struct {
	UserID string `json:"user_id"`
}

type anthropicMessage struct {
	Role    string           `json:"role"`
	Content []anthropicBlock `json:"content"`
}

// anthropicBlock is any content block, in requests and responses; the fields a block
// type does not use stay empty and are omitted.
type anthropicBlock struct {
	Type      string           `json:"type"`
	Text      string           `json:"text,omitempty"`
	Source    *anthropicSource `json:"source,omitempty"`
	ID        string           `json:"id,omitempty"`
	Name      string           `json:"name,omitempty"`
	Input     json.RawMessage  `json:"input,omitempty"`
	ToolUseID string           `json:"tool_use_id,omitempty"`
	// Content is a tool_result's content: a string or []anthropicBlock.
	Content      any             `json:"content,omitempty"`
	Thinking     string          `json:"thinking,omitempty"`
	Signature    string          `json:"signature,omitempty"`
	Data         string          `json:"data,omitempty"` // redacted_thinking
	CacheControl json.RawMessage `json:"cache_control,omitempty"`
}

// anthropicSource is where an image or document block's bytes come from.
type anthropicSource struct {
	Type      string `json:"type"` // base64 or url
	MediaType string `json:"media_type,omitempty"`
	Data      string `json:"data,omitempty"`
	URL       string `json:"url,omitempty"`
}

type anthropicTool struct {
	Name         string          `json:"name"`
	Description  string          `json:"description,omitempty"`
	InputSchema  json.RawMessage `json:"input_schema"`
	CacheControl json.RawMessage `json:"cache_control,omitempty"`
}

type anthropicToolChoice struct {
	Type                   string `json:"type"` // auto, any, tool, none
	Name                   string `json:"name,omitempty"`
	DisableParallelToolUse bool   `json:"disable_parallel_tool_use,omitempty"`
}

// anthropicResponse is a Message object: the non-streaming response body and the
// "message" of a message_start event.
type anthropicResponse struct {
	ID         string           `json:"id"`
	Model      string           `json:"model"`
	Content    []anthropicBlock `json:"content"`
	StopReason string           `json:"stop_reason"`
	Usage      anthropicUsage   `json:"usage"`
}

// anthropicUsage is a usage object. Fields are pointers because a message_delta's usage
// carries only the counts that changed, and each one present replaces the earlier value.
type anthropicUsage struct {
	InputTokens              *int `json:"input_tokens"`
	OutputTokens             *int `json:"output_tokens"`
	CacheCreationInputTokens *int `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     *int `json:"cache_read_input_tokens"`
}

// anthropicEvent is the data of one streaming event; which fields are set depends on
// Type (https://docs.anthropic.com/en/api/messages-streaming).
type anthropicEvent struct {
	Type         string              `json:"type"`
	Message      *anthropicResponse  `json:"message"`
	Index        int                 `json:"index"`
	ContentBlock *anthropicBlock     `json:"content_block"`
	Delta        *anthropicDelta     `json:"delta"`
	Usage        *anthropicUsage     `json:"usage"`
	Error        *anthropicErrorBody `json:"error"`
}

// anthropicDelta is a content_block_delta's delta or a message_delta's delta.
type anthropicDelta struct {
	Type        string `json:"type"`
	Text        string `json:"text"`
	PartialJSON string `json:"partial_json"`
	Thinking    string `json:"thinking"`
	Signature   string `json:"signature"`
	StopReason  string `json:"stop_reason"`
}

// anthropicErrorBody is the "error" member of an error response or error event
// (https://docs.anthropic.com/en/api/errors).
type anthropicErrorBody struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

// anthChatRequest is an OpenAI chat completion request
// (https://platform.openai.com/docs/api-reference/chat/create) as far as the translator
// reads it. Parameters it refuses are decoded too, so their use can be reported, and so
// is every parameter it ignores: a name missing here is an unknown parameter.
type anthChatRequest struct {
	Model               string            `json:"model"`
	Messages            []anthChatMessage `json:"messages"`
	MaxTokens           *int              `json:"max_tokens"`
	MaxCompletionTokens *int              `json:"max_completion_tokens"`
	Temperature         *float64          `json:"temperature"`
	TopP                *float64          `json:"top_p"`
	TopK                *int              `json:"top_k"` // Anthropic extension
	Stream              bool              `json:"stream"`
	Stop                json.RawMessage   `json:"stop"` // a string or a list
	Tools               []chatTool        `json:"tools"`
	ToolChoice          json.RawMessage   `json:"tool_choice"`
	ParallelToolCalls   *bool             `json:"parallel_tool_calls"`
	ResponseFormat      json.RawMessage   `json:"response_format"`
	User                string            `json:"user"`
	SafetyIdentifier    string            `json:"safety_identifier"`
	Thinking            json.RawMessage   `json:"thinking"` // Anthropic extension
	ReasoningEffort     string            `json:"reasoning_effort"`

	// Refused unless set to the value that changes nothing.
	N                *int                       `json:"n"`
	Logprobs         bool                       `json:"logprobs"`
	PresencePenalty  float64                    `json:"presence_penalty"`
	FrequencyPenalty float64                    `json:"frequency_penalty"`
	LogitBias        map[string]json.RawMessage `json:"logit_bias"`
	Modalities       []string                   `json:"modalities"`

	// Refused whenever set.
	TopLogprobs      json.RawMessage `json:"top_logprobs"`
	Seed             json.RawMessage `json:"seed"`
	Audio            json.RawMessage `json:"audio"`
	Prediction       json.RawMessage `json:"prediction"`
	WebSearchOptions json.RawMessage `json:"web_search_options"`
	Verbosity        json.RawMessage `json:"verbosity"`
	Functions        json.RawMessage `json:"functions"`
	FunctionCall     json.RawMessage `json:"function_call"`

	// Ignored: the gateway's concern (stream_options) or settings of OpenAI's own
	// platform that mean nothing to Anthropic.
	StreamOptions        json.RawMessage `json:"stream_options"`
	Store                json.RawMessage `json:"store"`
	Metadata             json.RawMessage `json:"metadata"`
	ServiceTier          json.RawMessage `json:"service_tier"`
	PromptCacheKey       json.RawMessage `json:"prompt_cache_key"`
	PromptCacheRetention json.RawMessage `json:"prompt_cache_retention"`
}

// anthChatMessage is one message of an OpenAI chat completion request.
type anthChatMessage struct {
	Role       string          `json:"role"`
	Content    json.RawMessage `json:"content"` // string, array of parts, or null
	ToolCalls  []chatToolCall  `json:"tool_calls"`
	ToolCallID string          `json:"tool_call_id"`
	// FunctionCall is the deprecated single-function form, refused.
	FunctionCall json.RawMessage `json:"function_call"`
	// ThinkingBlocks and CacheControl are LiteLLM's extensions for Anthropic: an
	// assistant turn's signed thinking, and a prompt-cache breakpoint on the message.
	ThinkingBlocks []anthropicBlock `json:"thinking_blocks"`
	CacheControl   json.RawMessage  `json:"cache_control"`
}

type anthChatOutMessage struct {
	Role      string         `json:"role"`
	Content   *string        `json:"content"`
	Refusal   *string        `json:"refusal"`
	ToolCalls []chatToolCall `json:"tool_calls,omitempty"`
	// ReasoningContent and ThinkingBlocks carry extended thinking the way LiteLLM does,
	// so clients can send the signed blocks back on the next turn.
	ReasoningContent string           `json:"reasoning_content,omitempty"`
	ThinkingBlocks   []anthropicBlock `json:"thinking_blocks,omitempty"`
}
