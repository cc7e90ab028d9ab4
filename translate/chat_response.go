package translate

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// This file writes the OpenAI chat completion output of the translators that rewrite
// responses (Anthropic, Bedrock, Gemini): the chat.completion object and the
// chat.completion.chunk events of a stream.

// chatCompletion is the chat.completion object a non-streaming request answers; M is the
// provider's assistant message and U its usage object.
type chatCompletion[M, U any] struct {
	ID      string          `json:"id"`
	Object  string          `json:"object"`
	Created int64           `json:"created"`
	Model   string          `json:"model"`
	Choices []chatChoice[M] `json:"choices"`
	Usage   *U              `json:"usage,omitempty"`
}

type chatChoice[M any] struct {
	Index        int       `json:"index"`
	Message      M         `json:"message"`
	Logprobs     *struct{} `json:"logprobs"` // always null: no provider's are translated
	FinishReason string    `json:"finish_reason"`
}

// chatUsage is the usage object of a completion or of a stream's last chunk.
type chatUsage struct {
	PromptTokens        int `json:"prompt_tokens"`
	CompletionTokens    int `json:"completion_tokens"`
	TotalTokens         int `json:"total_tokens"`
	PromptTokensDetails struct {
		CachedTokens int `json:"cached_tokens"`
	} `json:"prompt_tokens_details"`
}

// chatUsageOf reports u in OpenAI's shape.
func chatUsageOf(u Usage) *chatUsage {
	cu := &chatUsage{}
	cu.set(u)
	return cu
}

// set fills cu from u; the total is prompt plus completion tokens.
func (cu *chatUsage) set(u Usage) {
	cu.PromptTokens = u.PromptTokens
	cu.CompletionTokens = u.CompletionTokens
	cu.TotalTokens = u.PromptTokens + u.CompletionTokens
	cu.PromptTokensDetails.CachedTokens = u.CachedTokens
}

// appendChunkHead appends the start every chunk of one stream shares, up to its choices:
// `data: {"id":...,"object":"chat.completion.chunk","created":...,"model":...`.
func appendChunkHead(dst []byte, id string, created int64, model string) []byte {
	dst = append(dst, `data: {"id":`...)
	dst = appendJSONString(dst, id)
	dst = append(dst, `,"object":"chat.completion.chunk","created":`...)
	dst = strconv.AppendInt(dst, created, 10)
	dst = append(dst, `,"model":`...)
	return appendJSONString(dst, model)
}

// openChunk starts a chunk after head, up to where the delta of choice index goes.
func openChunk(out, head []byte, index int) []byte {
	out = append(out, head...)
	out = append(out, `,"choices":[{"index":`...)
	out = strconv.AppendInt(out, int64(index), 10)
	return append(out, `,"delta":`...)
}

// closeChunk ends a chunk after its delta, with finish_reason ("" is null).
func closeChunk(out []byte, finish string) []byte {
	out = append(out, `,"finish_reason":`...)
	if finish == "" {
		out = append(out, "null"...)
	} else {
		out = appendJSONString(out, finish)
	}
	return append(out, "}]}\n\n"...)
}

// appendChunk emits a chunk for choice index with the given delta JSON and
// finish_reason ("" is null).
func appendChunk(out, head []byte, index int, delta, finish string) []byte {
	return closeChunk(append(openChunk(out, head, index), delta...), finish)
}

// appendDeltaString emits a chunk for the first choice whose delta is prefix + the JSON
// string str + suffix.
func appendDeltaString(out, head []byte, prefix, str, suffix string) []byte {
	out = append(openChunk(out, head, 0), prefix...)
	out = appendJSONString(out, str)
	return closeChunk(append(out, suffix...), "")
}

// appendToolStart emits the chunk that opens tool call number tool of the first choice,
// with its ID and name and no arguments yet.
func appendToolStart(out, head []byte, tool int, id, name string) []byte {
	out = append(openChunk(out, head, 0), `{"tool_calls":[{"index":`...)
	out = strconv.AppendInt(out, int64(tool), 10)
	out = append(out, `,"id":`...)
	out = appendJSONString(out, id)
	out = append(out, `,"type":"function","function":{"name":`...)
	out = appendJSONString(out, name)
	return closeChunk(append(out, `,"arguments":""}}]}`...), "")
}

// appendToolArgs emits a chunk that continues the arguments of tool call number tool of
// the first choice.
func appendToolArgs(out, head []byte, tool int, args string) []byte {
	out = append(openChunk(out, head, 0), `{"tool_calls":[{"index":`...)
	out = strconv.AppendInt(out, int64(tool), 10)
	out = append(out, `,"function":{"arguments":`...)
	out = appendJSONString(out, args)
	return closeChunk(append(out, `}}]}`...), "")
}

// appendUsageChunk is OpenAI's last chunk for stream_options.include_usage: no choices,
// usage.
func appendUsageChunk(out, head []byte, usage any) []byte {
	u, err := json.Marshal(usage)
	if err != nil {
		return out // integers only: cannot fail
	}
	out = append(out, head...)
	out = append(out, `,"choices":[],"usage":`...)
	out = append(out, u...)
	return append(out, "}\n\n"...)
}

// appendJSONString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD, as
// encoding/json does; U+2028 and U+2029 are escaped so the output is also valid
// JavaScript.
func appendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// appendStreamInterrupted ends the client's stream with an error event, for an upstream
// stream that broke off or cannot be read, and [DONE].
func appendStreamInterrupted(out []byte, msg string) []byte {
	return append(out, StreamError(&APIError{Status: 502, Type: "api_error", Code: "stream_interrupted", Message: msg})...)
}
