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

	// GetIdempotencyKey returns the user's row for key, or ErrIdempotencyKeyNotFound. It needs no hold: it is
	// how a request learns what became of a key that another process holds.
	GetIdempotencyKey(ctx context.Context, userID, key string) (IdempotencyRecord, error)
	// HoldIdempotencyKey takes the liveness lock of the user's key, without waiting, on a database connection
	// of its own that the returned KeyHold keeps until its Release; ErrIdempotencyKeyHeld when another live
	// process holds it. The lock lives as long as that connection does: when the holding process dies, the
	// database ends its session and frees the lock.
	HoldIdempotencyKey(ctx context.Context, userID, key string) (KeyHold, error)
}

// KeyHold is this process's liveness lock on one (user, Idempotency-Key) pair, and the connection that
// holds it. Every operation on the key, and the payment's transaction, runs on that connection: a request
// takes one connection, whatever it does, and if the connection breaks, the lock and the work in flight end
// together, so no process changes a key whose lock it lost.
type KeyHold interface {
	// CreateIdempotencyKey stores rec (state in progress, for the held pair) in its own committed
	// transaction, or returns ErrIdempotencyKeyExists when the pair already has a row.
	CreateIdempotencyKey(ctx context.Context, rec IdempotencyRecord) error
	// GetIdempotencyKey returns the held pair's row, or ErrIdempotencyKeyNotFound.
	GetIdempotencyKey(ctx context.Context) (IdempotencyRecord, error)
	// TakeOverIdempotencyKey claims the held pair's row if it is in progress (its process died: the lock was
	// free), keeping its payment id and moving UpdatedAt to now, or just past its old value if that is later;
	// otherwise it returns ErrIdempotencyKeyNotFound.
	TakeOverIdempotencyKey(ctx context.Context, now time.Time) (IdempotencyRecord, error)
	// DeleteIdempotencyKey removes rec's row so the key can be used afresh; ErrIdempotencyKeyLost when rec's
	// claim no longer holds.
	DeleteIdempotencyKey(ctx context.Context, rec IdempotencyRecord) error
	// InPaymentTx runs fn in one database transaction, committed when fn returns nil and rolled back
	// otherwise.
	InPaymentTx(ctx context.Context, fn func(ctx context.Context, tx PaymentTx) error) error
	// Release frees the lock and the connection; the hold is not used afterwards. Should the lock not be
	// freed cleanly, the connection is closed, which frees it with the session.
	Release()
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
	// KeyStateInProgress marks a request that is being processed (or whose process died, which the key's free
	// lock tells).
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
	// UpdatedAt is when the row was last claimed (or completed); it doubles as the claim's fencing token,
	// which Complete and Delete check, so a claim that was taken over changes nothing.
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
	// ErrIdempotencyKeyHeld means another live process holds the (user, key) pair's liveness lock.
	ErrIdempotencyKeyHeld = errors.New("idempotency key held by another process")
)
