package keys

import (
	"context"
	"crypto/rand"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// budgetFields are the limits every budget holder (key, team, user, end user) takes, in
// LiteLLM's names and units (dollars).
type budgetFields struct {
	MaxBudget           opt[float64] `json:"max_budget"`
	SoftBudget          opt[float64] `json:"soft_budget"`
	BudgetDuration      opt[string]  `json:"budget_duration"`
	TPMLimit            opt[int64]   `json:"tpm_limit"`
	RPMLimit            opt[int64]   `json:"rpm_limit"`
	MaxParallelRequests opt[int64]   `json:"max_parallel_requests"`
	Spend               opt[float64] `json:"spend"`
}

// apply adds the fields the request names to cols. A budget_duration starts the first
// period now. spend, when named, is returned so the caller can set the live counter too.
func (b *budgetFields) apply(cols *columns, p *problems, now time.Time) (spend *int64) {
	money := func(col string, o opt[float64]) *int64 {
		if !o.Set {
			return nil
		}
		if o.Null {
			cols.set(col, nil)
			return nil
		}
		m, err := micros(col, o.V)
		if err != nil {
			p.add(err)
			return nil
		}
		cols.set(col, m)
		return &m
	}
	count := func(col string, o opt[int64]) {
		switch {
		case !o.Set:
		case o.Null:
			cols.set(col, nil)
		case o.V < 0:
			p.add(fail(ErrInvalidRequest, col, "%s must not be negative", col))
		default:
			cols.set(col, o.V)
		}
	}
	money("max_budget", b.MaxBudget)
	money("soft_budget", b.SoftBudget)
	count("tpm_limit", b.TPMLimit)
	count("rpm_limit", b.RPMLimit)
	count("max_parallel_requests", b.MaxParallelRequests)
	if o := b.BudgetDuration; o.Set {
		if o.Null || o.V == "" {
			cols.set("budget_duration", nil)
			cols.set("budget_reset_at", nil)
		} else if per, err := parsePeriod("budget_duration", o.V); err != nil {
			p.add(err)
		} else {
			cols.set("budget_duration", o.V)
			cols.set("budget_reset_at", per.add(now))
		}
	}
	if b.Spend.Null {
		p.add(fail(ErrInvalidRequest, "spend", "spend must be a number of dollars, not null"))
	}
	return money("spend", b.Spend)
}

// budgetView is how responses show a budget holder's limits.
type budgetView struct {
	MaxBudget           *float64   `json:"max_budget"`
	SoftBudget          *float64   `json:"soft_budget"`
	Spend               float64    `json:"spend"`
	BudgetDuration      *string    `json:"budget_duration"`
	BudgetResetAt       *time.Time `json:"budget_reset_at"`
	TPMLimit            *int64     `json:"tpm_limit"`
	RPMLimit            *int64     `json:"rpm_limit"`
	MaxParallelRequests *int64     `json:"max_parallel_requests"`
}

// budgetColumns are the columns budgetView scans, in order (see scan).
const budgetColumns = `max_budget, soft_budget, spend, budget_duration, budget_reset_at, tpm_limit, rpm_limit, max_parallel_requests`

// budgetRow receives budgetColumns.
type budgetRow struct {
	max, soft     *int64
	spend         int64
	duration      *string
	resetAt       *time.Time
	tpm, rpm, par *int64
}

func (r *budgetRow) dest() []any {
	return []any{&r.max, &r.soft, &r.spend, &r.duration, &r.resetAt, &r.tpm, &r.rpm, &r.par}
}

func (r *budgetRow) view() budgetView {
	return budgetView{
		MaxBudget: dollarsPtr(r.max), SoftBudget: dollarsPtr(r.soft), Spend: dollars(r.spend),
		BudgetDuration: r.duration, BudgetResetAt: r.resetAt, TPMLimit: r.tpm, RPMLimit: r.rpm, MaxParallelRequests: r.par,
	}
}

func dollarsPtr(m *int64) *float64 {
	if m == nil {
		return nil
	}
	d := dollars(*m)
	return &d
}

// strPtr is nil for "", for optional string fields that LiteLLM shows as null.
func strPtr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// columns collects column assignments for an INSERT or UPDATE.
type columns struct {
	names []string
	vals  []any
}

func (c *columns) set(name string, v any) {
	for i, n := range c.names {
		if n == name {
			c.vals[i] = v
			return
		}
	}
	c.names = append(c.names, name)
	c.vals = append(c.vals, v)
}

// insert returns an INSERT of the columns into table.
func (c *columns) insert(table string) (string, []any) {
	ph := make([]string, len(c.names))
	for i := range ph {
		ph[i] = "$" + strconv.Itoa(i+1)
	}
	return fmt.Sprintf("INSERT INTO %s (%s) VALUES (%s)", table, strings.Join(c.names, ", "), strings.Join(ph, ", ")), c.vals
}

// update returns an UPDATE of the columns (and updated_at) in table's rows where column
// key equals id. It reports false when there is nothing to set.
func (c *columns) update(table, key string, id any) (string, []any, bool) {
	if len(c.names) == 0 {
		return "", nil, false
	}
	sets := make([]string, len(c.names))
	for i, n := range c.names {
		sets[i] = fmt.Sprintf("%s = $%d", n, i+1)
	}
	if table != "tollgate_team_members" && table != "tollgate_key_model_budgets" {
		sets = append(sets, "updated_at = now()")
	}
	args := append(append([]any{}, c.vals...), id)
	return fmt.Sprintf("UPDATE %s SET %s WHERE %s = $%d", table, strings.Join(sets, ", "), key, len(args)), args, true
}

// problems collects every validation failure of a request, to report them together.
type problems struct {
	list  []string
	param string
}

func (p *problems) add(err error) {
	if e, ok := err.(*Error); ok && len(p.list) == 0 {
		p.param = e.Param
	} else {
		p.param = ""
	}
	p.list = append(p.list, err.Error())
}

// err is nil when nothing went wrong.
func (p *problems) err() error {
	if len(p.list) == 0 {
		return nil
	}
	return &Error{Kind: ErrInvalidRequest, Param: p.param, Msg: strings.Join(p.list, "; ")}
}

// newID is a random UUID (version 4), LiteLLM's default team and user id.
func newID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// liveSpend reads scopes' spend from Redis, which is ahead of Postgres by the spend
// records not yet written. Scopes Redis cannot answer for keep their Postgres value.
func (s *Store) liveSpend(ctx context.Context, scopes []scope) map[scope]int64 {
	out := map[scope]int64{}
	if len(scopes) == 0 {
		return out
	}
	p := s.rdb.Pipeline()
	cmds := make([]*redis.StringCmd, len(scopes))
	for i, sc := range scopes {
		cmds[i] = p.HGet(ctx, s.n.scope(sc), "spend")
	}
	p.Exec(ctx) // errors are per command
	for i, c := range cmds {
		if v, err := c.Int64(); err == nil {
			out[scopes[i]] = v
		}
	}
	return out
}
