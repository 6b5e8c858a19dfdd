package reporting

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/fx"

	authapi "github.com/seamkit/seam/modules/auth/api"
	billingapi "github.com/seamkit/seam/modules/billing/api"
	reportingapi "github.com/seamkit/seam/modules/reporting/api"
	reportingdata "github.com/seamkit/seam/modules/reporting/data"
	reportingdomain "github.com/seamkit/seam/modules/reporting/domain"
	"github.com/seamkit/seam/platform/app"
	"github.com/seamkit/seam/platform/bus"
	"github.com/seamkit/seam/platform/db"
	"github.com/seamkit/seam/platform/inbox"
	"github.com/seamkit/seam/platform/migrate"
	"github.com/seamkit/seam/platform/pgtest"
	sqlfs "github.com/seamkit/seam/sql"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func newPool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool := pgtest.NewPool(t)
	if err := migrate.Up(context.Background(), pool, Name, sqlfs.Migrations(Name), slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	return pool
}

// apply runs the handler for m in its own transaction, committing when it succeeds.
func apply(t *testing.T, pool *pgxpool.Pool, m inbox.Message) error {
	t.Helper()
	ctx := context.Background()
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if err := handle(ctx, tx, m); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

func event(t *testing.T, subject string, payload any) inbox.Message {
	t.Helper()
	data, err := json.Marshal(payload)
	if err != nil {
		t.Fatal(err)
	}
	return inbox.Message{ID: uuid.NewString(), Subject: subject, Data: data, OccurredAt: time.Now()}
}

// history is a sequence of events over three days, some near midnight in other time zones.
func history(t *testing.T) []inbox.Message {
	t.Helper()
	cet := time.FixedZone("CET", 3600)
	day1 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	late := time.Date(2026, 3, 2, 0, 30, 0, 0, cet) // 2026-03-01 23:30 UTC
	day2 := time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)
	u1, u2, inv1, inv2, inv3 := uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString()
	return []inbox.Message{
		event(t, authapi.SubjectUserRegistered, authapi.UserRegistered{UserID: u1, Email: "a@example.com", RegisteredAt: day1}),
		event(t, authapi.SubjectUserRegistered, authapi.UserRegistered{UserID: u2, Email: "b@example.com", RegisteredAt: late}),
		event(t, billingapi.SubjectInvoiceCreated, billingapi.InvoiceCreated{InvoiceID: inv1, UserID: u1, AmountMinor: 1250, Currency: "EUR", CreatedAt: day1}),
		event(t, billingapi.SubjectInvoiceCreated, billingapi.InvoiceCreated{InvoiceID: inv2, UserID: u2, AmountMinor: 990, Currency: "USD", CreatedAt: late}),
		event(t, billingapi.SubjectInvoiceCreated, billingapi.InvoiceCreated{InvoiceID: inv3, UserID: u2, AmountMinor: 500, Currency: "JPY", CreatedAt: day2}),
		event(t, billingapi.SubjectPaymentFailed, billingapi.PaymentFailed{InvoiceID: inv2, UserID: u2, AmountMinor: 990, Currency: "USD", DeclineCode: "card_declined", FailedAt: late}),
		event(t, billingapi.SubjectPaymentCompleted, billingapi.PaymentCompleted{InvoiceID: inv1, UserID: u1, AmountMinor: 1250, Currency: "EUR", PaidAt: late}),
		event(t, billingapi.SubjectPaymentCompleted, billingapi.PaymentCompleted{InvoiceID: inv2, UserID: u2, AmountMinor: 990, Currency: "USD", PaidAt: day2}),
		event(t, billingapi.SubjectPaymentCompleted, billingapi.PaymentCompleted{InvoiceID: inv3, UserID: u2, AmountMinor: 500, Currency: "JPY", PaidAt: day2.Add(time.Hour)}),
	}
}

// everything reads the whole read model.
func everything(t *testing.T, pool *pgxpool.Pool) reportingdomain.Activity {
	t.Helper()
	act, err := reportingdata.NewRepository(pool).Activity(context.Background(),
		time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	return act
}

func TestEventsBuildTheSummary(t *testing.T) {
	pool := newPool(t)
	for _, m := range history(t) {
		if err := apply(t, pool, m); err != nil {
			t.Fatalf("%s: %v", m.Subject, err)
		}
	}
	sum, err := reportingdomain.NewService(reportingdata.NewRepository(pool)).Summary(context.Background(), "2026-03-01", "2026-03-02")
	if err != nil {
		t.Fatal(err)
	}
	want := reportingapi.Summary{
		From: "2026-03-01", To: "2026-03-02", Signups: 2,
		Invoices: []reportingapi.CurrencyCount{{Currency: "EUR", Count: 1, AmountMinor: 1250},
			{Currency: "JPY", Count: 1, AmountMinor: 500}, {Currency: "USD", Count: 1, AmountMinor: 990}},
		Revenue: []reportingapi.CurrencyRevenue{{Currency: "EUR", Payments: 1, AmountMinor: 1250},
			{Currency: "JPY", Payments: 1, AmountMinor: 500}, {Currency: "USD", Payments: 1, AmountMinor: 990}},
		FailedPayments: []reportingapi.CurrencyCount{{Currency: "USD", Count: 1, AmountMinor: 990}},
		Days: []reportingapi.Day{
			{Day: "2026-03-01", Signups: 2,
				Invoices: []reportingapi.CurrencyCount{{Currency: "EUR", Count: 1, AmountMinor: 1250},
					{Currency: "USD", Count: 1, AmountMinor: 990}},
				Revenue:        []reportingapi.CurrencyRevenue{{Currency: "EUR", Payments: 1, AmountMinor: 1250}},
				FailedPayments: []reportingapi.CurrencyCount{{Currency: "USD", Count: 1, AmountMinor: 990}}},
			{Day: "2026-03-02",
				Invoices: []reportingapi.CurrencyCount{{Currency: "JPY", Count: 1, AmountMinor: 500}},
				Revenue: []reportingapi.CurrencyRevenue{{Currency: "JPY", Payments: 1, AmountMinor: 500},
					{Currency: "USD", Payments: 1, AmountMinor: 990}},
				FailedPayments: []reportingapi.CurrencyCount{}},
		},
	}
	if diff := cmp.Diff(want, sum); diff != "" {
		t.Errorf("summary (-want +got):\n%s", diff)
	}
}

func TestReplayingTheEventsGivesIdenticalTables(t *testing.T) {
	events := history(t)
	first, replay := newPool(t), newPool(t)
	for _, m := range events {
		if err := apply(t, first, m); err != nil {
			t.Fatal(err)
		}
	}
	// A replay later, in another order (as two streams may interleave differently), gives the same tables.
	shuffled := append([]inbox.Message(nil), events...)
	rand.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	for _, m := range shuffled {
		if err := apply(t, replay, m); err != nil {
			t.Fatal(err)
		}
	}
	if diff := cmp.Diff(everything(t, first), everything(t, replay)); diff != "" {
		t.Fatalf("replayed tables differ (-first +replay):\n%s", diff)
	}
}

func TestFailedHandlerLeavesNoTrace(t *testing.T) {
	pool := newPool(t)
	ctx := context.Background()
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := handle(ctx, tx, history(t)[0]); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if act := everything(t, pool); len(act.Signups) != 0 {
		t.Fatalf("rolled-back signup counted: %+v", act)
	}
}

func TestUnusableEventsFailPermanently(t *testing.T) {
	pool := newPool(t)
	tests := map[string]inbox.Message{
		"not json":     {ID: uuid.NewString(), Subject: billingapi.SubjectInvoiceCreated, Data: []byte("nope")},
		"wrong types":  {ID: uuid.NewString(), Subject: billingapi.SubjectPaymentCompleted, Data: []byte(`{"amount_minor":"12.50"}`)},
		"bad time":     {ID: uuid.NewString(), Subject: authapi.SubjectUserRegistered, Data: []byte(`{"registered_at":"yesterday"}`)},
		"unknown":      event(t, "auth.events.user_deleted", map[string]string{}),
		"no timestamp": event(t, authapi.SubjectUserRegistered, authapi.UserRegistered{UserID: uuid.NewString()}),
		"bad currency": event(t, billingapi.SubjectInvoiceCreated, billingapi.InvoiceCreated{AmountMinor: 1, Currency: "Euro", CreatedAt: time.Now()}),
		"zero amount":  event(t, billingapi.SubjectPaymentFailed, billingapi.PaymentFailed{Currency: "EUR", FailedAt: time.Now()}),
	}
	for name, m := range tests {
		t.Run(name, func(t *testing.T) {
			if err := apply(t, pool, m); !errors.Is(err, inbox.ErrPermanent) {
				t.Fatalf("err = %v, want a permanent failure", err)
			}
		})
	}
	act := everything(t, pool)
	if len(act.Signups)+len(act.Invoices)+len(act.Revenue)+len(act.FailedPayments) != 0 {
		t.Fatalf("unusable events left rows: %+v", act)
	}
}

func TestSubscriptions(t *testing.T) {
	subs := subscriptions()
	if len(subs) != 2 || subs[0].Name != "reporting-auth" || subs[0].Stream != "AUTH" ||
		subs[1].Name != "reporting-billing" || subs[1].Stream != "BILLING" || len(subs[1].Subjects) != 3 {
		t.Fatalf("subscriptions = %+v", subs)
	}
}

func TestModuleGraph(t *testing.T) {
	logger := slog.New(slog.DiscardHandler)
	err := fx.ValidateApp(
		fx.Supply(&app.Config{}, logger, db.New(db.Config{}, t.TempDir(), logger), bus.New(bus.Config{}, logger)),
		fx.Provide(app.NewConsumers, app.NewModulePools),
		Module.Options,
	)
	if err != nil {
		t.Fatal(err)
	}
}
