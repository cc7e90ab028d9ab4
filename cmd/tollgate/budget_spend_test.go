package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tollgate-dev/tollgate/deploy/migrations"
	"github.com/tollgate-dev/tollgate/keys"
	"github.com/tollgate-dev/tollgate/spend"
)

// BenchmarkWriterWithBudgets measures the spend writer as tollgate runs it: each batch
// also adds its cost to the budgets in Postgres (addBudgetSpend, keys.AddSpend), for
// 200 keys in 10 teams of 5 users, 1,000 end users and two models. Records per second,
// from the first Enqueue until Close returns with every record committed:
//
//	go test ./cmd/tollgate -run '^$' -bench WriterWithBudgets -benchtime 200000x
func BenchmarkWriterWithBudgets(b *testing.B) {
	ctx := context.Background()
	pool := migratedPool(b)
	type owner struct{ hash, team, user string }
	owners := make([]owner, 200)
	for i := range owners {
		owners[i] = owner{keys.Hash(fmt.Sprintf("sk-bench-%d", i)), fmt.Sprintf("team-%d", i%10), fmt.Sprintf("user-%d", i%50)}
		o := owners[i]
		if _, err := pool.Exec(ctx, `INSERT INTO tollgate_teams (team_id) VALUES ($1) ON CONFLICT DO NOTHING;`, o.team); err != nil {
			b.Fatal(err)
		}
		if _, err := pool.Exec(ctx, `INSERT INTO tollgate_team_members (team_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`, o.team, o.user); err != nil {
			b.Fatal(err)
		}
		if _, err := pool.Exec(ctx, `INSERT INTO tollgate_keys (token, key_name, team_id, user_id) VALUES ($1, 'sk-...', $2, $3)`, o.hash, o.team, o.user); err != nil {
			b.Fatal(err)
		}
	}
	base := time.Now().UTC()
	recs := make([]spend.Record, b.N)
	for i := range recs {
		o := owners[i%len(owners)]
		start := base.Add(time.Duration(i) * 10 * time.Microsecond)
		recs[i] = spend.Record{
			RequestID: rand.Text(), CallType: "chat/completions", KeyHash: o.hash, KeyAlias: "key",
			TeamID: o.team, UserID: o.user, EndUser: fmt.Sprintf("customer-%d", i%1000),
			ModelAlias: []string{"gpt-5.5", "claude-sonnet"}[i%2], DeploymentID: "d", Provider: "openai",
			ProviderModel: "gpt-5.5-2026-04-23", APIBase: "https://api.openai.example",
			PromptTokens: 120, CompletionTokens: 30, CostMicros: 1500, CostKnown: true, Status: 200,
			Start: start, End: start.Add(800 * time.Millisecond), FirstToken: start.Add(200 * time.Millisecond),
			Attempts: 1, Tags: []string{"job:nightly"},
		}
	}
	w, err := spend.NewWriter(pool, spend.Options{
		SpoolDir: b.TempDir(), OnInsert: addBudgetSpend(keys.Hash("sk-master")), // as tollgate serve's
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `CHECKPOINT`); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	start := time.Now()
	for i := range recs {
		w.Enqueue(recs[i])
		for i%1000 == 0 && w.Stats().Queued > 10_000 { // producers at the writer's pace
			time.Sleep(100 * time.Microsecond)
		}
	}
	if err := w.Close(ctx); err != nil {
		b.Fatal(err)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	st := w.Stats()
	if st.Written != int64(b.N) || st.Spooled != 0 {
		b.Fatalf("%d written, %d spooled (%s); want %d written straight to Postgres", st.Written, st.Spooled, st.LastError, b.N)
	}
	var keySpend int64
	if err := pool.QueryRow(ctx, `SELECT sum(spend) FROM tollgate_keys`).Scan(&keySpend); err != nil {
		b.Fatal(err)
	}
	if want := int64(b.N) * 1500; keySpend != want {
		b.Fatalf("keys' spend %d µ$, want %d", keySpend, want)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "records/s")
}

// TestBudgetSpendCountsInItsOwnPeriod: the spend writer's hook passes each record's
// start time, so a record stored after a budget reset, for a request that started
// before it, is not added to the new period.
func TestBudgetSpendCountsInItsOwnPeriod(t *testing.T) {
	ctx := context.Background()
	pool := migratedPool(t)
	hash, turn := keys.Hash("sk-period"), time.Now().Add(-time.Minute).UTC().Truncate(time.Microsecond)
	if _, err := pool.Exec(ctx, `INSERT INTO tollgate_keys (token, key_name, budget_period_start) VALUES ($1, 'sk-...', $2)`, hash, turn); err != nil {
		t.Fatal(err)
	}
	recs := []spend.Record{
		{KeyHash: hash, CostMicros: 7, Start: turn.Add(-time.Second)},
		{KeyHash: hash, CostMicros: 11, Start: turn.Add(time.Second)},
	}
	if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		return addBudgetSpend(keys.Hash("sk-master"))(ctx, tx, recs)
	}); err != nil {
		t.Fatal(err)
	}
	var got int64
	if err := pool.QueryRow(ctx, `SELECT spend FROM tollgate_keys WHERE token = $1`, hash).Scan(&got); err != nil {
		t.Fatal(err)
	}
	if got != 11 {
		t.Errorf("key spend = %d µ$, want 11: only the record of the current period", got)
	}
}

// migratedPool connects to the test's own Postgres schema and applies the migrations.
func migratedPool(t testing.TB) *pgxpool.Pool {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, storesForTest(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if _, err := migrations.Apply(ctx, pool); err != nil {
		t.Fatal(err)
	}
	return pool
}
