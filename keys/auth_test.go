package keys

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/tollgate-dev/tollgate/translate/providertest"
)

func TestAuthenticate(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	s := e.s()
	good := e.generate(map[string]any{"key_alias": "good-" + randHex(3)})
	blocked := e.generate(map[string]any{"blocked": true})
	tests := []struct {
		name, key string
		want      string
	}{
		{"valid", good, "ok"},
		{"valid again, from the cache", good, "ok"},
		{"unknown", "sk-unknown-" + randHex(8), "invalid_api_key"},
		{"not a virtual key", "Bearer-junk", "invalid_api_key"},
		{"blocked", blocked, "key_blocked"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := errCode(authErr(s.Authenticate(ctx, tt.key))); got != tt.want {
				t.Errorf("Authenticate = %s, want %s", got, tt.want)
			}
		})
	}

	// An unknown key is remembered: asking again does not reach Redis, even when Redis
	// now has it (only an invalidation, which creating a key sends, clears it).
	unknown := "sk-later-" + randHex(8)
	if _, err := s.Authenticate(ctx, unknown); !errors.Is(err, ErrKeyNotFound) {
		t.Fatal(err)
	}
	e.rdb.Set(ctx, e.prefix+"k:"+Hash(unknown), `{"token":"`+Hash(unknown)+`"}`, 0)
	if _, err := s.Authenticate(ctx, unknown); !errors.Is(err, ErrKeyNotFound) {
		t.Errorf("negative cache: %v", err)
	}
	e.rdb.Del(ctx, e.prefix+"k:"+Hash(unknown))
	e.generate(map[string]any{"key": unknown})
	if _, err := s.Authenticate(ctx, unknown); err != nil {
		t.Errorf("a key created after it was guessed: %v", err)
	}
}

func authErr(_ *Key, err error) error { return err }

func TestExpiry(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	key := e.generate(map[string]any{"duration": "1s"})
	k, err := e.s().Authenticate(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if time.Until(k.Expires) > time.Second || k.Expires.IsZero() {
		t.Errorf("Expires = %v", k.Expires)
	}
	// The key stays cached; expiry is checked on every call.
	waitFor(t, "the key to expire", func() bool {
		_, err := e.s().Authenticate(ctx, key)
		return errors.Is(err, ErrKeyExpired)
	})
	_, err = e.s().Authenticate(ctx, key)
	if !strings.Contains(err.Error(), "API key expired at ") {
		t.Errorf("message %q", err)
	}
	e.ok("POST", "/key/update", map[string]any{"key": key, "duration": "1h"})
	if _, err := e.s().Authenticate(ctx, key); err != nil {
		t.Errorf("extended key: %v", err)
	}
}

// TestInvalidationAcrossProcesses runs a second replica as a separate OS process sharing
// Redis and Postgres: a key it has cached must be refused there within a second of being
// blocked, regenerated or deleted here.
func TestInvalidationAcrossProcesses(t *testing.T) {
	e := newEnv(t)
	other := e.startChild()
	changes := []struct {
		name   string
		change func(key, team string)
		want   string
	}{
		{"block", func(key, _ string) { e.ok("POST", "/key/block", map[string]any{"key": key}) }, "err key_blocked"},
		{"regenerate", func(key, _ string) { e.ok("POST", "/key/regenerate", map[string]any{"key": key}) }, "err invalid_api_key"},
		{"delete", func(key, _ string) { e.ok("POST", "/key/delete", map[string]any{"keys": []string{key}}) }, "err invalid_api_key"},
		{"block its team", func(_, team string) { e.ok("POST", "/team/update", map[string]any{"team_id": team, "blocked": true}) }, "err key_blocked"},
	}
	for _, c := range changes {
		t.Run(c.name, func(t *testing.T) {
			team := "team-" + randHex(3)
			e.ok("POST", "/team/new", map[string]any{"team_id": team})
			key := e.generate(map[string]any{"team_id": team})
			if got := other.do(t, "auth %s", key); got != "ok "+Hash(key) {
				t.Fatalf("other replica: %q", got)
			}
			start := time.Now()
			c.change(key, team)
			for {
				got := other.do(t, "auth %s", key)
				if got == c.want {
					break
				}
				if time.Since(start) > time.Second {
					t.Fatalf("other replica still answers %q a second after the change", got)
				}
				time.Sleep(5 * time.Millisecond)
			}
			t.Logf("refused on the other replica after %v", time.Since(start))
		})
	}
}

// TestInvalidationAcrossStores is the in-process version, with the cache of both stores
// warm.
func TestInvalidationAcrossStores(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	other := e.open(func(*Options) {})
	key := e.generate(nil)
	for _, s := range e.stores {
		if _, err := s.Authenticate(ctx, key); err != nil {
			t.Fatal(err)
		}
	}
	e.ok("POST", "/key/update", map[string]any{"key": key, "models": []string{"only-this"}})
	waitFor(t, "the other store to see the new models", func() bool {
		k, err := other.Authenticate(ctx, key)
		return err == nil && len(k.Models) == 1 && k.Models[0] == "only-this"
	})
}

// TestFlushRecovery empties Redis (FLUSHDB on a database of its own): keys in a process
// cache keep working, other keys are refused as "rebuilding" until a replica has copied
// Postgres back, and then everything works again, spend and budgets included.
func TestFlushRecovery(t *testing.T) {
	e := newEnvDB(t, flushDB, func(*Options) {})
	ctx := context.Background()
	cached := e.generate(nil)
	cold := e.generate(map[string]any{"max_budget": 1})
	if _, err := e.s().Authenticate(ctx, cached); err != nil {
		t.Fatal(err)
	}
	res, err := e.s().Reserve(ctx, Request{KeyHash: Hash(cold), CostMicroUSD: 10})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.s().Settle(ctx, res, 999_999, 5); err != nil {
		t.Fatal(err)
	}
	e.record(Spend{KeyHash: Hash(cold), MicroUSD: 999_999}) // its spend record lands

	// Stop the background rebuild for a moment by holding its lock, to see the
	// in-between state.
	e.rdb.FlushDB(ctx)
	e.rdb.Set(ctx, e.prefix+"rebuilding", "test", 0)
	if _, err := e.s().Authenticate(ctx, cached); err != nil {
		t.Errorf("cached key during the rebuild: %v", err)
	}
	if _, err := e.s().Authenticate(ctx, cold); !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "rebuilding") {
		t.Errorf("uncached key during the rebuild: %v, want service_unavailable (rebuilding)", err)
	}
	e.rdb.Del(ctx, e.prefix+"rebuilding")
	waitFor(t, "the rebuild", func() bool {
		_, err := e.s().Authenticate(ctx, cold)
		return err == nil
	})
	// The spend came back from Postgres: one more request, then the $1 budget is spent.
	res, err = e.s().Reserve(ctx, Request{KeyHash: Hash(cold), CostMicroUSD: 10})
	if err != nil {
		t.Fatal(err)
	}
	e.s().Settle(ctx, res, 2, 1)
	if _, err := e.s().Reserve(ctx, Request{KeyHash: Hash(cold), CostMicroUSD: 10}); !errors.Is(err, ErrBudgetExceeded) {
		t.Errorf("Reserve after the rebuild = %v, want budget_exceeded (spend restored from Postgres)", err)
	}
}

func TestRedisDown(t *testing.T) {
	for _, serveCached := range []bool{false, true} {
		name := map[bool]string{false: "fail closed", true: "serve cached"}[serveCached]
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			cached := e.generate(nil)
			cold := e.generate(nil)
			p := providertest.StartProxy(t, redisURL)
			opts := testOptions(e.prefix)
			opts.ServeCachedWhenRedisDown = serveCached
			rdb := redis.NewClient(&redis.Options{Addr: p.Addr(), DB: testDB, MaxRetries: -1,
				DialTimeout: 200 * time.Millisecond, ReadTimeout: 200 * time.Millisecond})
			defer rdb.Close()
			s, err := Open(ctx, testPG, rdb, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if _, err := s.Authenticate(ctx, cached); err != nil {
				t.Fatal(err)
			}
			p.Cut()
			waitFor(t, "the store to notice Redis is gone", func() bool { return !s.healthy() })

			want := map[bool]string{false: "service_unavailable", true: "ok"}[serveCached]
			if got := errCode(authErr(s.Authenticate(ctx, cached))); got != want {
				t.Errorf("cached key: %s, want %s", got, want)
			}
			if got := errCode(authErr(s.Authenticate(ctx, cold))); got != "service_unavailable" {
				t.Errorf("uncached key: %s, want service_unavailable", got)
			}
			res, err := s.Reserve(ctx, Request{KeyHash: Hash(cached), CostMicroUSD: 1})
			if got := errCode(err); got != want {
				t.Errorf("Reserve: %s, want %s", got, want)
			}
			if serveCached && (res == nil || !res.Unchecked) {
				t.Errorf("Reserve with Redis down = %+v, want Unchecked", res)
			}
		})
	}
}

func TestPostgresDown(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	key := e.generate(nil)
	// A replica whose Postgres is unreachable, sharing Redis with the others.
	dead, err := pgxpool.New(ctx, "postgres://postgres@127.0.0.1:1/test?connect_timeout=1")
	if err != nil {
		t.Fatal(err)
	}
	defer dead.Close()
	rdb := redis.NewClient(&redis.Options{Addr: redisURL, DB: testDB})
	defer rdb.Close()
	s, err := Open(ctx, dead, rdb, testOptions(e.prefix))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Authenticate(ctx, key); err != nil {
		t.Errorf("Authenticate with Postgres down: %v", err)
	}
	res, err := s.Reserve(ctx, Request{KeyHash: Hash(key), CostMicroUSD: 5})
	if err != nil {
		t.Fatalf("Reserve with Postgres down: %v", err)
	}
	if err := s.Settle(ctx, res, 5, 1); err != nil {
		t.Errorf("Settle with Postgres down: %v", err)
	}
	e.admin = httptest.NewServer(AdminHandler(s, master))
	defer e.admin.Close()
	status, m := e.call("POST", "/key/generate", master, map[string]any{})
	if status != 503 || m["error"].(map[string]any)["code"] != "service_unavailable" {
		t.Errorf("admin write with Postgres down: %d %v, want 503", status, m)
	}
}
