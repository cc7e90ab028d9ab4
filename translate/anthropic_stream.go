package translate

import (
	"bytes"
	"encoding/json"
)

// anthropicMaxEvent bounds one server-sent event (its data lines together). Anthropic's
// events are small deltas; a longer one means a broken upstream, and the bound keeps a
// stream's memory constant however the upstream misbehaves.
const anthropicMaxEvent = 1 << 20

// Kinds of content block, as the stream needs to tell them apart.
const (
	anthBlockOther    = iota // server tool results and types added later: not forwarded
	anthBlockText            // text deltas become delta.content
	anthBlockTool            // a client tool call: delta.tool_calls
	anthBlockJSON            // the response_format tool: its input is the content
	anthBlockThinking        // thinking deltas become delta.reasoning_content
)

type anthStreamBlock struct {
	kind    int
	tool    int  // the OpenAI tool_calls index of a client tool call
	hasArgs bool // some input JSON was forwarded
}

// anthropicStream turns an Anthropic event stream
// (https://docs.anthropic.com/en/api/messages-streaming) into OpenAI chat.completion.chunk
// events (https://platform.openai.com/docs/api-reference/chat-streaming) as it arrives.
// It keeps only the current unfinished line and event, so memory stays bounded by
// anthropicMaxEvent whatever the stream's length, and each event is forwarded as soon as
// its terminating blank line arrives.
//
// The output always ends with "data: [DONE]": after message_stop normally, after an
// OpenAI-style error event when Anthropic sends an error event, an event cannot be read,
// or the stream ends before message_stop.
type anthropicStream struct {
	tr           anthropicTranslator
	includeUsage bool

	events sseEvents

	head    []byte // `data: {"id":...,"model":...` shared by every chunk
	started bool
	blocks  map[int]*anthStreamBlock
	tools   int
	id      string
	model   string
	ended   bool // finish_reason sent
	done    bool // [DONE] sent
	usage   Usage
	ev      anthropicEvent
}

// newAnthropicStream starts a stream translation. includeUsage says whether the client
// gets the final usage chunk (stream_options.include_usage); Usage() is kept either way.
func newAnthropicStream(tr anthropicTranslator, includeUsage bool) *anthropicStream {
	return &anthropicStream{tr: tr, includeUsage: includeUsage, events: sseEvents{max: anthropicMaxEvent},
		blocks: make(map[int]*anthStreamBlock, 2)}
}

// Usage is the usage reported so far: message_start's input counts and the latest
// cumulative counts of message_delta.
func (s *anthropicStream) Usage() Usage { return s.usage }

// Next translates chunk. Its error is always nil: every failure of the upstream stream is
// something the client must see, so it is written into the output as an error event.
func (s *anthropicStream) Next(chunk []byte, end bool) ([]byte, error) {
	var out []byte
	if bytes.IndexByte(chunk, '\n') >= 0 {
		// Each event becomes about one chunk of similar size plus the shared head.
		out = make([]byte, 0, 2*len(chunk)+256)
	}
	for !s.done {
		data, ok, err := s.events.next(&chunk)
		if err != nil {
			out = s.fail(out, "Anthropic sent a stream event larger than tollgate accepts")
		}
		if !ok {
			break
		}
		out = s.dispatch(out, data, false)
	}
	if end && !s.done {
		// An event the stream ended without its blank line is used when it is whole; a
		// cut one is dropped and reported as the cut below.
		switch data, ok, err := s.events.flush(); {
		case err != nil:
			out = s.fail(out, "Anthropic sent a stream event larger than tollgate accepts")
		case ok:
			out = s.dispatch(out, data, true)
		}
		if !s.done {
			out = s.fail(out, "the Anthropic stream ended before the message was complete; retry the request")
		}
	}
	return out, nil
}

// dispatch translates an event's data. atEnd says the stream ended inside the event,
// which is then used only if it is whole.
func (s *anthropicStream) dispatch(out, data []byte, atEnd bool) []byte {
	s.ev = anthropicEvent{}
	err := json.Unmarshal(data, &s.ev)
	switch {
	case err != nil && atEnd:
		return out
	case err != nil:
		return s.fail(out, "Anthropic sent a stream event tollgate could not read")
	}
	ev := &s.ev
	switch ev.Type {
	case "message_start":
		if ev.Message != nil {
			s.id, s.model = ev.Message.ID, ev.Message.Model
			s.usage = anthropicUsageOf(ev.Message.Usage, s.usage)
		}
		out = s.start(out)
	case "content_block_start":
		out = s.blockStart(s.start(out), ev)
	case "content_block_delta":
		out = s.blockDelta(s.start(out), ev)
	case "content_block_stop":
		if b := s.blocks[ev.Index]; b != nil && b.kind == anthBlockTool && !b.hasArgs {
			// A tool called without arguments: OpenAI clients parse the arguments, and an
			// empty string is not JSON.
			out = appendToolArgs(out, s.head, b.tool, "{}")
		}
	case "message_delta":
		if ev.Usage != nil {
			s.usage = anthropicUsageOf(*ev.Usage, s.usage)
		}
		if ev.Delta != nil && ev.Delta.StopReason != "" {
			out = s.finish(s.start(out), ev.Delta.StopReason)
		}
	case "message_stop":
		out = s.finish(s.start(out), "end_turn")
		if s.includeUsage {
			out = appendUsageChunk(out, s.head, chatUsageOf(s.usage))
		}
		out = append(out, "data: [DONE]\n\n"...)
		s.done = true
	case "error":
		eb := anthropicErrorBody{Type: "api_error", Message: "Anthropic reported an error in the stream"}
		if ev.Error != nil && ev.Error.Message != "" {
			eb = *ev.Error
		}
		out = append(out, StreamError(anthropicAPIError(anthropicErrorStatus(eb.Type), eb))...)
		s.done = true
	}
	// ping, and event types added later, carry nothing for the client.
	return out
}

// start emits the first chunk, which announces the assistant role, once.
func (s *anthropicStream) start(out []byte) []byte {
	if s.started {
		return out
	}
	s.started = true
	s.head = appendChunkHead(s.head, s.id, s.tr.created(), s.model)
	return appendChunk(out, s.head, 0, `{"role":"assistant","content":""}`, "")
}

func (s *anthropicStream) blockStart(out []byte, ev *anthropicEvent) []byte {
	cb := ev.ContentBlock
	if cb == nil {
		return out
	}
	b := &anthStreamBlock{}
	s.blocks[ev.Index] = b
	switch cb.Type {
	case "text":
		b.kind = anthBlockText
		if cb.Text != "" {
			out = appendDeltaString(out, s.head, `{"content":`, cb.Text, `}`)
		}
	case "tool_use":
		if cb.Name == anthropicJSONTool {
			b.kind = anthBlockJSON
			return out
		}
		b.kind, b.tool = anthBlockTool, s.tools
		s.tools++
		out = appendToolStart(out, s.head, b.tool, cb.ID, cb.Name)
	case "thinking":
		b.kind = anthBlockThinking
	case "redacted_thinking":
		out = appendDeltaString(out, s.head, `{"thinking_blocks":[{"type":"redacted_thinking","data":`, cb.Data, `}]}`)
	}
	return out
}

func (s *anthropicStream) blockDelta(out []byte, ev *anthropicEvent) []byte {
	d := ev.Delta
	if d == nil {
		return out
	}
	b := s.blocks[ev.Index]
	switch d.Type {
	case "text_delta":
		if d.Text != "" {
			out = appendDeltaString(out, s.head, `{"content":`, d.Text, `}`)
		}
	case "input_json_delta":
		if b == nil || d.PartialJSON == "" {
			return out
		}
		switch b.kind {
		case anthBlockTool:
			b.hasArgs = true
			out = appendToolArgs(out, s.head, b.tool, d.PartialJSON)
		case anthBlockJSON:
			out = appendDeltaString(out, s.head, `{"content":`, d.PartialJSON, `}`)
		}
	case "thinking_delta":
		if d.Thinking != "" {
			out = appendDeltaString(out, s.head, `{"reasoning_content":`, d.Thinking, `}`)
		}
	case "signature_delta":
		// LiteLLM's shape: the signature arrives as a thinking block of its own, which a
		// client joins with the reasoning_content it received to replay the turn.
		out = appendDeltaString(out, s.head, `{"thinking_blocks":[{"type":"thinking","thinking":"","signature":`, d.Signature, `}]}`)
	}
	return out
}

// finish emits the finish_reason chunk once.
func (s *anthropicStream) finish(out []byte, stopReason string) []byte {
	if s.ended {
		return out
	}
	s.ended = true
	jsonMode := false
	for _, b := range s.blocks {
		jsonMode = jsonMode || b.kind == anthBlockJSON
	}
	return appendChunk(out, s.head, 0, `{}`, anthropicFinishReason(stopReason, jsonMode))
}

// fail ends the client's stream with an error event and [DONE].
func (s *anthropicStream) fail(out []byte, msg string) []byte {
	s.done = true
	s.events = sseEvents{}
	return appendStreamInterrupted(out, msg)
}
