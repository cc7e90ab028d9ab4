package keys

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// userFields are the fields /user/new and /user/update share.
type userFields struct {
	budgetFields
	UserEmail opt[string]         `json:"user_email"`
	UserAlias opt[string]         `json:"user_alias"`
	UserRole  opt[string]         `json:"user_role"`
	Models    opt[[]string]       `json:"models"`
	Metadata  opt[map[string]any] `json:"metadata"`
}

// userObject is a user as the admin API shows it (LiteLLM's LiteLLM_UserTable).
type userObject struct {
	UserID    string         `json:"user_id"`
	UserEmail *string        `json:"user_email"`
	UserAlias *string        `json:"user_alias"`
	UserRole  string         `json:"user_role"`
	Models    []string       `json:"models"`
	Metadata  map[string]any `json:"metadata"`
	Teams     []string       `json:"teams"`
	budgetView
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

var userRoles = []string{roleAdmin, roleAdminViewer, roleInternal, roleInternalView}

func (u *userFields) apply(cols *columns, p *problems, now time.Time) *int64 {
	spend := u.budgetFields.apply(cols, p, now)
	if o := u.UserEmail; o.Set {
		cols.set("user_email", strPtr(o.V))
	}
	if o := u.UserAlias; o.Set {
		cols.set("user_alias", strPtr(o.V))
	}
	if o := u.UserRole; o.has() {
		if !slices.Contains(userRoles, o.V) {
			p.add(fail(ErrInvalidRequest, "user_role", "user_role must be one of %s, not %q", strings.Join(userRoles, ", "), o.V))
		}
		cols.set("user_role", o.V)
	}
	if o := u.Models; o.Set {
		cols.set("models", nonNil(o.V))
	}
	if o := u.Metadata; o.Set {
		cols.set("metadata", nonNilMap(o.V))
	}
	return spend
}

// userTeam is one entry of /user/new's teams: a team id, or LiteLLM's object form.
type userTeam struct {
	TeamID          string   `json:"team_id"`
	MaxBudgetInTeam *float64 `json:"max_budget_in_team"`
	UserRole        string   `json:"user_role"`
}

func (t *userTeam) UnmarshalJSON(b []byte) error {
	if err := json.Unmarshal(b, &t.TeamID); err == nil {
		return nil
	}
	type plain userTeam
	return json.Unmarshal(b, (*plain)(t))
}

// newUser serves POST /user/new. Like LiteLLM it also creates a key for the user unless
// auto_create_key is false; the key answers to the user's budget and models.
func (a *admin) newUser(ctx context.Context, r *http.Request) (any, error) {
	var req struct {
		userFields
		UserID        opt[string]     `json:"user_id"`
		Teams         opt[[]userTeam] `json:"teams"`
		TeamID        opt[string]     `json:"team_id"`
		AutoCreateKey opt[bool]       `json:"auto_create_key"`
		KeyAlias      opt[string]     `json:"key_alias"`
		Duration      opt[string]     `json:"duration"`
	}
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	id := req.UserID.V
	if id == "" {
		id = newID()
	}
	teams := req.Teams.V
	if req.TeamID.V != "" {
		teams = append(teams, userTeam{TeamID: req.TeamID.V})
	}
	withKey := !req.AutoCreateKey.Set || req.AutoCreateKey.V
	key := newKey()
	token := Hash(key)
	var user *userObject
	var k *keyObject
	err := a.s.write(ctx, func(ctx context.Context, tx pgx.Tx, c *changes) error {
		now := time.Now().UTC()
		cols := &columns{}
		cols.set("user_id", id)
		var p problems
		spend := req.userFields.apply(cols, &p, now)
		kc := &columns{}
		if withKey {
			kc.set("token", token)
			kc.set("key_name", keyName(key))
			kc.set("user_id", id)
			kc.set("key_alias", strPtr(req.KeyAlias.V))
			kc.set("expires", nil)
			if d := req.Duration; d.has() && d.V != "" && d.V != "-1" {
				if per, err := parsePeriod("duration", d.V); err != nil {
					p.add(err)
				} else {
					kc.set("expires", per.add(now))
				}
			}
		}
		if err := p.err(); err != nil {
			return err
		}
		if err := insertRow(ctx, tx, cols, "tollgate_users",
			fail(ErrConflict, "user_id", "user_id %q already exists: use /user/update to change it", id)); err != nil {
			return err
		}
		for _, t := range teams {
			if err := lockTeam(ctx, tx, t.TeamID); err != nil {
				return err
			}
			var maxBudget *int64
			if t.MaxBudgetInTeam != nil {
				m, err := micros("max_budget_in_team", *t.MaxBudgetInTeam)
				if err != nil {
					return err
				}
				maxBudget = &m
			}
			if _, err := addMember(ctx, tx, t.TeamID, member{UserID: id, Role: t.UserRole}, maxBudget); err != nil {
				return err
			}
			c.team(t.TeamID)
		}
		if withKey {
			sql, args := kc.insert("tollgate_keys")
			if _, err := tx.Exec(ctx, sql, args...); err != nil {
				return keyConflict(err, req.KeyAlias.V)
			}
			c.key(token)
		}
		c.resetSpend(scope{scopeUser, id}, spend)
		c.user(id)
		var err error
		if user, err = readUser(ctx, tx, id); err != nil {
			return err
		}
		if withKey {
			k, err = readKey(ctx, tx, token)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	out := struct {
		*userObject
		Key     *string    `json:"key"`
		KeyName *string    `json:"key_name"`
		Expires *time.Time `json:"expires"`
		Token   *string    `json:"token"`
	}{userObject: user}
	if k != nil {
		out.Key, out.KeyName, out.Expires, out.Token = &key, &k.KeyName, k.Expires, &token
	}
	return out, nil
}

// updateUser serves POST /user/update.
func (a *admin) updateUser(ctx context.Context, r *http.Request) (any, error) {
	var req struct {
		userFields
		UserID opt[string] `json:"user_id"`
	}
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	if req.UserID.V == "" && req.UserEmail.V == "" {
		return nil, fail(ErrInvalidRequest, "user_id", "user_id or user_email is required")
	}
	var out *userObject
	err := a.s.write(ctx, func(ctx context.Context, tx pgx.Tx, c *changes) error {
		id := req.UserID.V
		if id == "" {
			// Found by email: the email is the key, not a change.
			err := tx.QueryRow(ctx, `SELECT user_id FROM tollgate_users WHERE lower(user_email) = lower($1) ORDER BY created_at LIMIT 1`,
				req.UserEmail.V).Scan(&id)
			if errors.Is(err, pgx.ErrNoRows) {
				return fail(ErrNotFound, "user_email", "no user has user_email %q", req.UserEmail.V)
			}
			if err != nil {
				return err
			}
			req.UserEmail = opt[string]{}
		}
		if err := lockUser(ctx, tx, id); err != nil {
			return err
		}
		cols := &columns{}
		spend, err := applyFields(&req.userFields, cols)
		if err != nil {
			return err
		}
		if err := updateRow(ctx, tx, cols, "tollgate_users", "user_id", id); err != nil {
			return err
		}
		c.resetSpend(scope{scopeUser, id}, spend)
		c.user(id)
		out, err = readUser(ctx, tx, id)
		return err
	})
	return out, err
}

// lockUser locks a user's row, or returns ErrNotFound.
func lockUser(ctx context.Context, tx pgx.Tx, id string) error {
	return lockRow(ctx, tx, "tollgate_users", "user_id", id, fail(ErrNotFound, "user_id", "user %q not found", id))
}

// deleteUsers serves POST /user/delete. A user's keys and memberships go with it.
func (a *admin) deleteUsers(ctx context.Context, r *http.Request) (any, error) {
	var req struct {
		UserIDs opt[[]string] `json:"user_ids"`
	}
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	if len(req.UserIDs.V) == 0 {
		return nil, fail(ErrInvalidRequest, "user_ids", "user_ids is required: the users to delete")
	}
	err := a.s.write(ctx, func(ctx context.Context, tx pgx.Tx, c *changes) error {
		return deleteOwners(ctx, tx, c, "tollgate_users", "user_id", scopeUser, req.UserIDs.V, lockUser)
	})
	if err != nil {
		return nil, err
	}
	return map[string]any{"deleted_users": req.UserIDs.V}, nil
}

// userInfo serves GET /user/info?user_id=.
func (a *admin) userInfo(ctx context.Context, r *http.Request) (any, error) {
	id := query{r}.str("user_id")
	if id == "" {
		return nil, fail(ErrInvalidRequest, "user_id", "query parameter user_id is required: /user/info?user_id=...")
	}
	u, err := readUser(ctx, a.s.pg, id)
	if err != nil {
		return nil, pgError(err)
	}
	keys, err := readKeys(ctx, a.s.pg, `user_id = $1 ORDER BY created_at`, id)
	if err != nil {
		return nil, pgError(err)
	}
	teams, err := readTeams(ctx, a.s.pg, `team_id = ANY($1) ORDER BY created_at, team_id`, u.Teams)
	if err != nil {
		return nil, pgError(err)
	}
	a.s.withLiveSpend(ctx, keys)
	a.s.withLiveUserSpend(ctx, []*userObject{u})
	a.s.withLiveTeamSpend(ctx, teams, nil)
	return map[string]any{"user_id": id, "user_info": u, "keys": nonNil(keys), "teams": nonNil(teams)}, nil
}

// listUsers serves GET /user/list.
func (a *admin) listUsers(ctx context.Context, r *http.Request) (any, error) {
	q := query{r}
	page, err := q.int("page", 1, 1, 1_000_000)
	if err != nil {
		return nil, err
	}
	size, err := q.int("page_size", 25, 1, 100)
	if err != nil {
		return nil, err
	}
	var ids []string
	for id := range strings.SplitSeq(q.str("user_ids"), ",") {
		if id = strings.TrimSpace(id); id != "" {
			ids = append(ids, id)
		}
	}
	cond := `($1 = '' OR user_role = $1) AND (cardinality($2::text[]) = 0 OR user_id = ANY($2)) AND ($3 = '' OR lower(user_email) = lower($3))`
	args := []any{q.str("role"), ids, q.str("user_email")}
	var total int
	if err := a.s.pg.QueryRow(ctx, `SELECT count(*) FROM tollgate_users WHERE `+cond, args...).Scan(&total); err != nil {
		return nil, pgError(err)
	}
	users, err := readUsers(ctx, a.s.pg, cond+` ORDER BY created_at, user_id LIMIT $4 OFFSET $5`, append(args, size, (page-1)*size)...)
	if err != nil {
		return nil, pgError(err)
	}
	a.s.withLiveUserSpend(ctx, users)
	return map[string]any{"users": nonNil(users), "total": total, "page": page, "page_size": size, "total_pages": pages(total, size)}, nil
}

// spendUsers serves GET /spend/users: every user (or the one user_id names), most spent
// first, as /user/list shows them.
func (a *admin) spendUsers(ctx context.Context, r *http.Request) (any, error) {
	cond, args := `true`, []any{}
	if id := (query{r}).str("user_id"); id != "" {
		cond, args = `user_id = $1`, []any{id}
	}
	users, err := readUsers(ctx, a.s.pg, cond+` ORDER BY spend DESC, user_id`, args...)
	if err != nil {
		return nil, pgError(err)
	}
	if len(args) > 0 && len(users) == 0 {
		return nil, fail(ErrNotFound, "user_id", "user %q not found: /user/list shows the users", args[0])
	}
	a.s.withLiveUserSpend(ctx, users)
	slices.SortStableFunc(users, func(x, y *userObject) int { return cmp.Compare(y.Spend, x.Spend) })
	return nonNil(users), nil
}

// userSelect reads userObject rows (see readUsers).
const userSelect = `SELECT u.user_id, u.user_email, u.user_alias, u.user_role, u.models, u.metadata, u.created_at, u.updated_at,
	coalesce((SELECT array_agg(m.team_id ORDER BY m.created_at) FROM tollgate_team_members m WHERE m.user_id = u.user_id), '{}'), ` +
	budgetColumns + ` FROM tollgate_users u WHERE `

// readUsers returns the users matching cond (columns unqualified).
func readUsers(ctx context.Context, q querier, cond string, args ...any) ([]*userObject, error) {
	rows, err := q.Query(ctx, userSelect+cond, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (*userObject, error) {
		u := &userObject{}
		var b budgetRow
		err := row.Scan(append([]any{&u.UserID, &u.UserEmail, &u.UserAlias, &u.UserRole, &u.Models, &u.Metadata,
			&u.CreatedAt, &u.UpdatedAt, &u.Teams}, b.dest()...)...)
		u.budgetView = b.view()
		return u, err
	})
}

// readUser returns one user, or ErrNotFound.
func readUser(ctx context.Context, q querier, id string) (*userObject, error) {
	list, err := readUsers(ctx, q, `user_id = $1`, id)
	if err != nil {
		return nil, err
	}
	if len(list) == 0 {
		return nil, fail(ErrNotFound, "user_id", "user %q not found", id)
	}
	return list[0], nil
}

// withLiveUserSpend replaces users' spend with Redis's live counters.
func (s *Store) withLiveUserSpend(ctx context.Context, users []*userObject) {
	var live liveFields
	for _, u := range users {
		live.add(scope{scopeUser, u.UserID}, func(v float64) { u.Spend = v })
	}
	s.setLive(ctx, live)
}
