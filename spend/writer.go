package spend

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Writer records requests' spend in Postgres, in batches, off the request path.
//
// What it guarantees:
//
//   - Enqueue never waits for Postgres: it appends the record to a bounded in-memory
//     queue, or, when the queue is full, to the spool on disk.
//   - A background loop flushes the queue when BatchSize records are waiting and at
//     least every FlushInterval, each flush one transaction, with up to
//     Options.Connections flushes in flight: COPY the records into
//     tollgate_spend_logs, skipping the (request_id, start_time) keys it already has,
//     and add exactly the records copied to tollgate_spend_daily and to
//     Options.OnInsert.
//   - When Postgres fails, the batch goes to the spool (fsync'd) instead, and so do the
//     batches after it until Postgres is tried again, RetryInterval later. When it
//     answers, the spool is replayed, oldest segment first, and each segment is deleted
//     once its records are committed. The spool survives restarts: a new Writer on the
//     same directory replays what the last one left.
//   - Close drains: the queue goes to Postgres or, if Postgres cannot take it before
//     Close's context ends, to the spool. Then, while the context allows, the spool is
//     replayed.
//
// So every record reaches Postgres at least once; the insert is idempotent by
// (request_id, start_time) (a record keeps its start time, and the primary key holds
// against concurrent writers too) and the rollups count only the rows inserted: exactly
// once. An ambiguous commit (the connection dies during COMMIT) is resolved by
// replaying the batch. What a crash (kill -9, OOM, power loss) loses is what was only
// in memory: the queue and the batches in flight, at most (Connections+1)*QueueSize
// records. Spooled records survive a process crash once appended, and a machine crash
// once fsync'd, which every flush does.
//
// A record Postgres refuses (a data or constraint error: records are sanitised before
// they are stored, so this means a bug or a schema change) must not block the records
// behind it: the batch is bisected down to the refused records, which are kept in the
// spool directory's rejected.jsonl and counted in Stats.Rejected.
//
// Times are recorded in UTC; rollup days and monthly partitions are UTC days and months.
type Writer struct {
	pool  *pgxpool.Pool
	spool *spool
	opts  Options
	log   *slog.Logger

	mu          sync.Mutex
	pending     []Record // the queue
	spare       []Record // the last flushed batch's array, reused for the next queue
	closed      bool
	overflowing sync.WaitGroup // Enqueue calls spooling a record because the queue is full

	kick   chan struct{} // the queue reached BatchSize
	stop   chan struct{} // Close was called
	done   chan struct{} // the loop returned
	ctx    context.Context
	cancel context.CancelFunc

	// Owned by the loop (and by Close once the loop has returned).
	flights      []*flight    // batches being written, oldest first
	retryAt      time.Time    // Postgres failed; do not try it before this
	maintainedAt time.Time    // last partition maintenance
	partitions   map[int]bool // months (year*12+month) known to have a partition
	downSince    time.Time    // zero while Postgres is reachable
	lastErr      atomic.Value // error string of the last Postgres failure, for Stats
	stats        writerCounters
}

// Options configure a Writer. Zero values take the defaults shown.
type Options struct {
	// SpoolDir is the spool directory (required). It is created if needed and locked
	// while the writer is open: give each tollgate process its own.
	SpoolDir string
	// BatchSize is how many queued records trigger a flush (1000). A flush takes
	// everything queued, so batches grow under load.
	BatchSize int
	// FlushInterval is the longest a record waits in the queue (1s).
	FlushInterval time.Duration
	// QueueSize bounds the in-memory queue (20,000 records, at least BatchSize);
	// records beyond it are spooled. A queued record takes 408 bytes plus its strings,
	// and the queue's array is double-buffered: about 16 MB at the default.
	QueueSize int
	// RetryInterval is how long Postgres rests after a failure (1s).
	RetryInterval time.Duration
	// FlushTimeout bounds one batch's transactions (30s).
	FlushTimeout time.Duration
	// Connections is how many batches are written at once, each in a transaction of
	// its own (2): while Postgres commits one, it is already copying the next, on
	// another core. The pool needs that many connections free.
	Connections int
	// RetentionMonths, when positive, drops spend log partitions of months before the
	// current month and the RetentionMonths months before it. 0 keeps everything. The
	// daily rollups are kept regardless.
	RetentionMonths int
	// PartitionsAhead is how many months after the current one get a partition ahead of
	// time (2).
	PartitionsAhead int
	// MaintenanceInterval is how often partitions are created and expired (1h).
	MaintenanceInterval time.Duration
	// OnInsert, when set, runs in each transaction that inserts records, with exactly the
	// records it inserts (never a record Postgres already had): what it writes commits
	// with them, once per record. tollgate adds the records' cost to the budgets' spend
	// here (keys.AddSpend). An error fails the batch, which is retried like a Postgres
	// failure.
	OnInsert InsertFunc
	// Logger receives the writer's logs (slog.Default()). Records are never logged:
	// rejected ones go to the spool directory.
	Logger *slog.Logger
	// Now is the clock for partition maintenance and for records without a start time
	// (time.Now).
	Now func() time.Time
}

func (o *Options) defaults() {
	setDefault(&o.BatchSize, 1000)
	setDefault(&o.FlushInterval, time.Second)
	setDefault(&o.QueueSize, 20_000)
	setDefault(&o.RetryInterval, time.Second)
	setDefault(&o.FlushTimeout, 30*time.Second)
	setDefault(&o.Connections, 2)
	setDefault(&o.PartitionsAhead, 2)
	setDefault(&o.MaintenanceInterval, time.Hour)
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	o.QueueSize = max(o.QueueSize, o.BatchSize)
}

// InsertFunc is Options.OnInsert.
type InsertFunc func(ctx context.Context, tx pgx.Tx, inserted []Record) error

func setDefault[T int | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

// Stats are the writer's counters since it was created, for /metrics.
type Stats struct {
	Written      int64 // records inserted into Postgres
	Duplicates   int64 // records Postgres already had: replays of committed records
	Spooled      int64 // records written to the spool
	Replayed     int64 // spooled records committed to Postgres (duplicates included)
	Rejected     int64 // records Postgres refused, kept in rejected.jsonl
	Dropped      int64 // records lost: enqueued after Close, or neither storable at Close
	CorruptTails int64 // torn or corrupt spool tails skipped
	Queued       int   // records in the in-memory queue now
	SpoolPending bool  // the spool holds records not yet in Postgres
	// PostgresDown is true while Postgres is failing; LastError is its last error.
	PostgresDown bool
	LastError    string
}

type writerCounters struct {
	written, duplicates, spooled, replayed, rejected, dropped atomic.Int64
	down                                                      atomic.Bool
}

// NewWriter starts a writer on pool, replaying whatever the spool holds as soon as
// Postgres answers. Postgres need not be reachable: records wait in the spool.
func NewWriter(pool *pgxpool.Pool, opts Options) (*Writer, error) {
	if pool == nil {
		return nil, errors.New("spend: NewWriter: nil pool")
	}
	if opts.SpoolDir == "" {
		return nil, errors.New("spend: NewWriter: Options.SpoolDir is required")
	}
	opts.defaults()
	log := opts.Logger.With("component", "spend-writer")
	sp, err := openSpool(opts.SpoolDir, log)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &Writer{
		pool:       pool,
		spool:      sp,
		opts:       opts,
		log:        log,
		pending:    make([]Record, 0, opts.BatchSize),
		kick:       make(chan struct{}, 1),
		stop:       make(chan struct{}),
		done:       make(chan struct{}),
		ctx:        ctx,
		cancel:     cancel,
		partitions: make(map[int]bool),
	}
	w.lastErr.Store("")
	go w.run()
	return w, nil
}

// Enqueue records r. It does not wait for Postgres or disk unless the queue is full,
// when it appends r to the spool (a write(2), not an fsync). A missing Start is now.
// Before storing r the writer sanitises it: text made valid UTF-8 without NUL bytes,
// invalid metadata kept as a JSON string, times truncated to microseconds in UTC.
//
// Records enqueued after Close are dropped and counted in Stats.Dropped.
func (w *Writer) Enqueue(r Record) {
	if r.Start.IsZero() {
		// Here, not later: the start time is part of the record's key.
		r.Start = w.opts.Now()
	}
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		w.stats.dropped.Add(1)
		w.log.Error("spend: record enqueued after Close, dropped", "request_id", r.RequestID)
		return
	}
	if len(w.pending) < w.opts.QueueSize {
		w.pending = append(w.pending, r)
		n := len(w.pending)
		w.mu.Unlock()
		if n == w.opts.BatchSize {
			select {
			case w.kick <- struct{}{}:
			default:
			}
		}
		return
	}
	w.overflowing.Add(1)
	w.mu.Unlock()
	defer w.overflowing.Done()
	r.normalize()
	if err := w.spool.append([]Record{r}); err != nil {
		// Disk and queue both full: keep the record in memory rather than lose it.
		w.log.Error("spend: queue full and spool failed; holding the record in memory", "error", err)
		w.mu.Lock()
		w.pending = append(w.pending, r)
		w.mu.Unlock()
		return
	}
	w.stats.spooled.Add(1)
}

// Close stops the writer and drains it: queued records go to Postgres, or to the spool
// if Postgres cannot take them before ctx ends; then the spool is replayed while ctx
// allows. It returns an error only if records could be stored nowhere (they are
// counted in Stats.Dropped). Close is what SIGTERM should call.
func (w *Writer) Close(ctx context.Context) error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	w.mu.Unlock()
	w.overflowing.Wait()

	// Past ctx's deadline, abandon Postgres (in-flight work included) for the spool.
	stopCancel := context.AfterFunc(ctx, w.cancel)
	defer stopCancel()
	close(w.stop)
	<-w.done
	w.cycle(w.ctx, true)
	// A failed final attempt is often a connection an outage left dead in the pool, which
	// the failure has taken out: try a few more times, quickly, while ctx allows. What
	// is still spooled after that waits for the next start.
	for range finalRetries {
		if w.spool.empty() || w.ctx.Err() != nil {
			break
		}
		select {
		case <-w.ctx.Done():
		case <-time.After(finalRetryDelay):
		}
		w.cycle(w.ctx, true)
	}

	w.mu.Lock()
	lost := len(w.pending)
	w.pending = nil
	w.mu.Unlock()
	err := w.spool.close()
	w.cancel()
	if lost > 0 {
		w.stats.dropped.Add(int64(lost))
		return fmt.Errorf("spend: %d records could not be stored in Postgres or the spool", lost)
	}
	return err
}

// Close retries replaying the spool finalRetries times, finalRetryDelay apart.
const (
	finalRetries    = 5
	finalRetryDelay = 100 * time.Millisecond
)

// Stats returns the writer's counters.
func (w *Writer) Stats() Stats {
	w.mu.Lock()
	queued := len(w.pending)
	w.mu.Unlock()
	return Stats{
		Written:      w.stats.written.Load(),
		Duplicates:   w.stats.duplicates.Load(),
		Spooled:      w.stats.spooled.Load(),
		Replayed:     w.stats.replayed.Load(),
		Rejected:     w.stats.rejected.Load(),
		Dropped:      w.stats.dropped.Load(),
		CorruptTails: w.spool.corrupt.Load(),
		Queued:       queued,
		SpoolPending: !w.spool.empty(),
		PostgresDown: w.stats.down.Load(),
		LastError:    w.lastErr.Load().(string),
	}
}

func (w *Writer) run() {
	defer close(w.done)
	tick := time.NewTicker(w.opts.FlushInterval)
	defer tick.Stop()
	for {
		w.cycle(w.ctx, false)
		if w.stopping() { // select would pick at random between stop and a due tick
			return
		}
		select {
		case <-w.stop:
			return
		case <-tick.C:
		case <-w.kick:
		}
	}
}

// cycle is one round of the loop: maintain the partitions when due, send the queue to
// Postgres (or the spool), replay the spool, fsync the spool. final (from Close) waits
// for the batches in flight, stores the queue before returning, tries Postgres even
// while it is resting and replays until ctx ends rather than until Close.
func (w *Writer) cycle(ctx context.Context, final bool) {
	// Wait for a free connection before taking the queue, so that the batch takes what
	// arrives meanwhile. A failed flight sets retryAt.
	for len(w.flights) > 0 && (final || len(w.flights) >= w.opts.Connections) {
		w.land()
	}
	now := time.Now() // scheduling runs on the real clock; Options.Now only names months
	up := (final || !now.Before(w.retryAt)) && ctx.Err() == nil

	if up && !final && now.Sub(w.maintainedAt) >= w.opts.MaintenanceInterval {
		up = w.maintain(ctx, now)
	}

	if batch := w.take(); len(batch) == 0 {
		w.release(batch)
	} else {
		switch {
		case !up:
			w.spoolBatch(batch)
		case final:
			started := time.Now()
			up = w.landed(batch, w.insert(ctx, batch), started)
		default:
			up = w.launch(ctx, batch)
		}
	}

	if up && !w.spool.empty() {
		if err := w.replay(ctx, final); err != nil {
			w.failed(err)
		} else {
			w.recovered()
		}
	}
	if err := w.spool.sync(); err != nil {
		w.log.Error("spend: spool fsync failed", "error", err)
	}
}

// take removes everything queued and sanitises it, off the request path.
func (w *Writer) take() []Record {
	w.mu.Lock()
	batch := w.pending
	w.pending, w.spare = w.spare[:0], nil
	w.mu.Unlock()
	for i := range batch {
		batch[i].normalize()
	}
	return batch
}

// release returns a stored batch's array for reuse, without the strings it points to.
func (w *Writer) release(batch []Record) {
	clear(batch)
	w.mu.Lock()
	w.spare = batch[:0]
	w.mu.Unlock()
}

// A flight is a batch being written to Postgres by a goroutine of its own.
type flight struct {
	batch   []Record
	started time.Time
	err     error         // set before done is closed
	done    chan struct{} // closed when the write returns
}

// launch starts writing batch to Postgres without waiting for it; land collects the
// outcome. It reports whether Postgres is still considered up.
func (w *Writer) launch(ctx context.Context, batch []Record) bool {
	started := time.Now()
	if err := w.preparePartitions(ctx, batch); err != nil {
		return w.landed(batch, err, started)
	}
	f := &flight{batch: batch, started: started, done: make(chan struct{})}
	w.flights = append(w.flights, f)
	go func() {
		defer close(f.done)
		f.err = w.write(ctx, batch)
	}()
	return true
}

// land waits for the oldest flight and settles it like landed.
func (w *Writer) land() {
	f := w.flights[0]
	w.flights[0] = nil
	w.flights = w.flights[1:]
	<-f.done
	w.landed(f.batch, f.err, f.started)
}

// landed settles a batch sent at started with outcome err: when Postgres failed, the
// batch goes to the spool. A batch that succeeded says Postgres is back only if it was
// sent after Postgres last failed: a flight sent before can land after a later one
// failed. It releases the batch and reports whether the write succeeded.
func (w *Writer) landed(batch []Record, err error, started time.Time) bool {
	if err != nil {
		w.failed(err)
		w.spoolBatch(batch)
		return false
	}
	if started.After(w.downSince) {
		w.recovered()
	}
	w.release(batch)
	return true
}

// spoolBatch appends batch to the spool and fsyncs it, or, should the disk fail too,
// puts the records back at the head of the queue.
func (w *Writer) spoolBatch(batch []Record) {
	if err := w.spool.append(batch); err != nil {
		w.log.Error("spend: Postgres and spool both failed; holding records in memory",
			"records", len(batch), "error", err)
		w.mu.Lock()
		w.pending = append(slices.Clone(batch), w.pending...)
		w.mu.Unlock()
		return
	}
	w.stats.spooled.Add(int64(len(batch)))
	if err := w.spool.sync(); err != nil {
		w.log.Error("spend: spool fsync failed", "error", err)
	}
	w.release(batch)
}

// insert writes recs to Postgres, creating the partitions they need first. It returns
// an error when Postgres failed; then none, some or all of recs may be in Postgres,
// and replaying them all is safe.
func (w *Writer) insert(ctx context.Context, recs []Record) error {
	if err := w.preparePartitions(ctx, recs); err != nil {
		return err
	}
	return w.write(ctx, recs)
}

// preparePartitions creates the partitions recs need. It fails only when Postgres is
// out of reach: when Postgres refuses to create one, the rows go to the default
// partition, and maintenance moves them later.
func (w *Writer) preparePartitions(ctx context.Context, recs []Record) error {
	err := w.ensurePartitions(ctx, recs)
	if err != nil && w.unreachable(ctx) {
		return err
	}
	if err != nil {
		w.log.Error("spend: partition creation failed", "error", err)
	}
	return nil
}

// write inserts recs, whose partitions exist. When Postgres refuses the batch's data
// (rather than failing), the batch is bisected until the refused records are found and
// rejected. It does not touch the loop's state: flights run it.
func (w *Writer) write(ctx context.Context, recs []Record) error {
	err := w.insertOnce(ctx, recs)
	if err == nil || !refused(err) {
		return err
	}
	if len(recs) > 1 {
		mid := len(recs) / 2
		if err := w.write(ctx, recs[:mid]); err != nil {
			return err
		}
		return w.write(ctx, recs[mid:])
	}
	// Try once more: a unique violation means another transaction stored the record
	// between our check and our COPY, and this time the check finds it.
	if err = w.insertOnce(ctx, recs); err == nil || !refused(err) {
		return err
	}
	w.stats.rejected.Add(1)
	w.log.Error("spend: Postgres refused a record; kept in the spool's "+rejectedFile,
		"request_id", recs[0].RequestID, "error", err)
	if rerr := w.spool.reject(&recs[0], err); rerr != nil {
		w.stats.dropped.Add(1)
		w.log.Error("spend: cannot keep the refused record; dropped", "request_id", recs[0].RequestID, "error", rerr)
	}
	return nil
}

// refused reports whether err is Postgres refusing data (SQLSTATE class 22, data
// exception, or 23, integrity constraint violation), which some record of the batch
// caused, rather than failing (connections, resources, timeouts, deadlocks), which
// waiting cures.
func refused(err error) bool {
	code := pgErrorCode(err)
	return strings.HasPrefix(code, "22") || strings.HasPrefix(code, "23")
}

// insertOnce writes recs in one transaction.
func (w *Writer) insertOnce(ctx context.Context, recs []Record) error {
	ctx, cancel := context.WithTimeout(ctx, w.opts.FlushTimeout)
	defer cancel()
	inserted, err := insertBatch(ctx, w.pool, recs, w.opts.OnInsert)
	if err != nil {
		return err
	}
	w.stats.written.Add(inserted)
	w.stats.duplicates.Add(int64(len(recs)) - inserted)
	return nil
}

// unreachable reports whether Postgres is out of reach (or the writer out of time),
// telling an outage apart from a maintenance statement Postgres refuses.
func (w *Writer) unreachable(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	ctx, cancel := context.WithTimeout(ctx, w.opts.FlushTimeout)
	defer cancel()
	return w.pool.Ping(ctx) != nil
}

// replay moves the spool's records to Postgres, oldest segment first, deleting each
// segment once its records are committed. Unless final, it stops early when Close is
// called, leaving the rest (replaying a segment again is harmless).
func (w *Writer) replay(ctx context.Context, final bool) error {
	if err := w.spool.seal(); err != nil {
		return err
	}
	for _, name := range w.spool.segments() {
		if !final && w.stopping() {
			return nil
		}
		err := w.spool.read(name, w.opts.BatchSize, func(recs []Record) error {
			if !final && w.stopping() {
				return errStopReplay
			}
			if err := w.insert(ctx, recs); err != nil {
				return err
			}
			w.stats.replayed.Add(int64(len(recs)))
			return nil
		})
		if errors.Is(err, errStopReplay) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := w.spool.remove(name); err != nil {
			return err
		}
	}
	return nil
}

func (w *Writer) stopping() bool {
	select {
	case <-w.stop:
		return true
	default:
		return false
	}
}

// ensurePartitions creates the partitions recs need, for months inside the retention
// window and at most a year ahead (a wrong clock should not create far-future tables;
// such rows wait in the default partition).
func (w *Writer) ensurePartitions(ctx context.Context, recs []Record) error {
	now := monthOf(w.opts.Now())
	last := -1
	for i := range recs {
		month := monthOf(recs[i].Start)
		key := month.Year()*12 + int(month.Month())
		if key == last || w.partitions[key] {
			continue
		}
		last = key
		if month.After(now.AddDate(1, 0, 0)) ||
			(w.opts.RetentionMonths > 0 && month.Before(now.AddDate(0, -w.opts.RetentionMonths, 0))) {
			continue
		}
		created, err := ensurePartition(ctx, w.pool, month)
		if err != nil {
			return err
		}
		if created {
			w.log.Info("spend: created partition", "partition", partitionName(month))
		}
		w.partitions[key] = true
	}
	return nil
}

// maintain creates the partitions of the current month (by Options.Now) and
// PartitionsAhead months after it, and drops expired ones. It reports whether Postgres
// is up.
func (w *Writer) maintain(ctx context.Context, now time.Time) bool {
	ctx, cancel := context.WithTimeout(ctx, w.opts.FlushTimeout)
	defer cancel()
	err := func() error {
		month := monthOf(w.opts.Now())
		recs := make([]Record, 0, w.opts.PartitionsAhead+1)
		for i := 0; i <= w.opts.PartitionsAhead; i++ {
			recs = append(recs, Record{Start: month.AddDate(0, i, 0)})
		}
		clear(w.partitions) // re-check: another replica may have dropped some
		if err := w.ensurePartitions(ctx, recs); err != nil {
			return err
		}
		if w.opts.RetentionMonths <= 0 {
			return nil
		}
		dropped, err := dropExpired(ctx, w.pool, month.AddDate(0, -w.opts.RetentionMonths, 0))
		if len(dropped) > 0 {
			w.log.Info("spend: dropped expired partitions", "partitions", dropped)
		}
		return err
	}()
	if err == nil {
		w.maintainedAt = now
		return true
	}
	if w.unreachable(ctx) {
		w.failed(err)
		return false
	}
	// Postgres is up but maintenance failed (permissions, a hand-made partition in
	// the way): inserts still work, through the default partition. Retry later.
	w.maintainedAt = now.Add(w.opts.RetryInterval - w.opts.MaintenanceInterval)
	w.log.Error("spend: partition maintenance failed", "error", err)
	return true
}

// failed notes that Postgres failed: records go to the spool until RetryInterval has
// passed.
func (w *Writer) failed(err error) {
	now := time.Now()
	w.retryAt = now.Add(w.opts.RetryInterval)
	w.lastErr.Store(err.Error())
	if w.downSince.IsZero() {
		w.downSince = now
		w.stats.down.Store(true)
		w.log.Warn("spend: Postgres unavailable; spooling records", "error", err)
	}
}

// recovered notes that Postgres took a batch.
func (w *Writer) recovered() {
	if w.downSince.IsZero() {
		return
	}
	w.log.Info("spend: Postgres available again", "down_for", time.Since(w.downSince))
	w.downSince = time.Time{}
	w.stats.down.Store(false)
}
