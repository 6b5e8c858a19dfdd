package notifications

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/fx"

	authapi "github.com/seamkit/seam/modules/auth/api"
	billingapi "github.com/seamkit/seam/modules/billing/api"
	notificationsapi "github.com/seamkit/seam/modules/notifications/api"
	notificationsdata "github.com/seamkit/seam/modules/notifications/data"
	notificationsdomain "github.com/seamkit/seam/modules/notifications/domain"
	"github.com/seamkit/seam/platform/app"
	"github.com/seamkit/seam/platform/bus"
	"github.com/seamkit/seam/platform/db"
	"github.com/seamkit/seam/platform/inbox"
	"github.com/seamkit/seam/platform/migrate"
	"github.com/seamkit/seam/platform/pgtest"
	sqlfs "github.com/seamkit/seam/sql"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// recordingSender remembers what it sent, and fails with err when set.
type recordingSender struct {
	sent []notificationsdomain.Message
	err  error
}

func (s *recordingSender) Channel() string { return SenderLog }

func (s *recordingSender) Send(_ context.Context, m notificationsdomain.Message) error {
	if s.err != nil {
		return s.err
	}
	s.sent = append(s.sent, m)
	return nil
}

type fixture struct {
	pool   *pgxpool.Pool
	sender *recordingSender
	h      *handlers
	repo   *notificationsdata.Repository
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	pool := pgtest.NewPool(t)
	logger := slog.New(slog.DiscardHandler)
	if err := migrate.Up(context.Background(), pool, Name, sqlfs.Migrations(Name), logger); err != nil {
		t.Fatal(err)
	}
	repo := notificationsdata.NewRepository(pool)
	sender := &recordingSender{}
	svc, err := notificationsdomain.NewService(repo, sender, logger)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{pool: pool, sender: sender, h: &handlers{svc: svc}, repo: repo}
}

// apply runs the handler for one event in its own transaction, committing when it succeeds.
func (f *fixture) apply(t *testing.T, m inbox.Message) error {
	t.Helper()
	ctx := context.Background()
	tx, err := f.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if err := f.h.handle(ctx, tx, m); err != nil {
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

func TestEventsBecomeMessages(t *testing.T) {
	f := newFixture(t)
	user, invoice := uuid.NewString(), uuid.NewString()
	at := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	events := []inbox.Message{
		event(t, authapi.SubjectUserRegistered, authapi.UserRegistered{UserID: user, Email: "alice@example.com", Role: "user", RegisteredAt: at}),
		event(t, billingapi.SubjectInvoiceCreated, billingapi.InvoiceCreated{InvoiceID: invoice, UserID: user, Email: "alice@example.com",
			AmountMinor: 1250, Currency: "EUR", Description: "Hosting", CreatedAt: at.Add(time.Minute)}),
		event(t, billingapi.SubjectPaymentFailed, billingapi.PaymentFailed{PaymentID: "p1", InvoiceID: invoice, UserID: user,
			Email: "alice@example.com", AmountMinor: 1250, Currency: "EUR", DeclineCode: "card_declined", FailedAt: at.Add(2 * time.Minute)}),
		event(t, billingapi.SubjectPaymentCompleted, billingapi.PaymentCompleted{PaymentID: "p2", InvoiceID: invoice, UserID: user,
			Email: "alice@example.com", AmountMinor: 1250, Currency: "EUR", PaidAt: at.Add(3 * time.Minute)}),
	}
	for _, m := range events {
		if err := f.apply(t, m); err != nil {
			t.Fatalf("%s: %v", m.Subject, err)
		}
	}
	got, err := f.repo.ListMessages(context.Background(), user, 10)
	if err != nil {
		t.Fatal(err)
	}
	wantTemplates := []string{notificationsapi.TemplatePaymentReceived, notificationsapi.TemplatePaymentFailed,
		notificationsapi.TemplateInvoiceCreated, notificationsapi.TemplateWelcome}
	if len(got) != len(wantTemplates) || len(f.sender.sent) != len(wantTemplates) {
		t.Fatalf("stored %d and sent %d messages, want %d", len(got), len(f.sender.sent), len(wantTemplates))
	}
	for i, m := range got {
		if m.Template != wantTemplates[i] || m.Status != notificationsapi.StatusSent || m.Recipient != "alice@example.com" ||
			m.Channel != SenderLog || m.EventID != events[len(events)-1-i].ID {
			t.Errorf("message %d = %+v", i, m)
		}
	}
	if want := "We received your payment of 12.50 EUR for invoice " + invoice + "."; !strings.HasPrefix(got[0].Body, want) {
		t.Errorf("payment received body = %q, want it to start %q", got[0].Body, want)
	}
	if !strings.Contains(got[3].Body, "alice@example.com") {
		t.Errorf("welcome body = %q", got[3].Body)
	}
}

func TestSameEventHandledTwiceGivesOneMessage(t *testing.T) {
	f := newFixture(t)
	user := uuid.NewString()
	m := event(t, authapi.SubjectUserRegistered, authapi.UserRegistered{UserID: user, Email: "bob@example.com", RegisteredAt: time.Now()})
	for range 2 {
		if err := f.apply(t, m); err != nil {
			t.Fatal(err)
		}
	}
	if got, _ := f.repo.ListMessages(context.Background(), user, 10); len(got) != 1 || len(f.sender.sent) != 1 {
		t.Fatalf("stored %d, sent %d; want 1 and 1", len(got), len(f.sender.sent))
	}
}

func TestSendFailureRollsBackForRedelivery(t *testing.T) {
	f := newFixture(t)
	f.sender.err = errors.New("mail server down")
	user := uuid.NewString()
	m := event(t, authapi.SubjectUserRegistered, authapi.UserRegistered{UserID: user, Email: "carol@example.com", RegisteredAt: time.Now()})
	err := f.apply(t, m)
	if err == nil || errors.Is(err, inbox.ErrPermanent) {
		t.Fatalf("err = %v, want a temporary error", err)
	}
	if got, _ := f.repo.ListMessages(context.Background(), user, 10); len(got) != 0 {
		t.Fatalf("a message survived the rollback: %+v", got)
	}
	f.sender.err = nil
	if err := f.apply(t, m); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.repo.ListMessages(context.Background(), user, 10); len(got) != 1 {
		t.Fatalf("after redelivery: %d messages, want 1", len(got))
	}
}

func TestUndeliverableMessageIsKeptAsFailed(t *testing.T) {
	f := newFixture(t)
	f.sender.err = errors.Join(notificationsdomain.ErrUndeliverable, errors.New("550 mailbox unavailable"))
	user := uuid.NewString()
	if err := f.apply(t, event(t, authapi.SubjectUserRegistered, authapi.UserRegistered{UserID: user, Email: "dan@example.com",
		RegisteredAt: time.Now()})); err != nil {
		t.Fatal(err)
	}
	got, _ := f.repo.ListMessages(context.Background(), user, 10)
	if len(got) != 1 || got[0].Status != notificationsapi.StatusFailed || got[0].SentAt != nil {
		t.Fatalf("messages = %+v", got)
	}
}

func TestBillingEventWithoutEmailUsesTheRegisteredAddress(t *testing.T) {
	f := newFixture(t)
	user := uuid.NewString()
	if err := f.apply(t, event(t, authapi.SubjectUserRegistered, authapi.UserRegistered{UserID: user, Email: "erin@example.com",
		RegisteredAt: time.Now()})); err != nil {
		t.Fatal(err)
	}
	if err := f.apply(t, event(t, billingapi.SubjectPaymentCompleted, billingapi.PaymentCompleted{InvoiceID: uuid.NewString(),
		UserID: user, AmountMinor: 500, Currency: "JPY", PaidAt: time.Now()})); err != nil {
		t.Fatal(err)
	}
	if last := f.sender.sent[len(f.sender.sent)-1]; last.Recipient != "erin@example.com" || !strings.Contains(last.Body, "500 JPY") {
		t.Fatalf("sent %+v", last)
	}
}

func TestUnusableEventsFailPermanently(t *testing.T) {
	f := newFixture(t)
	tests := map[string]inbox.Message{
		"not json":     {ID: uuid.NewString(), Subject: authapi.SubjectUserRegistered, Data: []byte("{")},
		"wrong types":  {ID: uuid.NewString(), Subject: billingapi.SubjectPaymentCompleted, Data: []byte(`{"amount_minor":"12.50"}`)},
		"unknown":      event(t, "billing.events.refund_issued", map[string]string{}),
		"no timestamp": event(t, authapi.SubjectUserRegistered, authapi.UserRegistered{UserID: uuid.NewString(), Email: "x@example.com"}),
		"bad user id":  event(t, authapi.SubjectUserRegistered, authapi.UserRegistered{UserID: "x", Email: "x@example.com", RegisteredAt: time.Now()}),
		"zero amount":  event(t, billingapi.SubjectInvoiceCreated, billingapi.InvoiceCreated{InvoiceID: uuid.NewString(), UserID: uuid.NewString(), Currency: "EUR", CreatedAt: time.Now()}),
		"bad currency": event(t, billingapi.SubjectPaymentFailed, billingapi.PaymentFailed{InvoiceID: uuid.NewString(), UserID: uuid.NewString(), AmountMinor: 1, Currency: "eu", FailedAt: time.Now()}),
		"bad invoice":  event(t, billingapi.SubjectPaymentCompleted, billingapi.PaymentCompleted{InvoiceID: "inv", UserID: uuid.NewString(), AmountMinor: 1, Currency: "EUR", PaidAt: time.Now()}),
	}
	for name, m := range tests {
		t.Run(name, func(t *testing.T) {
			if err := f.apply(t, m); !errors.Is(err, inbox.ErrPermanent) {
				t.Fatalf("err = %v, want a permanent failure", err)
			}
		})
	}
	if len(f.sender.sent) != 0 {
		t.Fatalf("sent %d messages for unusable events", len(f.sender.sent))
	}
}

func TestSubscriptions(t *testing.T) {
	subs := subscriptions(&handlers{})
	if len(subs) != 2 || subs[0].Name != "notifications-auth" || subs[0].Stream != "AUTH" ||
		subs[1].Name != "notifications-billing" || subs[1].Stream != "BILLING" || len(subs[1].Subjects) != 4 {
		t.Fatalf("subscriptions = %+v", subs)
	}
	for _, s := range subs {
		for _, subject := range s.Subjects {
			if !strings.HasPrefix(subject, strings.ToLower(s.Stream)+".events.") {
				t.Errorf("%s: subject %s is not on stream %s", s.Name, subject, s.Stream)
			}
		}
	}
}

func TestModuleGraph(t *testing.T) {
	logger := slog.New(slog.DiscardHandler)
	cfg := &app.Config{}
	err := fx.ValidateApp(
		fx.Supply(cfg, logger, db.New(db.Config{}, t.TempDir(), logger), bus.New(bus.Config{}, logger)),
		fx.Provide(app.NewConsumers, app.NewModulePools),
		Module.Options,
	)
	if err != nil {
		t.Fatal(err)
	}
}
