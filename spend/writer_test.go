package spend

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/tollgate-dev/tollgate/translate/providertest"
)

// fastOptions flush and retry quickly, so tests wait milliseconds, not seconds.
func fastOptions(t testing.TB, dir string) Options {
	return Options{
		SpoolDir:      dir,
		BatchSize:     100,
		FlushInterval: 5 * time.Millisecond,
		RetryInterval: 5 * time.Millisecond,
		FlushTimeout:  10 * time.Second,
		Logger:        testLogger(testWriter{t}),
	}
}

// testWriter sends logs to t.Log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func newTestWriter(t testing.TB, s *testSchema, opts Options) *Writer {
	t.Helper()
	w, err := NewWriter(s.pool, opts)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func closeWriter(t testing.TB, w *Writer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// enqueueConcurrently enqueues recs from several goroutines at once.
func enqueueConcurrently(w *Writer, recs []Record) {
	const producers = 4
	var wg sync.WaitGroup
	for p := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := p; i < len(recs); i += producers {
				w.Enqueue(recs[i])
			}
		}()
	}
	wg.Wait()
}

func makeRecords(from, to int, base time.Time) []Record {
	recs := make([]Record, 0, to-from)
	for i := from; i < to; i++ {
		recs = append(recs, testRecord(i, base))
	}
	return recs
}

func spoolSegments(t testing.TB, dir string) []string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "*"+segmentExt))
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// checkStored asserts that Postgres holds exactly want, each once, and that the daily
// rollups are their sums.
func checkStored(t *testing.T, s *testSchema, want []Record) {
	t.Helper()
	want = normalized(want)
	if diff := cmp.Diff(want, s.storedRecords(t), equalJSON); diff != "" {
		t.Errorf("spend logs (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(s.dailyFromLogs(t), s.dailyRows(t)); diff != "" {
		t.Errorf("daily rollups (-want +got):\n%s", diff)
	}
}

// equalJSON compares JSON by value: jsonb does not keep its input's spacing.
var equalJSON = cmp.Comparer(func(a, b json.RawMessage) bool {
	var va, vb any
	if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
		return string(a) == string(b)
	}
	return cmp.Equal(va, vb)
})

var testBase = time.Date(2026, 3, 14, 9, 26, 53, 589793238, time.UTC)

func TestWriterStoresEveryField(t *testing.T) {
	s := newTestSchema(t)
	w := newTestWriter(t, s, fastOptions(t, t.TempDir()))
	recs := makeRecords(0, 250, testBase)
	// Values the binary COPY encoding must get exactly right.
	recs[3].Tags = []string{`quote " backslash \ slash /`, "tab\tnewline\ncontrol\x01\x1f", "ünïcødé ✓ 🦊", ""}
	recs[4].Tags, recs[4].Metadata = nil, nil
	recs[5].Metadata = json.RawMessage(`{"nested":{"list":[1,2.5,"x",null,true]},"ü":"🦊"}`)
	recs[6].PromptTokens, recs[6].CompletionTokens, recs[6].CostMicros = 1<<40, 1<<41, 1<<50
	recs[7].CallType, recs[7].TeamID, recs[7].ErrorCode = "", "", ""
	enqueueConcurrently(w, recs)
	closeWriter(t, w)

	checkStored(t, s, recs)
	st := w.Stats()
	if st.Written != 250 || st.Spooled != 0 || st.Dropped != 0 {
		t.Errorf("Stats = %+v, want 250 written, none spooled or dropped", st)
	}
}

func TestWriterIsIdempotent(t *testing.T) {
	s := newTestSchema(t)
	dir := t.TempDir()
	recs := makeRecords(0, 100, testBase)

	// The same records, already in the spool, as a crash after an ambiguous commit
	// leaves them...
	sp, err := openSpool(dir, testLogger(testWriter{t}))
	if err != nil {
		t.Fatal(err)
	}
	if err := sp.append(normalized(recs[:60])); err != nil {
		t.Fatal(err)
	}
	if err := sp.close(); err != nil {
		t.Fatal(err)
	}
	// ...enqueued twice over, some twice within one batch.
	opts := fastOptions(t, dir)
	opts.FlushInterval = time.Hour // one batch, flushed by Close
	opts.BatchSize = 1000
	opts.OnInsert = countInserted(t, s)
	w := newTestWriter(t, s, opts)
	for _, r := range recs {
		w.Enqueue(r)
	}
	for _, r := range recs[40:] {
		w.Enqueue(r)
	}
	closeWriter(t, w)

	checkStored(t, s, recs)
	st := w.Stats()
	if st.Written != 100 || st.Duplicates != 120 || st.Replayed != 60 {
		t.Errorf("Stats = %+v, want 100 written, 120 duplicates, 60 replayed", st)
	}
	checkCounted(t, s)
}

// TestWriterSurvivesPostgresOutage is the load test: 10,000 records enqueued by
// concurrent producers while Postgres goes away in the middle and comes back. Postgres
// must end up with every record exactly once, and the rollups with their sums.
func TestWriterSurvivesPostgresOutage(t *testing.T) {
	s := newTestSchema(t)
	proxy := providertest.StartProxy(t, testPostgresAddr())
	dir := t.TempDir()
	opts := fastOptions(t, dir)
	opts.QueueSize = 2000
	opts.OnInsert = countInserted(t, s)
	w, err := NewWriter(s.connect(t, proxy.Addr()), opts)
	if err != nil {
		t.Fatal(err)
	}
	recs := makeRecords(0, 10_000, testBase)

	enqueueConcurrently(w, recs[:4000])
	waitFor(t, "records to flow into Postgres", func() bool { return w.Stats().Written >= 1000 })
	proxy.Cut() // while the rest of the first 4000 are being flushed
	enqueueConcurrently(w, recs[4000:7000])
	// Records are spooled when the queue is full too, which can come first: wait for
	// the writer to notice the outage as well.
	waitFor(t, "records to be spooled and Stats().PostgresDown", func() bool {
		st := w.Stats()
		return st.Spooled > 0 && st.PostgresDown
	})
	proxy.Restore()
	enqueueConcurrently(w, recs[7000:])
	closeWriter(t, w)

	checkStored(t, s, recs)
	st := w.Stats()
	t.Logf("Stats after the outage: %+v", st)
	// Written falls short of 10,000 when a commit succeeded but its reply was lost to
	// the cut (the replay then finds the rows there); it can never exceed it.
	if st.Written > 10_000 || st.Dropped != 0 || st.Rejected != 0 || st.SpoolPending {
		t.Errorf("Stats = %+v, want at most 10000 written, nothing dropped, rejected or pending", st)
	}
	if st.Spooled == 0 || st.Replayed < st.Spooled {
		t.Errorf("Stats = %+v, want every spooled record replayed", st)
	}
	if segs := spoolSegments(t, dir); len(segs) != 0 {
		t.Errorf("spool segments left after replay: %v", segs)
	}
	checkCounted(t, s)
}

// countInserted is an Options.OnInsert that adds the records it is given to a table
// of totals, in the writer's transaction, as keys.AddSpend adds their cost to budgets.
func countInserted(t *testing.T, s *testSchema) InsertFunc {
	t.Helper()
	if _, err := s.pool.Exec(context.Background(), `CREATE TABLE counted (records bigint, spend bigint);
		INSERT INTO counted VALUES (0, 0)`); err != nil {
		t.Fatal(err)
	}
	return func(ctx context.Context, tx pgx.Tx, recs []Record) error {
		var spend int64
		for i := range recs {
			spend += recs[i].CostMicros
		}
		_, err := tx.Exec(ctx, `UPDATE counted SET records = records + $1, spend = spend + $2`, len(recs), spend)
		return err
	}
}

// checkCounted asserts that countInserted saw every stored record exactly once.
func checkCounted(t *testing.T, s *testSchema) {
	t.Helper()
	var counted, countedSpend, stored, storedSpend int64
	if err := s.pool.QueryRow(context.Background(), `SELECT records, spend, (SELECT count(*) FROM tollgate_spend_logs),
		(SELECT sum(spend) FROM tollgate_spend_logs) FROM counted`).Scan(&counted, &countedSpend, &stored, &storedSpend); err != nil {
		t.Fatal(err)
	}
	if counted != stored || countedSpend != storedSpend {
		t.Errorf("OnInsert counted %d records, %d µ$; the spend logs hold %d, %d µ$", counted, countedSpend, stored, storedSpend)
	}
}

// TestWriterRestartReplaysSpool: writer A spools while Postgres is down and is closed
// (SIGTERM); writer B, started on the same spool directory, stores what A left.
func TestWriterRestartReplaysSpool(t *testing.T) {
	s := newTestSchema(t)
	proxy := providertest.StartProxy(t, testPostgresAddr())
	proxy.Cut()
	dir := t.TempDir()
	recs := makeRecords(0, 1000, testBase)

	a, err := NewWriter(s.connect(t, proxy.Addr()), fastOptions(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	enqueueConcurrently(a, recs)
	closeWriter(t, a)
	if st := a.Stats(); st.Spooled != 1000 || st.Written != 0 || st.Dropped != 0 {
		t.Fatalf("writer A Stats = %+v, want all 1000 spooled", st)
	}
	if len(spoolSegments(t, dir)) == 0 {
		t.Fatal("writer A left no spool segments")
	}

	b := newTestWriter(t, s, fastOptions(t, dir))
	waitFor(t, "the spool to be replayed", func() bool { return !b.Stats().SpoolPending })
	closeWriter(t, b)

	checkStored(t, s, recs)
	if st := b.Stats(); st.Replayed != 1000 || st.Written != 1000 {
		t.Errorf("writer B Stats = %+v, want 1000 replayed and written", st)
	}
	if segs := spoolSegments(t, dir); len(segs) != 0 {
		t.Errorf("spool segments left after replay: %v", segs)
	}
}

// TestCloseAfterDeadlineSpools: a shutdown whose grace period is already over still
// loses nothing; the next writer stores what was queued.
func TestCloseAfterDeadlineSpools(t *testing.T) {
	s := newTestSchema(t)
	dir := t.TempDir()
	opts := fastOptions(t, dir)
	opts.FlushInterval, opts.BatchSize = time.Hour, 1000
	a := newTestWriter(t, s, opts)
	recs := makeRecords(0, 100, testBase)
	for _, r := range recs {
		a.Enqueue(r)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := a.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if st := a.Stats(); st.Written+st.Spooled != 100 || st.Dropped != 0 {
		t.Fatalf("writer A Stats = %+v, want all 100 written or spooled", st)
	}

	b := newTestWriter(t, s, fastOptions(t, dir))
	closeWriter(t, b)
	checkStored(t, s, recs)
}

func TestWriterReplaysTornSpool(t *testing.T) {
	s := newTestSchema(t)
	dir := t.TempDir()
	recs := makeRecords(0, 20, testBase)
	sp, err := openSpool(dir, testLogger(testWriter{t}))
	if err != nil {
		t.Fatal(err)
	}
	if err := sp.append(normalized(recs)); err != nil {
		t.Fatal(err)
	}
	segment := filepath.Join(dir, sp.activeName)
	if err := sp.close(); err != nil {
		t.Fatal(err)
	}
	// A crash in the middle of the 21st frame.
	torn, err := appendFrame(nil, &Record{RequestID: "torn", Start: testBase, End: testBase})
	if err != nil {
		t.Fatal(err)
	}
	appendToFile(t, segment, torn[:len(torn)/2])

	var logs syncBuffer
	opts := fastOptions(t, dir)
	opts.Logger = testLogger(&logs)
	w := newTestWriter(t, s, opts)
	closeWriter(t, w)

	checkStored(t, s, recs)
	if st := w.Stats(); st.CorruptTails != 1 || st.Replayed != 20 {
		t.Errorf("Stats = %+v, want 1 corrupt tail and 20 replayed; logs:\n%s", st, logs.String())
	}
	if !strings.Contains(logs.String(), "skipping corrupt segment tail") {
		t.Errorf("no log line for the torn tail; logs:\n%s", logs.String())
	}
}

func TestWriterSpoolsWhenQueueIsFull(t *testing.T) {
	s := newTestSchema(t)
	opts := fastOptions(t, t.TempDir())
	opts.BatchSize, opts.QueueSize = 10, 10
	w := newTestWriter(t, s, opts)

	// Hold the writer's next transaction so that the queue fills up.
	ctx := context.Background()
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `LOCK TABLE `+logsTable+` IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	recs := makeRecords(0, 100, testBase)
	for _, r := range recs {
		w.Enqueue(r)
	}
	if st := w.Stats(); st.Spooled < 80 {
		t.Errorf("Stats = %+v, want at least 80 records spooled while the queue of 10 was full", st)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	closeWriter(t, w)
	checkStored(t, s, recs)
}

func TestWriterRejectsWhatPostgresRefuses(t *testing.T) {
	s := newTestSchema(t)
	// Stand-in for a record Postgres refuses while healthy (Enqueue sanitises what it
	// can foresee): a constraint only this test's schema has.
	if _, err := s.pool.Exec(context.Background(),
		`ALTER TABLE `+logsTable+` ADD CONSTRAINT test_poison CHECK (request_id <> 'poison')`); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	opts := fastOptions(t, dir)
	opts.FlushInterval, opts.BatchSize = time.Hour, 1000 // one batch of 50
	w := newTestWriter(t, s, opts)
	recs := makeRecords(0, 50, testBase)
	poison := testRecord(50, testBase)
	poison.RequestID = "poison"
	for i, r := range recs {
		if i == 17 {
			w.Enqueue(poison)
		}
		w.Enqueue(r)
	}
	closeWriter(t, w)

	checkStored(t, s, recs)
	if st := w.Stats(); st.Rejected != 1 || st.Written != 50 || st.Dropped != 0 {
		t.Errorf("Stats = %+v, want 1 rejected and 50 written", st)
	}
	f, err := os.Open(filepath.Join(dir, rejectedFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var got []string
	for sc := bufio.NewScanner(f); sc.Scan(); {
		var line struct {
			Error  string
			Record Record
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(line.Error, "test_poison") {
			t.Errorf("rejection reason %q does not name the constraint", line.Error)
		}
		got = append(got, line.Record.RequestID)
	}
	if diff := cmp.Diff([]string{"poison"}, got); diff != "" {
		t.Errorf("rejected records (-want +got):\n%s", diff)
	}
}

func TestEnqueueAfterCloseIsCounted(t *testing.T) {
	s := newTestSchema(t)
	w := newTestWriter(t, s, fastOptions(t, t.TempDir()))
	closeWriter(t, w)
	w.Enqueue(testRecord(1, testBase))
	if st := w.Stats(); st.Dropped != 1 {
		t.Errorf("Stats().Dropped = %d, want 1", st.Dropped)
	}
	checkStored(t, s, nil)
}

func TestSpoolDirectoryIsExclusive(t *testing.T) {
	s := newTestSchema(t)
	dir := t.TempDir()
	w := newTestWriter(t, s, fastOptions(t, dir))
	defer closeWriter(t, w)
	if _, err := NewWriter(s.pool, fastOptions(t, dir)); err == nil {
		t.Error("a second writer opened the same spool directory")
	}
}

// partitionOf maps request ids to the partition holding them.
func partitionOf(t *testing.T, s *testSchema) map[string]string {
	t.Helper()
	rows, err := s.pool.Query(context.Background(), `SELECT request_id, tableoid::regclass::text FROM `+logsTable)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	var id, part string
	for rows.Next() {
		if err := rows.Scan(&id, &part); err != nil {
			t.Fatal(err)
		}
		got[id] = part
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return got
}

func partitions(t *testing.T, s *testSchema) []string {
	t.Helper()
	rows, err := s.pool.Query(context.Background(), `SELECT c.relname FROM pg_inherits i
		JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = $1::regclass ORDER BY 1`, logsTable)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	var name string
	for rows.Next() {
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		out = append(out, name)
	}
	return out
}

func TestPartitions(t *testing.T) {
	s := newTestSchema(t)
	at := func(id string, start time.Time) Record {
		return Record{RequestID: id, Start: start, End: start, CostMicros: 1, CostKnown: true}
	}
	recs := []Record{
		at("last-of-january", time.Date(2026, 1, 31, 23, 59, 59, 999999000, time.UTC)),
		at("first-of-february", time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)),
		// 00:30 on 1 March in Berlin is still February in UTC.
		at("berlin-march", time.Date(2026, 3, 1, 0, 30, 0, 0, time.FixedZone("CET", 3600))),
		at("late-replay", time.Date(2025, 12, 24, 12, 0, 0, 0, time.UTC)),
		at("far-future", time.Date(2027, 6, 15, 0, 0, 0, 0, time.UTC)),
	}
	run := func(now time.Time, retention int, recs []Record) {
		t.Helper()
		opts := fastOptions(t, t.TempDir())
		opts.Now = func() time.Time { return now }
		opts.RetentionMonths = retention
		w := newTestWriter(t, s, opts)
		for _, r := range recs {
			w.Enqueue(r)
		}
		closeWriter(t, w)
	}

	t.Run("created ahead and on demand", func(t *testing.T) {
		run(time.Date(2026, 1, 31, 23, 59, 59, 0, time.UTC), 0, recs)
		want := map[string]string{
			"last-of-january":   "tollgate_spend_logs_202601",
			"first-of-february": "tollgate_spend_logs_202602",
			"berlin-march":      "tollgate_spend_logs_202602",
			"late-replay":       "tollgate_spend_logs_202512",
			// More than a year ahead of the clock: no partition, the default one.
			"far-future": "tollgate_spend_logs_default",
		}
		if diff := cmp.Diff(want, partitionOf(t, s)); diff != "" {
			t.Errorf("partitions (-want +got):\n%s", diff)
		}
		wantParts := []string{"tollgate_spend_logs_202512", "tollgate_spend_logs_202601",
			"tollgate_spend_logs_202602", "tollgate_spend_logs_202603", "tollgate_spend_logs_default"}
		if diff := cmp.Diff(wantParts, partitions(t, s)); diff != "" {
			t.Errorf("partitions (-want +got):\n%s", diff)
		}
	})

	t.Run("rows move out of the default partition", func(t *testing.T) {
		run(time.Date(2027, 6, 1, 0, 0, 0, 0, time.UTC), 0, nil)
		if got := partitionOf(t, s)["far-future"]; got != "tollgate_spend_logs_202706" {
			t.Errorf("far-future is in %s, want tollgate_spend_logs_202706", got)
		}
	})

	t.Run("retention drops old months", func(t *testing.T) {
		// Keep June 2027 and the 12 months before it: June 2026 onwards.
		run(time.Date(2027, 6, 1, 0, 0, 0, 0, time.UTC), 12, nil)
		wantParts := []string{"tollgate_spend_logs_202706", "tollgate_spend_logs_202707",
			"tollgate_spend_logs_202708", "tollgate_spend_logs_default"}
		if diff := cmp.Diff(wantParts, partitions(t, s)); diff != "" {
			t.Errorf("partitions (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(map[string]string{"far-future": "tollgate_spend_logs_202706"}, partitionOf(t, s)); diff != "" {
			t.Errorf("rows (-want +got):\n%s", diff)
		}
		// The rollups keep the dropped months.
		if got := len(s.dailyRows(t)); got != 5 {
			t.Errorf("%d daily rollup rows, want 5", got)
		}
	})
}
