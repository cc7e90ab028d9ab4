package translate

import (
	"bytes"
	"encoding/binary"
	"encoding/json"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
)

// bedrockMaxFrame bounds one event stream frame. ConverseStream frames carry small
// deltas; a longer one means a broken upstream, and the bound keeps a stream's memory
// constant however the upstream misbehaves.
const bedrockMaxFrame = 1 << 20

// bedrockMinFrame is a frame with neither headers nor payload: the 12-byte prelude (two
// lengths and their CRC) and the 4-byte message CRC.
const bedrockMinFrame = 16

// bedrockFrames cuts an application/vnd.amazon.eventstream body into messages as it
// arrives. A frame split across chunks waits for its remaining bytes (the prelude's total
// length says how many); each complete frame is decoded, CRCs checked, by the AWS SDK's
// eventstream decoder. Memory stays bounded by bedrockMaxFrame.
type bedrockFrames struct {
	dec     *eventstream.Decoder
	rd      bytes.Reader
	payload []byte // the decoder's payload buffer, reused frame to frame
	carry   []byte // the start of a frame whose end has not arrived
}

func newBedrockFrames() bedrockFrames { return bedrockFrames{dec: eventstream.NewDecoder()} }

// feed decodes every complete frame of chunk, after what earlier chunks left, and hands
// each message to each; a message's payload is valid only during its call. each returns
// false to stop, and the rest of the stream is then ignored. feed returns false when a
// frame cannot be read.
func (f *bedrockFrames) feed(chunk []byte, each func(eventstream.Message) bool) bool {
	data := chunk
	if len(f.carry) > 0 {
		f.carry = append(f.carry, chunk...)
		data = f.carry
	}
	for len(data) >= 4 {
		n := binary.BigEndian.Uint32(data)
		if n < bedrockMinFrame || n > bedrockMaxFrame {
			f.carry = nil
			return false
		}
		if uint32(len(data)) < n {
			break
		}
		f.rd.Reset(data[:n])
		msg, err := f.dec.Decode(&f.rd, f.payload[:0])
		if err != nil {
			f.carry = nil
			return false
		}
		f.payload = msg.Payload
		data = data[n:]
		if !each(msg) {
			f.carry = nil
			return true
		}
	}
	// data may be the tail of carry itself: append moves it to the front safely.
	f.carry = append(f.carry[:0], data...)
	return true
}

// Kinds of content block, as the stream needs to tell them apart.
const (
	bedrockBlockTool = iota + 1 // a client tool call: delta.tool_calls
	bedrockBlockJSON            // the response_format tool: its input is the content
)

type bedrockStreamBlock struct {
	kind    int
	tool    int  // the OpenAI tool_calls index of a client tool call
	hasArgs bool // some input JSON was forwarded
}

// bedrockStream turns a ConverseStream response, a sequence of
// application/vnd.amazon.eventstream frames
// (https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ConverseStream.html),
// into OpenAI chat.completion.chunk events
// (https://platform.openai.com/docs/api-reference/chat-streaming) as it arrives, frame by
// frame (bedrockFrames).
//
// The output always ends with "data: [DONE]": after messageStop and metadata normally,
// after an OpenAI-style error event when Bedrock sends an exception, a frame cannot be
// read, or the stream ends early.
type bedrockStream struct {
	tr           bedrockTranslator
	includeUsage bool

	frames bedrockFrames

	head    []byte // `data: {"id":...,"model":...` shared by every chunk
	started bool
	blocks  map[int]*bedrockStreamBlock
	tools   int
	stopped bool // messageStop seen, finish_reason sent
	gotMeta bool // metadata seen
	done    bool // [DONE] sent
	usage   Usage
	ev      bedrockStreamEvent
}

// newBedrockStream starts a stream translation. includeUsage says whether the client
// gets the final usage chunk (stream_options.include_usage); Usage() is kept either way.
func newBedrockStream(tr bedrockTranslator, includeUsage bool) *bedrockStream {
	return &bedrockStream{tr: tr, includeUsage: includeUsage, frames: newBedrockFrames(),
		blocks: make(map[int]*bedrockStreamBlock, 2)}
}

// Usage is the usage of the stream's metadata event, once it has arrived.
func (s *bedrockStream) Usage() Usage { return s.usage }

// Next translates chunk. Its error is always nil: every failure of the upstream stream is
// something the client must see, so it is written into the output as an error event.
func (s *bedrockStream) Next(chunk []byte, end bool) ([]byte, error) {
	if s.done {
		return nil, nil
	}
	var out []byte
	read := s.frames.feed(chunk, func(msg eventstream.Message) bool {
		out = s.message(out, msg)
		return !s.done
	})
	if !read {
		out = s.fail(out, "Bedrock sent a stream frame tollgate could not read")
	}
	if end && !s.done {
		out = s.fail(out, "the Bedrock stream ended before the message was complete; retry the request")
	}
	return out, nil
}

// message translates one decoded frame by its message type.
func (s *bedrockStream) message(out []byte, msg eventstream.Message) []byte {
	switch bedrockHeader(msg.Headers, ":message-type") {
	case "event":
		return s.event(out, bedrockHeader(msg.Headers, ":event-type"), msg.Payload)
	case "exception":
		var body struct {
			Message string `json:"message"`
		}
		json.Unmarshal(msg.Payload, &body) // a payload that is not JSON leaves the message empty
		return s.exception(out, bedrockHeader(msg.Headers, ":exception-type"), body.Message)
	case "error":
		return s.exception(out, bedrockHeader(msg.Headers, ":error-code"), bedrockHeader(msg.Headers, ":error-message"))
	case "":
		return s.fail(out, "Bedrock sent a stream frame without a message type")
	}
	return out // message types added later carry nothing for the client
}

func bedrockHeader(hs eventstream.Headers, name string) string {
	if v, ok := hs.Get(name).(eventstream.StringValue); ok {
		return string(v)
	}
	return ""
}

// event translates one ConverseStream event.
func (s *bedrockStream) event(out []byte, typ string, payload []byte) []byte {
	s.ev = bedrockStreamEvent{}
	if err := json.Unmarshal(payload, &s.ev); err != nil {
		return s.fail(out, "Bedrock sent a stream event tollgate could not read")
	}
	switch typ {
	case "messageStart":
		out = s.start(out)
	case "contentBlockStart":
		out = s.blockStart(s.start(out))
	case "contentBlockDelta":
		out = s.blockDelta(s.start(out))
	case "contentBlockStop":
		if b := s.blocks[s.ev.ContentBlockIndex]; b != nil && b.kind == bedrockBlockTool && !b.hasArgs {
			// A tool called without arguments: OpenAI clients parse the arguments, and an
			// empty string is not JSON.
			out = appendToolArgs(out, s.head, b.tool, "{}")
		}
	case "messageStop":
		if !s.stopped {
			s.stopped = true
			out = s.finish(s.start(out), s.ev.StopReason)
		}
		out = s.complete(out)
	case "metadata":
		if s.ev.Usage != nil {
			s.usage = bedrockUsageOf(s.ev.Usage)
		}
		s.gotMeta = true
		out = s.complete(out)
	}
	// Event types added later carry nothing for the client.
	return out
}

// complete ends the client's stream once both messageStop (the finish reason) and
// metadata (the usage) have arrived; Bedrock sends them in that order.
func (s *bedrockStream) complete(out []byte) []byte {
	if !s.stopped || !s.gotMeta {
		return out
	}
	if s.includeUsage {
		out = appendUsageChunk(out, s.head, chatUsageOf(s.usage))
	}
	s.done = true
	return append(out, "data: [DONE]\n\n"...)
}

// exception ends the client's stream with Bedrock's error, mapped as an error response
// with the exception's documented status would be.
func (s *bedrockStream) exception(out []byte, name, msg string) []byte {
	if msg == "" {
		msg = "Amazon Bedrock reported " + bedrockOr(name, "an error") + " in the stream"
	}
	s.done = true
	return append(out, StreamError(bedrockAPIError(bedrockExceptionStatus(name), name, msg))...)
}

// start emits the first chunk, which announces the assistant role, once. Converse
// responses carry no ID and no model name; the ID is tollgate's own.
func (s *bedrockStream) start(out []byte) []byte {
	if s.started {
		return out
	}
	s.started = true
	s.head = appendChunkHead(s.head, s.tr.completionID(), s.tr.clock().Unix(), "")
	return appendChunk(out, s.head, 0, `{"role":"assistant","content":""}`, "")
}

func (s *bedrockStream) blockStart(out []byte) []byte {
	st := s.ev.Start
	if st == nil || st.ToolUse == nil {
		return out
	}
	b := &bedrockStreamBlock{}
	s.blocks[s.ev.ContentBlockIndex] = b
	if st.ToolUse.Name == bedrockJSONTool {
		b.kind = bedrockBlockJSON
		return out
	}
	b.kind, b.tool = bedrockBlockTool, s.tools
	s.tools++
	return appendToolStart(out, s.head, b.tool, st.ToolUse.ToolUseID, st.ToolUse.Name)
}

func (s *bedrockStream) blockDelta(out []byte) []byte {
	d := s.ev.Delta
	if d == nil {
		return out
	}
	switch {
	case d.Text != nil:
		if *d.Text != "" {
			out = appendDeltaString(out, s.head, `{"content":`, *d.Text, `}`)
		}
	case d.ToolUse != nil:
		b := s.blocks[s.ev.ContentBlockIndex]
		if b == nil || d.ToolUse.Input == "" {
			return out
		}
		switch b.kind {
		case bedrockBlockTool:
			b.hasArgs = true
			out = appendToolArgs(out, s.head, b.tool, d.ToolUse.Input)
		case bedrockBlockJSON:
			out = appendDeltaString(out, s.head, `{"content":`, d.ToolUse.Input, `}`)
		}
	case d.ReasoningContent != nil:
		rc := d.ReasoningContent
		if rc.Text != "" {
			out = appendDeltaString(out, s.head, `{"reasoning_content":`, rc.Text, `}`)
		}
		if rc.Signature != "" {
			// LiteLLM's shape: the signature arrives as a thinking block of its own, which
			// a client joins with the reasoning_content it received to replay the turn.
			out = appendDeltaString(out, s.head, `{"thinking_blocks":[{"type":"thinking","thinking":"","signature":`, rc.Signature, `}]}`)
		}
		if rc.RedactedContent != "" {
			out = appendDeltaString(out, s.head, `{"thinking_blocks":[{"type":"redacted_thinking","data":`, rc.RedactedContent, `}]}`)
		}
	}
	return out
}

// finish emits the finish_reason chunk.
func (s *bedrockStream) finish(out []byte, stopReason string) []byte {
	jsonMode := false
	for _, b := range s.blocks {
		jsonMode = jsonMode || b.kind == bedrockBlockJSON
	}
	return appendChunk(out, s.head, 0, `{}`, bedrockFinishReason(stopReason, jsonMode))
}

// fail ends the client's stream with an error event and [DONE].
func (s *bedrockStream) fail(out []byte, msg string) []byte {
	s.done = true
	return appendStreamInterrupted(out, msg)
}
