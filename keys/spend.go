package keys

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Spend is one request's cost as its spend record has it: who made the request, when
// it started and what it cost, in micro-dollars.
type Spend struct {
	KeyHash, TeamID, UserID, EndUser, Model string
	MicroUSD                                int64
	// Start is when the request started. Its cost counts in the budget period it
	// started in, so not in a budget whose period began after Start (its record is
	// stored after a reset). A zero Start counts in the current period.
	Start time.Time
}

// AddSpend adds each request's cost, in tx, to the Postgres spend of the budgets the
// request answered to (the same scopes Reserve checked: the key's; its team's and the
// user's membership of it, or the user's; the end user's; the key's budget for the
// model), leaving out the budgets whose current period began after the request did.
//
// Redis counts spend live, at Settle; Postgres, the record Redis is rebuilt from, counts
// it here. The spend writer calls AddSpend in the transaction that stores the requests'
// spend records, with exactly the records that transaction inserts: so these totals are
// the sum of the spend records of the current period, each counted once, and a record
// waiting in the writer's spool (Postgres down, or tollgate restarted) is counted when
// it lands, in the period it belongs to.
//
// End users are created on first spend, as LiteLLM does; spend of rows that no longer
// exist (a deleted key) is dropped.
func AddSpend(ctx context.Context, tx pgx.Tx, spends []Spend) error {
	scopes := make([][]scope, len(spends))
	sums := map[scope]int64{}
	for i, sp := range spends {
		if sp.MicroUSD <= 0 || sp.KeyHash == "" {
			continue
		}
		r := Request{KeyHash: sp.KeyHash, TeamID: sp.TeamID, UserID: sp.UserID, EndUser: sp.EndUser, Model: sp.Model}
		scopes[i] = r.scopes()
		for _, sc := range scopes[i] {
			sums[sc] = 0
		}
	}
	if len(sums) == 0 {
		return nil
	}
	rows := budgetRows(sums)
	periods, err := lockBudgets(ctx, tx, rows)
	if err != nil {
		return err
	}
	for i, sp := range spends {
		for _, sc := range scopes[i] {
			if began, ok := periods[sc]; ok && sp.Start.Before(began) && !sp.Start.IsZero() {
				continue
			}
			sums[sc] += sp.MicroUSD
		}
	}
	batch := &pgx.Batch{}
	for i, t := range spendTables {
		if r := rows[i]; len(r.ids) > 0 {
			v := make([]int64, len(r.ids))
			for j, sc := range r.ids {
				v[j] = sums[sc]
			}
			batch.Queue(t.update(), r.args(t.pair(), v)...)
		}
	}
	return tx.SendBatch(ctx, batch).Close()
}

// tableRows are the rows of one of spendTables that a batch of spend touches, sorted:
// their scopes, and the scopes' ids as the table's key columns.
type tableRows struct {
	ids  []scope
	a, b []string
}

func (r tableRows) args(pair bool, extra ...any) []any {
	if pair {
		return append([]any{r.a, r.b}, extra...)
	}
	return append([]any{r.a}, extra...)
}

// budgetRows sorts scopes into tableRows, indexed like spendTables.
func budgetRows(scopes map[scope]int64) []tableRows {
	rows := make([]tableRows, len(spendTables))
	for _, sc := range slices.SortedFunc(maps.Keys(scopes), func(x, y scope) int { return strings.Compare(x.id, y.id) }) {
		i := slices.IndexFunc(spendTables, func(t spendTable) bool { return t.kind == sc.kind })
		a, b := sc.id, ""
		switch sc.kind {
		case scopeModel:
			a, b = sc.id[:hashLen], sc.id[hashLen+1:]
		case scopeMember:
			a, b = splitMemberID(sc.id)
		}
		rows[i].ids, rows[i].a, rows[i].b = append(rows[i].ids, sc), append(rows[i].a, a), append(rows[i].b, b)
	}
	return rows
}

// lockBudgets locks the budget rows a batch of spend touches, in one round trip, and
// returns when the current period of each began (rows never reset are absent).
//
// Transactions adding to the same budgets at once (the spend writer's batches in
// flight, other replicas' writers, the budget reset) must take their row locks in one
// order, or they deadlock: an UPDATE locks rows in the order it scans them, which
// changes as rows get new versions. So rows are locked with FOR UPDATE under ORDER BY,
// which locks as it sorts, table by table in spendTables' order. End users not yet
// created are inserted after, in the order of their ids.
func lockBudgets(ctx context.Context, tx pgx.Tx, rows []tableRows) (map[scope]time.Time, error) {
	periods := map[scope]time.Time{}
	batch := &pgx.Batch{}
	for i, t := range spendTables {
		if len(rows[i].ids) == 0 {
			continue
		}
		batch.Queue(t.lock(), rows[i].args(t.pair())...).Query(func(r pgx.Rows) error {
			var a, b string
			var began *time.Time
			_, err := pgx.ForEachRow(r, []any{&a, &b, &began}, func() error {
				if began != nil {
					periods[scopeOf(t.kind, a, b)] = *began
				}
				return nil
			})
			return err
		})
	}
	if err := tx.SendBatch(ctx, batch).Close(); err != nil {
		return nil, err
	}
	return periods, nil
}

// scopeOf is the scope of a budget row with key columns a (and b).
func scopeOf(kind, a, b string) scope {
	switch kind {
	case scopeModel:
		return scope{kind, modelID(a, b)}
	case scopeMember:
		return scope{kind, memberID(a, b)}
	}
	return scope{kind, a}
}

// A spendTable is one kind of budget's table: its key columns (one id, or a pair) and
// whether it has a budget period (memberships do not). The statements that lock its rows
// and add spend to them follow from those.
type spendTable struct {
	kind   string
	table  string
	keys   []string
	period bool
}

// spendTables in the order their rows are locked; the budget reset follows it too.
var spendTables = []spendTable{
	{scopeKey, "tollgate_keys", []string{"token"}, true},
	{scopeModel, "tollgate_key_model_budgets", []string{"token", "model"}, true},
	{scopeTeam, "tollgate_teams", []string{"team_id"}, true},
	{scopeMember, "tollgate_team_members", []string{"team_id", "user_id"}, false},
	{scopeUser, "tollgate_users", []string{"user_id"}, true},
	{scopeEndUser, "tollgate_end_users", []string{"user_id"}, true},
}

func (t spendTable) pair() bool { return len(t.keys) == 2 }

// columns are the key columns, comma-separated: the lock order.
func (t spendTable) columns() string { return strings.Join(t.keys, ", ") }

// selectKeys selects a row's key as two columns, the second empty for a single id.
func (t spendTable) selectKeys() string {
	if t.pair() {
		return t.columns()
	}
	return t.keys[0] + ", ''"
}

// lock locks the rows whose keys are $1 (and $2), sorted, returning each key and when
// its budget period began.
func (t spendTable) lock() string {
	began, match := "budget_period_start", t.keys[0]+" = ANY($1)"
	if !t.period {
		began = "NULL::timestamptz"
	}
	if t.pair() {
		match = "(" + t.columns() + ") IN (SELECT * FROM unnest($1::text[], $2::text[]))"
	}
	return fmt.Sprintf(`SELECT %s, %s FROM %s WHERE %s ORDER BY %s FOR UPDATE`, t.selectKeys(), began, t.table, match, t.columns())
}

// update adds the deltas (the last parameter) to the rows whose keys are $1 (and $2).
// End users are created by their first spend, as LiteLLM does.
func (t spendTable) update() string {
	switch {
	case t.kind == scopeEndUser:
		return `INSERT INTO tollgate_end_users (user_id, spend) SELECT d.a, d.v FROM unnest($1::text[], $2::bigint[]) d(a, v)
			ON CONFLICT (user_id) DO UPDATE SET spend = tollgate_end_users.spend + excluded.spend`
	case t.pair():
		return fmt.Sprintf(`UPDATE %s t SET spend = t.spend + d.v FROM unnest($1::text[], $2::text[], $3::bigint[]) d(a, b, v)
			WHERE t.%s = d.a AND t.%s = d.b`, t.table, t.keys[0], t.keys[1])
	}
	return fmt.Sprintf(`UPDATE %s t SET spend = t.spend + d.v FROM unnest($1::text[], $2::bigint[]) d(a, v) WHERE t.%s = d.a`,
		t.table, t.keys[0])
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
