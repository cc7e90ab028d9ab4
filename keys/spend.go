package keys

import (
	"context"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Spend is one request's cost as its spend record has it: who made the request and
// what it cost, in micro-dollars.
type Spend struct {
	KeyHash, TeamID, UserID, EndUser, Model string
	MicroUSD                                int64
}

// AddSpend adds each request's cost, in tx, to the Postgres spend of the budgets the
// request answered to (the same scopes Reserve checked: the key's; its team's and the
// user's membership of it, or the user's; the end user's; the key's budget for the
// model).
//
// Redis counts spend live, at Settle; Postgres, the record Redis is rebuilt from, counts
// it here. The spend writer calls AddSpend in the transaction that stores the requests'
// spend records, with exactly the records that transaction inserts: so these totals are
// the sum of the spend records, each counted once, and a record waiting in the writer's
// spool (Postgres down, or tollgate restarted) is counted when it lands.
func AddSpend(ctx context.Context, tx pgx.Tx, spends []Spend) error {
	m := map[scope]int64{}
	for _, sp := range spends {
		if sp.MicroUSD <= 0 || sp.KeyHash == "" {
			continue
		}
		r := Request{KeyHash: sp.KeyHash, TeamID: sp.TeamID, UserID: sp.UserID, EndUser: sp.EndUser, Model: sp.Model}
		for _, sc := range r.scopes() {
			m[sc] += sp.MicroUSD
		}
	}
	if len(m) == 0 {
		return nil
	}
	return addSpend(ctx, tx, m)
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
