package reportingdomain

import (
	"context"
	"errors"
	"testing"
	"time"

	authapi "github.com/seamkit/seam/modules/auth/api"
	billingapi "github.com/seamkit/seam/modules/billing/api"
)

// call is one Recorder call.
type call struct {
	kind     string
	day      time.Time
	currency string
	amount   int64
}

// fakeRecorder records the calls it gets.
type fakeRecorder struct{ calls []call }

func (f *fakeRecorder) AddSignup(_ context.Context, day time.Time) error {
	f.calls = append(f.calls, call{kind: "signup", day: day})
	return nil
}

func (f *fakeRecorder) AddInvoice(_ context.Context, day time.Time, currency string, amount int64) error {
	f.calls = append(f.calls, call{"invoice", day, currency, amount})
	return nil
}

func (f *fakeRecorder) AddPayment(_ context.Context, day time.Time, currency string, amount int64) error {
	f.calls = append(f.calls, call{"payment", day, currency, amount})
	return nil
}

func (f *fakeRecorder) AddFailedPayment(_ context.Context, day time.Time, currency string, amount int64) error {
	f.calls = append(f.calls, call{"failed", day, currency, amount})
	return nil
}

func date(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

func TestDayIsTheUTCDateOfTheEvent(t *testing.T) {
	tokyo := time.FixedZone("JST", 9*3600)
	tests := []struct {
		at   time.Time
		want time.Time
	}{
		{time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), date(2026, 3, 1)},
		{time.Date(2026, 3, 1, 23, 59, 59, 999999999, time.UTC), date(2026, 3, 1)},
		{time.Date(2026, 3, 1, 8, 0, 0, 0, tokyo), date(2026, 2, 28)},
		{time.Date(2026, 3, 1, 9, 0, 0, 0, tokyo), date(2026, 3, 1)},
	}
	for _, tt := range tests {
		if got := Day(tt.at); !got.Equal(tt.want) || got.Location() != time.UTC {
			t.Errorf("Day(%s) = %s, want %s", tt.at, got, tt.want)
		}
	}
}

func TestRecordEvents(t *testing.T) {
	ctx := context.Background()
	at := time.Date(2026, 3, 1, 23, 30, 0, 0, time.FixedZone("CET", 3600)) // 22:30 UTC
	rec := &fakeRecorder{}
	steps := []error{
		RecordUserRegistered(ctx, rec, authapi.UserRegistered{UserID: "u", RegisteredAt: at}),
		RecordInvoiceCreated(ctx, rec, billingapi.InvoiceCreated{AmountMinor: 1250, Currency: "EUR", CreatedAt: at}),
		RecordPaymentCompleted(ctx, rec, billingapi.PaymentCompleted{AmountMinor: 1250, Currency: "EUR", PaidAt: at.Add(2 * time.Hour)}),
		RecordPaymentFailed(ctx, rec, billingapi.PaymentFailed{AmountMinor: 500, Currency: "JPY", FailedAt: at}),
	}
	for i, err := range steps {
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	want := []call{
		{"signup", date(2026, 3, 1), "", 0},
		{"invoice", date(2026, 3, 1), "EUR", 1250},
		{"payment", date(2026, 3, 2), "EUR", 1250},
		{"failed", date(2026, 3, 1), "JPY", 500},
	}
	if len(rec.calls) != len(want) {
		t.Fatalf("calls = %+v", rec.calls)
	}
	for i := range want {
		if rec.calls[i] != want[i] {
			t.Errorf("call %d = %+v, want %+v", i, rec.calls[i], want[i])
		}
	}
}

func TestRecordRefusesInvalidEvents(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	tests := map[string]func(Recorder) error{
		"signup without time": func(r Recorder) error { return RecordUserRegistered(ctx, r, authapi.UserRegistered{UserID: "u"}) },
		"invoice without time": func(r Recorder) error {
			return RecordInvoiceCreated(ctx, r, billingapi.InvoiceCreated{AmountMinor: 1, Currency: "EUR"})
		},
		"invoice lower-case currency": func(r Recorder) error {
			return RecordInvoiceCreated(ctx, r, billingapi.InvoiceCreated{AmountMinor: 1, Currency: "eur", CreatedAt: now})
		},
		"payment zero amount": func(r Recorder) error {
			return RecordPaymentCompleted(ctx, r, billingapi.PaymentCompleted{Currency: "EUR", PaidAt: now})
		},
		"failed payment negative amount": func(r Recorder) error {
			return RecordPaymentFailed(ctx, r, billingapi.PaymentFailed{AmountMinor: -1, Currency: "EUR", FailedAt: now})
		},
		"failed payment no currency": func(r Recorder) error {
			return RecordPaymentFailed(ctx, r, billingapi.PaymentFailed{AmountMinor: 1, FailedAt: now})
		},
	}
	for name, record := range tests {
		rec := &fakeRecorder{}
		if err := record(rec); !errors.Is(err, ErrInvalidEvent) || len(rec.calls) != 0 {
			t.Errorf("%s: err = %v, calls = %d", name, err, len(rec.calls))
		}
	}
}
