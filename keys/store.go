package keys

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/singleflight"
)

// Options tune a Store. The zero value is a working configuration.
type Options struct {
	// Prefix starts every Redis key and channel name the Store uses, so several
	// deployments (or tests) can share one Redis. Default "tollgate:".
	Prefix string
	// CacheTTL bounds how long a key stays in the in-process cache without being read
	// from Redis again. Invalidations (pub/sub) normally remove it much sooner; the ttl
	// only matters if one is ever missed. Default 1m.
	CacheTTL time.Duration
	// NegativeCacheTTL is how long a hash Redis did not know is answered "invalid key"
	// from memory. Creating a key with that hash invalidates the entry at once. Default 1m.
	NegativeCacheTTL time.Duration
	// NegativeCacheSize bounds the unknown-hash set; when full it is emptied. Default 100k.
	NegativeCacheSize int
	// ServeCachedWhenRedisDown makes a Redis outage degrade instead of fail: keys in the
	// in-process cache keep authenticating (a key revoked during the outage is refused only
	// when Redis returns or the cache ttl passes), and Reserve admits requests without
	// checking budgets or rate limits. The default fails closed: 503 for every request.
	ServeCachedWhenRedisDown bool
	// ReservationTTL is how long a reservation holds budget and a parallel-request slot if
	// it is never settled (the process died mid-request). It must exceed the longest
	// request. Default 15m.
	ReservationTTL time.Duration
	// CheckInterval is how often the Store checks Redis is reachable and primed, and
	// rebuilds it from Postgres when it is not. Default 500ms.
	CheckInterval time.Duration
	// ResetInterval is how often budgets whose budget_duration has passed are reset (one
	// replica does it). Default 10s.
	ResetInterval time.Duration
	// Logger receives the Store's logs; keys are never logged. Default: discard.
	Logger *slog.Logger
}

func (o *Options) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if o.Prefix == "" {
		o.Prefix = "tollgate:"
	}
	def(&o.CacheTTL, time.Minute)
	def(&o.NegativeCacheTTL, time.Minute)
	def(&o.ReservationTTL, 15*time.Minute)
	def(&o.CheckInterval, 500*time.Millisecond)
	def(&o.ResetInterval, 10*time.Second)
	if o.NegativeCacheSize <= 0 {
		o.NegativeCacheSize = 100_000
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Store is the key, team, user and budget store: Postgres is the record, Redis the hot
// copy, and an in-process cache sits in front of Redis. It is safe for concurrent use; one
// Store per process.
type Store struct {
	pg   *pgxpool.Pool
	rdb  *redis.Client
	opts Options
	n    names
	log  *slog.Logger

	cache     *cache
	lookups   singleflight.Group
	redisUp   atomic.Bool // the last health check reached Redis
	listening atomic.Bool // the invalidation subscription is live
	kick      chan struct{}

	ridPrefix string
	ridSeq    atomic.Uint64

	ps     *redis.PubSub
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Open returns a Store over pg and rdb and starts its background work: the invalidation
// subscription, the Redis health check and rebuild, and the budget resets. It does not
// fail when Redis or Postgres is down (requests fail with ErrUnavailable until they
// return); it does wait, briefly, for the subscription and for a first rebuild of an
// empty Redis. The schema must exist (deploy/migrations).
func Open(ctx context.Context, pg *pgxpool.Pool, rdb *redis.Client, opts Options) (*Store, error) {
	if pg == nil || rdb == nil {
		return nil, errors.New("keys: Open needs a Postgres pool and a Redis client")
	}
	opts.defaults()
	var rid [6]byte
	rand.Read(rid[:])
	s := &Store{
		pg:        pg,
		rdb:       rdb,
		opts:      opts,
		n:         names{p: opts.Prefix},
		log:       opts.Logger.With("component", "keys"),
		cache:     newCache(int64(opts.CacheTTL), int64(opts.NegativeCacheTTL), opts.NegativeCacheSize),
		kick:      make(chan struct{}, 1),
		ridPrefix: hex.EncodeToString(rid[:]),
	}

	bg, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.ps = rdb.Subscribe(ctx, s.n.channel())
	subscribed := make(chan struct{})
	s.wg.Add(3)
	go func() { defer s.wg.Done(); s.listen(bg, subscribed) }()
	select {
	case <-subscribed:
	case <-time.After(2 * time.Second):
		s.log.Warn("Redis invalidation channel not subscribed yet; keys are refused until it is")
	case <-ctx.Done():
	}
	s.check(ctx)
	go func() { defer s.wg.Done(); s.every(bg, opts.CheckInterval, s.kick, s.check) }()
	go func() { defer s.wg.Done(); s.every(bg, opts.ResetInterval, nil, s.resetLogged) }()
	return s, nil
}

// Close stops the background work.
func (s *Store) Close() error {
	s.cancel()
	err := s.ps.Close()
	s.wg.Wait()
	return err
}

// every runs fn every interval (and when poke fires) until ctx ends. A run in progress is
// not cancelled by ctx (Close waits for it): a transaction cut short at its commit would
// leave Redis ahead of Postgres and force a rebuild.
func (s *Store) every(ctx context.Context, interval time.Duration, poke <-chan struct{}, fn func(context.Context)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-poke:
		}
		run, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		fn(run)
		cancel()
	}
}

// check notes whether Redis is reachable and rebuilds it from Postgres when it is empty.
func (s *Store) check(ctx context.Context) {
	n, err := s.rdb.Exists(ctx, s.n.primed()).Result()
	s.setRedisUp(err == nil)
	if err != nil || n == 1 {
		return
	}
	if err := s.rebuild(ctx); err != nil && ctx.Err() == nil {
		s.log.Warn("rebuilding Redis from Postgres failed; keys not in the in-process cache are refused until it succeeds", "err", err)
	}
}

// rebuildSoon asks the background check to run now (a lookup found Redis unprimed).
func (s *Store) rebuildSoon() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

func (s *Store) setRedisUp(up bool) {
	if s.redisUp.Swap(up) == up {
		return
	}
	if up {
		// Invalidations published while Redis was unreachable were lost.
		s.cache.invalidateAll()
		s.log.Info("Redis reachable again")
	} else {
		s.log.Warn("Redis unreachable: refusing keys until it returns", "serve_cached", s.opts.ServeCachedWhenRedisDown)
	}
}

// healthy reports whether cached keys may be trusted: Redis answers and invalidations
// arrive.
func (s *Store) healthy() bool { return s.redisUp.Load() && s.listening.Load() }

// resetLogged adapts resetBudgets to every.
func (s *Store) resetLogged(ctx context.Context) {
	if err := s.resetBudgets(ctx); err != nil && ctx.Err() == nil {
		s.log.Warn("resetting budgets failed; will retry", "err", err)
	}
}
