package notificationsdomain

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	authapi "github.com/seamkit/seam/modules/auth/api"
	billingapi "github.com/seamkit/seam/modules/billing/api"
	notificationsapi "github.com/seamkit/seam/modules/notifications/api"
	"github.com/seamkit/seam/platform/errs"
)

// fakeStore keeps recipients and messages in maps, as the transaction would.
type fakeStore struct {
	recipients map[string]Recipient
	messages   map[string]Message // by event id
}

func newFakeStore() *fakeStore {
	return &fakeStore{recipients: map[string]Recipient{}, messages: map[string]Message{}}
}

func (f *fakeStore) SaveRecipient(_ context.Context, r Recipient) error {
	if old, ok := f.recipients[r.UserID]; !ok || !old.UpdatedAt.After(r.UpdatedAt) {
		f.recipients[r.UserID] = r
	}
	return nil
}

func (f *fakeStore) Recipient(_ context.Context, userID string) (Recipient, error) {
	r, ok := f.recipients[userID]
	if !ok {
		return Recipient{}, ErrRecipientNotFound
	}
	return r, nil
}

func (f *fakeStore) InsertMessage(_ context.Context, m Message) (bool, error) {
	if _, ok := f.messages[m.EventID]; ok {
		return false, nil
	}
	f.messages[m.EventID] = m
	return true, nil
}

func (f *fakeStore) MarkFailed(_ context.Context, id string) error {
	for k, m := range f.messages {
		if m.ID == id {
			m.Status, m.SentAt = notificationsapi.StatusFailed, nil
			f.messages[k] = m
			return nil
		}
	}
	return errors.New("no such message")
}

func (f *fakeStore) ListMessages(_ context.Context, userID string, limit int) ([]Message, error) {
	var out []Message
	for _, m := range f.messages {
		if m.UserID == userID && len(out) < limit {
			out = append(out, m)
		}
	}
	return out, nil
}

// fakeSender records what it sends and fails with err when set.
type fakeSender struct {
	sent []Message
	err  error
}

func (f *fakeSender) Channel() string { return "log" }

func (f *fakeSender) Send(_ context.Context, m Message) error {
	if f.err != nil {
		return f.err
	}
	f.sent = append(f.sent, m)
	return nil
}

var (
	now       = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	userID    = "3b241101-e2bb-4255-8caf-4136c566a962"
	invoiceID = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
	eventID   = "16fd2706-8baf-433b-82eb-8c7fada847da"
)

func newTestService(t *testing.T, store *fakeStore, sender Sender) *Service {
	t.Helper()
	s, err := NewService(store, sender, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	s.now = func() time.Time { return now }
	return s
}

func paymentCompleted() billingapi.PaymentCompleted {
	return billingapi.PaymentCompleted{PaymentID: "p1", InvoiceID: invoiceID, UserID: userID, Email: "alice@example.com",
		AmountMinor: 1250, Currency: "EUR", PaidAt: now.Add(-time.Minute)}
}

func TestDeliverPaymentReceived(t *testing.T) {
	store, sender := newFakeStore(), &fakeSender{}
	s := newTestService(t, store, sender)
	if err := s.Deliver(context.Background(), store, PaymentReceivedNotice(eventID, paymentCompleted())); err != nil {
		t.Fatal(err)
	}
	sentAt := now
	want := Message{
		ID:        MessageID(eventID),
		UserID:    userID,
		Recipient: "alice@example.com",
		Template:  notificationsapi.TemplatePaymentReceived,
		Subject:   "Payment received: 12.50 EUR",
		Body:      "We received your payment of 12.50 EUR for invoice " + invoiceID + ".\n\nThank you.",
		EventID:   eventID,
		Channel:   "log",
		Status:    notificationsapi.StatusSent,
		CreatedAt: now,
		SentAt:    &sentAt,
	}
	if diff := cmp.Diff(want, store.messages[eventID]); diff != "" {
		t.Errorf("stored message (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]Message{want}, sender.sent); diff != "" {
		t.Errorf("sent (-want +got):\n%s", diff)
	}
	if r := store.recipients[userID]; r.Email != "alice@example.com" || !r.UpdatedAt.Equal(now.Add(-time.Minute)) {
		t.Errorf("recipient = %+v", r)
	}
}

func TestDeliverEachTemplate(t *testing.T) {
	tests := []struct {
		name    string
		notice  Notice
		subject string
		body    string
	}{
		{"welcome", WelcomeNotice(eventID, authapi.UserRegistered{UserID: userID, Email: "bob@example.com", Role: "user", RegisteredAt: now}),
			"Welcome to Seam", "Hello bob@example.com,"},
		{"invoice created in yen", InvoiceCreatedNotice(eventID, billingapi.InvoiceCreated{InvoiceID: invoiceID, UserID: userID,
			Email: "bob@example.com", AmountMinor: 500, Currency: "JPY", Description: "Hosting", CreatedAt: now}),
			"New invoice for 500 JPY", "Invoice " + invoiceID + " for 500 JPY is ready to be paid.\n\nHosting"},
		{"payment failed in dinars", PaymentFailedNotice(eventID, billingapi.PaymentFailed{InvoiceID: invoiceID, UserID: userID,
			Email: "bob@example.com", AmountMinor: 1234, Currency: "KWD", DeclineCode: "insufficient_funds", FailedAt: now}),
			"Payment failed: 1.234 KWD", "Your payment of 1.234 KWD for invoice " + invoiceID + " was declined (insufficient_funds)."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store, sender := newFakeStore(), &fakeSender{}
			if err := newTestService(t, store, sender).Deliver(context.Background(), store, tt.notice); err != nil {
				t.Fatal(err)
			}
			m := store.messages[eventID]
			if m.Subject != tt.subject || !strings.HasPrefix(m.Body, tt.body) {
				t.Errorf("got subject %q body %q", m.Subject, m.Body)
			}
			if len(sender.sent) != 1 {
				t.Errorf("sent %d messages, want 1", len(sender.sent))
			}
		})
	}
}

func TestDeliverSameEventTwiceSendsOnce(t *testing.T) {
	store, sender := newFakeStore(), &fakeSender{}
	s := newTestService(t, store, sender)
	for range 2 {
		if err := s.Deliver(context.Background(), store, PaymentReceivedNotice(eventID, paymentCompleted())); err != nil {
			t.Fatal(err)
		}
	}
	if len(store.messages) != 1 || len(sender.sent) != 1 {
		t.Fatalf("stored %d, sent %d; want 1 and 1", len(store.messages), len(sender.sent))
	}
}

func TestDeliverTemporaryFailureIsReturned(t *testing.T) {
	down := errors.New("connection refused")
	store := newFakeStore()
	err := newTestService(t, store, &fakeSender{err: down}).Deliver(context.Background(), store,
		PaymentReceivedNotice(eventID, paymentCompleted()))
	if !errors.Is(err, down) || errors.Is(err, ErrInvalidEvent) {
		t.Fatalf("err = %v, want the sender's error", err)
	}
}

func TestDeliverUndeliverableIsKeptAsFailed(t *testing.T) {
	store := newFakeStore()
	sender := &fakeSender{err: errors.Join(ErrUndeliverable, errors.New("550 no such user"))}
	err := newTestService(t, store, sender).Deliver(context.Background(), store, PaymentReceivedNotice(eventID, paymentCompleted()))
	if err != nil {
		t.Fatal(err)
	}
	if m := store.messages[eventID]; m.Status != notificationsapi.StatusFailed || m.SentAt != nil {
		t.Fatalf("message = %+v, want failed", m)
	}
}

func TestDeliverWithoutEmailUsesKnownAddress(t *testing.T) {
	store, sender := newFakeStore(), &fakeSender{}
	store.recipients[userID] = Recipient{UserID: userID, Email: "known@example.com", UpdatedAt: now}
	ev := paymentCompleted()
	ev.Email = ""
	if err := newTestService(t, store, sender).Deliver(context.Background(), store, PaymentReceivedNotice(eventID, ev)); err != nil {
		t.Fatal(err)
	}
	if len(sender.sent) != 1 || sender.sent[0].Recipient != "known@example.com" {
		t.Fatalf("sent = %+v", sender.sent)
	}
}

func TestDeliverWithoutAnyAddressKeepsFailedMessage(t *testing.T) {
	store, sender := newFakeStore(), &fakeSender{}
	ev := paymentCompleted()
	ev.Email = ""
	if err := newTestService(t, store, sender).Deliver(context.Background(), store, PaymentReceivedNotice(eventID, ev)); err != nil {
		t.Fatal(err)
	}
	m := store.messages[eventID]
	if m.Status != notificationsapi.StatusFailed || m.Recipient != "" || m.SentAt != nil || len(sender.sent) != 0 {
		t.Fatalf("message = %+v, sent = %d", m, len(sender.sent))
	}
}

func TestDeliverRefusesInvalidEvents(t *testing.T) {
	valid := paymentCompleted()
	tests := map[string]func(*billingapi.PaymentCompleted){
		"user id not a uuid":    func(e *billingapi.PaymentCompleted) { e.UserID = "bob" },
		"invoice id not a uuid": func(e *billingapi.PaymentCompleted) { e.InvoiceID = "" },
		"no timestamp":          func(e *billingapi.PaymentCompleted) { e.PaidAt = time.Time{} },
		"zero amount":           func(e *billingapi.PaymentCompleted) { e.AmountMinor = 0 },
		"negative amount":       func(e *billingapi.PaymentCompleted) { e.AmountMinor = -5 },
		"bad currency":          func(e *billingapi.PaymentCompleted) { e.Currency = "euro" },
		"huge email":            func(e *billingapi.PaymentCompleted) { e.Email = strings.Repeat("a", 400) + "@example.com" },
	}
	for name, mutate := range tests {
		t.Run(name, func(t *testing.T) {
			ev := valid
			mutate(&ev)
			store, sender := newFakeStore(), &fakeSender{}
			err := newTestService(t, store, sender).Deliver(context.Background(), store, PaymentReceivedNotice(eventID, ev))
			if !errors.Is(err, ErrInvalidEvent) {
				t.Fatalf("err = %v, want ErrInvalidEvent", err)
			}
			if len(store.messages) != 0 || len(sender.sent) != 0 {
				t.Fatal("an invalid event stored or sent a message")
			}
		})
	}
	t.Run("event id not a uuid", func(t *testing.T) {
		store := newFakeStore()
		err := newTestService(t, store, &fakeSender{}).Deliver(context.Background(), store, PaymentReceivedNotice("x", valid))
		if !errors.Is(err, ErrInvalidEvent) {
			t.Fatalf("err = %v, want ErrInvalidEvent", err)
		}
	})
}

func TestMessageIDIsStablePerEvent(t *testing.T) {
	first, again := MessageID(eventID), MessageID(eventID)
	if first != again || first == MessageID(invoiceID) {
		t.Fatal("MessageID must be a function of the event id")
	}
}

func TestListValidatesLimit(t *testing.T) {
	store := newFakeStore()
	s := newTestService(t, store, &fakeSender{})
	for _, limit := range []int{-1, 0, notificationsapi.MaxLimit + 1} {
		_, err := s.List(context.Background(), userID, limit)
		e, ok := errs.As(err)
		if !errors.Is(err, errs.ErrValidation) || !ok || len(e.Fields) != 1 || e.Fields[0].Field != "limit" {
			t.Errorf("limit %d: err = %v, want a validation error on limit", limit, err)
		}
	}
}

func TestListMapsMessages(t *testing.T) {
	store := newFakeStore()
	s := newTestService(t, store, &fakeSender{})
	if err := s.Deliver(context.Background(), store, PaymentReceivedNotice(eventID, paymentCompleted())); err != nil {
		t.Fatal(err)
	}
	got, err := s.List(context.Background(), userID, 1)
	if err != nil {
		t.Fatal(err)
	}
	m := store.messages[eventID]
	want := []notificationsapi.Notification{{ID: m.ID, Template: m.Template, Subject: m.Subject, Body: m.Body,
		CreatedAt: now, Status: notificationsapi.StatusSent}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("List (-want +got):\n%s", diff)
	}
}
