// Package cluster runs what the database-backed benchmarks need: one durable local PostgreSQL server (the
// settings Seam runs its own with, fsync on) whose databases the benchmarks create, Seam's binaries built
// from the repository, and Seam deployments (the monolith, or every module extracted behind the monolith as
// gateway) started the way test/deploy starts them, plus a small HTTP client to seed them.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/seamkit/seam/platform/pgserver"
	"github.com/seamkit/seam/test/bench/proc"
)

// Postgres is the benchmarks' PostgreSQL server.
type Postgres struct {
	srv   *pgserver.Server
	admin *pgxpool.Pool
	dir   string
	// statements is whether the server counts statements (pg_stat_statements).
	statements bool
	// Version is the server's version string.
	Version string
}

// pgTimeout bounds starting and stopping the server and each administrative statement.
const pgTimeout = 2 * time.Minute

// StartPostgres starts (or, when a killed run left one running there, adopts) a durable cluster in dir:
// Seam's own settings for a local server, fsync and synchronous commits on.
func StartPostgres(ctx context.Context, dir string) (*Postgres, error) {
	ctx, cancel := context.WithTimeout(ctx, pgTimeout)
	defer cancel()
	srv, err := pgserver.Start(ctx, pgserver.Options{Dir: dir, Preload: []string{statementsExtension}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return nil, fmt.Errorf("cluster: start PostgreSQL: %w", err)
	}
	p := &Postgres{srv: srv, dir: dir}
	if p.admin, err = pgxpool.New(ctx, srv.URL("postgres")); err != nil {
		_ = p.Stop()
		return nil, fmt.Errorf("cluster: admin pool: %w", err)
	}
	if err := p.admin.QueryRow(ctx, "SELECT version()").Scan(&p.Version); err != nil {
		_ = p.Stop()
		return nil, fmt.Errorf("cluster: server version: %w", err)
	}
	if short, _, ok := strings.Cut(p.Version, " on "); ok {
		p.Version = short
	}
	if slices.Contains(srv.Preloaded(), statementsExtension) {
		var loaded string
		// A server a killed run left running may have been started without the library: count only if loaded.
		if err := p.admin.QueryRow(ctx, "SHOW shared_preload_libraries").Scan(&loaded); err == nil &&
			slices.Contains(strings.Split(loaded, ","), statementsExtension) {
			if _, err := p.admin.Exec(ctx, "CREATE EXTENSION IF NOT EXISTS "+statementsExtension); err != nil {
				_ = p.Stop()
				return nil, fmt.Errorf("cluster: %s: %w", statementsExtension, err)
			}
			p.statements = true
		}
	}
	return p, nil
}

// statementsExtension is the extension that counts each statement's executions, pg_stat_statements.
const statementsExtension = "pg_stat_statements"

// Statement is one statement's executions in one database since the last ResetStatements, as
// pg_stat_statements counts them (statements differing only in their constants are one).
type Statement struct {
	// Query is its text, constants replaced by $n.
	Query string
	// Calls is how many times it ran; Exec is the time spent executing it, in all.
	Calls int64
	Exec  time.Duration
}

// ResetStatements forgets every statement counted so far, in every database.
func (p *Postgres) ResetStatements(ctx context.Context) error {
	if !p.statements {
		return nil
	}
	if _, err := p.admin.Exec(ctx, "SELECT pg_stat_statements_reset()"); err != nil {
		return fmt.Errorf("cluster: reset statements: %w", err)
	}
	return nil
}

// Statements lists database db's statements since the last ResetStatements; nil when the server does not
// count statements.
func (p *Postgres) Statements(ctx context.Context, db string) ([]Statement, error) {
	if !p.statements {
		return nil, nil
	}
	rows, err := p.admin.Query(ctx, `SELECT s.query, s.calls, s.total_exec_time
FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = $1`, db)
	if err != nil {
		return nil, fmt.Errorf("cluster: statements of %s: %w", db, err)
	}
	stmts, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Statement, error) {
		var st Statement
		var ms float64
		err := row.Scan(&st.Query, &st.Calls, &ms)
		st.Exec = time.Duration(ms * float64(time.Millisecond))
		return st, err
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: statements of %s: %w", db, err)
	}
	return stmts, nil
}

// Stop stops the server.
func (p *Postgres) Stop() error {
	if p.admin != nil {
		p.admin.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), pgTimeout)
	defer cancel()
	if err := p.srv.Stop(ctx); err != nil {
		return fmt.Errorf("cluster: stop PostgreSQL: %w", err)
	}
	return nil
}

// CreateDatabase drops database name if a previous run left it, creates it empty and returns the
// superuser's URL for it.
func (p *Postgres) CreateDatabase(ctx context.Context, name string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, pgTimeout)
	defer cancel()
	id := pgx.Identifier{name}.Sanitize()
	if _, err := p.admin.Exec(ctx, "DROP DATABASE IF EXISTS "+id+" WITH (FORCE)"); err != nil {
		return "", fmt.Errorf("cluster: drop database %s: %w", name, err)
	}
	if _, err := p.admin.Exec(ctx, "CREATE DATABASE "+id); err != nil {
		return "", fmt.Errorf("cluster: create database %s: %w", name, err)
	}
	return p.srv.URL(name), nil
}

// PIDs are the server's processes now: the postmaster and its children (backends, writers, ...).
func (p *Postgres) PIDs() []int {
	raw, err := os.ReadFile(filepath.Join(p.dir, "data", "postmaster.pid"))
	if err != nil {
		return nil
	}
	first, _, _ := strings.Cut(string(raw), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil {
		return nil
	}
	return proc.Tree(pid)
}

// ClientBinary finds one of the installed PostgreSQL client programs (e.g. pgbench): in $PATH, else in the
// highest /usr/lib/postgresql/<version>/bin.
func ClientBinary(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/" + name)
	slices.SortFunc(matches, func(a, b string) int {
		va, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(a))))
		vb, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(b))))
		return va - vb
	})
	if len(matches) == 0 {
		return "", errors.New("cluster: " + name + " not found in $PATH or /usr/lib/postgresql/*/bin")
	}
	return matches[len(matches)-1], nil
}
