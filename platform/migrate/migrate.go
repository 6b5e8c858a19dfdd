// Package migrate applies a module's goose migrations, after the platform's own tables (outbox, inbox),
// into the module's own PostgreSQL schema, one process at a time.
package migrate

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"log/slog"
	"path"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
)

// ErrInvalidSchema is returned for a schema name that is not a plain lower-case identifier.
var ErrInvalidSchema = errors.New("migrate: invalid schema name")

const (
	// PlatformVersionTable is the table, in each module's schema, recording the platform migrations applied.
	PlatformVersionTable = "seam_platform_version"
	// ModuleVersionTable is the table, in each module's schema, recording the module's migrations applied.
	ModuleVersionTable = goose.DefaultTablename
	// schemaPlaceholder stands for the schema name in the platform migrations.
	schemaPlaceholder = "{{schema}}"
	// maxIdentifierLength is PostgreSQL's limit on identifiers (NAMEDATALEN-1).
	maxIdentifierLength = 63
)

// platformSQL holds the platform migrations: NNNNN_name.sql files in which schemaPlaceholder stands for
// the schema. A later platform version is a new file with the next number.
//
//go:embed platformsql/*.sql
var platformSQL embed.FS

var schemaPattern = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// Up creates schema `schema` if missing (which needs CREATE on the database; a role owning the existing
// schema needs no more than that ownership), then applies the platform tables (version table
// <schema>.seam_platform_version), then the module's goose migrations from fsys (*.sql files in goose
// format at its root; nil or empty means none) with version table <schema>.goose_db_version. Concurrent
// calls for the same schema, from any process, are serialised with a PostgreSQL advisory lock; the pool
// must allow at least two connections, as one holds the lock while another migrates. An error naming the
// failing file is returned when a migration fails; that migration is rolled back unless it opted out of
// its transaction.
func Up(ctx context.Context, pool *pgxpool.Pool, schema string, fsys fs.FS, logger *slog.Logger) error {
	if err := ValidateSchema(schema); err != nil {
		return err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With(slog.String("schema", schema))
	if pool == nil {
		return fmt.Errorf("migrate %s: no pool", schema)
	}
	if n := pool.Config().MaxConns; n < 2 {
		return fmt.Errorf("migrate %s: the pool allows %d connection(s); it needs 2, one of them holding the lock", schema, n)
	}
	platform, platformNames, err := platformMigrations(schema)
	if err != nil {
		return err
	}
	unlock, err := lock(ctx, pool, schema)
	if err != nil {
		return err
	}
	defer unlock()

	var exists bool
	if err := pool.QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_namespace WHERE nspname = $1)", schema).Scan(&exists); err != nil {
		return fmt.Errorf("migrate %s: look up schema: %w", schema, err)
	}
	if !exists {
		if _, err := pool.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize()); err != nil {
			return fmt.Errorf("migrate %s: create schema: %w", schema, err)
		}
	}
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	if err := apply(ctx, db, schema, PlatformVersionTable, nil, platformNames,
		logger.With(slog.String("migrations", "platform")), goose.WithGoMigrations(platform...)); err != nil {
		return err
	}
	if fsys == nil {
		return nil
	}
	return apply(ctx, db, schema, ModuleVersionTable, fsys, nil, logger.With(slog.String("migrations", "module")))
}

// ValidateSchema checks that schema is a plain lower-case identifier, as module names (and so schema names)
// must be; the error wraps ErrInvalidSchema.
func ValidateSchema(schema string) error {
	if !schemaPattern.MatchString(schema) || len(schema) > maxIdentifierLength {
		return fmt.Errorf("%w %q: want a lower-case letter then lower-case letters, digits or '_', at most %d bytes",
			ErrInvalidSchema, schema, maxIdentifierLength)
	}
	return nil
}

// lock takes the advisory lock for migrating schema on a connection of its own, waiting as long as ctx
// allows; the returned function releases it. Should the unlock fail, the connection is closed, which
// releases the lock with the session.
func lock(ctx context.Context, pool *pgxpool.Pool, schema string) (func(), error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrate %s: acquire lock connection: %w", schema, err)
	}
	key := lockKey(schema)
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", key); err != nil {
		conn.Release()
		return nil, fmt.Errorf("migrate %s: take migration lock: %w", schema, err)
	}
	return func() {
		ctx := context.WithoutCancel(ctx)
		if _, err := conn.Exec(ctx, "SELECT pg_advisory_unlock($1)", key); err != nil {
			_ = conn.Conn().Close(ctx)
		}
		conn.Release()
	}, nil
}

// lockKey is the advisory lock key for migrating schema.
func lockKey(schema string) int64 {
	h := fnv.New64a()
	h.Write([]byte("seam/migrate/" + schema))
	return int64(h.Sum64())
}

// platformMigrations builds the platform migrations for schema from the embedded files, and returns the
// file name of each version.
func platformMigrations(schema string) ([]*goose.Migration, map[int64]string, error) {
	files, err := fs.Glob(platformSQL, "platformsql/*.sql")
	if err != nil {
		return nil, nil, fmt.Errorf("migrate: platform migrations: %w", err)
	}
	migrations := make([]*goose.Migration, 0, len(files))
	names := make(map[int64]string, len(files))
	for _, file := range files {
		version, err := goose.NumericComponent(file)
		if err != nil {
			return nil, nil, fmt.Errorf("migrate: platform migration %s: %w", file, err)
		}
		b, err := platformSQL.ReadFile(file)
		if err != nil {
			return nil, nil, fmt.Errorf("migrate: platform migration %s: %w", file, err)
		}
		name := path.Base(file)
		names[version] = name
		query := strings.ReplaceAll(string(b), schemaPlaceholder, pgx.Identifier{schema}.Sanitize())
		migrations = append(migrations, goose.NewGoMigration(version, &goose.GoFunc{
			RunTx: func(ctx context.Context, tx *sql.Tx) error {
				if _, err := tx.ExecContext(ctx, query); err != nil {
					return fmt.Errorf("%s: %w", name, err)
				}
				return nil
			},
		}, nil))
	}
	return migrations, names, nil
}

// apply runs the pending migrations of one goose provider whose version table is schema.table. names
// gives the source of migrations that have no file of their own (Go migrations).
func apply(ctx context.Context, db *sql.DB, schema, table string, fsys fs.FS, names map[int64]string,
	logger *slog.Logger, opts ...goose.ProviderOption) error {
	opts = append(opts,
		goose.WithTableName(schema+"."+table),
		goose.WithDisableGlobalRegistry(true),
	)
	p, err := goose.NewProvider(goose.DialectPostgres, db, fsys, opts...)
	if errors.Is(err, goose.ErrNoMigrations) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("migrate %s: %w", schema, err)
	}
	source := func(s *goose.Source) string {
		if s.Path != "" {
			return path.Base(s.Path)
		}
		return names[s.Version]
	}
	results, err := p.Up(ctx)
	var partial *goose.PartialError
	if errors.As(err, &partial) {
		results = partial.Applied
	}
	for _, r := range results {
		logger.Info("applied migration", slog.Int64("version", r.Source.Version),
			slog.String("source", source(r.Source)), slog.Duration("duration", r.Duration))
	}
	switch {
	case partial != nil:
		return fmt.Errorf("migrate %s: %s: %w", schema, source(partial.Failed.Source), err)
	case err != nil:
		return fmt.Errorf("migrate %s: %w", schema, err)
	}
	return nil
}
