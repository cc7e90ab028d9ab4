package spend

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The spool holds records Postgres could not take yet, on disk, until it can.
//
// A spool is a directory of append-only segment files, <sequence>.spool, whose names sort
// in the order they were written. Each record is one frame:
//
//	length   uint32, little endian: the payload's length in bytes
//	checksum uint32, little endian: CRC-32C (Castagnoli) of the payload
//	payload  the record as JSON (Record's field tags)
//
// One segment at a time is active and appended to; the writer seals it (fsync, close)
// before replaying, and deletes a sealed segment once all its records are committed to
// Postgres. A segment that was active when the process died is never appended to again,
// so a torn write (a crash in the middle of a frame) can only be a segment's tail:
// reading stops at the first frame that is short, oversized or fails its checksum, logs
// what it skipped, and counts it in Stats.CorruptTails.
//
// The directory is locked (flock) while a spool is open: two writers appending to one
// spool would interleave frames. rejected.jsonl in the directory holds, one JSON object a
// line, the records Postgres refused; they are never replayed (see Writer).
type spool struct {
	dir  string
	log  *slog.Logger
	lock *os.File // holds the directory lock while open

	mu         sync.Mutex
	active     *os.File // nil until the next append
	activeName string
	activeSize int64
	dirty      bool     // active has writes not yet fsync'd
	dirtyDir   bool     // a segment was created since the directory was last fsync'd
	nextSeq    uint64   // sequence number of the next segment
	sealed     []string // sealed segment names, oldest first
	buf        []byte   // frame encoding scratch, reused under mu
	closed     bool

	segmentSize int64 // seal the active segment beyond this size (segmentTarget)

	corrupt     atomic.Int64    // torn or corrupt tails found
	corruptSeen map[string]bool // segments whose corrupt tail was reported, under mu
}

const (
	segmentExt   = ".spool"
	rejectedFile = "rejected.jsonl"
	lockFile     = "spool.lock"
	frameHeader  = 8
	// maxFrame bounds a frame's declared length: a larger one is corruption, not a
	// record (request bodies, and so metadata, are far smaller).
	maxFrame = 64 << 20
	// segmentTarget is the size after which the active segment is sealed and a new one
	// started, so a replayed segment can be deleted without waiting for a huge one.
	segmentTarget = 64 << 20
)

var (
	castagnoli      = crc32.MakeTable(crc32.Castagnoli)
	errSpoolClosed  = errors.New("spend spool: closed")
	errStopReplay   = errors.New("spend spool: replay stopped")
	errFrameTooLong = errors.New("spend spool: record larger than the frame limit")
)

// openSpool opens (creating it if needed) and locks the spool in dir. Every segment
// already there is sealed and waits to be replayed.
func openSpool(dir string, log *slog.Logger) (*spool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("spend spool: %w", err)
	}
	lock, err := lockDir(filepath.Join(dir, lockFile))
	if err != nil {
		return nil, fmt.Errorf("spend spool %s: %w", dir, err)
	}
	s := &spool{dir: dir, log: log, lock: lock, nextSeq: 1, segmentSize: segmentTarget}
	entries, err := os.ReadDir(dir)
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("spend spool: %w", err)
	}
	for _, e := range entries {
		seq, ok := segmentSeq(e.Name())
		if !ok || !e.Type().IsRegular() {
			continue
		}
		s.sealed = append(s.sealed, e.Name())
		s.nextSeq = max(s.nextSeq, seq+1)
	}
	slices.Sort(s.sealed) // fixed-width names: lexical order is sequence order
	return s, nil
}

func segmentName(seq uint64) string { return fmt.Sprintf("%020d%s", seq, segmentExt) }

func segmentSeq(name string) (uint64, bool) {
	digits, ok := strings.CutSuffix(name, segmentExt)
	if !ok || len(digits) != 20 {
		return 0, false
	}
	seq, err := strconv.ParseUint(digits, 10, 64)
	return seq, err == nil
}

// append writes recs to the active segment. The frames are in the page cache when it
// returns, so they survive the process; sync makes them survive the machine.
func (s *spool) append(recs []Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errSpoolClosed
	}
	buf := s.buf[:0]
	for i := range recs {
		var err error
		if buf, err = appendFrame(buf, &recs[i]); err != nil {
			return err
		}
	}
	s.buf = buf
	if s.active != nil && s.activeSize > 0 && s.activeSize+int64(len(buf)) > s.segmentSize {
		if err := s.sealLocked(); err != nil {
			return err
		}
	}
	if s.active == nil {
		name := segmentName(s.nextSeq)
		f, err := os.OpenFile(filepath.Join(s.dir, name), os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return fmt.Errorf("spend spool: %w", err)
		}
		s.nextSeq++
		s.active, s.activeName, s.activeSize, s.dirtyDir = f, name, 0, true
	}
	n, err := s.active.Write(buf)
	s.activeSize += int64(n)
	s.dirty = true
	if err != nil {
		// The segment may now end in part of a frame. Seal it so nothing is written after
		// the torn frame (reading stops there); the next append starts a new segment.
		s.sealLocked()
		return fmt.Errorf("spend spool: %w", err)
	}
	return nil
}

// appendFrame appends r's frame to buf.
func appendFrame(buf []byte, r *Record) ([]byte, error) {
	payload, err := json.Marshal(r)
	if err != nil {
		return buf, fmt.Errorf("spend spool: encode record %q: %w", r.RequestID, err)
	}
	if len(payload) > maxFrame {
		return buf, fmt.Errorf("%w: record %q", errFrameTooLong, r.RequestID)
	}
	buf = binary.LittleEndian.AppendUint32(buf, uint32(len(payload)))
	buf = binary.LittleEndian.AppendUint32(buf, crc32.Checksum(payload, castagnoli))
	return append(buf, payload...), nil
}

// sync makes everything appended so far durable: the active segment's data and, when a
// segment was created, the directory entry that names it.
func (s *spool) sync() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.syncLocked()
}

func (s *spool) syncLocked() error {
	if s.active != nil && s.dirty {
		if err := s.active.Sync(); err != nil {
			return fmt.Errorf("spend spool: fsync %s: %w", s.activeName, err)
		}
		s.dirty = false
	}
	if s.dirtyDir {
		if err := syncDir(s.dir); err != nil {
			return err
		}
		s.dirtyDir = false
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("spend spool: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("spend spool: fsync %s: %w", dir, err)
	}
	return nil
}

// seal makes the active segment durable and closes it, so that it can be replayed; the
// next append starts a new segment.
func (s *spool) seal() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sealLocked()
}

func (s *spool) sealLocked() error {
	if s.active == nil {
		return nil
	}
	err := s.syncLocked()
	if cerr := s.active.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("spend spool: %w", cerr)
	}
	s.sealed = append(s.sealed, s.activeName)
	s.active, s.activeName, s.activeSize, s.dirty = nil, "", 0, false
	return err
}

// segments lists the sealed segments, oldest first.
func (s *spool) segments() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.sealed)
}

// empty reports whether the spool holds no records.
func (s *spool) empty() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.active == nil && len(s.sealed) == 0
}

// remove deletes a sealed segment whose records are all in Postgres.
func (s *spool) remove(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := os.Remove(filepath.Join(s.dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("spend spool: %w", err)
	}
	s.sealed = slices.DeleteFunc(s.sealed, func(n string) bool { return n == name })
	return nil
}

// read calls fn with the records of a sealed segment, in order, at most batch at a
// time; fn must not keep the slice. A corrupt or torn tail is logged and skipped. read
// returns fn's first error.
func (s *spool) read(name string, batch int, fn func([]Record) error) error {
	f, err := os.Open(filepath.Join(s.dir, name))
	if err != nil {
		return fmt.Errorf("spend spool: %w", err)
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 1<<20)
	recs := make([]Record, 0, batch)
	var (
		hdr     [frameHeader]byte
		payload []byte
		offset  int64
		bad     string
	)
	for {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			if err != io.EOF {
				bad = "truncated frame header"
			}
			break
		}
		n := binary.LittleEndian.Uint32(hdr[:4])
		if n == 0 || n > maxFrame {
			bad = fmt.Sprintf("frame length %d out of range", n)
			break
		}
		payload = slices.Grow(payload[:0], int(n))[:n]
		if _, err := io.ReadFull(br, payload); err != nil {
			bad = "truncated frame"
			break
		}
		if crc32.Checksum(payload, castagnoli) != binary.LittleEndian.Uint32(hdr[4:]) {
			bad = "checksum mismatch"
			break
		}
		var r Record
		if err := json.Unmarshal(payload, &r); err != nil {
			bad = "undecodable record: " + err.Error()
			break
		}
		offset += frameHeader + int64(n)
		if recs = append(recs, r); len(recs) == batch {
			if err := fn(recs); err != nil {
				return err
			}
			clear(recs)
			recs = recs[:0]
		}
	}
	if bad != "" && s.firstReport(name) {
		var size int64
		if st, err := f.Stat(); err == nil {
			size = st.Size()
		}
		s.corrupt.Add(1)
		s.log.Warn("spend spool: skipping corrupt segment tail",
			"segment", name, "offset", offset, "skipped_bytes", size-offset, "reason", bad)
	}
	if len(recs) > 0 {
		return fn(recs)
	}
	return nil
}

// firstReport reports whether segment's corrupt tail is news: a segment whose replay
// was interrupted is read again, and its tail is one loss, logged once.
func (s *spool) firstReport(segment string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.corruptSeen[segment] {
		return false
	}
	if s.corruptSeen == nil {
		s.corruptSeen = make(map[string]bool)
	}
	s.corruptSeen[segment] = true
	return true
}

// reject keeps a record Postgres refused in rejected.jsonl, with the reason, for an
// operator to inspect and re-enter; it is not replayed.
func (s *spool) reject(r *Record, reason error) error {
	line, err := json.Marshal(struct {
		RejectedAt time.Time `json:"rejected_at"`
		Error      string    `json:"error"`
		Record     *Record   `json:"record"`
	}{time.Now().UTC(), reason.Error(), r})
	if err != nil {
		return fmt.Errorf("spend spool: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	f, err := os.OpenFile(filepath.Join(s.dir, rejectedFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("spend spool: %w", err)
	}
	_, err = f.Write(append(line, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("spend spool: %s: %w", rejectedFile, err)
	}
	return nil
}

// close seals the active segment and releases the directory lock.
func (s *spool) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	err := s.sealLocked()
	if cerr := s.lock.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("spend spool: %w", cerr)
	}
	return err
}
