package billingdomain

import (
	"context"
	"errors"
	"time"

	billingapi "github.com/seamkit/seam/modules/billing/api"
)

// Repository is the storage port the billing service needs; billingdata implements it on PostgreSQL.
// Invoice lookups return billingapi.ErrInvoiceNotFound for an invoice that does not exist, is not the user's
// or whose id is malformed.
type Repository interface {
	// CreateInvoice stores inv and records ev in the outbox, in one transaction.
	CreateInvoice(ctx context.Context, inv billingapi.Invoice, ev Event) error
	// GetInvoice returns one of userID's invoices.
	GetInvoice(ctx context.Context, userID, invoiceID string) (billingapi.Invoice, error)
	// ListInvoices returns up to limit of userID's invoices, newest first.
	ListInvoices(ctx context.Context, userID string, limit int) ([]billingapi.Invoice, error)

	// CreateIdempotencyKey stores rec (state in progress) in its own committed transaction, or returns
	// ErrIdempotencyKeyExists when the user already has a row for that key.
	CreateIdempotencyKey(ctx context.Context, rec IdempotencyRecord) error
	// GetIdempotencyKey returns the user's row for key, or ErrIdempotencyKeyNotFound.
	GetIdempotencyKey(ctx context.Context, userID, key string) (IdempotencyRecord, error)
	// TakeOverIdempotencyKey atomically claims the user's row for key if it is still in progress and was last
	// claimed before staleBefore, setting its UpdatedAt to now; otherwise it returns ErrIdempotencyKeyNotFound.
	TakeOverIdempotencyKey(ctx context.Context, userID, key string, staleBefore, now time.Time) (IdempotencyRecord, error)
	// ReleaseIdempotencyKey makes rec's row immediately stale, keeping its payment id, so a retry takes it
	// over at once; ErrIdempotencyKeyLost when rec's claim no longer holds.
	ReleaseIdempotencyKey(ctx context.Context, rec IdempotencyRecord) error
	// DeleteIdempotencyKey removes rec's row so the key can be used afresh; ErrIdempotencyKeyLost when rec's
	// claim no longer holds.
	DeleteIdempotencyKey(ctx context.Context, rec IdempotencyRecord) error

	// InPaymentTx runs fn in one database transaction, committed when fn returns nil and rolled back
	// otherwise.
	InPaymentTx(ctx context.Context, fn func(ctx context.Context, tx PaymentTx) error) error
}

// PaymentTx is what a payment does inside its one transaction.
type PaymentTx interface {
	// LockInvoice returns one of userID's invoices, locked until the transaction ends.
	LockInvoice(ctx context.Context, userID, invoiceID string) (billingapi.Invoice, error)
	// InsertPayment records a payment; a second succeeded payment for an invoice is
	// billingapi.ErrInvoiceAlreadyPaid.
	InsertPayment(ctx context.Context, p billingapi.Payment) error
	// MarkInvoicePaid sets an open invoice paid at paidAt and returns it; billingapi.ErrInvoiceAlreadyPaid when
	// it is not open.
	MarkInvoicePaid(ctx context.Context, invoiceID string, paidAt time.Time) (billingapi.Invoice, error)
	// Publish records ev in the outbox, so it is published if and only if the transaction commits.
	Publish(ctx context.Context, ev Event) error
	// CompleteIdempotencyKey stores resp on rec's row and marks it done; ErrIdempotencyKeyLost when rec's
	// claim no longer holds (another process took the key over), which must abort the transaction.
	CompleteIdempotencyKey(ctx context.Context, rec IdempotencyRecord, resp Response, now time.Time) error
}

// Event is an event billing publishes through its outbox.
type Event struct {
	// Subject and Type are one of the billingapi Subject*/Event* pairs.
	Subject string
	Type    string
	// Key is the aggregate the event is about (an invoice id).
	Key string
	// Payload is one of the billingapi event types.
	Payload any
}

// Idempotency key states.
const (
	// KeyStateInProgress marks a request that is being processed (or whose process died).
	KeyStateInProgress = "in_progress"
	// KeyStateDone marks a request whose response is stored.
	KeyStateDone = "done"
)

// IdempotencyRecord is the stored state of one (user, Idempotency-Key) pair.
type IdempotencyRecord struct {
	UserID string
	Key    string
	// RequestHash fingerprints the request the key was first used with (see RequestHash).
	RequestHash []byte
	// PaymentID is the id the request charges under; a takeover reuses it, so the provider, idempotent per
	// payment id, never charges twice for one key.
	PaymentID string
	State     string
	// Response is the stored response once State is KeyStateDone.
	Response  Response
	CreatedAt time.Time
	// UpdatedAt is when the row was last claimed (or completed); it doubles as the claim's lease, which
	// Complete, Release and Delete check.
	UpdatedAt time.Time
}

// Response is a rendered response to a pay request: what is stored on its idempotency key and replayed byte
// for byte.
type Response struct {
	Status int
	Body   []byte
	// Replayed is true when the response comes from an earlier request with the same key.
	Replayed bool
}

// The errors Repository implementations return for idempotency keys; match them with errors.Is.
var (
	// ErrIdempotencyKeyExists means a row for the (user, key) pair already exists.
	ErrIdempotencyKeyExists = errors.New("idempotency key exists")
	// ErrIdempotencyKeyNotFound means there is no (eligible) row for the (user, key) pair.
	ErrIdempotencyKeyNotFound = errors.New("idempotency key not found")
	// ErrIdempotencyKeyLost means the claim a process holds on a key was taken over, completed or removed.
	ErrIdempotencyKeyLost = errors.New("idempotency key claim lost")
)
