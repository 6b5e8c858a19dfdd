package outbox_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/seamkit/seam/platform/bus"
	"github.com/seamkit/seam/platform/migrate"
	"github.com/seamkit/seam/platform/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// newPool returns a pool on a fresh, migrated database holding schema with the platform's outbox and inbox
// tables.
func newPool(t *testing.T, schema string) *pgxpool.Pool {
	t.Helper()
	pool := pgtest.NewPool(t)
	if err := migrate.Up(t.Context(), pool, schema, nil, testLogger(t)); err != nil {
		t.Fatal(err)
	}
	return pool
}

// newBus starts an embedded bus on a free port with a temporary store, stopped when the test ends.
func newBus(t *testing.T) *bus.Bus {
	t.Helper()
	var cfg bus.Config
	cfg.SetDefaults()
	cfg.Port = -1
	cfg.StoreDir = t.TempDir()
	b, err := bus.Start(t.Context(), cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Close(context.Background()); err != nil {
			t.Errorf("close bus: %v", err)
		}
	})
	return b
}

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// eventually polls cond every 10 ms until it holds, failing the test after timeout.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// eventuallyAllSent waits until no event of the outbox is unsent: a relay marks its batch sent after the
// stream has it, so the marks may trail the stream briefly.
func eventuallyAllSent(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	eventually(t, 10*time.Second, "every event marked sent", func() bool {
		var unsent int
		if err := pool.QueryRow(t.Context(), `SELECT count(*) FROM billing.outbox WHERE sent_at IS NULL`).Scan(&unsent); err != nil {
			t.Fatal(err)
		}
		return unsent == 0
	})
}
