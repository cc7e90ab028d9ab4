package keys

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"time"
)

// Refusals that need no formatting are allocated once: guessing keys costs nothing.
var (
	errNotAKey = &Error{Kind: ErrKeyNotFound,
		Msg: "invalid API key: virtual keys start with sk-; use a key from /key/generate"}
	errUnknownKey = &Error{Kind: ErrKeyNotFound,
		Msg: "invalid API key: no virtual key matches it (keys are shown once, when /key/generate creates them)"}
	errKeyBlocked = &Error{Kind: ErrKeyBlocked,
		Msg: "API key is blocked: an admin can unblock it with /key/unblock"}
	errTeamBlocked = &Error{Kind: ErrKeyBlocked,
		Msg: "API key's team is blocked: an admin can unblock the team with /team/update {\"blocked\": false}"}
	errRedisDown = &Error{Kind: ErrUnavailable,
		Msg: "tollgate cannot reach Redis, so it cannot check that keys are still valid; retry shortly"}
	errRebuilding = &Error{Kind: ErrUnavailable,
		Msg: "tollgate is rebuilding its Redis key store from Postgres; retry in a few seconds"}
)

// Authenticate returns the virtual key that key is, or an error wrapping ErrKeyNotFound,
// ErrKeyExpired, ErrKeyBlocked or ErrUnavailable whose message is written for the client.
//
// A key seen recently is answered from memory: no Redis round trip, no allocation. Any
// other key costs one Redis round trip; Postgres is never read. Hashes Redis does not know
// are remembered (a bounded set), so repeating a guess costs nothing either. Expiry is
// checked on every call. While invalidations cannot arrive (the subscription or Redis is
// down) the cache is bypassed, so a lost connection never keeps a revoked key alive:
// requests then cost a Redis round trip, or fail with ErrUnavailable if Redis is
// unreachable, unless Options.ServeCachedWhenRedisDown.
func (s *Store) Authenticate(ctx context.Context, key string) (*Key, error) {
	return s.AuthenticateDigest(ctx, key, Digest(key))
}

// AuthenticateDigest is Authenticate for a caller that already has the key's Digest d.
func (s *Store) AuthenticateDigest(ctx context.Context, key string, d [sha256.Size]byte) (*Key, error) {
	if !strings.HasPrefix(key, keyPrefix) {
		return nil, errNotAKey
	}
	now := time.Now().UnixNano()
	// Without invalidations arriving the cache cannot be trusted (a revoked key would
	// stay usable), so it is only read while they do, or when configured to degrade.
	trusted := s.healthy() || s.opts.ServeCachedWhenRedisDown
	if k, ok := s.cache.get(d, now); ok && trusted {
		return usable(k, now)
	}
	if trusted && s.cache.unknown(d, now) {
		return nil, errUnknownKey
	}
	// Concurrent requests with one key share one lookup.
	v, err, _ := s.lookups.Do(string(d[:]), func() (any, error) { return s.lookup(ctx, d) })
	if err != nil {
		return nil, err
	}
	return usable(v.(*Key), time.Now().UnixNano())
}

// lookup reads a key from Redis and caches the answer, positive or negative.
func (s *Store) lookup(ctx context.Context, d [sha256.Size]byte) (*Key, error) {
	gen := s.cache.gen.Load()
	rec, primed, err := s.fetch(ctx, hex.EncodeToString(d[:]))
	switch {
	case err != nil:
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, errRedisDown
	case rec == nil && !primed:
		// Redis lost its data (or was never loaded): only Postgres knows, and the request
		// path does not read Postgres. The background rebuild fixes this shortly.
		s.rebuildSoon()
		return nil, errRebuilding
	case rec == nil:
		if s.healthy() {
			s.cache.putUnknown(d, gen, time.Now().UnixNano())
		}
		return nil, errUnknownKey
	}
	k := rec.key()
	if s.healthy() {
		s.cache.put(d, k, gen, time.Now().UnixNano())
	}
	return k, nil
}

// usable refuses a blocked or expired key.
func usable(k *Key, now int64) (*Key, error) {
	switch {
	case k.blocked == scopeTeam:
		return nil, errTeamBlocked
	case k.blocked != "":
		return nil, errKeyBlocked
	case k.expires != 0 && now >= k.expires:
		return nil, fail(ErrKeyExpired, "", "API key expired at %s: extend it with /key/update (\"duration\") or generate a new one",
			k.Expires.Format(time.RFC3339))
	}
	return k, nil
}
