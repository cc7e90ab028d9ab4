package keys

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// resettable are the tables whose rows have a budget_duration: how to name a row's scope,
// its key columns, and how to find it by scope id. They are in spendTables' order, and
// rows are locked in key order, as lockBudgets does, so that resets and the spend
// writer do not deadlock.
var resettable = []struct {
	kind, table, id, key, where string
}{
	{scopeKey, "tollgate_keys", "token", "token", "token = $1"},
	{scopeModel, "tollgate_key_model_budgets", "token || ':' || model", "token, model", "token || ':' || model = $1"},
	{scopeTeam, "tollgate_teams", "team_id", "team_id", "team_id = $1"},
	{scopeUser, "tollgate_users", "user_id", "user_id", "user_id = $1"},
	{scopeEndUser, "tollgate_end_users", "user_id", "user_id", "user_id = $1"},
}

// resetBudgets starts a new budget period for every budget whose budget_reset_at has
// passed: spend goes to zero in Postgres and Redis, the period is noted as begun at that
// budget_reset_at (budget_period_start), and the next reset is scheduled one
// budget_duration later. One replica does it (a Postgres advisory lock); the others skip.
//
// A spend record stored after the reset whose request started before budget_reset_at
// is not added to the new period (keys.AddSpend). Redis, which counts spend when the
// request settles, counts a request settled after the reset in the new period.
func (s *Store) resetBudgets(ctx context.Context) error {
	return s.write(ctx, func(ctx context.Context, tx pgx.Tx, c *changes) error {
		var leader bool
		if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock($1)`, resetLockID).Scan(&leader); err != nil || !leader {
			return err
		}
		now := time.Now().UTC()
		for _, t := range resettable {
			rows, err := tx.Query(ctx, fmt.Sprintf(
				`SELECT %s, budget_duration, budget_reset_at FROM %s WHERE budget_reset_at <= $1 ORDER BY %s FOR UPDATE`,
				t.id, t.table, t.key), now)
			if err != nil {
				return err
			}
			type due struct {
				id       string
				duration *string
				at       time.Time
			}
			list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (due, error) {
				var d due
				return d, row.Scan(&d.id, &d.duration, &d.at)
			})
			if err != nil {
				return err
			}
			for _, d := range list {
				var next *time.Time
				if d.duration != nil {
					if p, err := parsePeriod("budget_duration", *d.duration); err == nil {
						n := p.next(d.at, now)
						next = &n
					}
				}
				if _, err := tx.Exec(ctx, fmt.Sprintf(`UPDATE %s SET spend = 0, budget_reset_at = $2, budget_period_start = $3 WHERE %s`,
					t.table, t.where), d.id, next, d.at); err != nil {
					return err
				}
				c.spend[scope{t.kind, d.id}] = 0
			}
		}
		return nil
	})
}
