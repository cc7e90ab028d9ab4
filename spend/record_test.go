package spend

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tollgate-dev/tollgate/translate"
)

func TestNormalize(t *testing.T) {
	berlin := time.FixedZone("CET", 3600)
	start := time.Date(2026, 3, 1, 0, 30, 0, 123456789, berlin)
	tests := []struct {
		name string
		in   Record
		want Record
	}{
		{
			name: "times in UTC at microsecond precision",
			in:   Record{RequestID: "r", Start: start, End: start.Add(time.Second), FirstToken: start.Add(time.Millisecond)},
			want: Record{RequestID: "r",
				Start:      time.Date(2026, 2, 28, 23, 30, 0, 123456000, time.UTC),
				End:        time.Date(2026, 2, 28, 23, 30, 1, 123456000, time.UTC),
				FirstToken: time.Date(2026, 2, 28, 23, 30, 0, 124456000, time.UTC)},
		},
		{
			name: "missing end is the start",
			in:   Record{RequestID: "r", Start: start},
			want: Record{RequestID: "r", Start: start.UTC().Truncate(time.Microsecond), End: start.UTC().Truncate(time.Microsecond)},
		},
		{
			name: "NUL bytes and invalid UTF-8 in text",
			in:   Record{RequestID: "r\x00", EndUser: "bob\xff", Tags: []string{"ok", "a\x00b"}, Start: start.UTC()},
			want: Record{RequestID: "r", EndUser: "bob\uFFFD", Tags: []string{"ok", "ab"},
				Start: start.UTC().Truncate(time.Microsecond), End: start.UTC().Truncate(time.Microsecond)},
		},
		{
			name: "invalid metadata kept as a string",
			in:   Record{RequestID: "r", Metadata: json.RawMessage(`{"a":`), Start: start.UTC()},
			want: Record{RequestID: "r", Metadata: json.RawMessage(`"{\"a\":"`),
				Start: start.UTC().Truncate(time.Microsecond), End: start.UTC().Truncate(time.Microsecond)},
		},
		{
			name: "tags read from the metadata",
			in:   Record{RequestID: "r", Metadata: json.RawMessage(`{"tags":["job:a","t\u0000b"],"x":1}`), Start: start.UTC()},
			want: Record{RequestID: "r", Metadata: json.RawMessage(`{"tags":["job:a","tb"],"x":1}`), Tags: []string{"job:a", "tb"},
				Start: start.UTC().Truncate(time.Microsecond), End: start.UTC().Truncate(time.Microsecond)},
		},
		{
			name: "escaped NUL removed from metadata",
			in:   Record{RequestID: "r", Metadata: json.RawMessage(`{"k\u0000":["x\u0000y",1]}`), Start: start.UTC()},
			want: Record{RequestID: "r", Metadata: json.RawMessage(`{"k":["xy",1]}`),
				Start: start.UTC().Truncate(time.Microsecond), End: start.UTC().Truncate(time.Microsecond)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.in
			got.normalize()
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("normalize (-want +got):\n%s", diff)
			}
			again := got
			again.normalize()
			if diff := cmp.Diff(got, again); diff != "" {
				t.Errorf("normalize is not idempotent (-once +twice):\n%s", diff)
			}
		})
	}
}

func TestNormalizeLeavesCallersTagsAlone(t *testing.T) {
	tags := []string{"a\x00"}
	r := Record{Tags: tags}
	r.normalize()
	if tags[0] != "a\x00" {
		t.Errorf("normalize changed the caller's tag slice: %q", tags)
	}
}

func TestNormalizeAllocatesNothingForCleanRecords(t *testing.T) {
	r := testRecord(1, testBase)
	if n := testing.AllocsPerRun(100, func() { c := r; c.normalize() }); n != 0 {
		t.Errorf("normalize allocated %v times per clean record", n)
	}
}

func TestSetUsageAndCost(t *testing.T) {
	var r Record
	r.SetUsage(translate.Usage{PromptTokens: 100, CompletionTokens: 50, CachedTokens: 40,
		CacheCreationTokens: 10, ReasoningTokens: 20, Known: true})
	r.SetCost(Cost{Picodollars: 2_500_000, Known: true}) // 2.5 micro-dollars rounds up
	want := Record{PromptTokens: 100, CompletionTokens: 50, CachedTokens: 40,
		CacheCreationTokens: 10, ReasoningTokens: 20, CostMicros: 3, CostKnown: true}
	if diff := cmp.Diff(want, r); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	r.SetCost(Cost{})
	if r.CostMicros != 0 || r.CostKnown {
		t.Errorf("unknown cost recorded as %d micro-dollars, known=%v", r.CostMicros, r.CostKnown)
	}
}

func TestTimeToFirstToken(t *testing.T) {
	r := Record{Start: testBase, FirstToken: testBase.Add(250 * time.Millisecond)}
	if got := r.TimeToFirstToken(); got != 250*time.Millisecond {
		t.Errorf("TimeToFirstToken = %v, want 250ms", got)
	}
	r.FirstToken = time.Time{}
	if got := r.TimeToFirstToken(); got != 0 {
		t.Errorf("TimeToFirstToken without a first token = %v, want 0", got)
	}
}
