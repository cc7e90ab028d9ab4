package keys

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

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
		// In spendTables' order, rows in key order, as AddSpend locks them, so that a
		// reset and the spend writer do not deadlock.
		for _, t := range spendTables {
			if !t.period {
				continue
			}
			match := `(` + t.columns() + `) = ($3)`
			if t.pair() {
				match = `(` + t.columns() + `) = ($3, $4)`
			}
			rows, err := tx.Query(ctx, fmt.Sprintf(
				`SELECT %s, budget_duration, budget_reset_at FROM %s WHERE budget_reset_at <= $1 ORDER BY %s FOR UPDATE`,
				t.selectKeys(), t.table, t.columns()), now)
			if err != nil {
				return err
			}
			type due struct {
				a, b     string
				duration *string
				at       time.Time
			}
			list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (due, error) {
				var d due
				return d, row.Scan(&d.a, &d.b, &d.duration, &d.at)
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
				args := []any{next, d.at, d.a}
				if t.pair() {
					args = append(args, d.b)
				}
				if _, err := tx.Exec(ctx, fmt.Sprintf(`UPDATE %s SET spend = 0, budget_reset_at = $1, budget_period_start = $2 WHERE %s`,
					t.table, match), args...); err != nil {
					return err
				}
				c.spend[scopeOf(t.kind, d.a, d.b)] = 0
			}
		}
		return nil
	})
}
