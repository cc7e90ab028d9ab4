package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/tollgate-dev/tollgate/config"
	"github.com/tollgate-dev/tollgate/deploy/migrations"
	"github.com/tollgate-dev/tollgate/extproc"
	"github.com/tollgate-dev/tollgate/keys"
	"github.com/tollgate-dev/tollgate/spend"
	"github.com/tollgate-dev/tollgate/translate"
)

// stores are Postgres (the record: keys, teams, users, spend) and Redis (the hot path:
// key cache, budget and rate counters, invalidation), opened when config.yaml names a
// database. Without one tollgate runs with the master key only.
type stores struct {
	pg     *pgxpool.Pool
	redis  *redis.Client
	keys   *keys.Store
	writer *spend.Writer
	api    *spend.API
}

// openStores connects to Postgres and Redis, applies the schema migrations and starts the
// key store and the spend writer.
func openStores(ctx context.Context, cfg *config.Config, env func(string) (string, bool), o gatewayOptions, logger *slog.Logger) (_ *stores, err error) {
	pool, err := pgxpool.New(ctx, cfg.DatabaseURL.Reveal())
	if err != nil {
		return nil, fmt.Errorf("database_url: %w", err)
	}
	s := &stores{pg: pool}
	defer func() {
		if err != nil {
			s.close(context.Background())
		}
	}()
	applied, err := migrations.Apply(ctx, pool)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if len(applied) > 0 {
		logger.Info("postgres schema migrated", "applied", applied)
	}
	ropts, err := keys.RedisOptionsFromEnv(env)
	if err != nil {
		return nil, err
	}
	s.redis = redis.NewClient(ropts)
	if s.keys, err = keys.Open(ctx, pool, s.redis, keys.Options{Logger: logger, ServeCachedWhenRedisDown: o.serveCachedKeys}); err != nil {
		return nil, err
	}
	if s.writer, err = spend.NewWriter(pool, spend.Options{
		SpoolDir: o.spoolDir, Logger: logger, RetentionMonths: retentionMonths(cfg.SpendRetention),
		OnInsert: addBudgetSpend(keys.Hash(cfg.MasterKey.Reveal())),
	}); err != nil {
		return nil, err
	}
	s.api = spend.NewAPI(pool, logger)
	return s, nil
}

// addBudgetSpend adds stored spend records' cost to the Postgres spend of the budgets
// their requests answered to, in the transaction that stores them. The master key's
// requests answer to no budget (keyLimits reserves nothing for them) and are skipped.
func addBudgetSpend(masterHash string) spend.InsertFunc {
	return func(ctx context.Context, tx pgx.Tx, recs []spend.Record) error {
		spends := make([]keys.Spend, 0, len(recs))
		for i := range recs {
			r := &recs[i]
			if r.KeyHash != masterHash {
				spends = append(spends, keys.Spend{KeyHash: r.KeyHash, TeamID: r.TeamID, UserID: r.UserID,
					EndUser: r.EndUser, Model: r.ModelAlias, MicroUSD: r.CostMicros, Start: r.Start})
			}
		}
		return keys.AddSpend(ctx, tx, spends)
	}
}

// retentionMonths turns a retention period into whole months of spend log partitions,
// rounding up: records are dropped a month at a time, never before their period ends.
func retentionMonths(d time.Duration) int {
	const month = 30 * 24 * time.Hour
	if d <= 0 {
		return 0
	}
	return int((d + month - 1) / month)
}

// close drains the spend writer (to Postgres, or to the spool) and disconnects.
func (s *stores) close(ctx context.Context) {
	if s.writer != nil {
		if err := s.writer.Close(ctx); err != nil {
			slog.Error("draining spend records", "err", err)
		}
	}
	if s.keys != nil {
		s.keys.Close()
	}
	if s.redis != nil {
		s.redis.Close()
	}
	s.pg.Close()
}

// defaultSpoolDir is where spend records wait for Postgres: per user, stable across
// restarts so a restarted tollgate replays what the last one spooled.
func defaultSpoolDir() string {
	if dir, err := os.UserCacheDir(); err == nil {
		return filepath.Join(dir, "tollgate", "spool")
	}
	return filepath.Join(os.TempDir(), "tollgate-spool")
}

// adminRoutes mounts the stores' admin APIs on mux, behind the admin API's key check.
func (s *stores) adminRoutes(mux *http.ServeMux, masterKey string) {
	admin := keys.AdminHandler(s.keys, masterKey)
	for _, prefix := range []string{"/key/", "/team/", "/user/", "/customer/", "/end_user/", "/spend/keys", "/spend/users"} {
		mux.Handle(prefix, admin)
	}
	spendAPI := keys.RequireAdmin(s.keys, masterKey, s.api)
	mux.Handle("/spend/", spendAPI)
	mux.Handle("/global/spend/", spendAPI)
}

// keyAuth authenticates the master key, then virtual keys, hashing the key once.
type keyAuth struct {
	master *extproc.MasterKey
	store  *keys.Store
}

func (a keyAuth) Authenticate(ctx context.Context, key string) (*extproc.Principal, error) {
	d := keys.Digest(key)
	if p, ok := a.master.Match(d); ok {
		return p, nil
	}
	k, err := a.store.AuthenticateDigest(ctx, key, d)
	if err != nil {
		return nil, keysError(err)
	}
	// keys.Principal and extproc.Principal have the same fields: a conversion, no copy.
	return (*extproc.Principal)(&k.Principal), nil
}

// keyLimits enforces virtual keys' budgets and rate limits; the master key has none.
type keyLimits struct {
	store      *keys.Store
	masterHash string
}

func (l keyLimits) Reserve(ctx context.Context, p *extproc.Principal, r extproc.LimitRequest) (extproc.Reservation, error) {
	if p.KeyHash == l.masterHash {
		return nil, nil
	}
	res, err := l.store.Reserve(ctx, keys.Request{
		KeyHash: p.KeyHash, TeamID: p.TeamID, UserID: p.UserID, EndUser: r.EndUser,
		Model: r.Alias, CostMicroUSD: r.CostMicroUSD, Tokens: r.Tokens,
	})
	if err != nil {
		return nil, keysError(err)
	}
	return keyReservation{l.store, res}, nil
}

type keyReservation struct {
	store *keys.Store
	res   *keys.Reservation
}

func (r keyReservation) Settle(ctx context.Context, cost, tokens int64) error {
	return r.store.Settle(ctx, r.res, cost, tokens)
}

func (r keyReservation) Release(ctx context.Context) error { return r.store.Release(ctx, r.res) }

func (r keyReservation) Headers() []translate.Header {
	h := sortedHeaders(r.res.RateLimit.Headers())
	if !r.res.Unchecked {
		h = append(h, translate.Header{Key: "x-litellm-key-spend", Value: strconv.FormatFloat(float64(r.res.KeySpend)/1e6, 'f', -1, 64)})
	}
	if r.res.SoftBudget != "" {
		h = append(h, translate.Header{Key: "x-tollgate-soft-budget-exceeded", Value: r.res.SoftBudget})
	}
	return h
}

// keysError turns a keys error into the client's OpenAI error, with its retry-after and
// x-ratelimit-* headers. Errors of no known kind pass unchanged: extproc answers them
// with a 500 and logs the cause.
func keysError(err error) error {
	e, ok := keys.APIError(err)
	if !ok {
		return err
	}
	if le, ok := errors.AsType[*keys.LimitError](err); ok {
		e.Headers = sortedHeaders(le.Headers())
	}
	return e
}

func sortedHeaders(m map[string]string) []translate.Header {
	h := make([]translate.Header, 0, len(m))
	for k, v := range m {
		h = append(h, translate.Header{Key: k, Value: v})
	}
	sort.Slice(h, func(i, j int) bool { return h[i].Key < h[j].Key })
	return h
}

// spendSink hands extproc's records to the spend writer.
type spendSink struct{ w *spend.Writer }

func (s spendSink) Record(r *extproc.SpendRecord) {
	rec := spend.Record{
		RequestID: r.RequestID, CallType: r.Endpoint.String(), EndUser: r.EndUser, Metadata: r.Metadata,
		ModelAlias: r.Alias, DeploymentID: r.DeploymentID, Provider: r.Provider, ProviderModel: r.ProviderModel,
		CostMicros: r.CostMicroUSD, CostKnown: r.CostKnown,
		Status: r.Status, ErrorCode: r.ErrorCode,
		Start: r.Start, End: r.End, FirstToken: r.FirstByte, Stream: r.Stream, UsageEstimated: r.UsageEstimated, Attempts: r.Attempts,
	}
	if p := r.Principal; p != nil {
		rec.KeyHash, rec.KeyAlias, rec.TeamID, rec.UserID = p.KeyHash, p.KeyAlias, p.TeamID, p.UserID
	}
	rec.SetUsage(r.Usage)
	s.w.Enqueue(rec)
}

// shutdownTimeout bounds draining on SIGTERM.
const shutdownTimeout = 30 * time.Second
