package billingdata_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	authapi "github.com/seamkit/seam/modules/auth/api"
	billingapi "github.com/seamkit/seam/modules/billing/api"
	billingdata "github.com/seamkit/seam/modules/billing/data"
	"github.com/seamkit/seam/platform/migrate"
	"github.com/seamkit/seam/platform/pgtest"
	sqlfs "github.com/seamkit/seam/sql"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const (
	alice = "0190a000-0000-7000-8000-00000000a11c"
	bob   = "0190a000-0000-7000-8000-000000000b0b"
)

// newRepo returns a Repository on a fresh database migrated with billing's schema, and its pool.
func newRepo(t *testing.T) (*billingdata.Repository, *pgxpool.Pool) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: needs PostgreSQL")
	}
	pool := pgtest.NewPool(t)
	if err := migrate.Up(t.Context(), pool, billingdata.Schema, sqlfs.Migrations("billing"), discard()); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return billingdata.NewRepository(pool), pool
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// at is a fixed instant at microsecond precision, as PostgreSQL stores it.
func at(minute int) time.Time {
	return time.Date(2026, 3, 1, 12, minute, 0, 123456000, time.UTC)
}

func newInvoice(id, userID string, amount int64, created time.Time) billingapi.Invoice {
	return billingapi.Invoice{ID: id, UserID: userID, AmountMinor: amount, Currency: "EUR",
		Description: "consulting", Status: billingapi.StatusOpen, CreatedAt: created}
}

// outboxRow is one row of billing.outbox.
type outboxRow struct {
	Subject string
	Type    string
	Key     string
	Payload json.RawMessage
}

func outboxRows(t *testing.T, pool *pgxpool.Pool) []outboxRow {
	t.Helper()
	rows, err := pool.Query(t.Context(), `SELECT subject, event_type, aggregate_key, payload FROM billing.outbox ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []outboxRow
	for rows.Next() {
		var r outboxRow
		if err := rows.Scan(&r.Subject, &r.Type, &r.Key, &r.Payload); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func count(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(t.Context(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func(ctx context.Context) (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ok, err := cond(t.Context())
		if err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// fakeAuth knows alice and bob.
type fakeAuth struct{}

func (fakeAuth) VerifyToken(context.Context, string) (authapi.Identity, error) {
	return authapi.Identity{}, authapi.ErrInvalidToken
}

func (fakeAuth) GetUser(_ context.Context, id string) (authapi.User, error) {
	switch id {
	case alice:
		return authapi.User{ID: alice, Email: "alice@example.com", Role: "user"}, nil
	case bob:
		return authapi.User{ID: bob, Email: "bob@example.com", Role: "user"}, nil
	}
	return authapi.User{}, authapi.ErrUserNotFound
}
