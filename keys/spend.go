package keys

import (
	"context"
	"maps"
	"slices"
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
//
// Transactions adding to the same budgets at once (the spend writer's batches in
// flight, other replicas' writers) must take their row locks in one order, or they
// deadlock: an UPDATE locks rows in the order it scans them, which changes as rows get
// new versions. So each table's rows are locked first, sorted (FOR UPDATE under ORDER
// BY locks as it sorts), tables in spendTables' order; end users are upserted in the
// order of their ids. All statements go in one round trip.
func addSpend(ctx context.Context, tx pgx.Tx, m map[scope]int64) error {
	scopes := slices.SortedFunc(maps.Keys(m), func(x, y scope) int { return strings.Compare(x.id, y.id) })
	batch := &pgx.Batch{}
	for _, t := range spendTables {
		var a, b []string
		var v []int64
		for _, sc := range scopes {
			if sc.kind != t.kind {
				continue
			}
			id, sub := sc.id, ""
			switch sc.kind {
			case scopeModel:
				id, sub = sc.id[:hashLen], sc.id[hashLen+1:]
			case scopeMember:
				id, sub = splitMemberID(sc.id)
			}
			a, b, v = append(a, id), append(b, sub), append(v, m[sc])
		}
		switch {
		case len(v) == 0:
		case t.pair:
			batch.Queue(t.lock, a, b)
			batch.Queue(t.update, a, b, v)
		case t.lock != "":
			batch.Queue(t.lock, a)
			batch.Queue(t.update, a, v)
		default:
			batch.Queue(t.update, a, v)
		}
	}
	if batch.Len() == 0 {
		return nil
	}
	return tx.SendBatch(ctx, batch).Close()
}

// spendTables lock and add spend to each kind of budget, in addSpend's order. Tables
// keyed by one id take it as $1 ($2 the deltas); pairs take $1, $2 ($3 the deltas).
var spendTables = []struct {
	kind         string
	pair         bool
	lock, update string
}{
	{scopeKey, false,
		`SELECT FROM tollgate_keys WHERE token = ANY($1) ORDER BY token FOR UPDATE`,
		`UPDATE tollgate_keys t SET spend = t.spend + d.v FROM unnest($1::text[], $2::bigint[]) d(a, v) WHERE t.token = d.a`},
	{scopeModel, true,
		`SELECT FROM tollgate_key_model_budgets WHERE (token, model) IN (SELECT * FROM unnest($1::text[], $2::text[]))
			ORDER BY token, model FOR UPDATE`,
		`UPDATE tollgate_key_model_budgets t SET spend = t.spend + d.v FROM unnest($1::text[], $2::text[], $3::bigint[]) d(a, b, v)
			WHERE t.token = d.a AND t.model = d.b`},
	{scopeTeam, false,
		`SELECT FROM tollgate_teams WHERE team_id = ANY($1) ORDER BY team_id FOR UPDATE`,
		`UPDATE tollgate_teams t SET spend = t.spend + d.v FROM unnest($1::text[], $2::bigint[]) d(a, v) WHERE t.team_id = d.a`},
	{scopeMember, true,
		`SELECT FROM tollgate_team_members WHERE (team_id, user_id) IN (SELECT * FROM unnest($1::text[], $2::text[]))
			ORDER BY team_id, user_id FOR UPDATE`,
		`UPDATE tollgate_team_members t SET spend = t.spend + d.v FROM unnest($1::text[], $2::text[], $3::bigint[]) d(a, b, v)
			WHERE t.team_id = d.a AND t.user_id = d.b`},
	{scopeUser, false,
		`SELECT FROM tollgate_users WHERE user_id = ANY($1) ORDER BY user_id FOR UPDATE`,
		`UPDATE tollgate_users t SET spend = t.spend + d.v FROM unnest($1::text[], $2::bigint[]) d(a, v) WHERE t.user_id = d.a`},
	{scopeEndUser, false, "",
		`INSERT INTO tollgate_end_users (user_id, spend) SELECT d.a, d.v FROM unnest($1::text[], $2::bigint[]) d(a, v)
			ON CONFLICT (user_id) DO UPDATE SET spend = tollgate_end_users.spend + excluded.spend`},
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
