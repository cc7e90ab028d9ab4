package spend

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func appendToFile(t testing.TB, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// readAll reads every sealed segment of the spool in dir.
func readAll(t *testing.T, dir string, logs *syncBuffer) (recs []Record, corrupt int64) {
	t.Helper()
	sp, err := openSpool(dir, testLogger(logs))
	if err != nil {
		t.Fatal(err)
	}
	defer sp.close()
	for _, name := range sp.segments() {
		err := sp.read(name, 7, func(batch []Record) error {
			recs = append(recs, batch...)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return recs, sp.corrupt.Load()
}

func TestSpoolRoundTrip(t *testing.T) {
	dir := t.TempDir()
	sp, err := openSpool(dir, testLogger(testWriter{t}))
	if err != nil {
		t.Fatal(err)
	}
	sp.segmentSize = 4096 // several segments
	want := normalized(makeRecords(0, 50, testBase))
	for i := 0; i < len(want); i += 10 {
		if err := sp.append(want[i : i+10]); err != nil {
			t.Fatal(err)
		}
		if err := sp.sync(); err != nil {
			t.Fatal(err)
		}
	}
	if err := sp.close(); err != nil {
		t.Fatal(err)
	}
	if n := len(spoolSegments(t, dir)); n < 2 {
		t.Errorf("%d segments, want several of at most 4 KiB", n)
	}
	var logs syncBuffer
	got, corrupt := readAll(t, dir, &logs)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("records read back (-want +got):\n%s", diff)
	}
	if corrupt != 0 {
		t.Errorf("%d corrupt tails in a clean spool; logs:\n%s", corrupt, logs.String())
	}
}

func TestSpoolSkipsCorruptTail(t *testing.T) {
	good := normalized(makeRecords(0, 5, testBase))
	extra := normalized(makeRecords(5, 6, testBase))[0]
	frame, err := appendFrame(nil, &extra)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		tail []byte // appended after the good frames
		// damage changes the file after the tail is appended, given the offset of the
		// last good frame.
		damage func(b []byte, last int)
		want   []Record
	}{
		{name: "torn header", tail: frame[:5], want: good},
		{name: "torn payload", tail: frame[:len(frame)-3], want: good},
		{name: "zero-filled tail", tail: make([]byte, 64), want: good},
		{name: "length out of range", tail: binary.LittleEndian.AppendUint32(nil, maxFrame+1), want: good},
		{
			name: "checksum mismatch in the last frame",
			damage: func(b []byte, last int) {
				b[last+frameHeader+3] ^= 0xff
			},
			want: good[:4],
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			sp, err := openSpool(dir, testLogger(testWriter{t}))
			if err != nil {
				t.Fatal(err)
			}
			if err := sp.append(good[:4]); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, sp.activeName)
			last := int(sp.activeSize)
			if err := sp.append(good[4:]); err != nil {
				t.Fatal(err)
			}
			if err := sp.close(); err != nil {
				t.Fatal(err)
			}
			appendToFile(t, path, tt.tail)
			if tt.damage != nil {
				b, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				tt.damage(b, last)
				if err := os.WriteFile(path, b, 0o600); err != nil {
					t.Fatal(err)
				}
			}

			var logs syncBuffer
			got, corrupt := readAll(t, dir, &logs)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("records read (-want +got):\n%s", diff)
			}
			if corrupt != 1 || !strings.Contains(logs.String(), "skipping corrupt segment tail") {
				t.Errorf("corrupt tails = %d, want 1 and a log line; logs:\n%s", corrupt, logs.String())
			}
		})
	}
}

func TestSpoolNeverAppendsToOldSegments(t *testing.T) {
	dir := t.TempDir()
	recs := normalized(makeRecords(0, 4, testBase))
	for i := range 2 {
		sp, err := openSpool(dir, testLogger(testWriter{t}))
		if err != nil {
			t.Fatal(err)
		}
		if err := sp.append(recs[2*i : 2*i+2]); err != nil {
			t.Fatal(err)
		}
		if err := sp.close(); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(spoolSegments(t, dir)); n != 2 {
		t.Errorf("%d segments after two opens, want 2 (a possibly torn segment is never reopened)", n)
	}
	var logs syncBuffer
	got, _ := readAll(t, dir, &logs)
	if diff := cmp.Diff(recs, got); diff != "" {
		t.Errorf("records in order (-want +got):\n%s", diff)
	}
}
