package keys

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
)

// teamFields are the fields /team/new and /team/update share.
type teamFields struct {
	budgetFields
	TeamAlias opt[string]         `json:"team_alias"`
	Models    opt[[]string]       `json:"models"`
	Blocked   opt[bool]           `json:"blocked"`
	Metadata  opt[map[string]any] `json:"metadata"`
}

// member is one entry of members_with_roles, and of /team/member_add's member.
type member struct {
	UserID    string `json:"user_id,omitempty"`
	UserEmail string `json:"user_email,omitempty"`
	Role      string `json:"role"`
}

// teamObject is a team as the admin API shows it (LiteLLM's LiteLLM_TeamTable).
type teamObject struct {
	TeamID           string         `json:"team_id"`
	TeamAlias        *string        `json:"team_alias"`
	Models           []string       `json:"models"`
	Blocked          bool           `json:"blocked"`
	Metadata         map[string]any `json:"metadata"`
	MembersWithRoles []member       `json:"members_with_roles"`
	budgetView
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// membership is LiteLLM's LiteLLM_TeamMembership: a member's spend and budget in a team.
type membership struct {
	UserID             string          `json:"user_id"`
	TeamID             string          `json:"team_id"`
	BudgetID           *string         `json:"budget_id"`
	Spend              float64         `json:"spend"`
	LiteLLMBudgetTable *map[string]any `json:"litellm_budget_table"`
	maxBudget          *int64
}

func (t *teamFields) apply(cols *columns, p *problems, now time.Time) *int64 {
	spend := t.budgetFields.apply(cols, p, now)
	if o := t.TeamAlias; o.Set {
		cols.set("team_alias", strPtr(o.V))
	}
	if o := t.Models; o.Set {
		cols.set("models", nonNil(o.V))
	}
	if o := t.Blocked; o.has() {
		cols.set("blocked", o.V)
	}
	if o := t.Metadata; o.Set {
		cols.set("metadata", nonNilMap(o.V))
	}
	return spend
}

// newTeam serves POST /team/new.
func (a *admin) newTeam(ctx context.Context, r *http.Request) (any, error) {
	var req struct {
		teamFields
		TeamID           opt[string]   `json:"team_id"`
		MembersWithRoles opt[[]member] `json:"members_with_roles"`
	}
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	id := req.TeamID.V
	if id == "" {
		id = newID()
	}
	var out *teamObject
	err := a.s.write(ctx, func(ctx context.Context, tx pgx.Tx, c *changes) error {
		cols := &columns{}
		cols.set("team_id", id)
		spend, err := applyFields(&req.teamFields, cols)
		if err != nil {
			return err
		}
		if err := insertRow(ctx, tx, cols, "tollgate_teams",
			fail(ErrConflict, "team_id", "team_id %q already exists: use /team/update to change it", id)); err != nil {
			return err
		}
		for _, m := range req.MembersWithRoles.V {
			if _, err := addMember(ctx, tx, id, m, nil); err != nil {
				return err
			}
		}
		c.resetSpend(scope{scopeTeam, id}, spend)
		c.team(id)
		out, err = readTeam(ctx, tx, id)
		return err
	})
	return out, err
}

// addMember adds user m to team (creating the user if needed, as LiteLLM does) and
// returns its user id. An existing membership is an error.
func addMember(ctx context.Context, tx pgx.Tx, team string, m member, maxBudget *int64) (string, error) {
	role := m.Role
	switch role {
	case "":
		role = "user"
	case "user", "admin":
	default:
		return "", fail(ErrInvalidRequest, "role", "member role must be \"admin\" or \"user\", not %q", m.Role)
	}
	user := m.UserID
	switch {
	case user == "" && m.UserEmail == "":
		return "", fail(ErrInvalidRequest, "member", "each member needs a user_id or a user_email")
	case user == "":
		err := tx.QueryRow(ctx, `SELECT user_id FROM tollgate_users WHERE lower(user_email) = lower($1) ORDER BY created_at LIMIT 1`, m.UserEmail).Scan(&user)
		if errors.Is(err, pgx.ErrNoRows) {
			user = newID()
			_, err = tx.Exec(ctx, `INSERT INTO tollgate_users (user_id, user_email) VALUES ($1, $2)`, user, m.UserEmail)
		}
		if err != nil {
			return "", err
		}
	default:
		if _, err := tx.Exec(ctx, `INSERT INTO tollgate_users (user_id, user_email) VALUES ($1, $2) ON CONFLICT DO NOTHING`, user, strPtr(m.UserEmail)); err != nil {
			return "", err
		}
	}
	tag, err := tx.Exec(ctx, `INSERT INTO tollgate_team_members (team_id, user_id, role, max_budget) VALUES ($1, $2, $3, $4)
		ON CONFLICT DO NOTHING`, team, user, role, maxBudget)
	if err != nil {
		return "", err
	}
	if tag.RowsAffected() == 0 {
		return "", fail(ErrConflict, "member", "user %q is already a member of team %q", user, team)
	}
	return user, nil
}

// updateTeam serves POST /team/update.
func (a *admin) updateTeam(ctx context.Context, r *http.Request) (any, error) {
	var req struct {
		teamFields
		TeamID opt[string] `json:"team_id"`
	}
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	if req.TeamID.V == "" {
		return nil, fail(ErrInvalidRequest, "team_id", "team_id is required")
	}
	id := req.TeamID.V
	var out *teamObject
	err := a.s.write(ctx, func(ctx context.Context, tx pgx.Tx, c *changes) error {
		if err := lockTeam(ctx, tx, id); err != nil {
			return err
		}
		cols := &columns{}
		spend, err := applyFields(&req.teamFields, cols)
		if err != nil {
			return err
		}
		if err := updateRow(ctx, tx, cols, "tollgate_teams", "team_id", id); err != nil {
			return err
		}
		c.resetSpend(scope{scopeTeam, id}, spend)
		c.team(id)
		out, err = readTeam(ctx, tx, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return map[string]any{"team_id": id, "data": out}, nil
}

// lockTeam locks a team's row, or returns ErrNotFound.
func lockTeam(ctx context.Context, tx pgx.Tx, id string) error {
	return lockRow(ctx, tx, "tollgate_teams", "team_id", id, fail(ErrNotFound, "team_id", "team %q not found", id))
}

// deleteTeams serves POST /team/delete. A team's keys go with it, as in LiteLLM.
func (a *admin) deleteTeams(ctx context.Context, r *http.Request) (any, error) {
	var req struct {
		TeamIDs opt[[]string] `json:"team_ids"`
	}
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	if len(req.TeamIDs.V) == 0 {
		return nil, fail(ErrInvalidRequest, "team_ids", "team_ids is required: the teams to delete")
	}
	err := a.s.write(ctx, func(ctx context.Context, tx pgx.Tx, c *changes) error {
		return deleteOwners(ctx, tx, c, "tollgate_teams", "team_id", scopeTeam, req.TeamIDs.V, lockTeam)
	})
	if err != nil {
		return nil, err
	}
	return map[string]any{"deleted_teams": req.TeamIDs.V}, nil
}

// teamInfo serves GET /team/info?team_id=.
func (a *admin) teamInfo(ctx context.Context, r *http.Request) (any, error) {
	id := query{r}.str("team_id")
	if id == "" {
		return nil, fail(ErrInvalidRequest, "team_id", "query parameter team_id is required: /team/info?team_id=...")
	}
	t, err := readTeam(ctx, a.s.pg, id)
	if err != nil {
		return nil, pgError(err)
	}
	keys, members, err := a.teamParts(ctx, t)
	if err != nil {
		return nil, err
	}
	return map[string]any{"team_id": id, "team_info": t, "keys": nonNil(keys), "team_memberships": nonNil(members)}, nil
}

// listTeams serves GET /team/list, optionally for one user's teams.
func (a *admin) listTeams(ctx context.Context, r *http.Request) (any, error) {
	user := query{r}.str("user_id")
	teams, err := readTeams(ctx, a.s.pg, `$1 = '' OR team_id IN (SELECT team_id FROM tollgate_team_members WHERE user_id = $1) ORDER BY created_at, team_id`, user)
	if err != nil {
		return nil, pgError(err)
	}
	type listed struct {
		*teamObject
		TeamMemberships []*membership `json:"team_memberships"`
		Keys            []*keyObject  `json:"keys"`
	}
	out := make([]listed, len(teams))
	for i, t := range teams {
		keys, members, err := a.teamParts(ctx, t)
		if err != nil {
			return nil, err
		}
		out[i] = listed{t, nonNil(members), nonNil(keys)}
	}
	return out, nil
}

// teamParts reads team t's keys and memberships, with live spend on them and on t.
func (a *admin) teamParts(ctx context.Context, t *teamObject) ([]*keyObject, []*membership, error) {
	keys, err := readKeys(ctx, a.s.pg, `team_id = $1 ORDER BY created_at`, t.TeamID)
	if err != nil {
		return nil, nil, pgError(err)
	}
	members, err := readMemberships(ctx, a.s.pg, t.TeamID)
	if err != nil {
		return nil, nil, pgError(err)
	}
	a.s.withLiveSpend(ctx, keys)
	a.s.withLiveTeamSpend(ctx, []*teamObject{t}, members)
	return keys, members, nil
}

// addMembers serves POST /team/member_add.
func (a *admin) addMembers(ctx context.Context, r *http.Request) (any, error) {
	var req struct {
		TeamID          opt[string]  `json:"team_id"`
		Member          opt[members] `json:"member"`
		MaxBudgetInTeam opt[float64] `json:"max_budget_in_team"`
	}
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	if req.TeamID.V == "" {
		return nil, fail(ErrInvalidRequest, "team_id", "team_id is required")
	}
	if len(req.Member.V) == 0 {
		return nil, fail(ErrInvalidRequest, "member", "member is required: {\"user_id\": ..., \"role\": \"user\"} or a list of them")
	}
	var maxBudget *int64
	if req.MaxBudgetInTeam.has() {
		m, err := micros("max_budget_in_team", req.MaxBudgetInTeam.V)
		if err != nil {
			return nil, err
		}
		maxBudget = &m
	}
	id := req.TeamID.V
	var team *teamObject
	var users []*userObject
	var memberships []*membership
	err := a.s.write(ctx, func(ctx context.Context, tx pgx.Tx, c *changes) error {
		if err := lockTeam(ctx, tx, id); err != nil {
			return err
		}
		var added []string
		for _, m := range req.Member.V {
			user, err := addMember(ctx, tx, id, m, maxBudget)
			if err != nil {
				return err
			}
			added = append(added, user)
		}
		c.team(id)
		var err error
		if team, err = readTeam(ctx, tx, id); err != nil {
			return err
		}
		if users, err = readUsers(ctx, tx, `user_id = ANY($1) ORDER BY user_id`, added); err != nil {
			return err
		}
		all, err := readMemberships(ctx, tx, id)
		for _, m := range all {
			if slices.Contains(added, m.UserID) {
				memberships = append(memberships, m)
			}
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return struct {
		*teamObject
		UpdatedUsers           []*userObject `json:"updated_users"`
		UpdatedTeamMemberships []*membership `json:"updated_team_memberships"`
	}{team, users, memberships}, nil
}

// members is /team/member_add's member: one object or a list.
type members []member

func (m *members) UnmarshalJSON(b []byte) error {
	var one member
	if err := json.Unmarshal(b, &one); err == nil {
		*m = members{one}
		return nil
	}
	var list []member
	if err := json.Unmarshal(b, &list); err != nil {
		return err
	}
	*m = list
	return nil
}

// deleteMember serves POST /team/member_delete.
func (a *admin) deleteMember(ctx context.Context, r *http.Request) (any, error) {
	var req struct {
		TeamID    opt[string] `json:"team_id"`
		UserID    opt[string] `json:"user_id"`
		UserEmail opt[string] `json:"user_email"`
	}
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	if req.TeamID.V == "" || (req.UserID.V == "" && req.UserEmail.V == "") {
		return nil, fail(ErrInvalidRequest, "team_id", "team_id and one of user_id or user_email are required")
	}
	id := req.TeamID.V
	var out *teamObject
	err := a.s.write(ctx, func(ctx context.Context, tx pgx.Tx, c *changes) error {
		if err := lockTeam(ctx, tx, id); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `DELETE FROM tollgate_team_members m WHERE m.team_id = $1 AND (m.user_id = $2
			OR ($2 = '' AND m.user_id IN (SELECT user_id FROM tollgate_users WHERE lower(user_email) = lower($3)))) RETURNING m.user_id`,
			id, req.UserID.V, req.UserEmail.V)
		if err != nil {
			return err
		}
		gone, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		if len(gone) == 0 {
			return fail(ErrNotFound, "user_id", "that user is not a member of team %q", id)
		}
		for _, u := range gone {
			c.goneScopes = append(c.goneScopes, scope{scopeMember, memberID(id, u)})
		}
		c.team(id)
		out, err = readTeam(ctx, tx, id)
		return err
	})
	return out, err
}

// teamSelect reads teamObject rows (see readTeams).
const teamSelect = `SELECT team_id, team_alias, models, blocked, metadata, created_at, updated_at, ` + budgetColumns + ` FROM tollgate_teams WHERE `

// readTeams returns the teams matching cond, with their members.
func readTeams(ctx context.Context, q querier, cond string, args ...any) ([]*teamObject, error) {
	rows, err := q.Query(ctx, teamSelect+cond, args...)
	if err != nil {
		return nil, err
	}
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*teamObject, error) {
		t := &teamObject{MembersWithRoles: []member{}}
		var b budgetRow
		err := row.Scan(append([]any{&t.TeamID, &t.TeamAlias, &t.Models, &t.Blocked, &t.Metadata, &t.CreatedAt, &t.UpdatedAt}, b.dest()...)...)
		t.budgetView = b.view()
		return t, err
	})
	if err != nil || len(list) == 0 {
		return list, err
	}
	byID := map[string]*teamObject{}
	ids := make([]string, len(list))
	for i, t := range list {
		byID[t.TeamID], ids[i] = t, t.TeamID
	}
	rows, err = q.Query(ctx, `SELECT m.team_id, m.user_id, coalesce(u.user_email, ''), m.role FROM tollgate_team_members m
		LEFT JOIN tollgate_users u ON u.user_id = m.user_id WHERE m.team_id = ANY($1) ORDER BY m.created_at, m.user_id`, ids)
	if err != nil {
		return nil, err
	}
	var team string
	var m member
	_, err = pgx.ForEachRow(rows, []any{&team, &m.UserID, &m.UserEmail, &m.Role}, func() error {
		byID[team].MembersWithRoles = append(byID[team].MembersWithRoles, m)
		return nil
	})
	return list, err
}

// readTeam returns one team, or ErrNotFound.
func readTeam(ctx context.Context, q querier, id string) (*teamObject, error) {
	list, err := readTeams(ctx, q, `team_id = $1`, id)
	if err != nil {
		return nil, err
	}
	if len(list) == 0 {
		return nil, fail(ErrNotFound, "team_id", "team %q not found", id)
	}
	return list[0], nil
}

// readMemberships returns a team's memberships.
func readMemberships(ctx context.Context, q querier, team string) ([]*membership, error) {
	rows, err := q.Query(ctx, `SELECT user_id, team_id, spend, max_budget FROM tollgate_team_members WHERE team_id = $1 ORDER BY created_at, user_id`, team)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (*membership, error) {
		m := &membership{}
		var spend int64
		err := row.Scan(&m.UserID, &m.TeamID, &spend, &m.maxBudget)
		m.Spend = dollars(spend)
		if m.maxBudget != nil {
			m.LiteLLMBudgetTable = &map[string]any{"max_budget": dollars(*m.maxBudget)}
		}
		return m, err
	})
}

// withLiveTeamSpend replaces teams' and memberships' spend with Redis's live counters.
func (s *Store) withLiveTeamSpend(ctx context.Context, teams []*teamObject, members []*membership) {
	var live liveFields
	for _, t := range teams {
		live.add(scope{scopeTeam, t.TeamID}, func(v float64) { t.Spend = v })
	}
	for _, m := range members {
		live.add(scope{scopeMember, memberID(m.TeamID, m.UserID)}, func(v float64) { m.Spend = v })
	}
	s.setLive(ctx, live)
}
