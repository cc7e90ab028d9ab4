package translate

import (
	"bytes"
	"errors"
)

// sseEvents splits a server-sent event stream
// (https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation)
// into its events' data, incrementally: chunks may end anywhere, inside a line or a
// CRLF. Only data fields matter to the translators (Anthropic's events repeat the event
// name as the data's "type"); comments and the event, id and retry fields are skipped.
// An event's data lines are joined with "\n", as the format says.
type sseEvents struct {
	max     int    // the largest event accepted, its data lines together
	line    []byte // the current line, until its newline arrives
	data    []byte // the current event's data lines
	hasData bool
}

// errSSETooLarge is an event longer than sseEvents.max.
var errSSETooLarge = errors.New("stream event too large")

// next consumes *chunk, the input not yet read, up to the blank line that ends an event,
// and returns the event's data, valid until the next call. When *chunk runs out before
// an event ends it returns ok false, keeping the partial line and data for the next
// chunk.
func (e *sseEvents) next(chunk *[]byte) (data []byte, ok bool, err error) {
	for len(*chunk) > 0 {
		i := bytes.IndexByte(*chunk, '\n')
		if i < 0 {
			e.line = append(e.line, *chunk...)
			*chunk = nil
			if len(e.line)+len(e.data) > e.max {
				return nil, false, errSSETooLarge
			}
			return nil, false, nil
		}
		line := (*chunk)[:i]
		*chunk = (*chunk)[i+1:]
		if len(e.line) > 0 {
			e.line = append(e.line, line...)
			line = e.line
		}
		complete, err := e.readLine(line)
		e.line = e.line[:0]
		if err != nil || complete {
			return e.take(), complete, err
		}
	}
	return nil, false, nil
}

// flush is next at the end of the stream: it returns the last event if the stream
// ended without the blank line after it. Whether that event is whole is the caller's
// to judge.
func (e *sseEvents) flush() (data []byte, ok bool, err error) {
	if len(e.line) > 0 {
		_, err = e.readLine(e.line)
		e.line = e.line[:0]
		if err != nil {
			return nil, false, err
		}
	}
	if !e.hasData {
		return nil, false, nil
	}
	return e.take(), true, nil
}

// readLine handles one line: a field, a comment, or the blank line that completes an
// event with data.
func (e *sseEvents) readLine(line []byte) (complete bool, err error) {
	line = bytes.TrimSuffix(line, []byte{'\r'})
	if len(line) == 0 {
		return e.hasData, nil
	}
	name, value, _ := bytes.Cut(line, []byte{':'})
	if string(name) != "data" {
		return false, nil
	}
	value = bytes.TrimPrefix(value, []byte{' '})
	if e.hasData {
		e.data = append(e.data, '\n')
	}
	e.data = append(e.data, value...)
	e.hasData = true
	if len(e.data) > e.max {
		return false, errSSETooLarge
	}
	return false, nil
}

// take returns the collected data and starts the next event, reusing the buffer.
func (e *sseEvents) take() []byte {
	data := e.data
	e.data, e.hasData = e.data[:0], false
	return data
}

// lineCarry holds the start of a line whose newline has not arrived, for streams that
// forward what they receive line by line, so a client never gets half a line.
type lineCarry []byte

// whole returns the complete lines of what has arrived, the carried start and chunk,
// and keeps the partial last line for the next chunk.
func (c *lineCarry) whole(chunk []byte) []byte {
	data := chunk
	if len(*c) > 0 {
		data = append(*c, chunk...)
		*c = nil
	}
	last := bytes.LastIndexByte(data, '\n')
	if rest := data[last+1:]; len(rest) > 0 {
		*c = append(lineCarry(nil), rest...)
	}
	return data[:last+1]
}
