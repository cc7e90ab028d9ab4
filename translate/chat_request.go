package translate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
)

// This file reads OpenAI chat completion requests for the translators that rewrite them
// (Anthropic, Bedrock, Gemini): decoding, and the 400s that name the parameter at fault.

// marshalJSON encodes v without escaping <, > and & (no provider API needs it), into a
// buffer sized from the input it was translated from.
func marshalJSON(v any, sizeHint int) ([]byte, error) {
	buf := bytes.NewBuffer(make([]byte, 0, sizeHint+256))
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'}), nil
}

// invalidParam is a 400 about one request parameter.
func invalidParam(param, format string, args ...any) *APIError {
	return &APIError{Status: 400, Type: "invalid_request_error", Param: param, Message: fmt.Sprintf(format, args...)}
}

// unsupportedParam is a 400 for an OpenAI parameter the provider cannot honour; why
// completes the sentence.
func unsupportedParam(param, why string) *APIError {
	return &APIError{Status: 400, Type: "invalid_request_error", Param: param, Code: "unsupported_parameter",
		Message: fmt.Sprintf("Unsupported parameter: '%s' %s", param, why)}
}

// unknownParam is the 400 for a request member no translator reads.
func unknownParam(param string) *APIError {
	return invalidParam(param, "Unrecognized request argument supplied: %s", param)
}

// decodeParam decodes one parameter, answering a 400 that names it when its type is
// wrong.
func decodeParam(raw json.RawMessage, v any, param string) error {
	if err := json.Unmarshal(raw, v); err != nil {
		return invalidParam(param, "Invalid value for '%s': %v", param, err)
	}
	return nil
}

// decodeParamAt is decodeParam for a parameter whose name is built only when it is
// needed: the names of message parts cost an allocation each.
func decodeParamAt(raw json.RawMessage, v any, param func() string) error {
	if err := json.Unmarshal(raw, v); err != nil {
		p := param()
		return invalidParam(p, "Invalid value for '%s': %v", p, err)
	}
	return nil
}

// paramName is a fixed name for decodeParamAt.
func paramName(s string) func() string { return func() string { return s } }

// isNull reports whether a parameter is absent or JSON null.
func isNull(raw json.RawMessage) bool { return len(raw) == 0 || string(raw) == "null" }

// decodeChatRequest decodes body, one JSON object, into v, a pointer to a struct that
// declares every member a client may send (known lists their names, from knownParams).
// Only the top level is strict: clients echo response fields (refusal, annotations,
// reasoning_content) back inside messages, and those change nothing.
//
// One json.Unmarshal decodes and validates; the unknown member check then walks the top
// level of the (valid) body without decoding it. encoding/json's DisallowUnknownFields
// would make every nested object strict too, and escaping that for the messages meant
// decoding them twice.
func decodeChatRequest(body []byte, v any, known map[string]bool) error {
	err := json.Unmarshal(body, v)
	if syntaxErr, ok := errors.AsType[*json.SyntaxError](err); ok {
		if syntaxErr.Offset > 0 && json.Valid(body[:syntaxErr.Offset-1]) {
			return invalidParam("", "The request body has data after its JSON object")
		}
		return invalidParam("", "The request body is not valid JSON: %v", err)
	}
	if err == nil || errors.As(err, new(*json.UnmarshalTypeError)) {
		if name := unknownMember(body, known); name != "" {
			return unknownParam(name)
		}
	}
	if typeErr, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
		if typeErr.Field == "" {
			return invalidParam("", "The request body must be a JSON object")
		}
		return invalidParam(typeErr.Field, "Invalid type for '%s': expected %s, got %s",
			typeErr.Field, jsonKindName(typeErr.Type), typeErr.Value)
	}
	if err != nil {
		return invalidParam("", "Invalid request body: %v", err)
	}
	return nil
}

// unknownMember returns the first, in name order, of the top-level member names of body
// (valid JSON) that known lacks, or "". As in encoding/json, a name matches its field
// case-insensitively, and escapes in it are read.
func unknownMember(body []byte, known map[string]bool) string {
	var unknown []string
	for key := range topLevelMembers(body) {
		if name := memberName(key); !knownName(name, known) {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) == 0 {
		return ""
	}
	sort.Strings(unknown)
	return unknown[0]
}

func knownName(name string, known map[string]bool) bool {
	if known[name] {
		return true
	}
	for k := range known {
		if strings.EqualFold(k, name) {
			return true
		}
	}
	return false
}

// knownParams are the JSON member names the struct T declares.
func knownParams[T any]() map[string]bool {
	known := map[string]bool{}
	t := reflect.TypeFor[T]()
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		known[name] = true
	}
	return known
}

// jsonKindName describes a Go type as the JSON a client should have sent.
func jsonKindName(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int64:
		return "an integer"
	case reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Slice:
		return "an array"
	}
	return "an object"
}

// parseStop reads "stop", a string or a list of them; an empty string is no stop.
func parseStop(raw json.RawMessage) ([]string, error) {
	if raw[0] == '"' {
		var s string
		if err := decodeParam(raw, &s, "stop"); err != nil || s == "" {
			return nil, err
		}
		return []string{s}, nil
	}
	var list []string
	if err := decodeParam(raw, &list, "stop"); err != nil {
		return nil, err
	}
	return list, nil
}

// chatTurn is one turn of a conversation: a role and what the provider's blocks (or
// parts) say in it.
type chatTurn[B any] struct {
	role   string
	blocks []B
}

// chatConversation converts the n messages of a request with convert (which converts
// message i; see convertChatMessage) into the system blocks and the conversation,
// merging consecutive turns of one role (tool results become user turns) because the
// providers expect user and assistant turns to alternate.
func chatConversation[B any](n int, convert func(i int) (string, []B, error)) ([]B, []chatTurn[B], error) {
	if n == 0 {
		return nil, nil, invalidParam("messages", "'messages' must contain at least one message")
	}
	var system []B
	turns := make([]chatTurn[B], 0, n)
	for i := range n {
		role, blocks, err := convert(i)
		if err != nil {
			return nil, nil, err
		}
		if role == "" {
			system = append(system, blocks...)
			continue
		}
		if len(blocks) == 0 {
			continue // an empty assistant turn says nothing; dropping it keeps turns alternating
		}
		if k := len(turns); k > 0 && turns[k-1].role == role {
			turns[k-1].blocks = append(turns[k-1].blocks, blocks...)
			continue
		}
		turns = append(turns, chatTurn[B]{role, blocks})
	}
	if len(turns) == 0 {
		return nil, nil, invalidParam("messages", "'messages' must contain a user message besides system messages")
	}
	return system, turns, nil
}

// chatRoles converts one OpenAI message for a provider whose conversation alternates
// user and assistant turns: each function converts the message for its role.
type chatRoles[B any] struct {
	system, user, assistant, tool func() ([]B, error)
}

// convertChatMessage converts message i, whose role is role, with the function of conv
// its role calls for. It returns the turn the blocks belong to: "" for a system message,
// "user" for user messages and tool results, assistant for an assistant message.
func convertChatMessage[B any](role string, i int, assistant string, conv chatRoles[B]) (string, []B, error) {
	switch role {
	case "system", "developer":
		blocks, err := conv.system()
		return "", blocks, err
	case "user":
		blocks, err := conv.user()
		if err == nil && len(blocks) == 0 {
			err = invalidParam(fmt.Sprintf("messages[%d].content", i), "messages[%d]: a user message must have non-empty content", i)
		}
		return "user", blocks, err
	case "assistant":
		blocks, err := conv.assistant()
		return assistant, blocks, err
	case "tool":
		blocks, err := conv.tool()
		return "user", blocks, err
	case "function":
		return "", nil, unsupportedParam(fmt.Sprintf("messages[%d].role", i), "'function' is deprecated; answer tool calls with role 'tool'")
	}
	return "", nil, invalidParam(fmt.Sprintf("messages[%d].role", i), "Invalid value for 'messages[%d].role': %q", i, role)
}

// decodeContent decodes a message's "content", which is not null: a string comes back
// as text, an array of parts as parts.
func decodeContent[P any](raw json.RawMessage, param func() string) (*string, []P, error) {
	if raw[0] == '"' {
		var s string
		err := decodeParamAt(raw, &s, param)
		return &s, nil, err
	}
	var parts []P
	err := decodeParamAt(raw, &parts, param)
	return nil, parts, err
}

// chatPartText is the text of a "text" content part, or of a "refusal" part, an earlier
// refusal replayed as what the assistant said; never nil. part names the part for the 400
// when the field is missing.
func chatPartText(typ string, text, refusal *string, part func() string) (*string, error) {
	if typ == "refusal" {
		text = refusal
	}
	if text == nil {
		return nil, invalidParam(part(), "%s: a %s part needs '%s'", part(), typ, typ)
	}
	return text, nil
}

// imageURLOf reads an image_url part's URL: {"url": ...}, or a bare URL string. param
// names the image_url member.
func imageURLOf(raw json.RawMessage, param func() string) (string, error) {
	if len(raw) > 0 && raw[0] == '"' {
		var u string
		err := decodeParamAt(raw, &u, param)
		return u, err
	}
	var obj struct {
		URL string `json:"url"`
	}
	err := decodeParamAt(raw, &obj, param)
	return obj.URL, err
}

// parseToolChoice reads a tool_choice that is set (not null) for a request whose tools
// are named by has: a mode ("auto", "none" or "required"), or the function the choice
// names. provider names the API that takes no other choices.
func parseToolChoice(raw json.RawMessage, hasTools bool, provider string, has func(name string) bool) (mode, function string, err error) {
	if !hasTools {
		return "", "", invalidParam("tool_choice", "'tool_choice' is only allowed when 'tools' are specified")
	}
	if raw[0] == '"' {
		if err := decodeParam(raw, &mode, "tool_choice"); err != nil {
			return "", "", err
		}
		switch mode {
		case "auto", "none", "required":
			return mode, "", nil
		}
		return "", "", invalidParam("tool_choice", "Invalid value for 'tool_choice': %q", mode)
	}
	var obj struct {
		Type     string `json:"type"`
		Function struct {
			Name string `json:"name"`
		} `json:"function"`
	}
	if err := decodeParam(raw, &obj, "tool_choice"); err != nil {
		return "", "", err
	}
	if obj.Type != "function" {
		return "", "", unsupportedParam("tool_choice", fmt.Sprintf("of type %q cannot be sent to %s", obj.Type, provider))
	}
	if !has(obj.Function.Name) {
		return "", "", invalidParam("tool_choice", "tool_choice names function %q, which is not in 'tools'", obj.Function.Name)
	}
	return "", obj.Function.Name, nil
}

// jsonToolFormat reads a response_format that is set (not null) for the providers that
// serve JSON output through a forced tool (Anthropic, Bedrock): ok is false for plain
// text; otherwise description and schema are the tool's, the schema an object's because
// the output comes back as tool input. provider names the API in that 400.
func jsonToolFormat(raw json.RawMessage, provider string) (description string, schema json.RawMessage, ok bool, err error) {
	var rf struct {
		Type       string `json:"type"`
		JSONSchema *struct {
			Description string          `json:"description"`
			Schema      json.RawMessage `json:"schema"`
		} `json:"json_schema"`
	}
	if err := decodeParam(raw, &rf, "response_format"); err != nil {
		return "", nil, false, err
	}
	description, schema = "Respond with a JSON object.", json.RawMessage(`{"type":"object"}`)
	switch rf.Type {
	case "text":
		return "", nil, false, nil
	case "json_object":
	case "json_schema":
		if rf.JSONSchema == nil {
			return "", nil, false, invalidParam("response_format.json_schema", "response_format of type json_schema needs 'json_schema'")
		}
		if rf.JSONSchema.Description != "" {
			description = rf.JSONSchema.Description
		}
		if !isNull(rf.JSONSchema.Schema) {
			var top struct {
				Type string `json:"type"`
			}
			if err := decodeParam(rf.JSONSchema.Schema, &top, "response_format.json_schema.schema"); err != nil {
				return "", nil, false, err
			}
			if top.Type != "object" {
				return "", nil, false, unsupportedParam("response_format.json_schema.schema",
					"must describe an object (\"type\": \"object\"): "+provider+" returns structured output as tool input, which is an object")
			}
			schema = rf.JSONSchema.Schema
		}
	default:
		return "", nil, false, invalidParam("response_format", "Invalid value for 'response_format.type': %q", rf.Type)
	}
	return description, schema, true, nil
}

// The parts of an OpenAI chat completion request below the message are the same for
// every translator; each reads the fields its provider has a use for.

// chatPart is one element of a message's array "content".
type chatPart struct {
	Type       string          `json:"type"`
	Text       *string         `json:"text"`
	Refusal    *string         `json:"refusal"`
	ImageURL   json.RawMessage `json:"image_url"` // {"url": ...}, or a bare URL string
	InputAudio *struct {
		Data   string `json:"data"`
		Format string `json:"format"`
	} `json:"input_audio"`
	File *chatFile `json:"file"`
	// CacheControl is LiteLLM's prompt-cache breakpoint on a part.
	CacheControl json.RawMessage `json:"cache_control"`
}

// chatFile is a file part's file: inline data, or an ID in OpenAI's file store (or a
// URL, with LiteLLM's Format giving its MIME type).
type chatFile struct {
	FileData string `json:"file_data"`
	FileID   string `json:"file_id"`
	Format   string `json:"format"`
}

// chatTool is one element of "tools".
type chatTool struct {
	Type     string `json:"type"`
	Function *struct {
		Name        string          `json:"name"`
		Description string          `json:"description"`
		Parameters  json.RawMessage `json:"parameters"`
	} `json:"function"`
	CacheControl json.RawMessage `json:"cache_control"` // LiteLLM's extension
}

// chatToolCall is a tool call in an assistant message or a response.
type chatToolCall struct {
	ID       string `json:"id"`
	Type     string `json:"type"`
	Function struct {
		Name      string `json:"name"`
		Arguments string `json:"arguments"`
	} `json:"function"`
	// ExtraContent is how Google's own OpenAI-compatible endpoint carries a thought
	// signature (extra_content.google.thought_signature); the Gemini translator accepts
	// it as well as the one tollgate puts in the ID.
	ExtraContent *struct {
		Google struct {
			ThoughtSignature string `json:"thought_signature"`
		} `json:"google"`
	} `json:"extra_content,omitempty"`
}
