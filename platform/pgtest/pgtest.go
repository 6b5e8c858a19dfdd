// Package pgtest gives tests a fresh, empty PostgreSQL database each, on one throwaway cluster per test
// binary that is started on first use and removed when the tests end.
//
// Use it from the package's TestMain:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
// The cluster (pgserver, Ephemeral) lives in a directory under os.TempDir() and listens on a free
// loopback port. Main stops it and removes the directory after m.Run, whatever the tests' outcome. A test
// binary that dies without returning from m.Run (a panicking test, a -timeout, a kill) cannot run that
// cleanup: on Linux the kernel then kills the server with the binary, and the next test binary that
// starts a cluster removes directories left by binaries that are gone.
package pgtest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/seamkit/seam/platform/pgserver"
)

const (
	// dirPrefix names the temp directories holding clusters.
	dirPrefix = "seam-pgtest-"
	// ownerFile, in such a directory, holds the pid of the test binary that made it.
	ownerFile = "owner.pid"
	// timeout bounds starting, stopping and each administrative statement.
	timeout = 2 * time.Minute
)

// shared is the test binary's cluster.
var shared struct {
	mu       sync.Mutex
	inMain   bool
	started  bool
	startErr error
	dir      string
	server   *pgserver.Server
	admin    *pgxpool.Pool
}

// Main runs the package's tests, then stops and removes the cluster if a test started one, and exits
// with the tests' status (or 1 when the tests passed but the cleanup failed).
func Main(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) (code int) {
	shared.mu.Lock()
	shared.inMain = true
	shared.mu.Unlock()
	defer func() {
		if err := shutdown(); err != nil {
			fmt.Fprintf(os.Stderr, "pgtest: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
	}()
	return m.Run()
}

// NewDatabase creates a fresh, empty database on the shared cluster, drops it when the test ends and
// returns its superuser URL. It skips the test under `go test -short`.
func NewDatabase(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("pgtest: needs a PostgreSQL server; skipped under -short")
	}
	server, admin, err := cluster()
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	name := "test_" + strings.ToLower(rand.Text())
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: drop database %s: %v", name, err)
		}
	})
	return server.URL(name)
}

// NewPool is NewDatabase with a pool on the new database, closed when the test ends.
func NewPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	url := NewDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatalf("pgtest: open pool: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// cluster starts the shared cluster on first use and returns it; a failed start is reported to every
// later caller without retrying.
func cluster() (*pgserver.Server, *pgxpool.Pool, error) {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if !shared.inMain {
		return nil, nil, errors.New("call pgtest.Main(m) from the package's TestMain, so the cluster is stopped after the tests")
	}
	if !shared.started {
		shared.started = true
		shared.startErr = startCluster()
	}
	return shared.server, shared.admin, shared.startErr
}

// startCluster fills shared; it is called with shared.mu held.
func startCluster() error {
	removeAbandoned()
	dir, err := os.MkdirTemp("", dirPrefix)
	if err != nil {
		return fmt.Errorf("cluster directory: %w", err)
	}
	shared.dir = dir
	// The server may run as another OS user (when tests run as root): let it reach the cluster directory.
	if err := os.Chmod(dir, 0o755); err != nil {
		return fmt.Errorf("cluster directory: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		return fmt.Errorf("cluster directory: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	server, err := pgserver.Start(ctx, pgserver.Options{
		Dir:       filepath.Join(dir, "cluster"),
		Ephemeral: true,
		Logger:    slog.New(slog.DiscardHandler),
	})
	if err != nil {
		return err
	}
	shared.server = server
	admin, err := pgxpool.New(ctx, server.URL("postgres"))
	if err != nil {
		return fmt.Errorf("admin pool: %w", err)
	}
	shared.admin = admin
	return nil
}

// shutdown closes the admin pool, stops the cluster and removes its directory, if they were made.
func shutdown() error {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.admin != nil {
		shared.admin.Close()
	}
	var errs []error
	if shared.server != nil {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		if err := shared.server.Stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop cluster: %w", err))
		}
	}
	if shared.dir != "" {
		if err := os.RemoveAll(shared.dir); err != nil {
			errs = append(errs, fmt.Errorf("remove cluster directory: %w", err))
		}
	}
	return errors.Join(errs...)
}

// removeAbandoned removes cluster directories whose test binary and server are both gone.
func removeAbandoned() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), dirPrefix+"*"))
	for _, dir := range dirs {
		owner := pidIn(filepath.Join(dir, ownerFile))
		if owner == 0 || alive(owner) || alive(pidIn(filepath.Join(dir, "cluster", "data", "postmaster.pid"))) {
			continue
		}
		_ = os.RemoveAll(dir)
	}
}

// pidIn returns the pid on the first line of file, or 0.
func pidIn(file string) int {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, _ := strconv.Atoi(strings.TrimSpace(first))
	return pid
}

// alive reports whether process pid exists (signal 0 checks without sending anything).
func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
