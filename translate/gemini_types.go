package translate

import "encoding/json"

// Wire types for the gemini translator: Google's Gemini API
// (https://ai.google.dev/api/generate-content) and Vertex AI's generateContent
// (https://cloud.google.com/vertex-ai/generative-ai/docs/model-reference/inference), which
// share one JSON shape, their embedding APIs, and the parts of OpenAI's Chat Completions
// and Embeddings APIs the translator reads and writes. Every name starts with "gemini" or
// "gemChat" so other translators in this package can declare their own wire types.

// geminiRequest is the body of models.generateContent and models.streamGenerateContent.
type geminiRequest struct {
	Contents          []geminiContent         `json:"contents"`
	SystemInstruction *geminiContent          `json:"systemInstruction,omitempty"`
	Tools             []geminiTool            `json:"tools,omitempty"`
	ToolConfig        *geminiToolConfig       `json:"toolConfig,omitempty"`
	SafetySettings    json.RawMessage         `json:"safetySettings,omitempty"`
	GenerationConfig  *geminiGenerationConfig `json:"generationConfig,omitempty"`
}

// geminiContent is one turn (https://ai.google.dev/api/caching#Content). Role is "user"
// or "model"; a system instruction has none.
type geminiContent struct {
	Role  string       `json:"role,omitempty"`
	Parts []geminiPart `json:"parts"`
}

// geminiPart is one part of a turn (https://ai.google.dev/api/caching#Part), in requests
// and responses: exactly one of the data fields is set.
type geminiPart struct {
	Text             string                  `json:"text,omitempty"`
	Thought          bool                    `json:"thought,omitempty"`
	InlineData       *geminiBlob             `json:"inlineData,omitempty"`
	FileData         *geminiFileData         `json:"fileData,omitempty"`
	FunctionCall     *geminiFunctionCall     `json:"functionCall,omitempty"`
	FunctionResponse *geminiFunctionResponse `json:"functionResponse,omitempty"`
	// ThoughtSignature is the opaque, base64 signature of the model's reasoning that
	// Gemini 3 requires back on the function calls of later turns.
	ThoughtSignature string `json:"thoughtSignature,omitempty"`
}

type geminiBlob struct {
	MimeType string `json:"mimeType"`
	Data     string `json:"data"` // base64
}

type geminiFileData struct {
	MimeType string `json:"mimeType,omitempty"`
	FileURI  string `json:"fileUri"`
}

type geminiFunctionCall struct {
	Name string          `json:"name"`
	Args json.RawMessage `json:"args,omitempty"`
}

type geminiFunctionResponse struct {
	Name     string          `json:"name"`
	Response json.RawMessage `json:"response"`
}

// geminiTool carries the client's functions (https://ai.google.dev/api/caching#Tool).
type geminiTool struct {
	FunctionDeclarations []geminiFunctionDeclaration `json:"functionDeclarations"`
}

type geminiFunctionDeclaration struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Parameters  json.RawMessage `json:"parameters,omitempty"`
}

type geminiToolConfig struct {
	FunctionCallingConfig geminiFunctionCallingConfig `json:"functionCallingConfig"`
}

type geminiFunctionCallingConfig struct {
	Mode                 string   `json:"mode"` // AUTO, ANY, NONE
	AllowedFunctionNames []string `json:"allowedFunctionNames,omitempty"`
}

// geminiGenerationConfig is https://ai.google.dev/api/generate-content#generationconfig.
type geminiGenerationConfig struct {
	StopSequences    []string              `json:"stopSequences,omitempty"`
	ResponseMimeType string                `json:"responseMimeType,omitempty"`
	ResponseSchema   json.RawMessage       `json:"responseSchema,omitempty"`
	CandidateCount   *int                  `json:"candidateCount,omitempty"`
	MaxOutputTokens  *int                  `json:"maxOutputTokens,omitempty"`
	Temperature      *float64              `json:"temperature,omitempty"`
	TopP             *float64              `json:"topP,omitempty"`
	TopK             *int                  `json:"topK,omitempty"`
	Seed             *int64                `json:"seed,omitempty"`
	PresencePenalty  *float64              `json:"presencePenalty,omitempty"`
	FrequencyPenalty *float64              `json:"frequencyPenalty,omitempty"`
	ThinkingConfig   *geminiThinkingConfig `json:"thinkingConfig,omitempty"`
}

type geminiThinkingConfig struct {
	IncludeThoughts bool   `json:"includeThoughts,omitempty"`
	ThinkingBudget  *int   `json:"thinkingBudget,omitempty"`
	ThinkingLevel   string `json:"thinkingLevel,omitempty"`
}

// geminiResponse is a GenerateContentResponse: the whole answer of generateContent, and
// each event of streamGenerateContent.
type geminiResponse struct {
	Candidates     []geminiCandidate     `json:"candidates"`
	PromptFeedback *geminiPromptFeedback `json:"promptFeedback"`
	UsageMetadata  *geminiUsageMetadata  `json:"usageMetadata"`
	ModelVersion   string                `json:"modelVersion"`
	ResponseID     string                `json:"responseId"`
	// Error is set when a stream reports a failure in an event of its own.
	Error *geminiErrorBody `json:"error"`
}

type geminiCandidate struct {
	Content      *geminiContent `json:"content"`
	FinishReason string         `json:"finishReason"`
	Index        int            `json:"index"`
}

type geminiPromptFeedback struct {
	BlockReason string `json:"blockReason"`
}

// geminiUsageMetadata is https://ai.google.dev/api/generate-content#UsageMetadata.
type geminiUsageMetadata struct {
	PromptTokenCount        int `json:"promptTokenCount"`
	CachedContentTokenCount int `json:"cachedContentTokenCount"`
	CandidatesTokenCount    int `json:"candidatesTokenCount"`
	ToolUsePromptTokenCount int `json:"toolUsePromptTokenCount"`
	ThoughtsTokenCount      int `json:"thoughtsTokenCount"`
	TotalTokenCount         int `json:"totalTokenCount"`
}

// geminiStreamEvent is one streamed GenerateContentResponse as the stream reads it: text
// stays raw JSON, so a delta is forwarded without decoding and re-encoding its string.
type geminiStreamEvent struct {
	Candidates []struct {
		Content *struct {
			Parts []struct {
				Text             json.RawMessage     `json:"text"`
				Thought          bool                `json:"thought"`
				FunctionCall     *geminiFunctionCall `json:"functionCall"`
				ThoughtSignature string              `json:"thoughtSignature"`
			} `json:"parts"`
		} `json:"content"`
		FinishReason string `json:"finishReason"`
		Index        int    `json:"index"`
	} `json:"candidates"`
	PromptFeedback *geminiPromptFeedback `json:"promptFeedback"`
	UsageMetadata  *geminiUsageMetadata  `json:"usageMetadata"`
	ModelVersion   string                `json:"modelVersion"`
	ResponseID     string                `json:"responseId"`
	Error          *geminiErrorBody      `json:"error"`
}

// geminiErrorBody is the "error" member of a Google API error
// (https://cloud.google.com/apis/design/errors#http_mapping).
type geminiErrorBody struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Status  string `json:"status"`
	Details []struct {
		Type   string `json:"@type"`
		Reason string `json:"reason"`
	} `json:"details"`
}

// geminiBatchEmbedRequest is the body of models.batchEmbedContents
// (https://ai.google.dev/api/embeddings#method:-models.batchembedcontents).
type geminiBatchEmbedRequest struct {
	Requests []geminiEmbedContent `json:"requests"`
}

type geminiEmbedContent struct {
	Model                string        `json:"model"`
	Content              geminiContent `json:"content"`
	TaskType             string        `json:"taskType,omitempty"`
	OutputDimensionality *int          `json:"outputDimensionality,omitempty"`
}

// vertexPredictEmbedRequest is the body of a Vertex AI text embedding model's :predict
// (https://cloud.google.com/vertex-ai/generative-ai/docs/model-reference/text-embeddings-api).
type vertexPredictEmbedRequest struct {
	Instances  []vertexEmbedInstance `json:"instances"`
	Parameters *vertexEmbedParams    `json:"parameters,omitempty"`
}

type vertexEmbedInstance struct {
	Content  string `json:"content"`
	TaskType string `json:"task_type,omitempty"`
}

type vertexEmbedParams struct {
	OutputDimensionality *int `json:"outputDimensionality,omitempty"`
}

// geminiEmbedResponse reads both embedding answers: batchEmbedContents' "embeddings" and
// :predict's "predictions".
type geminiEmbedResponse struct {
	Embeddings []struct {
		Values json.RawMessage `json:"values"`
	} `json:"embeddings"`
	Predictions []struct {
		Embeddings struct {
			Values     json.RawMessage `json:"values"`
			Statistics *struct {
				TokenCount float64 `json:"token_count"`
			} `json:"statistics"`
		} `json:"embeddings"`
	} `json:"predictions"`
}

// gemChatRequest is an OpenAI chat completion request
// (https://platform.openai.com/docs/api-reference/chat/create) as far as the translator
// reads it. Parameters it refuses are decoded too, so their use can be reported, and so
// is every parameter it ignores: a name missing here is an unknown parameter.
type gemChatRequest struct {
	Model               string           `json:"model"`
	Messages            []gemChatMessage `json:"messages"`
	MaxTokens           *int             `json:"max_tokens"`
	MaxCompletionTokens *int             `json:"max_completion_tokens"`
	Temperature         *float64         `json:"temperature"`
	TopP                *float64         `json:"top_p"`
	TopK                *int             `json:"top_k"` // Gemini extension, as in LiteLLM
	N                   *int             `json:"n"`
	Stream              bool             `json:"stream"`
	Stop                json.RawMessage  `json:"stop"` // a string or a list
	PresencePenalty     *float64         `json:"presence_penalty"`
	FrequencyPenalty    *float64         `json:"frequency_penalty"`
	Seed                *int64           `json:"seed"`
	Tools               []chatTool       `json:"tools"`
	ToolChoice          json.RawMessage  `json:"tool_choice"`
	ParallelToolCalls   *bool            `json:"parallel_tool_calls"`
	ResponseFormat      json.RawMessage  `json:"response_format"`
	ReasoningEffort     string           `json:"reasoning_effort"`
	Thinking            json.RawMessage  `json:"thinking"`        // LiteLLM's extension
	SafetySettings      json.RawMessage  `json:"safety_settings"` // LiteLLM's extension
	Modalities          []string         `json:"modalities"`

	// Refused whenever set to something that changes the answer.
	Logprobs         bool            `json:"logprobs"`
	TopLogprobs      json.RawMessage `json:"top_logprobs"`
	LogitBias        json.RawMessage `json:"logit_bias"`
	Audio            json.RawMessage `json:"audio"`
	Prediction       json.RawMessage `json:"prediction"`
	WebSearchOptions json.RawMessage `json:"web_search_options"`
	Verbosity        json.RawMessage `json:"verbosity"`
	Functions        json.RawMessage `json:"functions"`
	FunctionCall     json.RawMessage `json:"function_call"`

	// Ignored: the gateway's concern (stream_options) or settings of OpenAI's own
	// platform that mean nothing to Google.
	StreamOptions        json.RawMessage `json:"stream_options"`
	Store                json.RawMessage `json:"store"`
	Metadata             json.RawMessage `json:"metadata"`
	ServiceTier          json.RawMessage `json:"service_tier"`
	PromptCacheKey       json.RawMessage `json:"prompt_cache_key"`
	PromptCacheRetention json.RawMessage `json:"prompt_cache_retention"`
	User                 json.RawMessage `json:"user"`
	SafetyIdentifier     json.RawMessage `json:"safety_identifier"`
}

// gemChatMessage is one message of an OpenAI chat completion request.
type gemChatMessage struct {
	Role         string          `json:"role"`
	Content      json.RawMessage `json:"content"` // string, array of parts, or null
	ToolCalls    []chatToolCall  `json:"tool_calls"`
	ToolCallID   string          `json:"tool_call_id"`
	FunctionCall json.RawMessage `json:"function_call"` // deprecated, refused
}

type gemChatOutMessage struct {
	Role             string         `json:"role"`
	Content          *string        `json:"content"`
	Refusal          *string        `json:"refusal"`
	ToolCalls        []chatToolCall `json:"tool_calls,omitempty"`
	ReasoningContent string         `json:"reasoning_content,omitempty"` // LiteLLM's field
}

// gemChatUsage adds the thinking tokens Gemini reports to OpenAI's usage object.
type gemChatUsage struct {
	chatUsage
	CompletionTokensDetails struct {
		ReasoningTokens int `json:"reasoning_tokens"`
	} `json:"completion_tokens_details"`
}

// gemChatEmbedRequest is an OpenAI embeddings request
// (https://platform.openai.com/docs/api-reference/embeddings/create).
type gemChatEmbedRequest struct {
	Model          string          `json:"model"`
	Input          json.RawMessage `json:"input"`
	EncodingFormat string          `json:"encoding_format"`
	Dimensions     *int            `json:"dimensions"`
	User           json.RawMessage `json:"user"`
	TaskType       string          `json:"task_type"` // LiteLLM's extension for Google
}

type gemChatEmbeddingList struct {
	Object string             `json:"object"`
	Data   []gemChatEmbedding `json:"data"`
	Model  string             `json:"model"`
	Usage  struct {
		PromptTokens int `json:"prompt_tokens"`
		TotalTokens  int `json:"total_tokens"`
	} `json:"usage"`
}

type gemChatEmbedding struct {
	Object    string          `json:"object"`
	Index     int             `json:"index"`
	Embedding json.RawMessage `json:"embedding"`
}
