package keys

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
)

// changes records what an admin change touched, so write can mirror it into Redis from
// the transaction's own view of Postgres.
type changes struct {
	// Key records to rewrite: keys by token, and every key of these teams and users
	// (whose models, blocked flag or role a key's record includes).
	tokens, teamKeys, userKeys []string
	// Scope limits to rewrite, by kind: ids as budgetTables selects them (model budgets by
	// key token, memberships by team).
	limits map[string][]string
	// Records and scopes that no longer exist.
	goneRecords []string
	goneScopes  []scope
	// Spend counters to set (a reset or an explicit "spend" in the request).
	spend map[scope]int64
	// Scope counters to carry over to a new name (/key/regenerate): pairs of scopes.
	renames [][2]scope
}

func newChanges() *changes {
	return &changes{limits: map[string][]string{}, spend: map[scope]int64{}}
}

// key marks keys (by token) whose record, limits and model budgets changed.
func (c *changes) key(tokens ...string) {
	c.tokens = append(c.tokens, tokens...)
	c.limits[scopeKey] = append(c.limits[scopeKey], tokens...)
	c.limits[scopeModel] = append(c.limits[scopeModel], tokens...)
}

// team marks teams whose limits, memberships or key-relevant fields changed.
func (c *changes) team(ids ...string) {
	c.teamKeys = append(c.teamKeys, ids...)
	c.limits[scopeTeam] = append(c.limits[scopeTeam], ids...)
	c.limits[scopeMember] = append(c.limits[scopeMember], ids...)
}

// user marks users whose limits or key-relevant fields changed.
func (c *changes) user(ids ...string) {
	c.userKeys = append(c.userKeys, ids...)
	c.limits[scopeUser] = append(c.limits[scopeUser], ids...)
}

// endUser marks end users whose limits or blocked flag changed.
func (c *changes) endUser(ids ...string) {
	c.limits[scopeEndUser] = append(c.limits[scopeEndUser], ids...)
}

// write runs fn in a Postgres transaction holding the shared sync lock, mirrors what fn
// changed into Redis (and tells every replica to drop the affected keys from its cache),
// then commits. If Redis cannot be written the transaction is rolled back, so Postgres and
// Redis never disagree; if the commit itself fails, what was written to Redis is removed
// and Redis is rebuilt from Postgres. A transaction that lost a race (deadlock,
// serialization failure) runs again, up to three times in all.
func (s *Store) write(ctx context.Context, fn func(ctx context.Context, tx pgx.Tx, c *changes) error) error {
	for attempt := 1; ; attempt++ {
		err := s.writeOnce(ctx, fn)
		if attempt == 3 || !retryable(err) {
			return pgError(err)
		}
	}
}

// writeOnce is one attempt of write. Postgres errors are returned as they are, so write
// can tell a lost race (retried) from a real failure.
func (s *Store) writeOnce(ctx context.Context, fn func(ctx context.Context, tx pgx.Tx, c *changes) error) error {
	tx, err := s.pg.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock_shared($1)`, syncLockID); err != nil {
		return err
	}
	c := newChanges()
	if err := fn(ctx, tx, c); err != nil {
		return err
	}
	written, invalidated, err := s.apply(ctx, tx, c)
	if err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		ctx := context.WithoutCancel(ctx)
		p := s.rdb.TxPipeline()
		p.Del(ctx, s.n.primed())
		for _, name := range written {
			p.Del(ctx, s.n.record(name))
		}
		s.publish(ctx, p, []string{"*"})
		if _, rerr := p.Exec(ctx); rerr != nil {
			s.log.Error("Postgres refused a commit after Redis was updated, and Redis could not be reset; restart with an empty Redis", "err", rerr)
		}
		return err
	}
	// This replica's cache forgets the changed keys now, not when its own invalidation
	// comes back through Redis: a request right after the change (a key just created
	// after it was guessed, one just blocked) must see it.
	s.invalidate(strings.Join(invalidated, " "))
	return nil
}

// apply mirrors c into Redis in one pipeline and publishes the invalidations. It returns
// the record names it wrote, and those it published (written or deleted).
func (s *Store) apply(ctx context.Context, tx pgx.Tx, c *changes) (written, invalidated []string, err error) {
	var recs []recordRow
	if len(c.tokens)+len(c.teamKeys)+len(c.userKeys) > 0 {
		recs, err = readRecords(ctx, tx, `k.token = ANY($1) OR k.team_id = ANY($2) OR k.user_id = ANY($3)`,
			c.tokens, c.teamKeys, c.userKeys)
		if err != nil {
			return nil, nil, pgError(err)
		}
	}
	var lims []limits
	for _, t := range budgetTables {
		ids := c.limits[t.kind]
		if len(ids) == 0 {
			continue
		}
		l, err := readLimits(ctx, tx, t, ids, false)
		if err != nil {
			return nil, nil, pgError(err)
		}
		lims = append(lims, l...)
	}

	p := s.rdb.Pipeline()
	for _, r := range c.renames {
		renameScript.Eval(ctx, p, []string{s.n.scope(r[0]), s.n.scope(r[1])})
		renameScript.Eval(ctx, p, []string{s.n.outstanding(r[0]), s.n.outstanding(r[1])})
	}
	for _, sc := range c.goneScopes {
		p.Del(ctx, s.n.scope(sc))
	}
	invalidate := slices.Clone(c.goneRecords)
	for _, name := range c.goneRecords {
		p.Del(ctx, s.n.record(name))
	}
	for i := range recs {
		s.writeRecord(ctx, p, recs[i].name, &recs[i].rec, recs[i].until)
		written = append(written, recs[i].name)
		invalidate = append(invalidate, recs[i].name)
	}
	for _, l := range lims {
		s.writeLimits(ctx, p, l, false)
	}
	for sc, v := range c.spend {
		p.HSet(ctx, s.n.scope(sc), "spend", v)
	}
	s.publish(ctx, p, invalidate)
	if p.Len() == 0 {
		return nil, nil, nil
	}
	if _, err := p.Exec(ctx); err != nil {
		return nil, nil, unavailable("tollgate cannot reach Redis, so the change was not made", err)
	}
	return written, invalidate, nil
}

// renameScript moves a counter to a new name if it exists (RENAME fails on a missing key).
var renameScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('RENAME', KEYS[1], KEYS[2]) end
return 1`)

// rebuild copies Postgres into an unprimed Redis: every key record, every scope's limits
// and spend. One replica does it at a time (a Redis lock); it holds the sync lock
// exclusively, so admin changes wait for it and none is overwritten by older data. When it
// is done it sets the primed flag, from which point a key missing from Redis is a key that
// does not exist.
func (s *Store) rebuild(ctx context.Context) error {
	lock := s.ridPrefix + "-rebuild"
	ok, err := s.rdb.SetNX(ctx, s.n.rebuilding(), lock, time.Minute).Result()
	if err != nil || !ok {
		return err // another replica is at it; the next check looks again
	}
	defer unlockScript.Run(context.WithoutCancel(ctx), s.rdb, []string{s.n.rebuilding()}, lock)

	start := time.Now()
	tx, err := s.pg.Begin(ctx)
	if err != nil {
		return pgError(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, syncLockID); err != nil {
		return pgError(err)
	}
	recs, err := readRecords(ctx, tx, `true`)
	if err != nil {
		return pgError(err)
	}
	var lims []limits
	for _, t := range budgetTables {
		l, err := readLimits(ctx, tx, t, nil, true)
		if err != nil {
			return pgError(err)
		}
		lims = append(lims, l...)
	}

	const batch = 1000
	p := s.rdb.Pipeline()
	flush := func(force bool) error {
		if p.Len() < batch && !force {
			return nil
		}
		_, err := p.Exec(ctx)
		return err
	}
	for i := range recs {
		s.writeRecord(ctx, p, recs[i].name, &recs[i].rec, recs[i].until)
		if err := flush(false); err != nil {
			return err
		}
	}
	for _, l := range lims {
		s.writeLimits(ctx, p, l, true)
		if err := flush(false); err != nil {
			return err
		}
	}
	p.Set(ctx, s.n.primed(), time.Now().UTC().Format(time.RFC3339), 0)
	if err := flush(true); err != nil {
		return err
	}
	s.log.Info("rebuilt Redis from Postgres", "keys", len(recs), "scopes", len(lims), "took", time.Since(start))
	return tx.Commit(ctx)
}

// unlockScript releases a lock only if this process still holds it.
var unlockScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`)
