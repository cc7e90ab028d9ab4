package keys

import (
	"context"
	"strconv"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
)

// spendDeltas is settled spend not yet added to Postgres, per scope. Redis counts spend
// live (budget.go); Postgres, the record, catches up every FlushInterval, in one
// transaction, so a request never waits for Postgres.
type spendDeltas struct {
	mu sync.Mutex
	m  map[scope]int64
}

func (d *spendDeltas) add(scopes []scope, v int64) {
	d.mu.Lock()
	for _, sc := range scopes {
		d.m[sc] += v
	}
	d.mu.Unlock()
}

func (d *spendDeltas) take() map[scope]int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	m := d.m
	d.m = map[scope]int64{}
	return m
}

// putBack returns deltas a failed flush could not write, for the next attempt.
func (d *spendDeltas) putBack(m map[scope]int64) {
	d.mu.Lock()
	for sc, v := range m {
		d.m[sc] += v
	}
	d.mu.Unlock()
}

// flushSpend adds the spend settled since the last flush to Postgres. On failure the
// deltas are kept for the next attempt (they are lost only if the process dies first).
func (s *Store) flushSpend(ctx context.Context) error {
	m := s.spend.take()
	if len(m) == 0 {
		return nil
	}
	err := pgx.BeginFunc(ctx, s.pg, func(tx pgx.Tx) error { return addSpend(ctx, tx, m) })
	if err != nil {
		s.spend.putBack(m)
		return pgError(err)
	}
	return nil
}

// addSpend adds each scope's delta to its row. End users are created on first spend, as
// LiteLLM does; deltas of rows that no longer exist (a deleted key) are dropped.
func addSpend(ctx context.Context, tx pgx.Tx, m map[scope]int64) error {
	type column struct{ a, b []string }
	ids := map[string]*column{}
	deltas := map[string][]int64{}
	for sc, v := range m {
		c := ids[sc.kind]
		if c == nil {
			c = &column{}
			ids[sc.kind] = c
		}
		a, b := sc.id, ""
		switch sc.kind {
		case scopeModel:
			a, b = sc.id[:hashLen], sc.id[hashLen+1:]
		case scopeMember:
			a, b = splitMemberID(sc.id)
		}
		c.a = append(c.a, a)
		c.b = append(c.b, b)
		deltas[sc.kind] = append(deltas[sc.kind], v)
	}
	// Statements over (a, v) take $1, $2; those over (a, b, v) take $1, $2, $3.
	stmts := map[string]string{
		scopeKey:  `UPDATE tollgate_keys t SET spend = t.spend + d.v FROM unnest($1::text[], $2::bigint[]) d(a, v) WHERE t.token = d.a`,
		scopeTeam: `UPDATE tollgate_teams t SET spend = t.spend + d.v FROM unnest($1::text[], $2::bigint[]) d(a, v) WHERE t.team_id = d.a`,
		scopeUser: `UPDATE tollgate_users t SET spend = t.spend + d.v FROM unnest($1::text[], $2::bigint[]) d(a, v) WHERE t.user_id = d.a`,
		scopeEndUser: `INSERT INTO tollgate_end_users (user_id, spend) SELECT d.a, d.v FROM unnest($1::text[], $2::bigint[]) d(a, v)
			ON CONFLICT (user_id) DO UPDATE SET spend = tollgate_end_users.spend + excluded.spend`,
		scopeMember: `UPDATE tollgate_team_members t SET spend = t.spend + d.v FROM unnest($1::text[], $2::text[], $3::bigint[]) d(a, b, v)
			WHERE t.team_id = d.a AND t.user_id = d.b`,
		scopeModel: `UPDATE tollgate_key_model_budgets t SET spend = t.spend + d.v FROM unnest($1::text[], $2::text[], $3::bigint[]) d(a, b, v)
			WHERE t.token = d.a AND t.model = d.b`,
	}
	for kind, c := range ids {
		args := []any{c.a, deltas[kind]}
		if kind == scopeMember || kind == scopeModel {
			args = []any{c.a, c.b, deltas[kind]}
		}
		if _, err := tx.Exec(ctx, stmts[kind], args...); err != nil {
			return err
		}
	}
	return nil
}

// splitMemberID reverses memberID.
func splitMemberID(id string) (team, user string) {
	n, rest, _ := strings.Cut(id, ":")
	l, err := strconv.Atoi(n)
	if err != nil || l+1 > len(rest) {
		return "", ""
	}
	return rest[:l], rest[l+1:]
}
