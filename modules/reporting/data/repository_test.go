package reportingdata_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	reportingdata "github.com/seamkit/seam/modules/reporting/data"
	reportingdomain "github.com/seamkit/seam/modules/reporting/domain"
	"github.com/seamkit/seam/platform/migrate"
	"github.com/seamkit/seam/platform/pgtest"
	sqlfs "github.com/seamkit/seam/sql"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func newPool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool := pgtest.NewPool(t)
	if err := migrate.Up(context.Background(), pool, "reporting", sqlfs.Migrations("reporting"), slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	return pool
}

func date(d int) time.Time { return time.Date(2026, 3, d, 0, 0, 0, 0, time.UTC) }

func TestAddsAccumulatePerDayAndCurrency(t *testing.T) {
	ctx := context.Background()
	repo := reportingdata.NewRepository(newPool(t))
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(repo.AddSignup(ctx, date(1)))
	must(repo.AddSignup(ctx, date(1)))
	must(repo.AddSignup(ctx, date(3)))
	must(repo.AddSignup(ctx, date(9)))
	must(repo.AddInvoice(ctx, date(1), "EUR", 1250))
	must(repo.AddInvoice(ctx, date(1), "EUR", 750))
	must(repo.AddInvoice(ctx, date(1), "USD", 990))
	must(repo.AddPayment(ctx, date(2), "EUR", 1250))
	must(repo.AddPayment(ctx, date(2), "EUR", 100))
	must(repo.AddFailedPayment(ctx, date(3), "JPY", 500))
	must(repo.AddFailedPayment(ctx, date(10), "JPY", 500))

	got, err := repo.Activity(ctx, date(1), date(3))
	if err != nil {
		t.Fatal(err)
	}
	want := reportingdomain.Activity{
		Signups:        []reportingdomain.DayCount{{Day: date(1), Count: 2}, {Day: date(3), Count: 1}},
		Invoices:       []reportingdomain.DayAmount{{Day: date(1), Currency: "EUR", Count: 2, AmountMinor: 2000}, {Day: date(1), Currency: "USD", Count: 1, AmountMinor: 990}},
		Revenue:        []reportingdomain.DayAmount{{Day: date(2), Currency: "EUR", Count: 2, AmountMinor: 1350}},
		FailedPayments: []reportingdomain.DayAmount{{Day: date(3), Currency: "JPY", Count: 1, AmountMinor: 500}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("activity (-want +got):\n%s", diff)
	}
	empty, err := repo.Activity(ctx, date(4), date(8))
	if err != nil || len(empty.Signups)+len(empty.Invoices)+len(empty.Revenue)+len(empty.FailedPayments) != 0 {
		t.Errorf("empty range: %+v, %v", empty, err)
	}
}

func TestCurrencyConstraint(t *testing.T) {
	ctx := context.Background()
	repo := reportingdata.NewRepository(newPool(t))
	for name, add := range map[string]func() error{
		"invoice": func() error { return repo.AddInvoice(ctx, date(1), "eur", 1) },
		"payment": func() error { return repo.AddPayment(ctx, date(1), "EURO", 1) },
		"failed":  func() error { return repo.AddFailedPayment(ctx, date(1), "", 1) },
	} {
		var pgErr *pgconn.PgError
		if err := add(); !errors.As(err, &pgErr) || pgErr.Code != "23514" {
			t.Errorf("%s: err = %v, want a check violation", name, err)
		}
	}
}

func TestInTxRollsBackWithTheTransaction(t *testing.T) {
	ctx := context.Background()
	pool := newPool(t)
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	inTx := reportingdata.InTx(tx)
	if err := inTx.AddSignup(ctx, date(1)); err != nil {
		t.Fatal(err)
	}
	if err := inTx.AddPayment(ctx, date(1), "EUR", 5); err != nil {
		t.Fatal(err)
	}
	if act, err := inTx.Activity(ctx, date(1), date(1)); err != nil || len(act.Signups) != 1 || len(act.Revenue) != 1 {
		t.Fatalf("inside the transaction: %+v, %v", act, err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	act, err := reportingdata.NewRepository(pool).Activity(ctx, date(1), date(1))
	if err != nil || len(act.Signups) != 0 || len(act.Revenue) != 0 {
		t.Fatalf("after rollback: %+v, %v", act, err)
	}
}
