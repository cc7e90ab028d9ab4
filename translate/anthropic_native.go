package translate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
)

// Native Anthropic clients. Anthropic's SDKs and coding agents call POST /v1/messages
// (https://docs.anthropic.com/en/api/messages) and POST /v1/messages/count_tokens
// (https://docs.anthropic.com/en/api/messages-count-tokens) in Anthropic's own format.
// For anthropic/ deployments nothing needs translating: the body passes through with the
// deployment's model, the response and its event stream pass through unchanged, and only
// the usage is read for spend. Errors keep Anthropic's shape, which the clients parse.

// anthropicNativeRequest points a Messages or count_tokens request at the deployment.
func anthropicNativeRequest(ep Endpoint, body []byte, t *Target) (*Upstream, error) {
	model, err := json.Marshal(t.Model)
	if err != nil {
		return nil, fmt.Errorf("encode model name: %w", err)
	}
	base, err := anthropicBase(t)
	if err != nil {
		return nil, err
	}
	path := anthropicPath(&url.URL{Path: base.Path, RawPath: base.RawPath})
	if ep == CountTokens {
		path += "/count_tokens"
	}
	if base.RawQuery != "" {
		path += "?" + base.RawQuery
	}
	return &Upstream{
		Path:      path,
		Authority: base.Host,
		Headers:   anthropicHeaders(t),
		Body:      setTopLevel(body, "model", model),
	}, nil
}

// anthropicNativeResponse passes a Messages or count_tokens response through, reading a
// Message's usage. Anthropic's error bodies pass as they are, except credential failures,
// whose text might quote the deployment's key; a body in another shape (a proxy's, or an
// OpenAI error from tollgate's upstream stage) is rewritten into Anthropic's.
func anthropicNativeResponse(ep Endpoint, status int, body []byte) ([]byte, Usage, error) {
	if status >= 400 {
		var env struct {
			Type  string             `json:"type"`
			Error anthropicErrorBody `json:"error"`
		}
		e := anthropicError(status, body)
		auth := status == 401 || status == 403 || e.Code == "authentication_error" || e.Code == "permission_error"
		if json.Unmarshal(body, &env) == nil && env.Type == "error" && env.Error.Type != "" && !auth {
			return body, Usage{}, nil
		}
		return AnthropicErrorJSON(e), Usage{}, nil
	}
	if ep == CountTokens {
		return body, Usage{}, nil // counting is free
	}
	var msg struct {
		Type  string         `json:"type"`
		Usage anthropicUsage `json:"usage"`
	}
	if err := json.Unmarshal(body, &msg); err != nil || msg.Type != "message" {
		return nil, Usage{}, &APIError{Status: 502, Type: "api_error", Code: "bad_upstream_response",
			Message: "Anthropic returned a response that is not a Message object"}
	}
	return body, anthropicUsageOf(msg.Usage, Usage{}), nil
}

// AnthropicErrorJSON renders e in Anthropic's error shape
// (https://docs.anthropic.com/en/api/errors), for clients of the Messages API: the error
// type follows the status as Anthropic documents it.
func AnthropicErrorJSON(e *APIError) []byte {
	b, _ := json.Marshal(struct {
		Type  string             `json:"type"`
		Error anthropicErrorBody `json:"error"`
	}{"error", anthropicErrorBody{Type: anthropicErrorType(e.Status), Message: e.Message}})
	return b
}

// anthropicErrorType is the error type Anthropic documents for an HTTP status.
func anthropicErrorType(status int) string {
	switch status {
	case 400, 405, 415, 422:
		return "invalid_request_error"
	case 401:
		return "authentication_error"
	case 402, 403:
		return "permission_error"
	case 404:
		return "not_found_error"
	case 413:
		return "request_too_large"
	case 429:
		return "rate_limit_error"
	case 529, 503:
		return "overloaded_error"
	}
	if status < 500 {
		return "invalid_request_error"
	}
	return "api_error"
}

// anthropicPassStream forwards a Messages API event stream line by line as it arrives,
// reading usage from message_start and message_delta. A partial line waits for the rest
// of it, so the client never receives half an event. A stream that ends without
// message_stop (or an error event) gets an error event of its own, as Anthropic's clients
// expect one.
type anthropicPassStream struct {
	carry   lineCarry
	usage   Usage
	done    bool
	pending bool // the last line forwarded did not end its event
}

// anthropicNativeEvents are the event types whose data the stream reads; every other
// event (content block deltas, pings) is forwarded without being decoded.
var anthropicNativeEvents = [][]byte{[]byte(`message_start`), []byte(`message_delta`), []byte(`message_stop`), []byte(`"error"`)}

func (s *anthropicPassStream) Next(chunk []byte, end bool) ([]byte, error) {
	out := s.carry.whole(chunk)
	for lines := out; len(lines) > 0; {
		var line []byte
		line, lines, _ = bytes.Cut(lines, []byte{'\n'})
		line = bytes.TrimRight(line, "\r")
		s.pending = len(line) > 0
		if payload, ok := bytes.CutPrefix(line, dataPrefix); ok {
			s.read(bytes.TrimSpace(payload))
		}
	}
	if end && !s.done {
		out = out[:len(out):len(out)]
		if s.pending {
			// End the event the provider left open, so its fields do not merge into ours.
			out = append(out, '\n')
		}
		out = append(out, anthropicStreamError("the provider ended the stream before it was complete; retry the request")...)
	}
	return out, nil
}

// read takes what the stream needs from one event's data.
func (s *anthropicPassStream) read(payload []byte) {
	interesting := false
	for _, ev := range anthropicNativeEvents {
		if bytes.Contains(payload, ev) {
			interesting = true
			break
		}
	}
	if !interesting {
		return
	}
	var ev anthropicEvent
	if json.Unmarshal(payload, &ev) != nil {
		return
	}
	switch ev.Type {
	case "message_start":
		if ev.Message != nil {
			s.usage = anthropicUsageOf(ev.Message.Usage, s.usage)
		}
	case "message_delta":
		if ev.Usage != nil {
			s.usage = anthropicUsageOf(*ev.Usage, s.usage)
		}
	case "message_stop", "error":
		s.done = true
	}
}

func (s *anthropicPassStream) Usage() Usage { return s.usage }

// anthropicStreamError is an error event in a Messages API stream.
func anthropicStreamError(msg string) []byte {
	b := AnthropicErrorJSON(&APIError{Status: 500, Message: msg})
	out := make([]byte, 0, len(b)+24)
	out = append(out, "event: error\ndata: "...)
	out = append(out, b...)
	return append(out, "\n\n"...)
}
