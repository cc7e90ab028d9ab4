// Package migrations holds tollgate's Postgres schema as numbered SQL files and applies
// the ones a database lacks. The files are plain SQL so operators can read and review
// them; `tollgate serve` and `tollgate migrate` apply them at start.
package migrations

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

//go:embed *.sql
var files embed.FS

// lockID serialises migrations across replicas starting at once (pg_advisory_xact_lock).
const lockID = 7_461_636_115

// Apply runs, in file-name order, every migration not yet recorded in
// tollgate_schema_migrations, each in its own transaction with its record. Replicas
// starting together wait for each other on an advisory lock, so each file runs once.
func Apply(ctx context.Context, pool *pgxpool.Pool) (applied []string, err error) {
	names, err := fs.Glob(files, "*.sql")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	if _, err := pool.Exec(ctx, `CREATE TABLE IF NOT EXISTS tollgate_schema_migrations (
		version    text PRIMARY KEY,
		applied_at timestamptz NOT NULL DEFAULT now()
	)`); err != nil {
		return nil, fmt.Errorf("migrations: %w", err)
	}
	for _, name := range names {
		version := strings.TrimSuffix(name, ".sql")
		sql, err := files.ReadFile(name)
		if err != nil {
			return applied, err
		}
		ran, err := applyOne(ctx, pool, version, string(sql))
		if err != nil {
			return applied, fmt.Errorf("migration %s: %w", name, err)
		}
		if ran {
			applied = append(applied, version)
		}
	}
	return applied, nil
}

func applyOne(ctx context.Context, pool *pgxpool.Pool, version, sql string) (ran bool, err error) {
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockID); err != nil {
			return err
		}
		var done bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM tollgate_schema_migrations WHERE version = $1)`, version).Scan(&done); err != nil {
			return err
		}
		if done {
			return nil
		}
		if _, err := tx.Exec(ctx, sql); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO tollgate_schema_migrations (version) VALUES ($1)`, version)
		ran = err == nil
		return err
	})
	return ran, err
}
