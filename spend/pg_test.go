package spend

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tollgate-dev/tollgate/deploy/migrations"
)

// The tests run against the machine's Postgres (trust auth), each in a schema of its
// own that is dropped afterwards. TOLLGATE_TEST_POSTGRES overrides the address.
func testPostgresAddr() string {
	if a := os.Getenv("TOLLGATE_TEST_POSTGRES"); a != "" {
		return a
	}
	return "127.0.0.1:5432"
}

func testDSN(addr string) string {
	return "postgres://postgres@" + addr + "/test?sslmode=disable"
}

// testSchema is a fresh schema with tollgate's migrations applied; pool's connections
// use it as their search path.
type testSchema struct {
	name string
	pool *pgxpool.Pool
}

func newTestSchema(t testing.TB) *testSchema {
	t.Helper()
	ctx := context.Background()
	name := fmt.Sprintf("spend_test_%016x", rand.Uint64())
	admin, err := pgx.Connect(ctx, testDSN(testPostgresAddr()))
	if err != nil {
		t.Fatalf("connect to Postgres: %v", err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, `CREATE SCHEMA `+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn, err := pgx.Connect(ctx, testDSN(testPostgresAddr()))
		if err != nil {
			t.Errorf("drop schema %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, `DROP SCHEMA `+name+` CASCADE`); err != nil {
			t.Errorf("drop schema %s: %v", name, err)
		}
	})
	s := &testSchema{name: name}
	s.pool = s.connect(t, testPostgresAddr())
	if _, err := migrations.Apply(ctx, s.pool); err != nil {
		t.Fatalf("migrations: %v", err)
	}
	return s
}

// connect opens a pool on the schema through addr (Postgres, or a proxy to it).
func (s *testSchema) connect(t testing.TB, addr string) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(testDSN(addr))
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = s.name
	cfg.MaxConns = 4
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// storedRecords reads every spend log row, by request id.
func (s *testSchema) storedRecords(t testing.TB) []Record {
	t.Helper()
	rows, err := s.pool.Query(context.Background(),
		`SELECT `+strings.Join(logColumns, ", ")+` FROM `+logsTable+` ORDER BY request_id, start_time`)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Record, error) { return scanRecord(row) })
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// dailyRow is a tollgate_spend_daily row.
type dailyRow struct {
	Day                                                    string
	APIKey, TeamID, UserID, EndUser, Model                 string
	Spend, Prompt, Completion, Cached, CacheCreation, Reas int64
	Requests, Failed, CostUnknown                          int64
}

// dailyRows are the rollups the writer maintained.
func (s *testSchema) dailyRows(t testing.TB) []dailyRow {
	t.Helper()
	return s.queryDaily(t, `SELECT to_char(day, 'YYYY-MM-DD'), api_key, team_id, user_id,
		end_user, model, spend, prompt_tokens, completion_tokens, cached_tokens, cache_creation_tokens,
		reasoning_tokens, requests, failed_requests, cost_unknown_requests
		FROM tollgate_spend_daily ORDER BY 1, 2, 3, 4, 5, 6`)
}

// dailyFromLogs are the rollups the stored spend logs add up to, summed by Postgres from
// the records themselves: independent of the writer's rollup code.
func (s *testSchema) dailyFromLogs(t testing.TB) []dailyRow {
	t.Helper()
	return s.queryDaily(t, `SELECT to_char(start_time AT TIME ZONE 'UTC', 'YYYY-MM-DD'), api_key, team_id, user_id,
		end_user, model_group, sum(spend)::bigint, sum(prompt_tokens)::bigint, sum(completion_tokens)::bigint,
		sum(cached_tokens)::bigint, sum(cache_creation_tokens)::bigint, sum(reasoning_tokens)::bigint, count(*),
		count(*) FILTER (WHERE status_code >= 400), count(*) FILTER (WHERE NOT cost_known)
		FROM `+logsTable+` GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 1, 2, 3, 4, 5, 6`)
}

func (s *testSchema) queryDaily(t testing.TB, sql string) []dailyRow {
	t.Helper()
	rows, err := s.pool.Query(context.Background(), sql)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[dailyRow])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// testRecord is the i-th of a realistic mix of records starting at base.
func testRecord(i int, base time.Time) Record {
	start := base.Add(time.Duration(i) * time.Millisecond)
	r := Record{
		RequestID:     fmt.Sprintf("req-%07d", i),
		CallType:      "chat/completions",
		KeyHash:       hashKey(fmt.Sprintf("sk-test-%d", i%7)),
		KeyAlias:      fmt.Sprintf("key-%d", i%7),
		TeamID:        []string{"", "team-a", "team-b"}[i%3],
		UserID:        fmt.Sprintf("user-%d", i%5),
		EndUser:       []string{"", "customer-1", "customer-2", "customer-3"}[i%4],
		ModelAlias:    []string{"gpt-5.5", "claude-sonnet"}[i%2],
		DeploymentID:  []string{"gpt-5.5-0", "claude-sonnet-0"}[i%2],
		Provider:      []string{"openai", "anthropic"}[i%2],
		ProviderModel: []string{"gpt-5.5-2026-04-23", "claude-sonnet-4-5-20250929"}[i%2],
		APIBase:       []string{"https://api.openai.example", "https://api.anthropic.example"}[i%2],
		PromptTokens:  int64(100 + i%97), CompletionTokens: int64(20 + i%31),
		CachedTokens: int64(i % 11), CacheCreationTokens: int64(i % 3), ReasoningTokens: int64(i % 13),
		CostMicros: int64(1000 + i%977), CostKnown: i%10 != 0, UsageEstimated: i%17 == 0,
		Status: 200, Start: start, End: start.Add(1500 * time.Millisecond),
		FirstToken: start.Add(200 * time.Millisecond),
		Attempts:   1 + i%2, Stream: i%2 == 0,
		Tags:     []string{"job:" + fmt.Sprint(i%3)},
		Metadata: []byte(fmt.Sprintf(`{"trace":"t-%d"}`, i)),
	}
	if !r.CostKnown {
		r.CostMicros = 0
	}
	if i%9 == 0 {
		r.Status, r.ErrorCode, r.FirstToken = 429, "rate_limit_exceeded", time.Time{}
	}
	return r
}

// normalized returns recs as the writer stores them.
func normalized(recs []Record) []Record {
	out := make([]Record, len(recs))
	for i, r := range recs {
		r.normalize()
		out[i] = r
	}
	return out
}

// syncBuffer is a log destination tests read while the writer writes to it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func testLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// waitFor polls cond until it holds, failing the test after a generous limit: it waits
// for the writer's background loop, it does not time it.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
