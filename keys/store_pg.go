package keys

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Advisory lock ids. Writers (admin changes, budget resets) hold syncLock shared while they
// change Postgres and mirror the change into Redis; a rebuild holds it exclusively while
// it copies Postgres into Redis. So a rebuild never writes data older than a change that
// already reached Redis. resetLock elects the one replica that resets budgets.
const (
	syncLockID  = 7_461_636_116
	resetLockID = 7_461_636_117
)

// querier is a pool or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// pgError turns a Postgres failure into this package's kinds: constraint violations the
// admin handlers did not anticipate become 400/409 with Postgres's explanation, and a
// failure to reach Postgres becomes ErrUnavailable.
func pgError(err error) error {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if _, ok := errors.AsType[*Error](err); ok {
		return err
	}
	if pe, ok := errors.AsType[*pgconn.PgError](err); ok {
		switch pe.Code {
		case "23505": // unique_violation
			return fail(ErrConflict, pe.ColumnName, "already exists: %s", pe.Detail)
		case "23503", "23514", "22P02": // foreign_key_violation, check_violation, invalid_text_representation
			return fail(ErrInvalidRequest, pe.ColumnName, "rejected by the database: %s %s", pe.Message, pe.Detail)
		}
		return err
	}
	if _, ok := errors.AsType[*pgconn.ConnectError](err); ok || pgconn.Timeout(err) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return unavailable("tollgate cannot reach Postgres; admin changes are refused until it is back", err)
	}
	if _, ok := errors.AsType[net.Error](err); ok {
		return unavailable("tollgate cannot reach Postgres; admin changes are refused until it is back", err)
	}
	return err
}

// retryable reports whether a transaction failed only because it raced another one
// (serialization failure or deadlock), so running it again may succeed.
func retryable(err error) bool {
	pe, ok := errors.AsType[*pgconn.PgError](err)
	return ok && (pe.Code == "40001" || pe.Code == "40P01")
}

// recordRow is a key's record as the record query returns it, with the name it is stored
// under in Redis and, for a grace-period key, when it ends.
type recordRow struct {
	name  string
	rec   record
	until time.Time
}

// recordsSQL reads key records, combined with their team and user, for the keys selected
// by a condition on k (tollgate_keys) written twice (%[1]s): once for the keys themselves
// and once for the old keys still in a /key/regenerate grace period.
const recordsSQL = `
SELECT k.token, k.token, coalesce(k.key_alias, ''), k.models, t.models, u.models, coalesce(u.user_role, ''),
       coalesce(k.team_id, ''), coalesce(k.user_id, ''), k.expires, k.blocked, coalesce(t.blocked, false), NULL::timestamptz
  FROM tollgate_keys k
  LEFT JOIN tollgate_teams t ON t.team_id = k.team_id
  LEFT JOIN tollgate_users u ON u.user_id = k.user_id
 WHERE %[1]s
UNION ALL
SELECT d.token, k.token, coalesce(k.key_alias, ''), k.models, t.models, u.models, coalesce(u.user_role, ''),
       coalesce(k.team_id, ''), coalesce(k.user_id, ''), least(k.expires, d.revoke_at), k.blocked, coalesce(t.blocked, false), d.revoke_at
  FROM tollgate_deprecated_keys d
  JOIN tollgate_keys k ON k.token = d.active_token
  LEFT JOIN tollgate_teams t ON t.team_id = k.team_id
  LEFT JOIN tollgate_users u ON u.user_id = k.user_id
 WHERE d.revoke_at > now() AND (%[1]s)`

// readRecords returns the records of the keys selected by cond (SQL over k, with args).
func readRecords(ctx context.Context, q querier, cond string, args ...any) ([]recordRow, error) {
	rows, err := q.Query(ctx, fmt.Sprintf(recordsSQL, cond), args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (recordRow, error) {
		var r recordRow
		var keyModels, teamModels, userModels []string
		var expires, until *time.Time
		var keyBlocked, teamBlocked bool
		err := row.Scan(&r.name, &r.rec.Token, &r.rec.Alias, &keyModels, &teamModels, &userModels, &r.rec.Role,
			&r.rec.TeamID, &r.rec.UserID, &expires, &keyBlocked, &teamBlocked, &until)
		if r.rec.TeamID != "" {
			r.rec.Models = effectiveModels(keyModels, teamModels)
		} else {
			r.rec.Models = effectiveModels(keyModels, userModels)
		}
		if expires != nil {
			r.rec.Expires = expires.UnixMilli()
		}
		if until != nil {
			r.until = *until
		}
		switch {
		case keyBlocked:
			r.rec.Blocked = scopeKey
		case teamBlocked:
			r.rec.Blocked = scopeTeam
		}
		return r, err
	})
}

// budgetTable is where one kind of scope keeps its limits in Postgres. Every query selects
// the scope id, then max, soft, tpm, rpm, par, spend and blocked.
type budgetTable struct {
	kind   string
	table  string
	id     string // SQL for the scope id (see memberID and modelID)
	sel    string // SQL column that selects rows by id (matched against a text[])
	values string
}

const budgetValues = `max_budget, soft_budget, tpm_limit, rpm_limit, max_parallel_requests, spend, false`

var budgetTables = []budgetTable{
	{scopeKey, "tollgate_keys", "token", "token", budgetValues},
	{scopeModel, "tollgate_key_model_budgets", "token || ':' || model", "token",
		`max_budget, NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint, spend, false`},
	{scopeTeam, "tollgate_teams", "team_id", "team_id", budgetValues},
	// Memberships are selected by team.
	{scopeMember, "tollgate_team_members", "octet_length(team_id)::text || ':' || team_id || ':' || user_id", "team_id",
		`max_budget, NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint, spend, false`},
	{scopeUser, "tollgate_users", "user_id", "user_id", budgetValues},
	{scopeEndUser, "tollgate_end_users", "user_id", "user_id",
		`max_budget, soft_budget, tpm_limit, rpm_limit, max_parallel_requests, spend, blocked`},
}

// readLimits returns the limits of t's rows whose selecting column is in ids, or of every
// row when all.
func readLimits(ctx context.Context, q querier, t budgetTable, ids []string, all bool) ([]limits, error) {
	sql := fmt.Sprintf(`SELECT %s, %s FROM %s WHERE $1 OR %s = ANY($2)`, t.id, t.values, t.table, t.sel)
	rows, err := q.Query(ctx, sql, all, ids)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (limits, error) {
		l := limits{scope: scope{kind: t.kind}}
		err := row.Scan(&l.id, &l.max, &l.soft, &l.tpm, &l.rpm, &l.par, &l.spend, &l.blocked)
		return l, err
	})
}
