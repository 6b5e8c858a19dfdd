// Package billingapi is the billing module's public contract: the only package of billing that other
// modules may import. It holds the Billing interface, its types, sentinel errors and the events billing
// publishes.
package billingapi

import (
	"context"
	"time"

	"github.com/seamkit/seam/platform/errs"
)

// Billing is what other modules may ask of the billing module. Every method is remotable: ctx first, error
// last, plain serialisable types.
type Billing interface {
	// GetInvoice returns one of userID's invoices, or ErrInvoiceNotFound (also for another user's invoice).
	//seam:readonly
	//seam:key userID
	GetInvoice(ctx context.Context, userID, invoiceID string) (Invoice, error)
}

// Invoice statuses.
const (
	// StatusOpen is an invoice waiting for payment.
	StatusOpen = "open"
	// StatusPaid is a settled invoice.
	StatusPaid = "paid"
	// StatusRefunded is a paid invoice whose payment was refunded.
	StatusRefunded = "refunded"
)

// Invoice is a bill for one user, in integer minor units of an ISO 4217 currency.
type Invoice struct {
	ID          string     `json:"id"`
	UserID      string     `json:"user_id"`
	AmountMinor int64      `json:"amount_minor"`
	Currency    string     `json:"currency"`
	Description string     `json:"description"`
	Status      string     `json:"status"`
	CreatedAt   time.Time  `json:"created_at"`
	PaidAt      *time.Time `json:"paid_at,omitempty"`
}

// The errors billing returns to callers; match them with errors.Is.
var (
	// ErrInvoiceNotFound means no invoice with that id belongs to the caller.
	ErrInvoiceNotFound = errs.New(errs.NotFound, "billing.invoice_not_found", "invoice not found")
	// ErrInvoiceAlreadyPaid means the invoice was paid before.
	ErrInvoiceAlreadyPaid = errs.New(errs.Conflict, "billing.invoice_already_paid", "the invoice is already paid")
	// ErrPaymentDeclined means the payment provider declined the payment method.
	ErrPaymentDeclined = errs.New(errs.PaymentRequired, "billing.payment_declined", "the payment was declined")
	// ErrIdempotencyKeyMissing means a pay request came without an Idempotency-Key header.
	ErrIdempotencyKeyMissing = errs.New(errs.Invalid, "billing.idempotency_key_missing", "the Idempotency-Key header is required")
	// ErrIdempotencyKeyReused means the key was used before with a different request body.
	ErrIdempotencyKeyReused = errs.New(errs.Unprocessable, "billing.idempotency_key_reused", "this Idempotency-Key was used with a different request")
	// ErrIdempotencyKeyInUse means a request with the same key is still being processed.
	ErrIdempotencyKeyInUse = errs.New(errs.Conflict, "billing.idempotency_key_in_use", "a request with this Idempotency-Key is in progress")
	// ErrProviderUnavailable means the payment provider could not be reached; retrying later may succeed.
	ErrProviderUnavailable = errs.New(errs.Unavailable, "billing.provider_unavailable", "the payment provider is unavailable; try again later")
	// ErrIdempotencyKeyInvalid means the Idempotency-Key header is not 1 to 255 printable ASCII characters.
	ErrIdempotencyKeyInvalid = errs.New(errs.Invalid, "billing.idempotency_key_invalid", "the Idempotency-Key header must be 1 to 255 printable ASCII characters")
	// ErrUnknownPaymentMethod means the payment provider does not know the payment method (as opposed to
	// declining it); the client should ask for another one.
	ErrUnknownPaymentMethod = errs.New(errs.Unprocessable, "billing.unknown_payment_method", "the payment method is not known to the payment provider")
	// ErrAccountNotFound means the caller's token is valid but their account no longer exists.
	ErrAccountNotFound = errs.New(errs.Unauthenticated, "billing.account_not_found", "the caller's account no longer exists")
)

// Payment statuses.
const (
	// PaymentStatusSucceeded is a charge the provider approved; it paid its invoice.
	PaymentStatusSucceeded = "succeeded"
	// PaymentStatusFailed is a charge the provider declined; its invoice stays open.
	PaymentStatusFailed = "failed"
	// PaymentStatusRefunded is a succeeded charge that was refunded; its invoice is refunded too.
	PaymentStatusRefunded = "refunded"
)

// Payment is one charge attempt against an invoice that the provider answered, approved or declined.
type Payment struct {
	ID          string    `json:"id"`
	InvoiceID   string    `json:"invoice_id"`
	UserID      string    `json:"user_id"`
	Status      string    `json:"status"`
	AmountMinor int64     `json:"amount_minor"`
	Currency    string    `json:"currency"`
	ProviderRef string    `json:"provider_ref"`
	DeclineCode string    `json:"decline_code,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	// RefundRef is the provider's reference of the refund, once refunded.
	RefundRef  string     `json:"refund_ref,omitempty"`
	RefundedAt *time.Time `json:"refunded_at,omitempty"`
}

// Subjects and event types billing publishes.
const (
	// SubjectInvoiceCreated is the subject of InvoiceCreated events.
	SubjectInvoiceCreated = "billing.events.invoice_created"
	// EventInvoiceCreated is the event type of InvoiceCreated.
	EventInvoiceCreated = "invoice_created"
	// SubjectPaymentCompleted is the subject of PaymentCompleted events.
	SubjectPaymentCompleted = "billing.events.payment_completed"
	// EventPaymentCompleted is the event type of PaymentCompleted.
	EventPaymentCompleted = "payment_completed"
	// SubjectPaymentFailed is the subject of PaymentFailed events.
	SubjectPaymentFailed = "billing.events.payment_failed"
	// EventPaymentFailed is the event type of PaymentFailed.
	EventPaymentFailed = "payment_failed"
	// SubjectPaymentRefunded is the subject of PaymentRefunded events.
	SubjectPaymentRefunded = "billing.events.payment_refunded"
	// EventPaymentRefunded is the event type of PaymentRefunded.
	EventPaymentRefunded = "payment_refunded"
)

// InvoiceCreated is published when an invoice is created.
type InvoiceCreated struct {
	InvoiceID   string    `json:"invoice_id"`
	UserID      string    `json:"user_id"`
	Email       string    `json:"email"`
	AmountMinor int64     `json:"amount_minor"`
	Currency    string    `json:"currency"`
	Description string    `json:"description"`
	CreatedAt   time.Time `json:"created_at"`
}

// PaymentCompleted is published when an invoice is paid.
type PaymentCompleted struct {
	PaymentID   string    `json:"payment_id"`
	InvoiceID   string    `json:"invoice_id"`
	UserID      string    `json:"user_id"`
	Email       string    `json:"email"`
	AmountMinor int64     `json:"amount_minor"`
	Currency    string    `json:"currency"`
	PaidAt      time.Time `json:"paid_at"`
}

// PaymentFailed is published when the provider declines a payment.
type PaymentFailed struct {
	PaymentID   string    `json:"payment_id"`
	InvoiceID   string    `json:"invoice_id"`
	UserID      string    `json:"user_id"`
	Email       string    `json:"email"`
	AmountMinor int64     `json:"amount_minor"`
	Currency    string    `json:"currency"`
	DeclineCode string    `json:"decline_code"`
	FailedAt    time.Time `json:"failed_at"`
}

// PaymentRefunded is published when a payment is refunded (e.g. a plan upgrade whose plan could not be
// granted).
type PaymentRefunded struct {
	PaymentID   string    `json:"payment_id"`
	InvoiceID   string    `json:"invoice_id"`
	UserID      string    `json:"user_id"`
	Email       string    `json:"email"`
	AmountMinor int64     `json:"amount_minor"`
	Currency    string    `json:"currency"`
	RefundRef   string    `json:"refund_ref"`
	Reason      string    `json:"reason"`
	RefundedAt  time.Time `json:"refunded_at"`
}
