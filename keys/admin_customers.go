package keys

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"
)

// customerFields are the fields /customer/new and /customer/update share. End users
// ("customers" in LiteLLM) are the "user" field of API requests.
type customerFields struct {
	budgetFields
	Alias    opt[string]         `json:"alias"`
	Blocked  opt[bool]           `json:"blocked"`
	Metadata opt[map[string]any] `json:"metadata"`
}

// customerObject is an end user as the admin API shows it (LiteLLM's LiteLLM_EndUserTable,
// with the budget in litellm_budget_table).
type customerObject struct {
	UserID             string         `json:"user_id"`
	Alias              *string        `json:"alias"`
	Spend              float64        `json:"spend"`
	Blocked            bool           `json:"blocked"`
	BudgetID           *string        `json:"budget_id"`
	AllowedModelRegion *string        `json:"allowed_model_region"`
	DefaultModel       *string        `json:"default_model"`
	Metadata           map[string]any `json:"metadata"`
	LiteLLMBudgetTable *budgetView    `json:"litellm_budget_table"`
	CreatedAt          time.Time      `json:"created_at"`
	UpdatedAt          time.Time      `json:"updated_at"`
}

func (f *customerFields) apply(cols *columns, p *problems, now time.Time) *int64 {
	spend := f.budgetFields.apply(cols, p, now)
	if o := f.Alias; o.Set {
		cols.set("alias", strPtr(o.V))
	}
	if o := f.Blocked; o.has() {
		cols.set("blocked", o.V)
	}
	if o := f.Metadata; o.Set {
		cols.set("metadata", nonNilMap(o.V))
	}
	return spend
}

// newCustomer serves POST /customer/new.
func (a *admin) newCustomer(ctx context.Context, r *http.Request) (any, error) {
	var req struct {
		customerFields
		UserID opt[string] `json:"user_id"`
	}
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	id := req.UserID.V
	if id == "" {
		return nil, fail(ErrInvalidRequest, "user_id", "user_id is required: the value requests send in their \"user\" field")
	}
	var out *customerObject
	err := a.s.write(ctx, func(ctx context.Context, tx pgx.Tx, c *changes) error {
		cols := &columns{}
		cols.set("user_id", id)
		spend, err := applyFields(&req.customerFields, cols)
		if err != nil {
			return err
		}
		if err := insertRow(ctx, tx, cols, "tollgate_end_users",
			fail(ErrConflict, "user_id", "Customer already exists, passed user_id=%s: use /customer/update to change it (end users are also created by their first request)", id)); err != nil {
			return err
		}
		c.resetSpend(scope{scopeEndUser, id}, spend)
		c.endUser(id)
		out, err = readCustomer(ctx, tx, id)
		return err
	})
	return out, err
}

// updateCustomer serves POST /customer/update.
func (a *admin) updateCustomer(ctx context.Context, r *http.Request) (any, error) {
	var req struct {
		customerFields
		UserID opt[string] `json:"user_id"`
	}
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	id := req.UserID.V
	if id == "" {
		return nil, fail(ErrInvalidRequest, "user_id", "user_id is required")
	}
	var out *customerObject
	err := a.s.write(ctx, func(ctx context.Context, tx pgx.Tx, c *changes) error {
		cols := &columns{}
		spend, err := applyFields(&req.customerFields, cols)
		if err != nil {
			return err
		}
		if _, err := readCustomer(ctx, tx, id); err != nil {
			return err
		}
		if err := updateRow(ctx, tx, cols, "tollgate_end_users", "user_id", id); err != nil {
			return err
		}
		c.resetSpend(scope{scopeEndUser, id}, spend)
		c.endUser(id)
		out, err = readCustomer(ctx, tx, id)
		return err
	})
	return out, err
}

// deleteCustomers serves POST /customer/delete.
func (a *admin) deleteCustomers(ctx context.Context, r *http.Request) (any, error) {
	var req struct {
		UserIDs opt[[]string] `json:"user_ids"`
	}
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	if len(req.UserIDs.V) == 0 {
		return nil, fail(ErrInvalidRequest, "user_ids", "user_ids is required: the end users to delete")
	}
	var n int64
	err := a.s.write(ctx, func(ctx context.Context, tx pgx.Tx, c *changes) error {
		rows, err := tx.Query(ctx, `SELECT u FROM unnest($1::text[]) u WHERE u NOT IN (SELECT user_id FROM tollgate_end_users)`, req.UserIDs.V)
		if err != nil {
			return err
		}
		missing, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		if len(missing) > 0 {
			return fail(ErrNotFound, "user_ids", "End User Id(s)=%v do not exist in db (nothing was deleted)", missing)
		}
		tag, err := tx.Exec(ctx, `DELETE FROM tollgate_end_users WHERE user_id = ANY($1)`, req.UserIDs.V)
		n = tag.RowsAffected()
		for _, id := range req.UserIDs.V {
			c.goneScopes = append(c.goneScopes, scope{scopeEndUser, id})
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return map[string]any{
		"deleted_customers": n,
		"message":           fmt.Sprintf("Successfully deleted customers with ids: %v", req.UserIDs.V),
	}, nil
}

// customerInfo serves GET /customer/info?end_user_id=.
func (a *admin) customerInfo(ctx context.Context, r *http.Request) (any, error) {
	id := query{r}.str("end_user_id")
	if id == "" {
		return nil, fail(ErrInvalidRequest, "end_user_id", "query parameter end_user_id is required: /customer/info?end_user_id=...")
	}
	c, err := readCustomer(ctx, a.s.pg, id)
	if err != nil {
		return nil, pgError(err)
	}
	a.s.withLiveCustomerSpend(ctx, []*customerObject{c})
	return c, nil
}

// listCustomers serves GET /customer/list.
func (a *admin) listCustomers(ctx context.Context, r *http.Request) (any, error) {
	list, err := readCustomers(ctx, a.s.pg, `true ORDER BY created_at, user_id`)
	if err != nil {
		return nil, pgError(err)
	}
	a.s.withLiveCustomerSpend(ctx, list)
	return nonNil(list), nil
}

// blockCustomers serves POST /customer/block and /customer/unblock. Like LiteLLM, blocking
// an end user that does not exist yet creates it, blocked.
func (a *admin) blockCustomers(block bool) func(ctx context.Context, r *http.Request) (any, error) {
	return func(ctx context.Context, r *http.Request) (any, error) {
		var req struct {
			UserIDs opt[[]string] `json:"user_ids"`
		}
		if err := decode(r, &req); err != nil {
			return nil, err
		}
		if len(req.UserIDs.V) == 0 {
			return nil, fail(ErrInvalidRequest, "user_ids", "user_ids is required: the end users to block or unblock")
		}
		var out []*customerObject
		err := a.s.write(ctx, func(ctx context.Context, tx pgx.Tx, c *changes) error {
			if _, err := tx.Exec(ctx, `INSERT INTO tollgate_end_users (user_id, blocked) SELECT u, $2 FROM unnest($1::text[]) u
				ON CONFLICT (user_id) DO UPDATE SET blocked = excluded.blocked, updated_at = now()`, req.UserIDs.V, block); err != nil {
				return err
			}
			c.endUser(req.UserIDs.V...)
			var err error
			out, err = readCustomers(ctx, tx, `user_id = ANY($1) ORDER BY user_id`, req.UserIDs.V)
			return err
		})
		if err != nil {
			return nil, err
		}
		if block {
			return map[string]any{"blocked_users": out}, nil
		}
		return map[string]any{"unblocked_users": out}, nil
	}
}

// customerSelect reads customerObject rows (see readCustomers).
const customerSelect = `SELECT user_id, alias, blocked, metadata, created_at, updated_at, ` + budgetColumns + ` FROM tollgate_end_users WHERE `

func readCustomers(ctx context.Context, q querier, cond string, args ...any) ([]*customerObject, error) {
	rows, err := q.Query(ctx, customerSelect+cond, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (*customerObject, error) {
		c := &customerObject{}
		var b budgetRow
		err := row.Scan(append([]any{&c.UserID, &c.Alias, &c.Blocked, &c.Metadata, &c.CreatedAt, &c.UpdatedAt}, b.dest()...)...)
		c.Spend = dollars(b.spend)
		if b.max != nil || b.soft != nil || b.tpm != nil || b.rpm != nil || b.par != nil || b.duration != nil {
			v := b.view()
			c.LiteLLMBudgetTable = &v
		}
		return c, err
	})
}

// readCustomer returns one end user, or ErrNotFound.
func readCustomer(ctx context.Context, q querier, id string) (*customerObject, error) {
	list, err := readCustomers(ctx, q, `user_id = $1`, id)
	if err != nil {
		return nil, err
	}
	if len(list) == 0 {
		return nil, fail(ErrNotFound, "user_id", "End User Id=%s does not exist in db", id)
	}
	return list[0], nil
}

// withLiveCustomerSpend replaces end users' spend with Redis's live counters.
func (s *Store) withLiveCustomerSpend(ctx context.Context, list []*customerObject) {
	var live liveFields
	for _, c := range list {
		live.add(scope{scopeEndUser, c.UserID}, func(v float64) { c.Spend = v })
	}
	s.setLive(ctx, live)
}
