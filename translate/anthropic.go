package translate

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"
)

// The anthropic translator serves OpenAI Chat Completions clients from Anthropic's
// Messages API (https://docs.anthropic.com/en/api/messages). Decisions that are not
// forced by the two formats:
//
//   - response_format json_object/json_schema is served the way LiteLLM serves it: a tool
//     named anthropicJSONTool whose input_schema is the schema, forced with tool_choice.
//     Responses turn that tool's input back into message content with finish_reason
//     "stop", so the client sees JSON mode. It cannot be combined with client tools.
//   - OpenAI parameters Anthropic cannot honour (n > 1, logprobs, penalties, seed, audio,
//     ...) are refused with a 400 naming the parameter, never dropped silently. Parameters
//     that only configure OpenAI's own platform (store, metadata, service_tier,
//     prompt_cache_key, stream_options) are ignored. Unknown parameters are refused, as
//     OpenAI refuses them.
//   - top_k and thinking are accepted as Anthropic extensions and passed on, and
//     reasoning_effort becomes a thinking budget, as LiteLLM does.
//   - The conversation must start with a user message once system messages are lifted
//     out; tollgate refuses rather than invent a user turn.

// anthropicVersion is the anthropic-version header value; 2023-06-01 is the current
// version of the Messages API (https://docs.anthropic.com/en/api/versioning).
const anthropicVersion = "2023-06-01"

// anthropicDefaultMaxTokens is sent as max_tokens when the client set neither max_tokens
// nor max_completion_tokens: Anthropic requires the field and OpenAI does not. 4096 is
// LiteLLM's documented default (DEFAULT_ANTHROPIC_CHAT_MAX_TOKENS), so clients migrating
// from LiteLLM keep the same cap.
const anthropicDefaultMaxTokens = 4096

// anthropicJSONTool names the forced tool that carries response_format; LiteLLM uses the
// same name, so conversations recorded through LiteLLM replay unchanged.
const anthropicJSONTool = "json_tool_call"

// anthropicThinkingBudgets maps reasoning_effort to a thinking budget in tokens:
// LiteLLM's DEFAULT_REASONING_EFFORT_*_THINKING_BUDGET values.
var anthropicThinkingBudgets = map[string]int{"low": 1024, "medium": 2048, "high": 4096}

// anthropicSpec is the registry entry for the anthropic/ provider prefix.
var anthropicSpec = &Spec{
	Name:        "anthropic",
	DefaultBase: "https://api.anthropic.com",
	KeyRequired: true,
	Endpoints:   []Endpoint{ChatCompletions, Messages, CountTokens},
	Translator:  anthropicTranslator{},
}

// anthropicTranslator converts OpenAI chat completions to and from Anthropic Messages.
type anthropicTranslator struct {
	// now stamps "created"; nil means time.Now. Tests fix it for golden files.
	now func() time.Time
}

func (a anthropicTranslator) created() int64 {
	if a.now == nil {
		return time.Now().Unix()
	}
	return a.now().Unix()
}

// Request translates an OpenAI chat completion request into a Messages API request;
// native Messages API requests only get the deployment's model (anthropicNativeRequest).
func (a anthropicTranslator) Request(ep Endpoint, body []byte, t *Target) (*Upstream, error) {
	if ep.Native() {
		return anthropicNativeRequest(ep, body, t)
	}
	if ep != ChatCompletions {
		return nil, &APIError{Status: 400, Type: "invalid_request_error", Code: "unsupported_endpoint",
			Message: fmt.Sprintf("anthropic deployments serve chat/completions, messages and messages/count_tokens, not %s", ep)}
	}
	req, err := anthropicBuildRequest(body, t.Model)
	if err != nil {
		return nil, err
	}
	out, err := marshalJSON(req, len(body))
	if err != nil {
		// Only the client's own JSON (schemas, cache_control) is copied in raw, and it
		// was decoded once already, so this is an internal fault.
		return nil, fmt.Errorf("encode anthropic request: %w", err)
	}
	base, err := anthropicBase(t)
	if err != nil {
		return nil, err
	}
	return &Upstream{
		Path:      anthropicPath(base),
		Authority: base.Host,
		Headers:   anthropicHeaders(t),
		Body:      out,
	}, nil
}

// anthropicBase is the deployment's api_base, or Anthropic's when it has none.
func anthropicBase(t *Target) (*url.URL, error) {
	if t.Base != nil {
		return t.Base, nil
	}
	base, err := url.Parse(anthropicSpec.DefaultBase)
	if err != nil {
		return nil, fmt.Errorf("anthropic default base: %w", err)
	}
	return base, nil
}

// anthropicPath appends the Messages endpoint to api_base. Like LiteLLM it accepts a base
// that already ends in /v1/messages; unlike LiteLLM it also accepts one ending in /v1
// (the form OpenAI-style configs use) without doubling the version segment.
func anthropicPath(base *url.URL) string {
	p := strings.TrimSuffix(base.EscapedPath(), "/")
	switch {
	case strings.HasSuffix(p, "/v1/messages"):
	case strings.HasSuffix(p, "/v1"):
		p += "/messages"
	default:
		p += "/v1/messages"
	}
	if base.RawQuery != "" {
		p += "?" + base.RawQuery
	}
	return p
}

// anthropicHeaders are the credential and version headers, then the deployment's
// extra_headers (sorted, so the result is stable); an extra header replaces a default one
// of the same name, which is how a deployment opts into an anthropic-beta or pins a
// different anthropic-version.
func anthropicHeaders(t *Target) []Header {
	hs := make([]Header, 0, 2+len(t.ExtraHeaders))
	if t.APIKey != "" {
		hs = append(hs, Header{"x-api-key", t.APIKey})
	}
	hs = append(hs, Header{"anthropic-version", anthropicVersion})
	extra := make([]Header, 0, len(t.ExtraHeaders))
	for k, v := range t.ExtraHeaders {
		extra = append(extra, Header{strings.ToLower(k), v})
	}
	sort.Slice(extra, func(i, j int) bool { return extra[i].Key < extra[j].Key })
next:
	for _, h := range extra {
		for i := range hs {
			if hs[i].Key == h.Key {
				hs[i].Value = h.Value
				continue next
			}
		}
		hs = append(hs, h)
	}
	return hs
}

// anthropicBuildRequest decodes an OpenAI chat completion request and builds the
// Messages request for model. Every client mistake is a 400 *APIError naming its
// parameter.
func anthropicBuildRequest(body []byte, model string) (*anthropicRequest, error) {
	var in anthChatRequest
	if err := decodeChatRequest(body, &in, anthKnownParams); err != nil {
		return nil, err
	}
	if err := anthropicRefuse(&in); err != nil {
		return nil, err
	}

	req := &anthropicRequest{
		Model:       model,
		Stream:      in.Stream,
		Temperature: in.Temperature,
		TopP:        in.TopP,
		TopK:        in.TopK,
	}
	system, msgs, err := anthropicMessages(in.Messages)
	if err != nil {
		return nil, err
	}
	req.Messages = msgs
	if len(system) == 1 && system[0].CacheControl == nil {
		req.System = system[0].Text
	} else if len(system) > 0 {
		req.System = system
	}
	if !isNull(in.Stop) {
		if req.StopSequences, err = parseStop(in.Stop); err != nil {
			return nil, err
		}
	}
	switch {
	case in.User != "":
		req.Metadata = &anthropicMetadata{UserID: in.User}
	case in.SafetyIdentifier != "":
		req.Metadata = &anthropicMetadata{UserID: in.SafetyIdentifier}
	}

	if !isNull(in.Thinking) {
		if in.Thinking[0] != '{' {
			return nil, invalidParam("thinking", "Invalid value for 'thinking': expected an object")
		}
		req.Thinking = in.Thinking
	}
	budget, err := anthropicThinking(req, in.ReasoningEffort)
	if err != nil {
		return nil, err
	}
	maxTokens, name := in.MaxCompletionTokens, "max_completion_tokens" // the newer name wins
	if maxTokens == nil {
		maxTokens, name = in.MaxTokens, "max_tokens"
	}
	switch {
	case maxTokens == nil:
		req.MaxTokens = anthropicDefaultMaxTokens + budget
	case *maxTokens < 1:
		return nil, invalidParam(name, "%s must be at least 1, got %d", name, *maxTokens)
	case budget > 0 && *maxTokens <= budget:
		return nil, invalidParam(name, "%s (%d) must be greater than the thinking budget (%d tokens)", name, *maxTokens, budget)
	default:
		req.MaxTokens = *maxTokens
	}

	if req.Tools, err = anthropicTools(in.Tools); err != nil {
		return nil, err
	}
	if req.ToolChoice, err = anthropicToolChoiceFor(in.ToolChoice, req.Tools); err != nil {
		return nil, err
	}
	if in.ParallelToolCalls != nil && !*in.ParallelToolCalls && len(req.Tools) > 0 {
		if req.ToolChoice == nil {
			req.ToolChoice = &anthropicToolChoice{Type: "auto"}
		}
		if req.ToolChoice.Type != "none" {
			req.ToolChoice.DisableParallelToolUse = true
		}
	}
	if err := anthropicResponseFormat(req, in.ResponseFormat); err != nil {
		return nil, err
	}
	return req, nil
}

// anthKnownParams are the request members anthChatRequest declares.
var anthKnownParams = knownParams[anthChatRequest]()

// anthropicRefuse answers the OpenAI parameters Anthropic cannot honour, in a fixed
// order so a request with several always gets the same answer.
func anthropicRefuse(in *anthChatRequest) error {
	switch {
	case in.N != nil && *in.N != 1:
		return unsupportedParam("n", "must be 1: Anthropic returns one choice per request")
	case in.Logprobs:
		return unsupportedParam("logprobs", "is not available from Anthropic")
	case !isNull(in.TopLogprobs):
		return unsupportedParam("top_logprobs", "is not available from Anthropic")
	case in.PresencePenalty != 0:
		return unsupportedParam("presence_penalty", "is not supported by Anthropic")
	case in.FrequencyPenalty != 0:
		return unsupportedParam("frequency_penalty", "is not supported by Anthropic")
	case len(in.LogitBias) > 0:
		return unsupportedParam("logit_bias", "is not supported by Anthropic")
	case !isNull(in.Seed):
		return unsupportedParam("seed", "is not supported by Anthropic")
	case !isNull(in.Audio):
		return unsupportedParam("audio", "is not supported by Anthropic")
	case !isNull(in.Prediction):
		return unsupportedParam("prediction", "is not supported by Anthropic")
	case !isNull(in.WebSearchOptions):
		return unsupportedParam("web_search_options", "is not supported by Anthropic")
	case !isNull(in.Verbosity):
		return unsupportedParam("verbosity", "is not supported by Anthropic")
	case !isNull(in.Functions):
		return unsupportedParam("functions", "is deprecated; use 'tools' and 'tool_choice'")
	case !isNull(in.FunctionCall):
		return unsupportedParam("function_call", "is deprecated; use 'tools' and 'tool_choice'")
	}
	for _, m := range in.Modalities {
		if m != "text" {
			return unsupportedParam("modalities", "may only be [\"text\"]: Anthropic answers in text")
		}
	}
	return nil
}

// anthropicThinking sets req.Thinking from reasoning_effort and returns the thinking
// budget in effect, which max_tokens must exceed.
func anthropicThinking(req *anthropicRequest, effort string) (int, error) {
	if effort != "" {
		if req.Thinking != nil {
			return 0, invalidParam("reasoning_effort", "Set either 'reasoning_effort' or 'thinking', not both")
		}
		switch budget, ok := anthropicThinkingBudgets[effort]; {
		case ok:
			req.Thinking = json.RawMessage(fmt.Sprintf(`{"type":"enabled","budget_tokens":%d}`, budget))
		case effort == "none" || effort == "minimal":
			// No extended thinking is the closest Anthropic has to minimal reasoning.
		default:
			return 0, invalidParam("reasoning_effort", "Invalid value for 'reasoning_effort': %q (use low, medium or high)", effort)
		}
	}
	if req.Thinking == nil {
		return 0, nil
	}
	var th struct {
		Type         string `json:"type"`
		BudgetTokens int    `json:"budget_tokens"`
	}
	if err := decodeParam(req.Thinking, &th, "thinking"); err != nil {
		return 0, err
	}
	if th.Type != "enabled" {
		return 0, nil
	}
	return th.BudgetTokens, nil
}

// anthropicMessages splits OpenAI messages into the system prompt and the conversation,
// merging consecutive turns of one role (tool results become user turns) because the
// Messages API expects user and assistant turns to alternate.
func anthropicMessages(in []anthChatMessage) ([]anthropicBlock, []anthropicMessage, error) {
	system, turns, err := chatConversation(len(in), func(i int) (string, []anthropicBlock, error) {
		m := &in[i]
		role, blocks, err := convertChatMessage(m.Role, i, "assistant", chatRoles[anthropicBlock]{
			system:    func() ([]anthropicBlock, error) { return anthropicParts(m.Content, i, anthTextOnly) },
			user:      func() ([]anthropicBlock, error) { return anthropicParts(m.Content, i, anthUserParts) },
			assistant: func() ([]anthropicBlock, error) { return anthropicAssistant(m, i) },
			tool:      func() ([]anthropicBlock, error) { return anthropicToolResult(m, i) },
		})
		return role, anthCacheLast(blocks, m.CacheControl), err
	})
	if err != nil {
		return nil, nil, err
	}
	if turns[0].role != "user" {
		return nil, nil, invalidParam("messages", "Anthropic requires the conversation to start with a user message (system messages aside)")
	}
	out := make([]anthropicMessage, len(turns))
	for i, t := range turns {
		out[i] = anthropicMessage{Role: t.role, Content: t.blocks}
	}
	return system, out, nil
}

// anthCacheLast puts a message-level cache_control (LiteLLM's extension) on the
// message's last block, which is where Anthropic reads prompt-cache breakpoints.
func anthCacheLast(blocks []anthropicBlock, cc json.RawMessage) []anthropicBlock {
	if !isNull(cc) && len(blocks) > 0 && blocks[len(blocks)-1].CacheControl == nil {
		blocks[len(blocks)-1].CacheControl = cc
	}
	return blocks
}

// Which content parts a role may carry.
const (
	anthTextOnly = iota // system, developer, tool
	anthUserParts
	anthAssistantParts
)

// anthropicParts converts a message's "content" (a string, an array of parts, or null)
// into blocks. Empty text is dropped: Anthropic rejects empty text blocks.
func anthropicParts(raw json.RawMessage, msg int, allowed int) ([]anthropicBlock, error) {
	if isNull(raw) {
		return nil, nil
	}
	s, parts, err := decodeContent[chatPart](raw, func() string { return fmt.Sprintf("messages[%d].content", msg) })
	if err != nil || (s != nil && *s == "") {
		return nil, err
	}
	if s != nil {
		return []anthropicBlock{{Type: "text", Text: *s}}, nil
	}
	blocks := make([]anthropicBlock, 0, len(parts))
	for j, part := range parts {
		pp := func() string { return fmt.Sprintf("messages[%d].content[%d]", msg, j) }
		var b anthropicBlock
		switch {
		case part.Type == "text" || (part.Type == "refusal" && allowed == anthAssistantParts):
			text, err := chatPartText(part.Type, part.Text, part.Refusal, pp)
			if err != nil {
				return nil, err
			}
			if *text == "" {
				continue
			}
			b = anthropicBlock{Type: "text", Text: *text}
		case part.Type == "image_url" && allowed == anthUserParts:
			src, err := anthropicImageSource(part.ImageURL, pp)
			if err != nil {
				return nil, err
			}
			b = anthropicBlock{Type: "image", Source: src}
		case part.Type == "file" && allowed == anthUserParts:
			src, err := anthropicFileSource(part.File, pp)
			if err != nil {
				return nil, err
			}
			b = anthropicBlock{Type: "document", Source: src}
		case part.Type == "input_audio" && allowed == anthUserParts:
			return nil, unsupportedParam(pp(), "(input_audio) cannot be sent to Anthropic, which accepts no audio")
		default:
			return nil, invalidParam(pp(), "%s: content part type %q is not allowed here", pp(), part.Type)
		}
		if !isNull(part.CacheControl) {
			b.CacheControl = part.CacheControl
		}
		blocks = append(blocks, b)
	}
	return blocks, nil
}

// anthropicImageSource maps an image_url to an image source: data URLs become base64
// sources with their media type, http(s) URLs become url sources.
func anthropicImageSource(raw json.RawMessage, part func() string) (*anthropicSource, error) {
	param := func() string { return part() + ".image_url" }
	u, err := imageURLOf(raw, param)
	if err != nil {
		return nil, err
	}
	if media, data, ok := parseDataURL(u); ok {
		return &anthropicSource{Type: "base64", MediaType: media, Data: data}, nil
	}
	if strings.HasPrefix(u, "https://") || strings.HasPrefix(u, "http://") {
		return &anthropicSource{Type: "url", URL: u}, nil
	}
	p := param() + ".url"
	return nil, invalidParam(p, "%s must be an http(s) URL or a base64 data URL", p)
}

// anthropicFileSource maps a PDF sent as file_data to a base64 document source; file IDs
// refer to OpenAI's file store, which Anthropic cannot read.
func anthropicFileSource(f *chatFile, part func() string) (*anthropicSource, error) {
	if f == nil || f.FileData == "" {
		return nil, unsupportedParam(part()+".file", "needs 'file_data': OpenAI file IDs cannot be sent to Anthropic")
	}
	media, data, ok := parseDataURL(f.FileData)
	if !ok || media != "application/pdf" {
		p := part() + ".file.file_data"
		return nil, invalidParam(p, "%s must be a base64 data URL of a PDF", p)
	}
	return &anthropicSource{Type: "base64", MediaType: media, Data: data}, nil
}

// anthropicAssistant converts an assistant message: LiteLLM-style thinking_blocks first
// (Anthropic wants signed thinking ahead of the text and tool use it led to), then text,
// then one tool_use per tool call.
func anthropicAssistant(m *anthChatMessage, i int) ([]anthropicBlock, error) {
	if !isNull(m.FunctionCall) {
		return nil, unsupportedParam(fmt.Sprintf("messages[%d].function_call", i), "is deprecated; use 'tool_calls'")
	}
	blocks := make([]anthropicBlock, 0, len(m.ThinkingBlocks)+1+len(m.ToolCalls))
	for j, tb := range m.ThinkingBlocks {
		switch tb.Type {
		case "thinking":
			blocks = append(blocks, anthropicBlock{Type: tb.Type, Thinking: tb.Thinking, Signature: tb.Signature})
		case "redacted_thinking":
			blocks = append(blocks, anthropicBlock{Type: tb.Type, Data: tb.Data})
		default:
			p := fmt.Sprintf("messages[%d].thinking_blocks[%d].type", i, j)
			return nil, invalidParam(p, "%s must be thinking or redacted_thinking", p)
		}
	}
	text, err := anthropicParts(m.Content, i, anthAssistantParts)
	if err != nil {
		return nil, err
	}
	blocks = append(blocks, text...)
	for j, tc := range m.ToolCalls {
		p := func() string { return fmt.Sprintf("messages[%d].tool_calls[%d]", i, j) }
		if tc.Type != "" && tc.Type != "function" {
			return nil, unsupportedParam(p()+".type", fmt.Sprintf("%q: only function tool calls can be sent to Anthropic", tc.Type))
		}
		if tc.ID == "" || tc.Function.Name == "" {
			return nil, invalidParam(p(), "%s needs an 'id' and a 'function.name'", p())
		}
		input := json.RawMessage(tc.Function.Arguments)
		if strings.TrimSpace(tc.Function.Arguments) == "" {
			input = json.RawMessage("{}")
		} else if !json.Valid(input) || strings.TrimSpace(tc.Function.Arguments)[0] != '{' {
			return nil, invalidParam(p()+".function.arguments", "%s.function.arguments must be a JSON object: Anthropic tool input is an object", p())
		}
		blocks = append(blocks, anthropicBlock{Type: "tool_use", ID: tc.ID, Name: tc.Function.Name, Input: input})
	}
	return blocks, nil
}

// anthropicToolResult converts a role "tool" message into a tool_result block; the caller
// merges consecutive results into one user turn.
func anthropicToolResult(m *anthChatMessage, i int) ([]anthropicBlock, error) {
	if m.ToolCallID == "" {
		p := fmt.Sprintf("messages[%d].tool_call_id", i)
		return nil, invalidParam(p, "%s is required for a tool message", p)
	}
	b := anthropicBlock{Type: "tool_result", ToolUseID: m.ToolCallID}
	if !isNull(m.Content) && m.Content[0] == '"' {
		var s string
		if err := decodeParamAt(m.Content, &s, func() string { return fmt.Sprintf("messages[%d].content", i) }); err != nil {
			return nil, err
		}
		if s != "" {
			b.Content = s
		}
	} else {
		parts, err := anthropicParts(m.Content, i, anthTextOnly)
		if err != nil {
			return nil, err
		}
		if len(parts) > 0 {
			b.Content = parts
		}
	}
	return []anthropicBlock{b}, nil
}

// anthropicTools maps function tools to Anthropic tools; a function without parameters
// takes an empty object, since input_schema is required.
func anthropicTools(in []chatTool) ([]anthropicTool, error) {
	if len(in) == 0 {
		return nil, nil
	}
	out := make([]anthropicTool, 0, len(in))
	for i, t := range in {
		if t.Type != "function" {
			return nil, unsupportedParam(fmt.Sprintf("tools[%d].type", i), fmt.Sprintf("%q: only function tools can be sent to Anthropic", t.Type))
		}
		if t.Function == nil || t.Function.Name == "" {
			p := fmt.Sprintf("tools[%d].function.name", i)
			return nil, invalidParam(p, "%s is required", p)
		}
		if t.Function.Name == anthropicJSONTool {
			// Its calls come back as message content (JSON mode), not as tool calls.
			p := fmt.Sprintf("tools[%d].function.name", i)
			return nil, invalidParam(p, "%s: the name %q is reserved for response_format", p, anthropicJSONTool)
		}
		schema := t.Function.Parameters
		if isNull(schema) {
			schema = json.RawMessage(`{"type":"object","properties":{}}`)
		}
		out = append(out, anthropicTool{Name: t.Function.Name, Description: t.Function.Description,
			InputSchema: schema, CacheControl: t.CacheControl})
	}
	return out, nil
}

// anthropicToolChoiceFor maps tool_choice: auto and none keep their names, required is
// Anthropic's "any", and a named function is a "tool" choice.
func anthropicToolChoiceFor(raw json.RawMessage, tools []anthropicTool) (*anthropicToolChoice, error) {
	if isNull(raw) {
		return nil, nil
	}
	mode, name, err := parseToolChoice(raw, len(tools) > 0, "Anthropic", func(name string) bool {
		return slices.ContainsFunc(tools, func(t anthropicTool) bool { return t.Name == name })
	})
	switch {
	case err != nil:
		return nil, err
	case name != "":
		return &anthropicToolChoice{Type: "tool", Name: name}, nil
	case mode == "required":
		return &anthropicToolChoice{Type: "any"}, nil
	}
	return &anthropicToolChoice{Type: mode}, nil
}

// anthropicResponseFormat serves response_format with a forced tool whose input schema is
// the requested schema; see the package notes above.
func anthropicResponseFormat(req *anthropicRequest, raw json.RawMessage) error {
	if isNull(raw) {
		return nil
	}
	description, schema, ok, err := jsonToolFormat(raw, "Anthropic")
	if err != nil || !ok {
		return err
	}
	if len(req.Tools) > 0 {
		return unsupportedParam("response_format",
			"cannot be combined with 'tools' for Anthropic models: tollgate serves JSON output through a forced tool")
	}
	req.Tools = []anthropicTool{{Name: anthropicJSONTool, Description: description, InputSchema: schema}}
	req.ToolChoice = &anthropicToolChoice{Type: "tool", Name: anthropicJSONTool}
	return nil
}

// Response translates a whole Messages API response (any status) into OpenAI format;
// responses to native Messages API requests pass through (anthropicNativeResponse).
func (a anthropicTranslator) Response(ep Endpoint, status int, body []byte) ([]byte, Usage, error) {
	if ep.Native() {
		return anthropicNativeResponse(ep, status, body)
	}
	if status >= 400 {
		return anthropicError(status, body).JSON(), Usage{}, nil
	}
	var msg anthropicResponse
	if err := json.Unmarshal(body, &msg); err != nil || msg.ID == "" {
		return nil, Usage{}, &APIError{Status: 502, Type: "api_error", Code: "bad_upstream_response",
			Message: "Anthropic returned a response that is not a Message object"}
	}
	out := chatCompletion[anthChatOutMessage, chatUsage]{
		ID:      msg.ID,
		Object:  "chat.completion",
		Created: a.created(),
		Model:   msg.Model,
		Choices: []chatChoice[anthChatOutMessage]{{Message: anthChatOutMessage{Role: "assistant"}}},
	}
	choice := &out.Choices[0]
	var text, reasoning strings.Builder
	jsonMode := false
	for _, b := range msg.Content {
		switch b.Type {
		case "text":
			text.WriteString(b.Text)
		case "tool_use":
			args := string(b.Input)
			if args == "" {
				args = "{}"
			}
			if b.Name == anthropicJSONTool {
				jsonMode = true
				text.WriteString(args)
				continue
			}
			tc := chatToolCall{ID: b.ID, Type: "function"}
			tc.Function.Name, tc.Function.Arguments = b.Name, args
			choice.Message.ToolCalls = append(choice.Message.ToolCalls, tc)
		case "thinking":
			reasoning.WriteString(b.Thinking)
			choice.Message.ThinkingBlocks = append(choice.Message.ThinkingBlocks,
				anthropicBlock{Type: b.Type, Thinking: b.Thinking, Signature: b.Signature})
		case "redacted_thinking":
			choice.Message.ThinkingBlocks = append(choice.Message.ThinkingBlocks, anthropicBlock{Type: b.Type, Data: b.Data})
		}
	}
	if text.Len() > 0 || len(choice.Message.ToolCalls) == 0 {
		s := text.String()
		choice.Message.Content = &s
	}
	choice.Message.ReasoningContent = reasoning.String()
	choice.FinishReason = anthropicFinishReason(msg.StopReason, jsonMode)
	u := anthropicUsageOf(msg.Usage, Usage{})
	if u.Known {
		out.Usage = chatUsageOf(u)
	}
	b, err := marshalJSON(out, len(body))
	if err != nil {
		return nil, Usage{}, fmt.Errorf("encode chat completion: %w", err)
	}
	return b, u, nil
}

// anthropicFinishReason maps stop_reason to finish_reason. In JSON mode the forced tool
// call is the answer, so it finishes with "stop".
func anthropicFinishReason(stop string, jsonMode bool) string {
	switch stop {
	case "max_tokens", "model_context_window_exceeded":
		return "length"
	case "tool_use":
		if jsonMode {
			return "stop"
		}
		return "tool_calls"
	case "refusal":
		return "content_filter"
	}
	return "stop" // end_turn, stop_sequence, pause_turn
}

// anthropicUsageOf folds an Anthropic usage object into prev: each count present replaces
// the earlier one (message_delta counts are cumulative). Prompt tokens follow OpenAI's
// convention of counting every input token, cached or not.
func anthropicUsageOf(u anthropicUsage, prev Usage) Usage {
	in := prev.PromptTokens - prev.CachedTokens - prev.CacheCreationTokens
	set := func(dst *int, src *int) {
		if src != nil {
			*dst = *src
			prev.Known = true
		}
	}
	set(&in, u.InputTokens)
	set(&prev.CachedTokens, u.CacheReadInputTokens)
	set(&prev.CacheCreationTokens, u.CacheCreationInputTokens)
	set(&prev.CompletionTokens, u.OutputTokens)
	prev.PromptTokens = in + prev.CachedTokens + prev.CacheCreationTokens
	return prev
}

// anthropicError maps an Anthropic error response (https://docs.anthropic.com/en/api/errors)
// to an OpenAI error with the same status.
func anthropicError(status int, body []byte) *APIError {
	var env struct {
		Error anthropicErrorBody `json:"error"`
	}
	if json.Unmarshal(body, &env) != nil || env.Error.Message == "" {
		// Not Anthropic's shape: a proxy or load balancer answered (413 comes from
		// Cloudflare). Its body may be a whole HTML page, so only the status is told.
		msg := fmt.Sprintf("Anthropic returned HTTP %d", status)
		if text := http.StatusText(status); text != "" {
			msg += " (" + text + ")"
		}
		env.Error = anthropicErrorBody{Message: msg}
	}
	return anthropicAPIError(status, env.Error)
}

// anthropicAPIError builds the OpenAI error for an Anthropic error object. The OpenAI type
// follows the status, as for every provider; the code carries Anthropic's error type, or
// context_length_exceeded when the prompt does not fit, which is what context-window
// fallbacks key on. Credential failures get tollgate's own message: the client
// authenticated to tollgate, it is the deployment's key Anthropic refused, and Anthropic's
// text is not repeated in case it quotes the key.
func anthropicAPIError(status int, eb anthropicErrorBody) *APIError {
	e := StatusError(status, eb.Message)
	e.Code = eb.Type
	switch {
	case eb.Type == "authentication_error" || eb.Type == "permission_error" || status == 401 || status == 403:
		e.Message = fmt.Sprintf("Anthropic rejected the credentials configured for this deployment (%s): check its api_key",
			anthOr(eb.Type, fmt.Sprintf("HTTP %d", status)))
	case anthropicContextExceeded(eb.Message):
		e.Code = "context_length_exceeded"
		e.Type = "invalid_request_error"
	}
	return e
}

// anthropicErrorStatus is the HTTP status Anthropic documents for an error type; a
// stream's error event carries the type only.
func anthropicErrorStatus(errType string) int {
	switch errType {
	case "invalid_request_error":
		return 400
	case "authentication_error":
		return 401
	case "permission_error":
		return 403
	case "not_found_error":
		return 404
	case "request_too_large":
		return 413
	case "rate_limit_error":
		return 429
	case "overloaded_error":
		return 529
	}
	return 500 // api_error and types added later
}

func anthOr(s, fallback string) string {
	if s != "" {
		return s
	}
	return fallback
}

// anthropicContextExceeded recognises Anthropic's messages for a prompt longer than the
// context window ("prompt is too long: 208310 tokens > 200000 maximum") and for a prompt
// plus max_tokens that exceed it.
func anthropicContextExceeded(msg string) bool {
	m := strings.ToLower(msg)
	return strings.Contains(m, "prompt is too long") || strings.Contains(m, "exceed context limit")
}

// Stream starts translating one Messages API event stream. The output ends with the
// usage chunk (empty choices) before [DONE] when the client set
// stream_options.include_usage, as an OpenAI stream does; see anthropicStream. The stream
// of a native Messages API request passes through (anthropicPassStream).
func (a anthropicTranslator) Stream(ep Endpoint, o StreamOptions) Stream {
	if ep.Native() {
		return &anthropicPassStream{}
	}
	return newAnthropicStream(a, o.IncludeUsage)
}
