package spend

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The schema is deploy/migrations/0010_spend.sql and the migrations after it.
const (
	logsTable        = "tollgate_spend_logs"
	defaultPartition = logsTable + "_default"
	dailyTable       = "tollgate_spend_daily"
)

// maintenanceLock serialises partition creation and retention across replicas
// (pg_advisory_xact_lock); the migrations use another id.
const maintenanceLock = 7_461_636_116

// logColumns are the columns the writer fills, in appendRow's order.
var logColumns = []string{
	"request_id", "call_type", "api_key", "key_alias", "team_id", "user_id", "end_user",
	"model_group", "model_id", "custom_llm_provider", "model", "api_base",
	"prompt_tokens", "completion_tokens", "total_tokens", "cached_tokens",
	"cache_creation_tokens", "reasoning_tokens", "spend", "cost_known", "usage_estimated",
	"status_code", "error_code", "start_time", "end_time", "completion_start_time",
	"attempts", "stream", "request_tags", "metadata",
}

// insertBatch writes the records of recs that Postgres does not have yet, and adds
// exactly those to the daily rollups and passes them to onInsert (when not nil), in one
// transaction. It returns how many it wrote.
//
// COPY cannot skip rows that are already there. Nearly every batch is new records, so
// the first try copies the whole batch, straight into the partitioned table, and the
// primary key refuses it if any record is stored already (a replay after a lost commit
// reply, a record enqueued twice). Then the second try asks which of the batch's keys
// exist and copies only the others. COPY's bulk path is what makes the writer fast: an
// INSERT ... SELECT ... ON CONFLICT DO NOTHING from a staging table, the other
// idempotent design, measured 1.5-2x slower here, and asking first on every batch cost
// a fifth of the throughput. Should another transaction insert one of the keys between
// the second try's question and its COPY, the primary key refuses that COPY too, the
// transaction rolls back, and the caller's retry skips the key: a record is never
// stored or counted twice.
func insertBatch(ctx context.Context, pool *pgxpool.Pool, recs []Record, onInsert InsertFunc) (inserted int64, err error) {
	inserted, err = copyBatch(ctx, pool, recs, false, onInsert)
	if pgErrorCode(err) == uniqueViolation {
		inserted, err = copyBatch(ctx, pool, recs, true, onInsert)
	}
	if err != nil {
		return 0, fmt.Errorf("spend: write %d records: %w", len(recs), err)
	}
	return inserted, nil
}

// uniqueViolation is the SQLSTATE of a duplicate primary key.
const uniqueViolation = "23505"

// pgErrorCode is err's SQLSTATE, or "" when err is not from Postgres.
func pgErrorCode(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

// copyBatch is one transaction of insertBatch: COPY recs, without the stored ones if
// skipStored, and add what it copied to the rollups and onInsert.
func copyBatch(ctx context.Context, pool *pgxpool.Pool, recs []Record, skipStored bool, onInsert InsertFunc) (copied int64, err error) {
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		fresh := recs
		if skipStored {
			if fresh, err = newRecords(ctx, tx, recs); err != nil {
				return fmt.Errorf("find stored records: %w", err)
			}
			if len(fresh) == 0 {
				return nil
			}
		}
		if _, err := tx.Conn().PgConn().CopyFrom(ctx, newCopyReader(fresh), copyRecords); err != nil {
			return fmt.Errorf("copy: %w", err)
		}
		if err := addToRollups(ctx, tx, fresh); err != nil {
			return fmt.Errorf("rollups: %w", err)
		}
		if onInsert != nil {
			if err := onInsert(ctx, tx, fresh); err != nil {
				return fmt.Errorf("on insert: %w", err)
			}
		}
		copied = int64(len(fresh))
		return nil
	})
	if err != nil {
		return 0, err
	}
	return copied, nil
}

// recordKey is a spend log row's primary key.
type recordKey struct {
	requestID string
	start     int64 // Unix microseconds, Postgres's precision
}

func keyOf(r *Record) recordKey { return recordKey{r.RequestID, r.Start.UnixMicro()} }

// newRecords returns recs without the records the spend logs already hold and without
// repeats, keeping the first of each. It returns recs itself when all are new.
func newRecords(ctx context.Context, tx pgx.Tx, recs []Record) ([]Record, error) {
	ids := make([]string, len(recs))
	lo, hi := recs[0].Start, recs[0].Start
	for i := range recs {
		ids[i] = recs[i].RequestID
		if recs[i].Start.Before(lo) {
			lo = recs[i].Start
		}
		if recs[i].Start.After(hi) {
			hi = recs[i].Start
		}
	}
	// The start time bounds let Postgres skip the partitions the batch cannot be in.
	rows, err := tx.Query(ctx, `SELECT request_id, start_time FROM `+logsTable+`
		WHERE request_id = ANY($1) AND start_time BETWEEN $2 AND $3`, ids, lo, hi)
	if err != nil {
		return nil, err
	}
	seen := make(map[recordKey]bool, len(recs))
	var (
		id    string
		start time.Time
	)
	if _, err := pgx.ForEachRow(rows, []any{&id, &start}, func() error {
		seen[recordKey{id, start.UnixMicro()}] = true
		return nil
	}); err != nil {
		return nil, err
	}
	fresh, copied := recs, false // fresh aliases recs until a record is skipped
	for i := range recs {
		k := keyOf(&recs[i])
		if seen[k] {
			if !copied {
				fresh, copied = slices.Clone(recs[:i]), true
			}
			continue
		}
		seen[k] = true
		if copied {
			fresh = append(fresh, recs[i])
		}
	}
	return fresh, nil
}

// copyRecords copies rows into the spend logs in COPY's binary format.
var copyRecords = `COPY ` + logsTable + ` (` + strings.Join(logColumns, ", ") + `) FROM STDIN (FORMAT binary)`

// copyReader streams records in COPY's binary format (PostgreSQL manual, COPY, "Binary
// Format"), encoding rows as Postgres reads them: a header; per row the number of
// fields, then each as its length (-1 for NULL) and its type's binary send format; a
// trailer. It does what pgx's CopyFrom would at a fraction of the CPU (no encoder
// lookups per value, no round trip for the column types), which on a two-core machine
// is CPU Postgres gets instead.
type copyReader struct {
	recs []Record
	next int    // the next record to encode; len(recs)+1 once the trailer is out
	buf  []byte // encoded and not yet read
}

func newCopyReader(recs []Record) *copyReader {
	buf := append(make([]byte, 0, 64<<10), "PGCOPY\n\xff\r\n\x00"...)
	buf = binary.BigEndian.AppendUint32(buf, 0) // flags
	buf = binary.BigEndian.AppendUint32(buf, 0) // header extension length
	return &copyReader{recs: recs, buf: buf}
}

func (c *copyReader) Read(p []byte) (int, error) {
	for len(c.buf) < len(p) && c.next <= len(c.recs) {
		if c.next == len(c.recs) {
			c.buf = binary.BigEndian.AppendUint16(c.buf, 0xffff) // trailer: -1 fields
		} else {
			c.buf = appendRow(c.buf, &c.recs[c.next])
		}
		c.next++
	}
	if len(c.buf) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.buf)
	c.buf = c.buf[:copy(c.buf, c.buf[n:])]
	return n, nil
}

// appendRow encodes r as one row of logColumns, in their order.
func appendRow(b []byte, r *Record) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(logColumns)))
	for _, s := range [...]string{r.RequestID, r.CallType, r.KeyHash, r.KeyAlias, r.TeamID,
		r.UserID, r.EndUser, r.ModelAlias, r.DeploymentID, r.Provider, r.ProviderModel, r.APIBase} {
		b = appendField(b, s)
	}
	for _, n := range [...]int64{r.PromptTokens, r.CompletionTokens, r.PromptTokens + r.CompletionTokens,
		r.CachedTokens, r.CacheCreationTokens, r.ReasoningTokens, r.CostMicros} {
		b = binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint32(b, 8), uint64(n))
	}
	b = appendBool(b, r.CostKnown)
	b = appendBool(b, r.UsageEstimated)
	b = appendInt4(b, r.Status)
	b = appendField(b, r.ErrorCode)
	b = appendTimestamp(b, r.Start)
	b = appendTimestamp(b, r.End)
	if r.FirstToken.IsZero() { // no response byte arrived
		b = binary.BigEndian.AppendUint32(b, 0xffffffff) // NULL
	} else {
		b = appendTimestamp(b, r.FirstToken)
	}
	b = appendInt4(b, r.Attempts)
	b = appendBool(b, r.Stream)
	b = appendTags(b, r.Tags)
	meta := r.Metadata
	if len(meta) == 0 {
		meta = json.RawMessage("{}")
	}
	return append(append(appendFieldLen(b, 1+len(meta)), 1), meta...) // jsonb: version 1, then text
}

func appendField(b []byte, s string) []byte { return append(appendFieldLen(b, len(s)), s...) }

func appendFieldLen(b []byte, n int) []byte { return binary.BigEndian.AppendUint32(b, uint32(n)) }

func appendInt4(b []byte, n int) []byte {
	return binary.BigEndian.AppendUint32(appendFieldLen(b, 4), uint32(int32(n)))
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(appendFieldLen(b, 1), 1)
	}
	return append(appendFieldLen(b, 1), 0)
}

// postgresEpoch is timestamptz's zero, in Unix microseconds.
const postgresEpoch = 946_684_800_000_000

func appendTimestamp(b []byte, t time.Time) []byte {
	return binary.BigEndian.AppendUint64(appendFieldLen(b, 8), uint64(t.UnixMicro()-postgresEpoch))
}

// appendTags appends tags as a jsonb array of strings. Tags are valid UTF-8 without NUL
// bytes (Record.normalize), so a string needs only quotes, backslashes and control
// characters escaped.
func appendTags(b []byte, tags []string) []byte {
	lenAt := len(b)
	b = append(appendFieldLen(b, 0), 1, '[') // jsonb version 1
	for i, t := range tags {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		for j := 0; j < len(t); j++ {
			switch c := t[j]; {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20:
				b = append(b, `\u00`...)
				b = append(b, hexDigits[c>>4], hexDigits[c&0xf])
			default:
				b = append(b, c)
			}
		}
		b = append(b, '"')
	}
	b = append(b, ']')
	binary.BigEndian.PutUint32(b[lenAt:], uint32(len(b)-lenAt-4))
	return b
}

const hexDigits = "0123456789abcdef"

// monthOf is the first instant of t's month, UTC.
func monthOf(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
}

// partitionName names the partition holding month's rows.
func partitionName(month time.Time) string {
	return fmt.Sprintf("%s_%04d%02d", logsTable, month.Year(), int(month.Month()))
}

// partitionMonth parses a partitionName.
func partitionMonth(name string) (time.Time, bool) {
	suffix, ok := strings.CutPrefix(name, logsTable+"_")
	if !ok || len(suffix) != 6 {
		return time.Time{}, false
	}
	ym, err := strconv.Atoi(suffix)
	if err != nil || ym%100 < 1 || ym%100 > 12 {
		return time.Time{}, false
	}
	return time.Date(ym/100, time.Month(ym%100), 1, 0, 0, 0, 0, time.UTC), true
}

// pgTime renders t as a timestamptz literal for DDL, which takes no parameters.
func pgTime(t time.Time) string { return "'" + t.UTC().Format("2006-01-02 15:04:05Z07:00") + "'" }

// logsSchema is the schema holding the spend logs table (the first on the search path
// that has it): partitions are created next to their parent.
func logsSchema(ctx context.Context, tx pgx.Tx) (string, error) {
	var schema string
	err := tx.QueryRow(ctx, `SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.oid = $1::regclass`, logsTable).Scan(&schema)
	if err != nil {
		return "", fmt.Errorf("find %s: %w", logsTable, err)
	}
	return schema, nil
}

// ensurePartition creates month's partition unless it exists. Rows the default
// partition already holds for that month move into it: Postgres refuses to attach a
// partition while the default partition has rows in its range.
func ensurePartition(ctx context.Context, pool *pgxpool.Pool, month time.Time) (created bool, err error) {
	name := partitionName(month)
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, maintenanceLock); err != nil {
			return err
		}
		schema, err := logsSchema(ctx, tx)
		if err != nil {
			return err
		}
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE n.nspname = $1 AND c.relname = $2)`, schema, name).Scan(&exists); err != nil {
			return err
		}
		if exists {
			return nil
		}
		part := pgx.Identifier{schema, name}.Sanitize()
		parent := pgx.Identifier{schema, logsTable}.Sanitize()
		def := pgx.Identifier{schema, defaultPartition}.Sanitize()
		from, to := pgTime(month), pgTime(month.AddDate(0, 1, 0))
		for _, stmt := range []string{
			`CREATE TABLE ` + part + ` (LIKE ` + parent + ` INCLUDING DEFAULTS INCLUDING CONSTRAINTS)`,
			`WITH moved AS (DELETE FROM ` + def + ` WHERE start_time >= ` + from + ` AND start_time < ` + to + ` RETURNING *)
				INSERT INTO ` + part + ` SELECT * FROM moved`,
			`ALTER TABLE ` + parent + ` ATTACH PARTITION ` + part + ` FOR VALUES FROM (` + from + `) TO (` + to + `)`,
		} {
			if _, err := tx.Exec(ctx, stmt); err != nil {
				return err
			}
		}
		created = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("spend: create partition %s: %w", name, err)
	}
	return created, nil
}

// dropExpired drops the partitions of months before cutoff and deletes the default
// partition's rows from before it. It returns the partitions dropped.
func dropExpired(ctx context.Context, pool *pgxpool.Pool, cutoff time.Time) (dropped []string, err error) {
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		dropped = nil
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, maintenanceLock); err != nil {
			return err
		}
		schema, err := logsSchema(ctx, tx)
		if err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
			WHERE i.inhparent = $1::regclass ORDER BY c.relname`, logsTable)
		if err != nil {
			return err
		}
		names, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		for _, name := range names {
			if month, ok := partitionMonth(name); ok && month.Before(cutoff) {
				if _, err := tx.Exec(ctx, `DROP TABLE `+pgx.Identifier{schema, name}.Sanitize()); err != nil {
					return err
				}
				dropped = append(dropped, name)
			}
		}
		_, err = tx.Exec(ctx, `DELETE FROM `+pgx.Identifier{schema, defaultPartition}.Sanitize()+
			` WHERE start_time < `+pgTime(cutoff))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("spend: retention: %w", err)
	}
	return dropped, nil
}
