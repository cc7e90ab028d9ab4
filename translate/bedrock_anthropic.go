package translate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
)

// Claude on Amazon Bedrock for native Messages clients (bedrock/anthropic.claude-*, or an
// inference profile such as bedrock/us.anthropic.claude-*). Bedrock's InvokeModel takes
// Anthropic's Messages body, without "model" and "stream" and with
// "anthropic_version": "bedrock-2023-05-31"
// (https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-anthropic-claude-messages.html),
// at POST /model/{id}/invoke, answering a Message, or at
// /model/{id}/invoke-with-response-stream
// (https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_InvokeModelWithResponseStream.html),
// answering application/vnd.amazon.eventstream frames whose "chunk" events carry one
// Anthropic stream event each, base64-encoded in {"bytes": ...}. Those become the
// Anthropic SSE events the client expects. OpenAI-format chat requests keep going through
// Converse, as for every Bedrock model.
//
// Token counting (/v1/messages/count_tokens) goes to CountTokens
// (https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_CountTokens.html):
// POST /model/{id}/count-tokens with {"input": {"invokeModel": {"body": base64}}}, the
// body an InvokeModel request would carry, answered with {"inputTokens": n}, which
// becomes Anthropic's {"input_tokens": n}. CountTokens takes foundation model IDs, not
// cross-region inference profiles, so us.anthropic.claude-... counts as
// anthropic.claude-...

// bedrockAnthropicVersion is the anthropic_version Bedrock requires in the body.
const bedrockAnthropicVersion = "bedrock-2023-05-31"

// bedrockAnthropicSpec serves bedrock/ deployments of Claude models.
var bedrockAnthropicSpec = &Spec{
	Name:       "bedrock",
	Endpoints:  []Endpoint{ChatCompletions, Embeddings, Messages, CountTokens},
	Translator: bedrockAnthropicTranslator{},
}

// isBedrockAnthropic reports whether a bedrock/ model ID is one of Anthropic's: a
// foundation model ID (anthropic.claude-...) or a cross-region inference profile
// (us.anthropic.claude-..., or an ARN naming one).
func isBedrockAnthropic(model string) bool {
	return strings.Contains(bedrockModelID(model), "anthropic.")
}

// bedrockAnthropicTranslator sends native Messages requests to InvokeModel and everything
// else to the bedrock/ translator.
type bedrockAnthropicTranslator struct {
	bedrock bedrockTranslator
}

// Request builds the signed InvokeModel request for a Messages request, and the signed
// CountTokens request for a count_tokens one.
func (b bedrockAnthropicTranslator) Request(ep Endpoint, body []byte, t *Target) (*Upstream, error) {
	if ep != Messages && ep != CountTokens {
		return b.bedrock.Request(ep, body, t)
	}
	out, stream, err := anthropicCloudBody(body, bedrockAnthropicVersion, true)
	if err != nil {
		return nil, err
	}
	model, op := bedrockModelID(t.Model), "invoke"
	switch {
	case ep == CountTokens:
		if out, err = bedrockCountBody(out); err != nil {
			return nil, err
		}
		if i := strings.Index(model, "anthropic."); i > 0 { // a profile (or its ARN): its model
			model = model[i:]
		}
		op = "count-tokens"
	case stream:
		op = "invoke-with-response-stream"
	}
	return b.bedrock.upstream(t, model, op, out)
}

// bedrockCountBody wraps an InvokeModel body for CountTokens. InvokeModel requires
// max_tokens, which a count_tokens request does not have: it gets the least Bedrock
// accepts, 1, or one more than an extended thinking budget.
func bedrockCountBody(invoke []byte) ([]byte, error) {
	if _, _, ok := topLevelValue(invoke, "max_tokens"); !ok {
		var thinking struct {
			BudgetTokens int `json:"budget_tokens"`
		}
		if start, end, ok := topLevelValue(invoke, "thinking"); ok {
			json.Unmarshal(invoke[start:end], &thinking) // Bedrock judges the rest
		}
		invoke = setTopLevel(invoke, "max_tokens", []byte(strconv.Itoa(max(thinking.BudgetTokens+1, 1))))
	}
	var req struct {
		Input struct {
			InvokeModel struct {
				Body []byte `json:"body"` // a blob: base64 in JSON
			} `json:"invokeModel"`
		} `json:"input"`
	}
	req.Input.InvokeModel.Body = invoke
	return json.Marshal(req)
}

// Response passes an InvokeModel Message through and turns a CountTokens answer into
// Anthropic's; Bedrock's errors become Anthropic's.
func (b bedrockAnthropicTranslator) Response(ep Endpoint, status int, body []byte) ([]byte, Usage, error) {
	if ep != Messages && ep != CountTokens {
		return b.bedrock.Response(ep, status, body)
	}
	if status >= 400 {
		return AnthropicErrorJSON(bedrockError(status, body)), Usage{}, nil
	}
	if ep == CountTokens {
		var count struct {
			InputTokens *int `json:"inputTokens"`
		}
		if json.Unmarshal(body, &count) != nil || count.InputTokens == nil {
			return AnthropicErrorJSON(&APIError{Status: 502, Type: "api_error", Code: "bad_upstream_response",
				Message: "Bedrock's CountTokens answer has no inputTokens"}), Usage{}, nil
		}
		out, err := json.Marshal(map[string]int{"input_tokens": *count.InputTokens})
		return out, Usage{}, err // counting is free
	}
	return anthropicNativeResponse(ep, status, body)
}

// Stream converts an InvokeModel event stream for a Messages request.
func (b bedrockAnthropicTranslator) Stream(ep Endpoint, o StreamOptions) Stream {
	if ep != Messages {
		return b.bedrock.Stream(ep, o)
	}
	return newBedrockInvokeStream()
}

// bedrockInvokeStream turns an InvokeModelWithResponseStream response into Anthropic's
// SSE as it arrives. A frame split across chunks waits for its remaining bytes, as in
// bedrockStream; each complete frame is decoded (CRCs checked) by the AWS SDK's
// eventstream decoder. The events it produces go through anthropicPassStream, which reads
// usage and ends a stream cut short with an error event.
type bedrockInvokeStream struct {
	frames bedrockFrames
	pass   anthropicPassStream
	failed bool
}

func newBedrockInvokeStream() *bedrockInvokeStream {
	return &bedrockInvokeStream{frames: newBedrockFrames()}
}

// Usage is what the Anthropic events said so far.
func (s *bedrockInvokeStream) Usage() Usage { return s.pass.Usage() }

// Next converts chunk. Its error is always nil: failures are error events for the client.
func (s *bedrockInvokeStream) Next(chunk []byte, end bool) ([]byte, error) {
	if s.failed {
		return nil, nil
	}
	var out []byte
	read := s.frames.feed(chunk, func(msg eventstream.Message) bool {
		out = s.message(out, msg)
		return !s.failed
	})
	if !read {
		out = s.fail(out, 502, "", "Bedrock sent a stream frame tollgate could not read")
	}
	if end && !s.failed {
		tail, _ := s.pass.Next(nil, true)
		out = append(out, tail...)
	}
	return out, nil
}

// message converts one decoded frame.
func (s *bedrockInvokeStream) message(out []byte, msg eventstream.Message) []byte {
	switch bedrockHeader(msg.Headers, ":message-type") {
	case "event":
		if bedrockHeader(msg.Headers, ":event-type") != "chunk" {
			return out
		}
		var c struct {
			Bytes []byte `json:"bytes"` // base64 in JSON
		}
		var ev struct {
			Type string `json:"type"`
		}
		if json.Unmarshal(msg.Payload, &c) != nil || json.Unmarshal(c.Bytes, &ev) != nil || ev.Type == "" {
			return s.fail(out, 502, "", "Bedrock sent a stream chunk that is not an Anthropic event")
		}
		data := c.Bytes
		if bytes.ContainsAny(data, "\r\n") {
			// One SSE data line holds the event: fold a pretty-printed one onto it.
			var buf bytes.Buffer
			if json.Compact(&buf, data) == nil {
				data = buf.Bytes()
			}
		}
		return s.emit(out, ev.Type, data)
	case "exception":
		var body struct {
			Message string `json:"message"`
		}
		json.Unmarshal(msg.Payload, &body) // a payload that is not JSON leaves the message empty
		name := bedrockHeader(msg.Headers, ":exception-type")
		return s.fail(out, bedrockExceptionStatus(name), name, body.Message)
	case "error":
		name := bedrockHeader(msg.Headers, ":error-code")
		return s.fail(out, bedrockExceptionStatus(name), name, bedrockHeader(msg.Headers, ":error-message"))
	}
	return out
}

// emit writes one Anthropic SSE event and lets the pass-through stream read it.
func (s *bedrockInvokeStream) emit(out []byte, typ string, data []byte) []byte {
	ev := make([]byte, 0, len(typ)+len(data)+16)
	ev = append(ev, "event: "...)
	ev = append(ev, typ...)
	ev = append(ev, "\ndata: "...)
	ev = append(ev, data...)
	ev = append(ev, "\n\n"...)
	got, _ := s.pass.Next(ev, false)
	return append(out, got...)
}

// fail ends the stream with an Anthropic error event.
func (s *bedrockInvokeStream) fail(out []byte, status int, exception, msg string) []byte {
	s.failed = true
	if msg == "" {
		msg = fmt.Sprintf("Amazon Bedrock ended the stream with %s", bedrockOr(exception, "an error"))
	}
	return s.emit(out, "error", AnthropicErrorJSON(bedrockAPIError(status, exception, msg)))
}
