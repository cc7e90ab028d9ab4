package translate

import (
	"bytes"
	"encoding/json"
	"strconv"
)

// geminiMaxEvent bounds one server-sent event. Gemini's events are text deltas and whole
// function calls, whose arguments can carry a file's content; a longer event means a
// broken upstream, and the bound keeps a stream's memory constant however it misbehaves.
const geminiMaxEvent = 8 << 20

// geminiMaxCandidates is the most candidates a request may ask for (candidateCount).
const geminiMaxCandidates = 8

// geminiStreamCandidate is what the stream remembers of one candidate (OpenAI choice).
type geminiStreamCandidate struct {
	started  bool // its role chunk was sent
	finished bool // its finish_reason was sent
	tools    int  // tool calls sent so far, the next one's index
}

// geminiStream turns a streamGenerateContent?alt=sse response
// (https://ai.google.dev/api/generate-content#method:-models.streamgeneratecontent) into
// OpenAI chat.completion.chunk events
// (https://platform.openai.com/docs/api-reference/chat-streaming) as it arrives. Each
// event is a whole GenerateContentResponse carrying the next text, or whole function
// calls; the last one of a candidate has its finishReason, and the last one of the
// stream the final usageMetadata. There is no terminating event: the response just ends.
//
// It keeps only the current unfinished line and event, so memory stays bounded by
// geminiMaxEvent whatever the stream's length, and each event is forwarded as soon as its
// terminating blank line arrives. Lines may end in "\n" or "\r\n" (Google writes the
// latter).
//
// The output always ends with "data: [DONE]": after the usage chunk when the response
// ends with every candidate finished, after an OpenAI-style error event when Google sends
// an error event, an event cannot be read, or the response ends before a finishReason.
type geminiStream struct {
	tr           geminiTranslator
	includeUsage bool

	events sseEvents

	head    []byte // `data: {"id":...,"model":...` shared by every chunk
	started bool
	cands   [geminiMaxCandidates]geminiStreamCandidate
	done    bool // [DONE] sent
	usage   Usage
	ev      geminiStreamEvent
}

// newGeminiStream starts a stream translation. includeUsage says whether the client gets
// the final usage chunk (stream_options.include_usage); Usage() is kept either way.
func newGeminiStream(tr geminiTranslator, includeUsage bool) *geminiStream {
	return &geminiStream{tr: tr, includeUsage: includeUsage, events: sseEvents{max: geminiMaxEvent}}
}

// Usage is the usage the latest event reported; Gemini's counts are cumulative.
func (s *geminiStream) Usage() Usage { return s.usage }

// Next translates chunk. Its error is always nil: every failure of the upstream stream is
// something the client must see, so it is written into the output as an error event.
func (s *geminiStream) Next(chunk []byte, end bool) ([]byte, error) {
	var out []byte
	for !s.done {
		data, ok, err := s.events.next(&chunk)
		if err != nil {
			out = s.fail(out, s.tr.name()+" sent a stream event larger than tollgate accepts")
		}
		if !ok {
			break
		}
		out = s.dispatch(out, data, false)
	}
	if end && !s.done {
		// An event the response ended without its blank line is used when it is whole;
		// a cut one is dropped, and the cut is reported below.
		switch data, ok, err := s.events.flush(); {
		case err != nil:
			out = s.fail(out, s.tr.name()+" sent a stream event larger than tollgate accepts")
		case ok:
			out = s.dispatch(out, data, true)
		}
		out = s.end(out)
	}
	return out, nil
}

// dispatch translates an event's data. atEnd says the response ended inside the event,
// which is then used only if it is whole.
func (s *geminiStream) dispatch(out, data []byte, atEnd bool) []byte {
	s.ev = geminiStreamEvent{}
	err := json.Unmarshal(data, &s.ev)
	switch {
	case err != nil && atEnd:
		return out
	case err != nil:
		return s.fail(out, s.tr.name()+" sent a stream event tollgate could not read")
	}
	ev := &s.ev
	if ev.Error != nil {
		eb := *ev.Error
		if eb.Message == "" {
			eb.Message = s.tr.name() + " reported an error in the stream"
		}
		status := eb.Code
		if status < 400 || status > 599 {
			status = geminiStatusCode(eb.Status)
		}
		s.done = true
		return append(out, StreamError(s.tr.apiError(status, eb))...)
	}
	if ev.UsageMetadata != nil {
		s.usage = geminiUsageOf(ev.UsageMetadata)
	}
	out = s.start(out)
	for i := range ev.Candidates {
		c := &ev.Candidates[i]
		if c.Index < 0 || c.Index >= geminiMaxCandidates {
			return s.fail(out, s.tr.name()+" sent a stream event for a candidate it was not asked for")
		}
		st := &s.cands[c.Index]
		if st.finished {
			continue // nothing follows a candidate's finishReason
		}
		out = s.startCandidate(out, c.Index)
		if c.Content != nil {
			for j := range c.Content.Parts {
				p := &c.Content.Parts[j]
				switch {
				case p.FunctionCall != nil:
					out = s.toolCall(out, c.Index, p.FunctionCall, p.ThoughtSignature)
				case len(p.Text) > 2 && p.Text[0] == '"': // a non-empty JSON string
					field := `{"content":`
					if p.Thought {
						field = `{"reasoning_content":`
					}
					out = append(openChunk(out, s.head, c.Index), field...)
					out = append(out, p.Text...)
					out = closeChunk(append(out, '}'), "")
				}
			}
			if s.done {
				return out
			}
		}
		if c.FinishReason != "" {
			st.finished = true
			out = appendChunk(out, s.head, c.Index, `{}`, geminiFinishReason(c.FinishReason, st.tools > 0))
		}
	}
	if len(ev.Candidates) == 0 && ev.PromptFeedback != nil && ev.PromptFeedback.BlockReason != "" && !s.cands[0].finished {
		// The prompt itself was blocked: no candidate will come.
		out = s.startCandidate(out, 0)
		s.cands[0].finished = true
		out = appendChunk(out, s.head, 0, `{}`, "content_filter")
	}
	return out
}

// end finishes the client's stream when the response ends: normally when every
// candidate that appeared has finished, else as a cut stream.
func (s *geminiStream) end(out []byte) []byte {
	if s.done {
		return out
	}
	complete := false
	for _, c := range s.cands {
		if c.started && !c.finished {
			complete = false
			break
		}
		complete = complete || c.finished
	}
	if !complete {
		return s.fail(out, s.tr.name()+" stream ended before the answer was complete; retry the request")
	}
	if s.includeUsage {
		out = s.usageChunk(out)
	}
	s.done = true
	return append(out, "data: [DONE]\n\n"...)
}

// start builds the head every chunk shares from the first event: Gemini's responseId
// (the same in every event) and modelVersion.
func (s *geminiStream) start(out []byte) []byte {
	if s.started {
		return out
	}
	s.started = true
	id := s.ev.ResponseID
	if id == "" {
		id = "chatcmpl-" + s.tr.uniqueID()
	}
	s.head = append(s.head, `data: {"id":`...)
	s.head = gemAppendString(s.head, id)
	s.head = append(s.head, `,"object":"chat.completion.chunk","created":`...)
	s.head = strconv.AppendInt(s.head, s.tr.created(), 10)
	s.head = append(s.head, `,"model":`...)
	s.head = gemAppendString(s.head, s.ev.ModelVersion)
	return out
}

// startCandidate emits a choice's first chunk, which announces the assistant role, once.
func (s *geminiStream) startCandidate(out []byte, index int) []byte {
	if s.cands[index].started {
		return out
	}
	s.cands[index].started = true
	return appendChunk(out, s.head, index, `{"role":"assistant","content":""}`, "")
}

// toolCall emits a whole function call as one tool call delta: Gemini streams calls
// complete, never in pieces.
func (s *geminiStream) toolCall(out []byte, index int, fc *geminiFunctionCall, signature string) []byte {
	args, err := geminiArgs(fc.Args)
	if err != nil {
		return s.fail(out, s.tr.name()+" sent a function call whose arguments are not a JSON object")
	}
	st := &s.cands[index]
	out = append(openChunk(out, s.head, index), `{"tool_calls":[{"index":`...)
	out = strconv.AppendInt(out, int64(st.tools), 10)
	st.tools++
	out = append(out, `,"id":`...)
	out = gemAppendString(out, s.tr.callID(signature))
	out = append(out, `,"type":"function","function":{"name":`...)
	out = gemAppendString(out, fc.Name)
	out = append(out, `,"arguments":`...)
	out = gemAppendString(out, args)
	return closeChunk(append(out, `}}]}`...), "")
}

// usageChunk is OpenAI's last chunk for stream_options.include_usage: no choices, usage.
func (s *geminiStream) usageChunk(out []byte) []byte {
	if len(s.head) == 0 {
		return out
	}
	return appendUsageChunk(out, s.head, gemChatUsageOf(s.usage))
}

// fail ends the client's stream with an error event and [DONE].
func (s *geminiStream) fail(out []byte, msg string) []byte {
	s.done = true
	s.events = sseEvents{}
	return appendStreamInterrupted(out, msg)
}

// gemAppendString appends str as a JSON string, without escaping <, > and &. It is
// encoding/json's escaping, which differs from appendJSONString's in writing \b and \f
// for those control characters; the Gemini translator has always answered that way.
func gemAppendString(dst []byte, str string) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(str); err != nil {
		return append(dst, `""`...) // a string: cannot fail
	}
	return append(dst, bytes.TrimSuffix(buf.Bytes(), []byte{'\n'})...)
}
