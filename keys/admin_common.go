package keys

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
)

// The steps the admin handlers for keys, teams, users and end users share: one scope's
// columns turned into an insert or an update, its row locked, its spend counter reset.

// fieldSet is the request fields of one kind of scope (teamFields, userFields,
// customerFields): apply sets their columns and returns a spend to reset, if any.
type fieldSet interface {
	apply(cols *columns, p *problems, now time.Time) *int64
}

// applyFields sets f's columns on cols and returns the spend to reset, or every problem
// found in f.
func applyFields(f fieldSet, cols *columns) (*int64, error) {
	var p problems
	spend := f.apply(cols, &p, time.Now().UTC())
	return spend, p.err()
}

// insertRow inserts cols into table; a row that already exists is the error conflict.
func insertRow(ctx context.Context, tx pgx.Tx, cols *columns, table string, conflict error) error {
	sql, args := cols.insert(table)
	if _, err := tx.Exec(ctx, sql, args...); err != nil {
		if e, ok := errors.AsType[*Error](pgError(err)); ok && e.Kind == ErrConflict {
			return conflict
		}
		return err
	}
	return nil
}

// updateRow writes cols to the row of table whose key column is id; with no columns set
// it writes nothing.
func updateRow(ctx context.Context, tx pgx.Tx, cols *columns, table, key string, id any) error {
	if sql, args, ok := cols.update(table, key, id); ok {
		if _, err := tx.Exec(ctx, sql, args...); err != nil {
			return err
		}
	}
	return nil
}

// resetSpend records that sc's spend counter is to be set to spend, when there is one.
func (c *changes) resetSpend(sc scope, spend *int64) {
	if spend != nil {
		c.spend[sc] = *spend
	}
}

// lockRow locks the row of table whose key column is id, or returns notFound.
func lockRow(ctx context.Context, tx pgx.Tx, table, key, id string, notFound error) error {
	var found string
	err := tx.QueryRow(ctx, `SELECT `+key+` FROM `+table+` WHERE `+key+` = $1 FOR UPDATE`, id).Scan(&found)
	if errors.Is(err, pgx.ErrNoRows) {
		return notFound
	}
	return err
}

// deleteOwners deletes the teams or users ids (rows of table, whose key column is key;
// kind is their scope) with their keys and team memberships. lock locks one of them, or
// says it does not exist.
func deleteOwners(ctx context.Context, tx pgx.Tx, c *changes, table, key, kind string, ids []string,
	lock func(context.Context, pgx.Tx, string) error) error {
	for _, id := range ids {
		if err := lock(ctx, tx, id); err != nil {
			return err
		}
	}
	tokens, err := keyTokens(ctx, tx, key+` = ANY($1)`, ids)
	if err != nil {
		return err
	}
	if err := deleteKeyRows(ctx, tx, c, tokens); err != nil {
		return err
	}
	rows, err := tx.Query(ctx, `DELETE FROM tollgate_team_members WHERE `+key+` = ANY($1) RETURNING team_id, user_id`, ids)
	if err != nil {
		return err
	}
	var team, user string
	if _, err := pgx.ForEachRow(rows, []any{&team, &user}, func() error {
		c.goneScopes = append(c.goneScopes, scope{scopeMember, memberID(team, user)})
		return nil
	}); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `DELETE FROM `+table+` WHERE `+key+` = ANY($1)`, ids); err != nil {
		return err
	}
	for _, id := range ids {
		c.goneScopes = append(c.goneScopes, scope{kind, id})
	}
	return nil
}

// liveFields are response fields that show a scope's spend, each with the scope whose
// live Redis counter replaces it (Postgres lags behind by a flush).
type liveFields struct {
	scopes []scope
	sets   []func(dollars float64)
}

func (l *liveFields) add(sc scope, set func(dollars float64)) {
	l.scopes = append(l.scopes, sc)
	l.sets = append(l.sets, set)
}

// setLive sets each of live's fields whose scope has a live counter.
func (s *Store) setLive(ctx context.Context, live liveFields) {
	spend := s.liveSpend(ctx, live.scopes)
	for i, sc := range live.scopes {
		if v, ok := spend[sc]; ok {
			live.sets[i](dollars(v))
		}
	}
}
