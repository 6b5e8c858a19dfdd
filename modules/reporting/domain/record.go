package reportingdomain

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"

	authapi "github.com/seamkit/seam/modules/auth/api"
	billingapi "github.com/seamkit/seam/modules/billing/api"
)

// ErrInvalidEvent means an event lacks what the read model needs (a timestamp, a currency, a positive
// amount); retrying it cannot help.
var ErrInvalidEvent = errors.New("reporting: invalid event")

// Recorder adds events to the read model, bound to the transaction that also records the event as handled.
// Every day it is given is a UTC midnight.
type Recorder interface {
	// AddSignup counts one registration on day.
	AddSignup(ctx context.Context, day time.Time) error
	// AddInvoice counts one invoice of amountMinor in currency on day.
	AddInvoice(ctx context.Context, day time.Time, currency string, amountMinor int64) error
	// AddPayment counts one payment of amountMinor in currency on day.
	AddPayment(ctx context.Context, day time.Time, currency string, amountMinor int64) error
	// AddFailedPayment counts one declined payment of amountMinor in currency on day.
	AddFailedPayment(ctx context.Context, day time.Time, currency string, amountMinor int64) error
}

// Day returns the UTC date of t, as midnight UTC. Events are counted on the day of their own timestamp, not
// of their processing, so replaying them gives the same read model.
func Day(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// RecordUserRegistered counts a registration on the day it happened.
func RecordUserRegistered(ctx context.Context, rec Recorder, ev authapi.UserRegistered) error {
	if ev.RegisteredAt.IsZero() {
		return fmt.Errorf("%w: user_registered without registered_at", ErrInvalidEvent)
	}
	return rec.AddSignup(ctx, Day(ev.RegisteredAt))
}

// RecordInvoiceCreated counts an invoice on the day it was created.
func RecordInvoiceCreated(ctx context.Context, rec Recorder, ev billingapi.InvoiceCreated) error {
	if err := checkAmount("invoice_created", ev.CreatedAt, ev.Currency, ev.AmountMinor); err != nil {
		return err
	}
	return rec.AddInvoice(ctx, Day(ev.CreatedAt), ev.Currency, ev.AmountMinor)
}

// RecordPaymentCompleted counts a payment as revenue on the day it was paid.
func RecordPaymentCompleted(ctx context.Context, rec Recorder, ev billingapi.PaymentCompleted) error {
	if err := checkAmount("payment_completed", ev.PaidAt, ev.Currency, ev.AmountMinor); err != nil {
		return err
	}
	return rec.AddPayment(ctx, Day(ev.PaidAt), ev.Currency, ev.AmountMinor)
}

// RecordPaymentFailed counts a declined payment on the day it failed.
func RecordPaymentFailed(ctx context.Context, rec Recorder, ev billingapi.PaymentFailed) error {
	if err := checkAmount("payment_failed", ev.FailedAt, ev.Currency, ev.AmountMinor); err != nil {
		return err
	}
	return rec.AddFailedPayment(ctx, Day(ev.FailedAt), ev.Currency, ev.AmountMinor)
}

var currencyCode = regexp.MustCompile(`^[A-Z]{3}$`)

func checkAmount(event string, at time.Time, currency string, amountMinor int64) error {
	switch {
	case at.IsZero():
		return fmt.Errorf("%w: %s without a timestamp", ErrInvalidEvent, event)
	case !currencyCode.MatchString(currency):
		return fmt.Errorf("%w: %s with currency %q", ErrInvalidEvent, event, currency)
	case amountMinor <= 0:
		return fmt.Errorf("%w: %s with amount_minor %d", ErrInvalidEvent, event, amountMinor)
	}
	return nil
}
