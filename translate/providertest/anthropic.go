package providertest

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
)

// Anthropic is a fake Anthropic Messages API (POST /v1/messages,
// https://docs.anthropic.com/en/api/messages). It checks requests as the real API
// documents (x-api-key, anthropic-version, max_tokens, roles, content blocks, tool
// pairing, tools and tool_choice) and answers Anthropic-shaped errors when they fail; a
// valid request gets a Message, or its streamed events
// (https://docs.anthropic.com/en/api/messages-streaming) when "stream" is true. It also
// serves POST /v1/messages/count_tokens (see countAnthropicTokens).
//
// It answers deterministically: the reply repeats the last user message ("You said:
// ..."), or, when tool_choice forces a tool, calls that tool with {"text": <the reply>}.
// Usage counts one token per word. Blocks up to the last cache_control breakpoint are a
// cacheable prefix: the first request with a prefix reports it as
// cache_creation_input_tokens, later ones as cache_read_input_tokens.
//
// One rule is stricter than Anthropic's current reference, which says consecutive turns
// of one role are combined: the fake requires the first message to be a user message
// and turns to alternate, as the API long did and as Bedrock still does, so a translator
// that forgets to merge turns fails here.
type Anthropic struct {
	// Key, when set, must arrive as "x-api-key: <Key>".
	Key string
	// Usage, when set, is the usage every Message reports, whole or streamed, in place of
	// the word counts: for a request with cache reads and cache writes at once.
	Usage *AnthropicUsage

	// recorder keeps the requests. FailNext failures fall on valid requests only, each
	// with the error type Anthropic documents for its status (529 is overloaded_error).
	recorder

	mu       sync.Mutex
	breaks   []string // how to end the next streams early; see BreakNextStream
	prefixes map[[32]byte]bool
	ids      int
}

// anthropicVersions are the anthropic-version values the API accepts
// (https://docs.anthropic.com/en/api/versioning).
var anthropicVersions = map[string]bool{"2023-06-01": true, "2023-01-01": true}

// StartAnthropic serves a fake Anthropic API on a loopback port until the test ends. Its
// API base (for api_base in config.yaml) is the server's URL.
func StartAnthropic(t testing.TB, key string) (*Anthropic, *httptest.Server) {
	t.Helper()
	f := &Anthropic{Key: key}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

// BreakNextStream makes the next streamed answer stop after its first text delta: with
// an error event of errorType (such as "overloaded_error"), or, when errorType is "", by
// ending the response without message_stop, as a dropped connection does.
func (f *Anthropic) BreakNextStream(errorType string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.breaks = append(f.breaks, errorType)
}

// ServeHTTP checks and answers one request, in the order the API does: path,
// credentials, version header, body.
func (f *Anthropic) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		writeAnthropicError(w, 400, "invalid_request_error", "could not read the request body")
		return
	}
	f.record(r, body)

	switch {
	case r.URL.Path != "/v1/messages" && r.URL.Path != anthropicCountPath:
		writeAnthropicError(w, 404, "not_found_error", "Not Found")
		return
	case r.Method != http.MethodPost:
		writeAnthropicError(w, 405, "invalid_request_error", "Method Not Allowed")
		return
	}
	key := r.Header.Get("x-api-key")
	switch {
	case key == "":
		writeAnthropicError(w, 401, "authentication_error", "x-api-key header is required")
		return
	case f.Key != "" && subtle.ConstantTimeCompare([]byte(key), []byte(f.Key)) != 1:
		writeAnthropicError(w, 401, "authentication_error", "invalid x-api-key")
		return
	}
	switch v := r.Header.Get("anthropic-version"); {
	case v == "":
		writeAnthropicError(w, 400, "invalid_request_error", "anthropic-version: header is required")
		return
	case !anthropicVersions[v]:
		writeAnthropicError(w, 400, "invalid_request_error", fmt.Sprintf("anthropic-version: %q is not a valid version", v))
		return
	}
	if r.URL.Path == anthropicCountPath {
		countAnthropicTokens(w, body)
		return
	}
	req, msg := checkAnthropicRequest(body)
	if msg != "" {
		writeAnthropicError(w, 400, "invalid_request_error", msg)
		return
	}

	if fail := f.nextFailure(); fail != 0 {
		typ := anthropicErrorTypes[fail]
		if typ == "" {
			typ = "api_error"
		}
		writeAnthropicError(w, fail, typ, fmt.Sprintf("the fake provider was told to fail with %d", fail))
		return
	}
	f.respond(w, req, nil)
}

// respond answers a checked Messages request: a Message, or its event stream. frames,
// when set, writes the stream's events in another framing (Bedrock's event stream)
// instead of server-sent events.
func (f *Anthropic) respond(w http.ResponseWriter, req *anthropicRequest, frames func(w http.ResponseWriter) func(map[string]any)) {
	f.mu.Lock()
	brk, broken := "", false
	if req.Stream && len(f.breaks) > 0 {
		brk, f.breaks, broken = f.breaks[0], f.breaks[1:], true
	}
	f.ids++
	id := fmt.Sprintf("msg_fake%04d", f.ids)
	usage := f.usage(req)
	f.mu.Unlock()

	reply := anthropicReply(req)
	usage.OutputTokens = countTokens(reply.text)
	if f.Usage != nil {
		usage = *f.Usage
	}
	if req.Stream {
		if frames != nil {
			emitAnthropic(frames(w), id, req.Model, reply, usage, brk, broken)
			return
		}
		streamAnthropic(w, id, req.Model, reply, usage, brk, broken)
		return
	}
	content := []any{map[string]any{"type": "text", "text": reply.text}}
	stop := "end_turn"
	if reply.tool != "" {
		content = []any{map[string]any{"type": "tool_use", "id": "toolu_" + id, "name": reply.tool, "input": json.RawMessage(reply.input())}}
		stop = "tool_use"
	}
	writeJSON(w, map[string]any{
		"id": id, "type": "message", "role": "assistant", "model": req.Model,
		"content": content, "stop_reason": stop, "stop_sequence": nil, "usage": usage,
	})
}

// anthropicErrorTypes are the documented error types by status
// (https://docs.anthropic.com/en/api/errors).
var anthropicErrorTypes = map[int]string{
	400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
	404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error",
	500: "api_error", 529: "overloaded_error",
}

// AnthropicUsage is a Message's usage object
// (https://docs.anthropic.com/en/api/messages): input_tokens excludes the tokens read from
// and written to the prompt cache.
type AnthropicUsage struct {
	InputTokens              int `json:"input_tokens"`
	CacheCreationInputTokens int `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     int `json:"cache_read_input_tokens"`
	OutputTokens             int `json:"output_tokens"`
}

// usage counts the prompt, splitting off the cacheable prefix: the blocks up to the last
// cache_control breakpoint. f.mu is held.
func (f *Anthropic) usage(req *anthropicRequest) AnthropicUsage {
	var texts []string
	words, cached, cut := 0, 0, 0
	add := func(b anthropicBlock) {
		text := anthropicBlockText(b)
		texts = append(texts, text)
		words += countTokens(text)
		if len(b.CacheControl) > 0 && string(b.CacheControl) != "null" {
			cached, cut = words, len(texts)
		}
	}
	for _, b := range req.system {
		add(b)
	}
	for _, m := range req.Messages {
		for _, b := range m.Content {
			add(b)
		}
	}
	u := AnthropicUsage{InputTokens: words - cached}
	if cached > 0 {
		sum := sha256.Sum256([]byte(strings.Join(texts[:cut], "\x00")))
		if f.prefixes[sum] {
			u.CacheReadInputTokens = cached
		} else {
			u.CacheCreationInputTokens = cached
		}
		if f.prefixes == nil {
			f.prefixes = map[[32]byte]bool{}
		}
		f.prefixes[sum] = true
	}
	return u
}

// anthropicAnswer is what the fake says: text, or a call of tool.
type anthropicAnswer struct{ text, tool string }

func (a anthropicAnswer) input() string {
	b, _ := json.Marshal(map[string]string{"text": a.text})
	return string(b)
}

func anthropicReply(req *anthropicRequest) anthropicAnswer {
	var prompt string
	for _, m := range req.Messages {
		if m.Role != "user" {
			continue
		}
		var texts, results []string
		for _, b := range m.Content {
			switch b.Type {
			case "text":
				texts = append(texts, b.Text)
			case "tool_result":
				results = append(results, anthropicBlockText(b))
			}
		}
		if len(texts) == 0 {
			texts = results
		}
		prompt = strings.Join(texts, " ")
	}
	a := anthropicAnswer{text: "You said: " + prompt}
	if req.ToolChoice != nil {
		switch req.ToolChoice.Type {
		case "tool":
			a.tool = req.ToolChoice.Name
		case "any":
			a.tool = req.Tools[0].Name
		}
	}
	return a
}

// streamAnthropic answers with the documented event flow: message_start, a ping, one
// content block (text deltas word by word, or a tool_use with its input in two
// input_json_delta pieces), message_delta with the stop reason and cumulative usage, and
// message_stop. Each event is flushed as it is written.
func streamAnthropic(w http.ResponseWriter, id, model string, reply anthropicAnswer, usage AnthropicUsage, brk string, broken bool) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	flusher, _ := w.(http.Flusher)
	send := func(v map[string]any) {
		b, _ := json.Marshal(v)
		fmt.Fprintf(w, "event: %s\ndata: %s\n\n", v["type"], b)
		if flusher != nil {
			flusher.Flush()
		}
	}
	emitAnthropic(send, id, model, reply, usage, brk, broken)
}

// emitAnthropic sends the events of streamAnthropic's flow, however they are framed.
func emitAnthropic(send func(map[string]any), id, model string, reply anthropicAnswer, usage AnthropicUsage, brk string, broken bool) {
	start := usage
	start.OutputTokens = 1
	send(map[string]any{"type": "message_start", "message": map[string]any{
		"id": id, "type": "message", "role": "assistant", "model": model, "content": []any{},
		"stop_reason": nil, "stop_sequence": nil, "usage": start,
	}})
	send(map[string]any{"type": "ping"})
	stop := "end_turn"
	if reply.tool != "" {
		stop = "tool_use"
		send(map[string]any{"type": "content_block_start", "index": 0, "content_block": map[string]any{
			"type": "tool_use", "id": "toolu_" + id, "name": reply.tool, "input": map[string]any{}}})
		in := reply.input()
		for _, part := range []string{in[:len(in)/2], in[len(in)/2:]} {
			send(map[string]any{"type": "content_block_delta", "index": 0, "delta": map[string]any{"type": "input_json_delta", "partial_json": part}})
		}
	} else {
		send(map[string]any{"type": "content_block_start", "index": 0, "content_block": map[string]any{"type": "text", "text": ""}})
		for i, word := range strings.SplitAfter(reply.text, " ") {
			send(map[string]any{"type": "content_block_delta", "index": 0, "delta": map[string]any{"type": "text_delta", "text": word}})
			if i == 0 && broken {
				if brk != "" {
					send(map[string]any{"type": "error", "error": map[string]any{"type": brk, "message": "the fake provider was told to break this stream"}})
				}
				return
			}
		}
	}
	send(map[string]any{"type": "content_block_stop", "index": 0})
	send(map[string]any{"type": "message_delta", "delta": map[string]any{"stop_reason": stop, "stop_sequence": nil}, "usage": usage})
	send(map[string]any{"type": "message_stop"})
}

func writeAnthropicError(w http.ResponseWriter, status int, typ, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{
		"type": "error", "error": map[string]any{"type": typ, "message": message}, "request_id": "req_fake",
	})
}

// anthropicRequest is a Messages API request as the fake checks it.
type anthropicRequest struct {
	Model         string             `json:"model"`
	MaxTokens     *int               `json:"max_tokens"`
	Messages      []anthropicMessage `json:"messages"`
	System        json.RawMessage    `json:"system"`
	Metadata      json.RawMessage    `json:"metadata"`
	StopSequences []string           `json:"stop_sequences"`
	Stream        bool               `json:"stream"`
	Temperature   *float64           `json:"temperature"`
	TopP          *float64           `json:"top_p"`
	TopK          *int               `json:"top_k"`
	Tools         []struct {
		Name        string          `json:"name"`
		Description string          `json:"description"`
		InputSchema json.RawMessage `json:"input_schema"`
	} `json:"tools"`
	ToolChoice *struct {
		Type string `json:"type"`
		Name string `json:"name"`
	} `json:"tool_choice"`
	Thinking *struct {
		Type         string `json:"type"`
		BudgetTokens int    `json:"budget_tokens"`
	} `json:"thinking"`
	ServiceTier string `json:"service_tier"`

	system []anthropicBlock // System, as blocks
}

type anthropicMessage struct {
	Role    string           `json:"role"`
	Content []anthropicBlock `json:"content"`
}

// UnmarshalJSON accepts string content, the shorthand for one text block.
func (m *anthropicMessage) UnmarshalJSON(b []byte) error {
	var raw struct {
		Role    string          `json:"role"`
		Content json.RawMessage `json:"content"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	m.Role = raw.Role
	var s string
	if json.Unmarshal(raw.Content, &s) == nil {
		if s != "" {
			m.Content = []anthropicBlock{{Type: "text", Text: s}}
		}
		return nil
	}
	return json.Unmarshal(raw.Content, &m.Content)
}

type anthropicBlock struct {
	Type      string          `json:"type"`
	Text      string          `json:"text"`
	Source    *anthropicSrc   `json:"source"`
	ID        string          `json:"id"`
	Name      string          `json:"name"`
	Input     json.RawMessage `json:"input"`
	ToolUseID string          `json:"tool_use_id"`
	Content   json.RawMessage `json:"content"`
	Thinking  *string         `json:"thinking"`
	Signature string          `json:"signature"`
	Data      string          `json:"data"`
	// CacheControl marks a prompt-cache breakpoint.
	CacheControl json.RawMessage `json:"cache_control"`
}

type anthropicSrc struct {
	Type      string `json:"type"`
	MediaType string `json:"media_type"`
	Data      string `json:"data"`
	URL       string `json:"url"`
}

// anthropicBlockText is the text a block contributes to the prompt.
func anthropicBlockText(b anthropicBlock) string {
	switch b.Type {
	case "text":
		return b.Text
	case "tool_result":
		return contentText(b.Content)
	case "tool_use":
		return string(b.Input)
	}
	return ""
}

var (
	anthropicToolName = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,128}$`)
	anthropicFields   = map[string]bool{
		"model": true, "max_tokens": true, "messages": true, "system": true, "metadata": true,
		"stop_sequences": true, "stream": true, "temperature": true, "top_p": true, "top_k": true,
		"tools": true, "tool_choice": true, "thinking": true, "service_tier": true,
	}
	anthropicImageTypes = map[string]bool{"image/jpeg": true, "image/png": true, "image/gif": true, "image/webp": true}
	anthropicBlockTypes = map[string]map[string]bool{
		"user":      {"text": true, "image": true, "document": true, "tool_result": true},
		"assistant": {"text": true, "tool_use": true, "thinking": true, "redacted_thinking": true},
	}
)

// anthropicExtraInputs is the API's message for a body that is not a JSON object or has
// a member allowed lacks (the first in name order), and "" for one that is fine.
func anthropicExtraInputs(body []byte, allowed map[string]bool) string {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		return "There was an error parsing the body: " + err.Error()
	}
	for _, k := range slices.Sorted(maps.Keys(fields)) {
		if !allowed[k] {
			return k + ": Extra inputs are not permitted"
		}
	}
	return ""
}

// checkAnthropicRequest decodes and checks a Messages request, returning the first
// problem in the style of the API's own messages (a field path, then the rule).
func checkAnthropicRequest(body []byte) (*anthropicRequest, string) {
	if msg := anthropicExtraInputs(body, anthropicFields); msg != "" {
		return nil, msg
	}
	var req anthropicRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, "There was an error parsing the body: " + err.Error()
	}
	switch {
	case req.Model == "":
		return nil, "model: Field required"
	case req.MaxTokens == nil:
		return nil, "max_tokens: Field required"
	case *req.MaxTokens < 1:
		return nil, "max_tokens: Input should be greater than or equal to 1"
	case len(req.Messages) == 0:
		return nil, "messages: Field required"
	case req.Temperature != nil && (*req.Temperature < 0 || *req.Temperature > 1):
		return nil, "temperature: Input should be less than or equal to 1"
	case req.TopP != nil && (*req.TopP < 0 || *req.TopP > 1):
		return nil, "top_p: Input should be less than or equal to 1"
	case req.TopK != nil && *req.TopK < 0:
		return nil, "top_k: Input should be greater than or equal to 0"
	}
	if msg := checkAnthropicSystem(&req); msg != "" {
		return nil, msg
	}
	if len(req.Metadata) > 0 {
		var md map[string]json.RawMessage
		if json.Unmarshal(req.Metadata, &md) != nil {
			return nil, "metadata: Input should be a valid dictionary"
		}
		for k, v := range md {
			var s string
			if k != "user_id" {
				return nil, "metadata." + k + ": Extra inputs are not permitted"
			}
			if json.Unmarshal(v, &s) != nil || len(s) > 256 {
				return nil, "metadata.user_id: Input should be a valid string of at most 256 characters"
			}
		}
	}
	if msg := checkAnthropicMessages(req.Messages); msg != "" {
		return nil, msg
	}
	if msg := checkAnthropicTools(&req); msg != "" {
		return nil, msg
	}
	if t := req.Thinking; t != nil {
		switch {
		case t.Type == "disabled":
		case t.Type != "enabled":
			return nil, "thinking.type: Input should be 'enabled' or 'disabled'"
		case t.BudgetTokens < 1024:
			return nil, "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
		case t.BudgetTokens >= *req.MaxTokens:
			return nil, "`max_tokens` must be greater than `thinking.budget_tokens`"
		}
	}
	return &req, ""
}

func checkAnthropicSystem(req *anthropicRequest) string {
	if len(req.System) == 0 || string(req.System) == "null" {
		return ""
	}
	var s string
	if json.Unmarshal(req.System, &s) == nil {
		req.system = []anthropicBlock{{Type: "text", Text: s}}
		return ""
	}
	if json.Unmarshal(req.System, &req.system) != nil {
		return "system: Input should be a valid string or a list of text blocks"
	}
	for i, b := range req.system {
		if b.Type != "text" || b.Text == "" {
			return fmt.Sprintf("system.%d: system blocks must be non-empty text blocks", i)
		}
	}
	return ""
}

func checkAnthropicMessages(msgs []anthropicMessage) string {
	var pending []string // tool_use ids the next message must answer
	for i, m := range msgs {
		switch {
		case m.Role == "system":
			return `messages: Unexpected role "system". The Messages API accepts a top-level ` + "`system`" + ` parameter, not "system" as an input message role.`
		case m.Role != "user" && m.Role != "assistant":
			return fmt.Sprintf("messages.%d.role: Input should be 'user' or 'assistant'", i)
		case i == 0 && m.Role != "user":
			return `messages: first message must use the "user" role`
		case i > 0 && msgs[i-1].Role == m.Role:
			return fmt.Sprintf(`messages: roles must alternate between "user" and "assistant", but found multiple %q roles in a row`, m.Role)
		case len(m.Content) == 0 && !(i == len(msgs)-1 && m.Role == "assistant"):
			return fmt.Sprintf("messages.%d: all messages must have non-empty content except for the optional final assistant message", i)
		}
		answered := map[string]bool{}
		var uses []string
		for j, b := range m.Content {
			at := fmt.Sprintf("messages.%d.content.%d", i, j)
			if !anthropicBlockTypes[m.Role][b.Type] {
				return fmt.Sprintf("%s.type: %q blocks are not allowed in %s messages", at, b.Type, m.Role)
			}
			if msg := checkAnthropicBlock(at, b); msg != "" {
				return msg
			}
			switch b.Type {
			case "tool_use":
				uses = append(uses, b.ID)
			case "tool_result":
				if !slices.Contains(pending, b.ToolUseID) {
					return fmt.Sprintf("%s: unexpected `tool_use_id` found in `tool_result` blocks: %s. Each `tool_result` block must have a corresponding `tool_use` block in the previous message.", at, b.ToolUseID)
				}
				answered[b.ToolUseID] = true
			}
		}
		var missing []string
		for _, id := range pending {
			if !answered[id] {
				missing = append(missing, id)
			}
		}
		if len(missing) > 0 {
			return fmt.Sprintf("messages.%d: `tool_use` ids were found without `tool_result` blocks immediately after: %s. Each `tool_use` block must have a corresponding `tool_result` block in the next message.", i-1, strings.Join(missing, ", "))
		}
		pending = uses
	}
	return ""
}

func checkAnthropicBlock(at string, b anthropicBlock) string {
	switch b.Type {
	case "text":
		if b.Text == "" {
			return at + ": text content blocks must be non-empty"
		}
	case "image", "document":
		s := b.Source
		switch {
		case s == nil:
			return at + ".source: Field required"
		case s.Type == "url":
			if !strings.HasPrefix(s.URL, "https://") && !strings.HasPrefix(s.URL, "http://") {
				return at + ".source.url: Input should be a valid URL"
			}
		case s.Type != "base64":
			return at + ".source.type: Input should be 'base64' or 'url'"
		case b.Type == "image" && !anthropicImageTypes[s.MediaType]:
			return at + ".source.media_type: Input should be 'image/jpeg', 'image/png', 'image/gif' or 'image/webp'"
		case b.Type == "document" && s.MediaType != "application/pdf":
			return at + ".source.media_type: Input should be 'application/pdf'"
		default:
			if _, err := base64.StdEncoding.DecodeString(s.Data); err != nil || s.Data == "" {
				return at + ".source.data: invalid base64 data"
			}
		}
	case "tool_use":
		switch {
		case b.ID == "":
			return at + ".id: Field required"
		case !anthropicToolName.MatchString(b.Name):
			return at + ".name: String should match pattern '^[a-zA-Z0-9_-]{1,128}$'"
		case len(bytes.TrimSpace(b.Input)) == 0 || bytes.TrimSpace(b.Input)[0] != '{':
			return at + ".input: Input should be a valid dictionary"
		}
	case "tool_result":
		if b.ToolUseID == "" {
			return at + ".tool_use_id: Field required"
		}
	case "thinking":
		if b.Thinking == nil || b.Signature == "" {
			return at + ": thinking blocks need 'thinking' and 'signature'"
		}
	case "redacted_thinking":
		if b.Data == "" {
			return at + ".data: Field required"
		}
	}
	return ""
}

func checkAnthropicTools(req *anthropicRequest) string {
	names := map[string]bool{}
	for i, t := range req.Tools {
		if !anthropicToolName.MatchString(t.Name) {
			return fmt.Sprintf("tools.%d.name: String should match pattern '^[a-zA-Z0-9_-]{1,128}$'", i)
		}
		var schema struct {
			Type string `json:"type"`
		}
		if json.Unmarshal(t.InputSchema, &schema) != nil || schema.Type != "object" {
			return fmt.Sprintf("tools.%d.input_schema: Input should be a JSON schema of type 'object'", i)
		}
		if names[t.Name] {
			return "tools: Tool names must be unique."
		}
		names[t.Name] = true
	}
	tc := req.ToolChoice
	if tc == nil {
		return ""
	}
	switch {
	case len(req.Tools) == 0 && tc.Type != "none":
		return "tool_choice: tool_choice may only be specified while providing tools."
	case tc.Type == "tool" && !names[tc.Name]:
		return fmt.Sprintf("tool_choice.name: Tool '%s' not found in provided tools", tc.Name)
	case tc.Type != "auto" && tc.Type != "any" && tc.Type != "tool" && tc.Type != "none":
		return "tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'"
	}
	return ""
}
