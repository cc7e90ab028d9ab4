package keys

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// names is the Redis key layout, under the Store's prefix P:
//
//	P primed              set once Redis holds everything Postgres does (see rebuild)
//	P rebuilding          lock held by the replica rebuilding Redis
//	P invalidate          pub/sub channel: space-separated key hashes, or "*"
//	P k:<hash>            a key's record (JSON, see record), by the hash of the key presented
//	P s:<kind>:<id>       a scope's limits and counters (hash, see budget.go)
//	P s:<kind>:<id>:w<m>  a scope's requests and tokens in minute m (hash, 2 minute ttl)
//	P o:<kind>:<id>       a scope's reservations in flight (sorted set, by deadline)
type names struct{ p string }

func (n names) primed() string              { return n.p + "primed" }
func (n names) rebuilding() string          { return n.p + "rebuilding" }
func (n names) channel() string             { return n.p + "invalidate" }
func (n names) record(hash string) string   { return n.p + "k:" + hash }
func (n names) scope(sc scope) string       { return n.p + "s:" + sc.kind + ":" + sc.id }
func (n names) outstanding(sc scope) string { return n.p + "o:" + sc.kind + ":" + sc.id }

// scope is something with a budget and rate limits: a key, a team, a user, a user's
// membership of a team, an end user, or a key's budget for one model.
type scope struct{ kind, id string }

// Scope kinds; they name the scope in LimitError and in logs.
const (
	scopeKey     = "key"
	scopeTeam    = "team"
	scopeMember  = "team_member"
	scopeUser    = "user"
	scopeEndUser = "end_user"
	scopeModel   = "model"
)

// memberID names a team membership unambiguously whatever the ids contain.
func memberID(team, user string) string { return strconv.Itoa(len(team)) + ":" + team + ":" + user }

// modelID names a key's budget for a model (hashes have a fixed length).
func modelID(token, model string) string { return token + ":" + model }

// limits are a scope's settings as Postgres holds them, ready for Redis.
type limits struct {
	scope
	max, soft, tpm, rpm, par *int64
	spend                    int64
	blocked                  bool
}

// writeLimits sets a scope's limits in Redis, and its spend when withSpend (creation,
// rebuild, explicit spend updates and resets; otherwise Redis's counter is the live one).
func (s *Store) writeLimits(ctx context.Context, p redis.Pipeliner, l limits, withSpend bool) {
	var set []any
	var del []string
	field := func(name string, v *int64) {
		if v != nil {
			set = append(set, name, *v)
		} else {
			del = append(del, name)
		}
	}
	field("max", l.max)
	field("soft", l.soft)
	field("tpm", l.tpm)
	field("rpm", l.rpm)
	field("par", l.par)
	if l.blocked {
		set = append(set, "blocked", 1)
	} else {
		del = append(del, "blocked")
	}
	if withSpend {
		set = append(set, "spend", l.spend)
	}
	h := s.n.scope(l.scope)
	if len(set) > 0 {
		p.HSet(ctx, h, set...)
	}
	if len(del) > 0 {
		p.HDel(ctx, h, del...)
	}
}

// writeRecord stores a key's record. A record with an end (a grace-period key) expires
// from Redis by itself.
func (s *Store) writeRecord(ctx context.Context, p redis.Pipeliner, name string, r *record, until time.Time) {
	b, _ := json.Marshal(r) // cannot fail: strings, numbers and string slices
	p.Set(ctx, s.n.record(name), b, 0)
	if !until.IsZero() {
		p.PExpireAt(ctx, s.n.record(name), until)
	}
}

// publish tells every replica to drop the named hashes from its caches ("*": all).
func (s *Store) publish(ctx context.Context, p redis.Pipeliner, hashes []string) {
	for len(hashes) > 0 {
		n := min(len(hashes), 500)
		p.Publish(ctx, s.n.channel(), strings.Join(hashes[:n], " "))
		hashes = hashes[n:]
	}
}

// fetch reads a key's record and whether Redis is primed, in one round trip. rec is nil
// when there is no record.
func (s *Store) fetch(ctx context.Context, hash string) (rec *record, primed bool, err error) {
	vals, err := s.rdb.MGet(ctx, s.n.record(hash), s.n.primed()).Result()
	if err != nil {
		return nil, false, err
	}
	primed = vals[1] != nil
	v, ok := vals[0].(string)
	if !ok {
		return nil, primed, nil
	}
	rec = &record{}
	if err := json.Unmarshal([]byte(v), rec); err != nil {
		return nil, primed, err
	}
	return rec, primed, nil
}

// listen applies invalidations published by any replica (this one included) until ctx
// ends. After any (re)subscription it drops the whole cache: invalidations sent while the
// connection was down are lost.
func (s *Store) listen(ctx context.Context, subscribed chan<- struct{}) {
	first := true
	for ctx.Err() == nil {
		msg, err := s.ps.ReceiveTimeout(ctx, 4*s.opts.CheckInterval)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
				// Quiet channel: make sure the connection is still there. A failed ping
				// reconnects and resubscribes on the next receive.
				if s.ps.Ping(ctx) != nil && ctx.Err() == nil {
					s.setListening(false)
				}
				continue
			}
			s.setListening(false)
			select {
			case <-ctx.Done():
			case <-time.After(s.opts.CheckInterval):
			}
			continue
		}
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				s.cache.invalidateAll()
				s.setListening(true)
				if first {
					first = false
					close(subscribed)
				}
			}
		case *redis.Message:
			s.invalidate(m.Payload)
		}
	}
}

func (s *Store) setListening(up bool) {
	if s.listening.Swap(up) != up && !up {
		s.log.Warn("Redis invalidation channel lost; refusing cached keys until it is back")
	}
}

// invalidate applies one invalidation message.
func (s *Store) invalidate(payload string) {
	for _, h := range strings.Fields(payload) {
		if h == "*" {
			s.cache.invalidateAll()
			continue
		}
		var d [32]byte
		if n, err := hex.Decode(d[:], []byte(h)); err == nil && n == len(d) {
			s.cache.invalidate(d)
		}
	}
}
