package translate

import (
	"bytes"
	"encoding/json"
	"fmt"
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

// bedrockAnthropicVersion is the anthropic_version Bedrock requires in the body.
const bedrockAnthropicVersion = "bedrock-2023-05-31"

// bedrockAnthropicSpec serves bedrock/ deployments of Claude models.
var bedrockAnthropicSpec = &Spec{
	Name:       "bedrock",
	Endpoints:  []Endpoint{ChatCompletions, Embeddings, Messages},
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

// Request builds the signed InvokeModel request for a Messages request.
func (b bedrockAnthropicTranslator) Request(ep Endpoint, body []byte, t *Target) (*Upstream, error) {
	if ep != Messages {
		return b.bedrock.Request(ep, body, t)
	}
	out, stream, err := anthropicCloudBody(body, bedrockAnthropicVersion, true)
	if err != nil {
		return nil, err
	}
	op := "invoke"
	if stream {
		op = "invoke-with-response-stream"
	}
	base, err := bedrockBaseURL(t)
	if err != nil {
		return nil, err
	}
	up := &Upstream{
		Path:      bedrockPath(base, bedrockModelID(t.Model), op),
		Authority: bedrockAuthority(base),
		Headers:   bedrockHeaders(t),
		Body:      out,
	}
	if err := b.bedrock.authorize(up, base.Scheme, t); err != nil {
		return nil, err
	}
	return up, nil
}

// Response passes an InvokeModel Message through; Bedrock's errors become Anthropic's.
func (b bedrockAnthropicTranslator) Response(ep Endpoint, status int, body []byte) ([]byte, Usage, error) {
	if ep != Messages {
		return b.bedrock.Response(ep, status, body)
	}
	if status >= 400 {
		return AnthropicErrorJSON(bedrockError(status, body)), Usage{}, nil
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
