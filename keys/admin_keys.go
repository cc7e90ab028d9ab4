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

// keyFields are the fields /key/generate, /key/update and /key/regenerate share.
type keyFields struct {
	budgetFields
	KeyAlias       opt[string]                     `json:"key_alias"`
	Duration       opt[string]                     `json:"duration"`
	Models         opt[[]string]                   `json:"models"`
	ModelMaxBudget opt[map[string]json.RawMessage] `json:"model_max_budget"`
	Metadata       opt[map[string]any]             `json:"metadata"`
	TeamID         opt[string]                     `json:"team_id"`
	UserID         opt[string]                     `json:"user_id"`
	Blocked        opt[bool]                       `json:"blocked"`
	Tags           opt[[]string]                   `json:"tags"`
}

// keyObject is a key as the admin API shows it (LiteLLM's LiteLLM_VerificationToken).
type keyObject struct {
	Token    string         `json:"token,omitempty"`
	KeyName  string         `json:"key_name"`
	KeyAlias *string        `json:"key_alias"`
	Models   []string       `json:"models"`
	TeamID   *string        `json:"team_id"`
	UserID   *string        `json:"user_id"`
	Expires  *time.Time     `json:"expires"`
	Blocked  bool           `json:"blocked"`
	Metadata map[string]any `json:"metadata"`
	Tags     []string       `json:"tags"`
	budgetView
	ModelMaxBudget map[string]modelBudgetView `json:"model_max_budget"`
	ModelSpend     map[string]float64         `json:"model_spend"`
	CreatedAt      time.Time                  `json:"created_at"`
	UpdatedAt      time.Time                  `json:"updated_at"`
}

// modelBudgetView is one model_max_budget entry, in LiteLLM's current format.
type modelBudgetView struct {
	BudgetLimit float64 `json:"budget_limit"`
	TimePeriod  *string `json:"time_period"`
}

// modelBudget is a validated model_max_budget entry.
type modelBudget struct {
	model    string
	max      int64
	duration *string
	resetAt  *time.Time
}

// generateKey serves POST /key/generate.
func (a *admin) generateKey(ctx context.Context, r *http.Request) (any, error) {
	var req struct {
		keyFields
		Key opt[string] `json:"key"`
	}
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	key := newKey()
	if req.Key.has() {
		key = req.Key.V
		if err := checkCustomKey("key", key); err != nil {
			return nil, err
		}
	}
	token := Hash(key)
	var out *keyObject
	err := a.s.write(ctx, func(ctx context.Context, tx pgx.Tx, c *changes) error {
		now := time.Now().UTC()
		cols := &columns{}
		cols.set("token", token)
		cols.set("key_name", keyName(key))
		var p problems
		spend, budgets, setBudgets := a.keyColumns(ctx, tx, &req.keyFields, cols, &p, now)
		if err := p.err(); err != nil {
			return err
		}
		sql, args := cols.insert("tollgate_keys")
		if _, err := tx.Exec(ctx, sql, args...); err != nil {
			return keyConflict(err, req.KeyAlias.V)
		}
		if setBudgets {
			if err := setModelBudgets(ctx, tx, c, token, budgets); err != nil {
				return err
			}
		}
		c.resetSpend(scope{scopeKey, token}, spend)
		c.key(token)
		var err error
		out, err = readKey(ctx, tx, token)
		return err
	})
	if err != nil {
		return nil, err
	}
	return struct {
		Key     string `json:"key"`
		TokenID string `json:"token_id"`
		*keyObject
	}{key, token, out}, nil
}

// checkCustomKey validates a key an admin chose.
func checkCustomKey(field, key string) error {
	switch {
	case !strings.HasPrefix(key, keyPrefix):
		return fail(ErrInvalidRequest, field, "%s must start with sk- (that is how keys are told from their hashes)", field)
	case len(key) < 8 || len(key) > 256:
		return fail(ErrInvalidRequest, field, "%s must be 8 to 256 characters long", field)
	}
	return nil
}

// keyConflict explains a unique violation on insert or update of a key.
func keyConflict(err error, alias string) error {
	err = pgError(err)
	if e, ok := errors.AsType[*Error](err); ok && e.Kind == ErrConflict {
		if strings.Contains(e.Msg, "key_alias") {
			return fail(ErrConflict, "key_alias", "key_alias %q is already used by another key: choose another alias", alias)
		}
		return fail(ErrConflict, "key", "a key with this value already exists: choose another key")
	}
	return err
}

// keyColumns validates the key fields a request names and adds them to cols.
func (a *admin) keyColumns(ctx context.Context, tx pgx.Tx, f *keyFields, cols *columns, p *problems, now time.Time) (spend *int64, budgets []modelBudget, setBudgets bool) {
	spend = f.budgetFields.apply(cols, p, now)
	if o := f.KeyAlias; o.Set {
		cols.set("key_alias", strPtr(o.V))
	}
	if o := f.Duration; o.Set {
		if o.Null || o.V == "" || o.V == "-1" {
			cols.set("expires", nil)
		} else if per, err := parsePeriod("duration", o.V); err != nil {
			p.add(err)
		} else {
			cols.set("expires", per.add(now))
		}
	}
	if o := f.Models; o.Set {
		cols.set("models", nonNil(o.V))
	}
	if o := f.Metadata; o.Set {
		cols.set("metadata", nonNilMap(o.V))
	}
	if o := f.Tags; o.Set {
		cols.set("tags", nonNil(o.V))
	}
	if o := f.Blocked; o.has() {
		cols.set("blocked", o.V)
	}
	if o := f.TeamID; o.Set {
		if o.V != "" {
			var ok bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM tollgate_teams WHERE team_id = $1)`, o.V).Scan(&ok); err != nil {
				p.add(pgError(err))
			} else if !ok {
				p.add(fail(ErrInvalidRequest, "team_id", "team_id %q does not exist: create it with /team/new first", o.V))
			}
		}
		cols.set("team_id", strPtr(o.V))
	}
	if o := f.UserID; o.Set {
		if o.V != "" {
			// LiteLLM creates the user a key names.
			if _, err := tx.Exec(ctx, `INSERT INTO tollgate_users (user_id) VALUES ($1) ON CONFLICT DO NOTHING`, o.V); err != nil {
				p.add(pgError(err))
			}
		}
		cols.set("user_id", strPtr(o.V))
	}
	if o := f.ModelMaxBudget; o.Set {
		setBudgets = true
		budgets = parseModelBudgets(o.V, p, now)
	}
	return spend, budgets, setBudgets
}

// parseModelBudgets reads model_max_budget in either of LiteLLM's formats:
// {"gpt-4": 5.0} or {"gpt-4": {"budget_limit": 5.0, "time_period": "30d"}}.
func parseModelBudgets(raw map[string]json.RawMessage, p *problems, now time.Time) []modelBudget {
	var out []modelBudget
	for model, v := range raw {
		field := "model_max_budget." + model
		var limit float64
		var duration *string
		if err := json.Unmarshal(v, &limit); err != nil {
			var obj struct {
				BudgetLimit    *float64 `json:"budget_limit"`
				MaxBudget      *float64 `json:"max_budget"`
				TimePeriod     *string  `json:"time_period"`
				BudgetDuration *string  `json:"budget_duration"`
			}
			if err := json.Unmarshal(v, &obj); err != nil || (obj.BudgetLimit == nil && obj.MaxBudget == nil) {
				p.add(fail(ErrInvalidRequest, "model_max_budget", "%s must be a number of dollars or {\"budget_limit\": dollars, \"time_period\": \"30d\"}", field))
				continue
			}
			limit = *cmpOr(obj.BudgetLimit, obj.MaxBudget)
			duration = cmpOr(obj.TimePeriod, obj.BudgetDuration)
		}
		m, err := micros(field, limit)
		if err != nil {
			p.add(err)
			continue
		}
		b := modelBudget{model: model, max: m, duration: duration}
		if duration != nil && *duration != "" {
			per, err := parsePeriod(field+".time_period", *duration)
			if err != nil {
				p.add(err)
				continue
			}
			t := per.add(now)
			b.resetAt = &t
		} else {
			b.duration = nil
		}
		out = append(out, b)
	}
	slices.SortFunc(out, func(a, b modelBudget) int { return strings.Compare(a.model, b.model) })
	return out
}

// cmpOr returns the first non-nil pointer.
func cmpOr[T any](a, b *T) *T {
	if a != nil {
		return a
	}
	return b
}

// setModelBudgets makes the key's model budgets exactly list, keeping the spend of models
// that stay.
func setModelBudgets(ctx context.Context, tx pgx.Tx, c *changes, token string, list []modelBudget) error {
	models := make([]string, len(list))
	for i, b := range list {
		models[i] = b.model
		if _, err := tx.Exec(ctx, `
			INSERT INTO tollgate_key_model_budgets (token, model, max_budget, budget_duration, budget_reset_at)
			VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (token, model) DO UPDATE SET max_budget = excluded.max_budget,
				budget_reset_at = CASE WHEN tollgate_key_model_budgets.budget_duration IS NOT DISTINCT FROM excluded.budget_duration
					THEN tollgate_key_model_budgets.budget_reset_at ELSE excluded.budget_reset_at END,
				budget_duration = excluded.budget_duration`,
			token, b.model, b.max, b.duration, b.resetAt); err != nil {
			return err
		}
	}
	rows, err := tx.Query(ctx, `DELETE FROM tollgate_key_model_budgets WHERE token = $1 AND NOT model = ANY($2) RETURNING model`, token, models)
	if err != nil {
		return err
	}
	gone, err := pgx.CollectRows(rows, pgx.RowTo[string])
	for _, m := range gone {
		c.goneScopes = append(c.goneScopes, scope{scopeModel, modelID(token, m)})
	}
	return err
}

// updateKey serves POST /key/update.
func (a *admin) updateKey(ctx context.Context, r *http.Request) (any, error) {
	var req struct {
		keyFields
		Key opt[string] `json:"key"`
	}
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	if !req.Key.has() || req.Key.V == "" {
		return nil, fail(ErrInvalidRequest, "key", "key is required: the key (or its hash) to update")
	}
	var out *keyObject
	err := a.s.write(ctx, func(ctx context.Context, tx pgx.Tx, c *changes) error {
		token, err := lockKey(ctx, tx, req.Key.V)
		if err != nil {
			return err
		}
		if out, err = a.changeKey(ctx, tx, c, token, token, &req.keyFields); err != nil {
			return err
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return struct {
		Key string `json:"key"`
		*keyObject
	}{req.Key.V, out}, nil
}

// changeKey applies f to the key token (renaming it to newToken) and returns the result.
func (a *admin) changeKey(ctx context.Context, tx pgx.Tx, c *changes, token, newToken string, f *keyFields) (*keyObject, error) {
	now := time.Now().UTC()
	cols := &columns{}
	if newToken != token {
		cols.set("token", newToken)
	}
	var p problems
	spend, budgets, setBudgets := a.keyColumns(ctx, tx, f, cols, &p, now)
	if err := p.err(); err != nil {
		return nil, err
	}
	if sql, args, ok := cols.update("tollgate_keys", "token", token); ok {
		if _, err := tx.Exec(ctx, sql, args...); err != nil {
			return nil, keyConflict(err, f.KeyAlias.V)
		}
	}
	if setBudgets {
		if err := setModelBudgets(ctx, tx, c, newToken, budgets); err != nil {
			return nil, err
		}
	}
	c.resetSpend(scope{scopeKey, newToken}, spend)
	c.key(newToken)
	return readKey(ctx, tx, newToken)
}

// lockKey finds a key by key or hash and locks its row for the transaction.
func lockKey(ctx context.Context, tx pgx.Tx, keyOrHash string) (string, error) {
	var token string
	err := tx.QueryRow(ctx, `SELECT token FROM tollgate_keys WHERE token = $1 FOR UPDATE`, tokenOf(keyOrHash)).Scan(&token)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", fail(ErrNotFound, "key", "key not found: pass the key (sk-...) or its hash (token)")
	}
	return token, err
}

// deleteKeys serves POST /key/delete.
func (a *admin) deleteKeys(ctx context.Context, r *http.Request) (any, error) {
	var req struct {
		Keys       opt[[]string] `json:"keys"`
		KeyAliases opt[[]string] `json:"key_aliases"`
	}
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	if len(req.Keys.V) == 0 && len(req.KeyAliases.V) == 0 {
		return nil, fail(ErrInvalidRequest, "keys", "pass \"keys\" (keys or hashes) or \"key_aliases\" to delete")
	}
	err := a.s.write(ctx, func(ctx context.Context, tx pgx.Tx, c *changes) error {
		tokens := make([]string, len(req.Keys.V))
		for i, k := range req.Keys.V {
			tokens[i] = tokenOf(k)
		}
		rows, err := tx.Query(ctx, `SELECT token, coalesce(key_alias, '') FROM tollgate_keys
			WHERE token = ANY($1) OR key_alias = ANY($2) FOR UPDATE`, tokens, req.KeyAliases.V)
		if err != nil {
			return err
		}
		var all []string
		found := map[string]bool{}
		var token, alias string
		if _, err := pgx.ForEachRow(rows, []any{&token, &alias}, func() error {
			found[token], found["alias:"+alias] = true, true
			all = append(all, token)
			return nil
		}); err != nil {
			return err
		}
		var missing []string
		for i, k := range req.Keys.V {
			if !found[tokens[i]] {
				missing = append(missing, describeKey(k))
			}
		}
		for _, al := range req.KeyAliases.V {
			if !found["alias:"+al] {
				missing = append(missing, "alias "+al)
			}
		}
		if len(missing) > 0 {
			return fail(ErrNotFound, "keys", "no such key: %s (nothing was deleted)", strings.Join(missing, ", "))
		}
		return deleteKeyRows(ctx, tx, c, all)
	})
	if err != nil {
		return nil, err
	}
	deleted := req.Keys.V
	if len(deleted) == 0 {
		deleted = req.KeyAliases.V
	}
	return map[string]any{"deleted_keys": deleted}, nil
}

// describeKey names a key in a message without repeating it: its hash as given, or the
// "sk-...abcd" form.
func describeKey(k string) string {
	if isHash(k) {
		return k
	}
	return keyName(k)
}

// deleteKeyRows deletes the keys with these tokens and marks their records,
// grace-period records and scopes gone.
func deleteKeyRows(ctx context.Context, tx pgx.Tx, c *changes, tokens []string) error {
	rows, err := tx.Query(ctx, `
		SELECT token, '' FROM tollgate_deprecated_keys WHERE active_token = ANY($1)
		UNION ALL
		SELECT token, model FROM tollgate_key_model_budgets WHERE token = ANY($1)`, tokens)
	if err != nil {
		return err
	}
	var token, model string
	if _, err := pgx.ForEachRow(rows, []any{&token, &model}, func() error {
		if model == "" {
			c.goneRecords = append(c.goneRecords, token)
		} else {
			c.goneScopes = append(c.goneScopes, scope{scopeModel, modelID(token, model)})
		}
		return nil
	}); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `DELETE FROM tollgate_keys WHERE token = ANY($1)`, tokens); err != nil {
		return err
	}
	for _, t := range tokens {
		c.goneRecords = append(c.goneRecords, t)
		c.goneScopes = append(c.goneScopes, scope{scopeKey, t})
	}
	return nil
}

// keyTokens returns the tokens of the keys matching cond (SQL over tollgate_keys, args).
func keyTokens(ctx context.Context, tx pgx.Tx, cond string, args ...any) ([]string, error) {
	rows, err := tx.Query(ctx, `SELECT token FROM tollgate_keys WHERE `+cond, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// keyInfo serves GET /key/info?key=.
func (a *admin) keyInfo(ctx context.Context, r *http.Request) (any, error) {
	key := query{r}.str("key")
	if key == "" {
		return nil, fail(ErrInvalidRequest, "key", "query parameter key is required: /key/info?key=sk-... (or the key's hash)")
	}
	k, err := readKey(ctx, a.s.pg, tokenOf(key))
	if err != nil {
		return nil, pgError(err)
	}
	a.s.withLiveSpend(ctx, []*keyObject{k})
	k.Token = ""
	return map[string]any{"key": key, "info": k}, nil
}

// listKeys serves GET /key/list.
func (a *admin) listKeys(ctx context.Context, r *http.Request) (any, error) {
	q := query{r}
	page, err := q.int("page", 1, 1, 1_000_000)
	if err != nil {
		return nil, err
	}
	size, err := q.int("size", 10, 1, 100)
	if err != nil {
		return nil, err
	}
	full, err := q.bool("return_full_object")
	if err != nil {
		return nil, err
	}
	cond := `($1 = '' OR user_id = $1) AND ($2 = '' OR team_id = $2) AND ($3 = '' OR key_alias = $3) AND ($4 = '' OR token = $4)`
	args := []any{q.str("user_id"), q.str("team_id"), q.str("key_alias"), q.str("key_hash")}
	var total int
	if err := a.s.pg.QueryRow(ctx, `SELECT count(*) FROM tollgate_keys WHERE `+cond, args...).Scan(&total); err != nil {
		return nil, pgError(err)
	}
	list, err := readKeys(ctx, a.s.pg, cond+` ORDER BY created_at DESC, token LIMIT $5 OFFSET $6`, append(args, size, (page-1)*size)...)
	if err != nil {
		return nil, pgError(err)
	}
	var keys []any
	if full {
		a.s.withLiveSpend(ctx, list)
		for _, k := range list {
			keys = append(keys, k)
		}
	} else {
		for _, k := range list {
			keys = append(keys, k.Token)
		}
	}
	return map[string]any{
		"keys":         nonNil(keys),
		"total_count":  total,
		"current_page": page,
		"total_pages":  pages(total, size),
	}, nil
}

// spendKeys serves GET /spend/keys: every key, most spent first, as /key/info shows them.
func (a *admin) spendKeys(ctx context.Context, _ *http.Request) (any, error) {
	list, err := readKeys(ctx, a.s.pg, `true ORDER BY spend DESC, token`)
	if err != nil {
		return nil, pgError(err)
	}
	a.s.withLiveSpend(ctx, list)
	slices.SortStableFunc(list, func(x, y *keyObject) int { return cmp.Compare(y.Spend, x.Spend) })
	return nonNil(list), nil
}

// regenerateKey serves POST /key/regenerate (key in the body).
func (a *admin) regenerateKey(ctx context.Context, r *http.Request) (any, error) {
	return a.regenerate(ctx, r, "")
}

// regenerate replaces a key with a new one, keeping its settings, spend and counters.
// With a grace_period the old key keeps working, as the new one, until it ends.
func (a *admin) regenerate(ctx context.Context, r *http.Request, pathKey string) (any, error) {
	var req struct {
		keyFields
		Key         opt[string] `json:"key"`
		NewKey      opt[string] `json:"new_key"`
		GracePeriod opt[string] `json:"grace_period"`
	}
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	old := pathKey
	if req.Key.has() && req.Key.V != "" {
		old = req.Key.V
	}
	if old == "" {
		return nil, fail(ErrInvalidRequest, "key", "key is required: /key/{key}/regenerate or {\"key\": ...}")
	}
	key := newKey()
	if req.NewKey.has() {
		key = req.NewKey.V
		if err := checkCustomKey("new_key", key); err != nil {
			return nil, err
		}
	}
	var grace *time.Time
	if req.GracePeriod.has() && req.GracePeriod.V != "" {
		per, err := parsePeriod("grace_period", req.GracePeriod.V)
		if err != nil {
			return nil, err
		}
		t := per.add(time.Now().UTC())
		grace = &t
	}
	newToken := Hash(key)
	var out *keyObject
	err := a.s.write(ctx, func(ctx context.Context, tx pgx.Tx, c *changes) error {
		token, err := lockKey(ctx, tx, old)
		if err != nil {
			return err
		}
		if token == newToken {
			return fail(ErrInvalidRequest, "new_key", "new_key must differ from the key it replaces")
		}
		rows, err := tx.Query(ctx, `SELECT model FROM tollgate_key_model_budgets WHERE token = $1`, token)
		if err != nil {
			return err
		}
		models, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE tollgate_keys SET key_name = $2 WHERE token = $1`, token, keyName(key)); err != nil {
			return err
		}
		if out, err = a.changeKey(ctx, tx, c, token, newToken, &req.keyFields); err != nil {
			return err
		}
		c.renames = append(c.renames, [2]scope{{scopeKey, token}, {scopeKey, newToken}})
		for _, m := range models {
			c.renames = append(c.renames, [2]scope{{scopeModel, modelID(token, m)}, {scopeModel, modelID(newToken, m)}})
		}
		if grace == nil {
			// Regenerating without a grace period revokes now: the old key, and any key
			// still in its grace period for it.
			rows, err := tx.Query(ctx, `DELETE FROM tollgate_deprecated_keys WHERE active_token = $1 RETURNING token`, newToken)
			if err != nil {
				return err
			}
			earlier, err := pgx.CollectRows(rows, pgx.RowTo[string])
			c.goneRecords = append(append(c.goneRecords, token), earlier...)
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO tollgate_deprecated_keys (token, active_token, revoke_at) VALUES ($1, $2, $3)`, token, newToken, *grace)
		return err
	})
	if err != nil {
		return nil, err
	}
	return struct {
		Key     string `json:"key"`
		TokenID string `json:"token_id"`
		*keyObject
	}{key, newToken, out}, nil
}

// blockKey serves POST /key/block and /key/unblock.
func (a *admin) blockKey(block bool) func(ctx context.Context, r *http.Request) (any, error) {
	return func(ctx context.Context, r *http.Request) (any, error) {
		var req struct {
			Key opt[string] `json:"key"`
		}
		if err := decode(r, &req); err != nil {
			return nil, err
		}
		if !req.Key.has() || req.Key.V == "" {
			return nil, fail(ErrInvalidRequest, "key", "key is required: the key (or its hash) to block or unblock")
		}
		var out *keyObject
		err := a.s.write(ctx, func(ctx context.Context, tx pgx.Tx, c *changes) error {
			token, err := lockKey(ctx, tx, req.Key.V)
			if err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `UPDATE tollgate_keys SET blocked = $2, updated_at = now() WHERE token = $1`, token, block); err != nil {
				return err
			}
			c.key(token)
			out, err = readKey(ctx, tx, token)
			return err
		})
		return out, err
	}
}

// keySelect reads keyObject rows (see scanKey).
const keySelect = `SELECT token, key_name, key_alias, models, team_id, user_id, expires, blocked, metadata, tags, created_at, updated_at, ` +
	budgetColumns + ` FROM tollgate_keys WHERE `

// readKeys returns the keys matching cond (SQL, args), with their model budgets.
func readKeys(ctx context.Context, q querier, cond string, args ...any) ([]*keyObject, error) {
	rows, err := q.Query(ctx, keySelect+cond, args...)
	if err != nil {
		return nil, err
	}
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*keyObject, error) {
		k := &keyObject{ModelMaxBudget: map[string]modelBudgetView{}, ModelSpend: map[string]float64{}}
		var b budgetRow
		dest := append([]any{&k.Token, &k.KeyName, &k.KeyAlias, &k.Models, &k.TeamID, &k.UserID, &k.Expires, &k.Blocked,
			&k.Metadata, &k.Tags, &k.CreatedAt, &k.UpdatedAt}, b.dest()...)
		err := row.Scan(dest...)
		k.budgetView = b.view()
		return k, err
	})
	if err != nil || len(list) == 0 {
		return list, err
	}
	byToken := map[string]*keyObject{}
	tokens := make([]string, len(list))
	for i, k := range list {
		byToken[k.Token] = k
		tokens[i] = k.Token
	}
	rows, err = q.Query(ctx, `SELECT token, model, max_budget, spend, budget_duration FROM tollgate_key_model_budgets WHERE token = ANY($1)`, tokens)
	if err != nil {
		return nil, err
	}
	var token, model string
	var maxB, spend int64
	var period *string
	_, err = pgx.ForEachRow(rows, []any{&token, &model, &maxB, &spend, &period}, func() error {
		k := byToken[token]
		k.ModelMaxBudget[model] = modelBudgetView{BudgetLimit: dollars(maxB), TimePeriod: period}
		k.ModelSpend[model] = dollars(spend)
		return nil
	})
	return list, err
}

// readKey returns one key, or ErrNotFound.
func readKey(ctx context.Context, q querier, token string) (*keyObject, error) {
	list, err := readKeys(ctx, q, `token = $1`, token)
	if err != nil {
		return nil, err
	}
	if len(list) == 0 {
		return nil, fail(ErrNotFound, "key", "key not found: pass the key (sk-...) or its hash (token)")
	}
	return list[0], nil
}

// withLiveSpend replaces keys' spend with Redis's live counters where it has them.
func (s *Store) withLiveSpend(ctx context.Context, list []*keyObject) {
	var live liveFields
	for _, k := range list {
		live.add(scope{scopeKey, k.Token}, func(v float64) { k.Spend = v })
		for m := range k.ModelSpend {
			live.add(scope{scopeModel, modelID(k.Token, m)}, func(v float64) { k.ModelSpend[m] = v })
		}
	}
	s.setLive(ctx, live)
}

// nonNil makes a nil slice an empty one, for JSON [] and Postgres '{}'.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func nonNilMap(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}
