package emulator

import (
	"errors"
	"io"
	"sync"
)

// bodySource yields a body as the chunks (data frames) it arrives in; end marks the last.
type bodySource interface {
	next() (data []byte, end bool, err error)
}

// errOverLimit reports a body larger than the buffer limit.
var errOverLimit = errors.New("body exceeds the buffer limit")

// readerSource turns a reader (a downstream request body, an upstream response body) into
// chunks as they arrive, without waiting for the whole body.
type readerSource struct {
	r    io.Reader
	done bool
	buf  []byte
}

func newReaderSource(r io.Reader) *readerSource {
	return &readerSource{r: r, buf: make([]byte, 32*1024)}
}

func (s *readerSource) next() ([]byte, bool, error) {
	if s.done {
		return nil, true, nil
	}
	for {
		n, err := s.r.Read(s.buf)
		if errors.Is(err, io.EOF) {
			s.done = true
			return append([]byte(nil), s.buf[:n]...), true, nil
		}
		if err != nil {
			return nil, false, err
		}
		if n > 0 {
			return append([]byte(nil), s.buf[:n]...), false, nil
		}
	}
}

// bytesSource is a body that is already complete.
func bytesSource(b []byte) bodySource { return &sliceSource{data: b} }

type sliceSource struct {
	data []byte
	done bool
}

func (s *sliceSource) next() ([]byte, bool, error) {
	if s.done {
		return nil, true, nil
	}
	s.done = true
	return s.data, true, nil
}

// readAll collects a whole body, failing once it exceeds limit bytes.
func readAll(b bodySource, limit uint64) ([]byte, error) {
	var out []byte
	for {
		data, end, err := b.next()
		if err != nil {
			return nil, err
		}
		out = append(out, data...)
		if uint64(len(out)) > limit {
			return nil, errOverLimit
		}
		if end {
			return out, nil
		}
	}
}

func drain(b bodySource) {
	for {
		if _, end, err := b.next(); end || err != nil {
			return
		}
	}
}

// replayBuffer is the router's retry buffer: it records the request body as it streams to
// the first attempt so later attempts can be fed the same bytes.
type replayBuffer struct {
	mu         sync.Mutex
	cond       *sync.Cond
	chunks     [][]byte
	size       uint64
	end        bool
	err        error
	overflowed bool
	limit      uint64
}

func newReplayBuffer(src bodySource, limit uint64) *replayBuffer {
	rb := &replayBuffer{limit: limit}
	rb.cond = sync.NewCond(&rb.mu)
	go rb.fill(src)
	return rb
}

func (rb *replayBuffer) fill(src bodySource) {
	for {
		data, end, err := src.next()
		rb.mu.Lock()
		if err != nil {
			rb.err = err
		} else {
			rb.chunks = append(rb.chunks, data)
			rb.size += uint64(len(data))
			if rb.size > rb.limit {
				rb.overflowed = true
			}
			rb.end = end
		}
		rb.cond.Broadcast()
		rb.mu.Unlock()
		if err != nil || end {
			return
		}
	}
}

func (rb *replayBuffer) hasOverflowed() bool {
	rb.mu.Lock()
	defer rb.mu.Unlock()
	return rb.overflowed
}

// waitComplete blocks until the body has fully arrived or failed.
func (rb *replayBuffer) waitComplete() error {
	rb.mu.Lock()
	defer rb.mu.Unlock()
	for !rb.end && rb.err == nil {
		rb.cond.Wait()
	}
	return rb.err
}

// reader returns an independent source over the buffered body, from its start.
func (rb *replayBuffer) reader() bodySource { return &replayReader{rb: rb} }

type replayReader struct {
	rb *replayBuffer
	i  int
}

func (r *replayReader) next() ([]byte, bool, error) {
	rb := r.rb
	rb.mu.Lock()
	defer rb.mu.Unlock()
	for r.i >= len(rb.chunks) && rb.err == nil {
		if rb.end {
			return nil, true, nil
		}
		rb.cond.Wait()
	}
	if r.i < len(rb.chunks) {
		c := rb.chunks[r.i]
		r.i++
		return c, rb.end && r.i == len(rb.chunks), nil
	}
	return nil, false, rb.err
}
