package billingdata

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	billingapi "github.com/seamkit/seam/modules/billing/api"
	billingdomain "github.com/seamkit/seam/modules/billing/domain"
	"github.com/seamkit/seam/platform/outbox"
)

// Schema is the PostgreSQL schema billing owns; its outbox lives there too.
const Schema = "billing"

// Constraint names the adapter maps to billing errors.
const (
	oneSuccessPerInvoice = "payments_one_success_per_invoice"
	codeUniqueViolation  = "23505"
	codeFKViolation      = "23503"
)

// Repository implements billingdomain.Repository on billing's own schema.
type Repository struct {
	pool *pgxpool.Pool
	q    *Queries
}

var _ billingdomain.Repository = (*Repository)(nil)

// NewRepository returns a Repository using pool (billing's private pool).
func NewRepository(pool *pgxpool.Pool) *Repository {
	return &Repository{pool: pool, q: New(pool)}
}

// CreateInvoice stores inv and its event in one transaction.
func (r *Repository) CreateInvoice(ctx context.Context, inv billingapi.Invoice, ev billingdomain.Event) error {
	id, err := toUUID(inv.ID)
	if err != nil {
		return fmt.Errorf("invoice id: %w", err)
	}
	userID, err := toUUID(inv.UserID)
	if err != nil {
		return fmt.Errorf("user id: %w", err)
	}
	err = pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
		_, err := r.q.WithTx(tx).InsertInvoice(ctx, InsertInvoiceParams{
			ID:          id,
			UserID:      userID,
			AmountMinor: inv.AmountMinor,
			Currency:    inv.Currency,
			Description: inv.Description,
			CreatedAt:   toTimestamptz(inv.CreatedAt),
		})
		if err != nil {
			return fmt.Errorf("insert invoice: %w", err)
		}
		return publish(ctx, tx, ev)
	})
	if err != nil {
		return err
	}
	outbox.WakeRelays(Schema)
	return nil
}

// GetInvoice returns one of userID's invoices, or billingapi.ErrInvoiceNotFound.
func (r *Repository) GetInvoice(ctx context.Context, userID, invoiceID string) (billingapi.Invoice, error) {
	id, uid, ok := invoiceKey(userID, invoiceID)
	if !ok {
		return billingapi.Invoice{}, billingapi.ErrInvoiceNotFound
	}
	row, err := r.q.GetInvoice(ctx, GetInvoiceParams{ID: id, UserID: uid})
	if err != nil {
		return billingapi.Invoice{}, invoiceError(err)
	}
	return fromInvoice(row), nil
}

// ListInvoices returns up to limit of userID's invoices, newest first.
func (r *Repository) ListInvoices(ctx context.Context, userID string, limit int) ([]billingapi.Invoice, error) {
	uid, err := toUUID(userID)
	if err != nil {
		return nil, fmt.Errorf("user id: %w", err)
	}
	if limit < 1 || limit > billingdomain.MaxListLimit {
		return nil, fmt.Errorf("list limit %d is outside 1..%d", limit, billingdomain.MaxListLimit)
	}
	rows, err := r.q.ListInvoices(ctx, ListInvoicesParams{UserID: uid, Limit: int32(limit)})
	if err != nil {
		return nil, fmt.Errorf("list invoices: %w", err)
	}
	invs := make([]billingapi.Invoice, len(rows))
	for i, row := range rows {
		invs[i] = fromInvoice(row)
	}
	return invs, nil
}

// GetIdempotencyKey returns the user's row for key, or billingdomain.ErrIdempotencyKeyNotFound.
func (r *Repository) GetIdempotencyKey(ctx context.Context, userID, key string) (billingdomain.IdempotencyRecord, error) {
	uid, err := toUUID(userID)
	if err != nil {
		return billingdomain.IdempotencyRecord{}, fmt.Errorf("user id: %w", err)
	}
	return readIdempotencyKey(ctx, r.q, uid, key)
}

// readIdempotencyKey reads the user's row for key through q.
func readIdempotencyKey(ctx context.Context, q *Queries, uid pgtype.UUID, key string) (billingdomain.IdempotencyRecord, error) {
	row, err := q.GetIdempotencyKey(ctx, GetIdempotencyKeyParams{UserID: uid, Key: key})
	if errors.Is(err, pgx.ErrNoRows) {
		return billingdomain.IdempotencyRecord{}, billingdomain.ErrIdempotencyKeyNotFound
	}
	if err != nil {
		return billingdomain.IdempotencyRecord{}, fmt.Errorf("get idempotency key: %w", err)
	}
	return fromIdempotencyKey(row), nil
}

// paymentTx implements billingdomain.PaymentTx inside one pgx transaction.
type paymentTx struct {
	tx pgx.Tx
	q  *Queries
}

// LockInvoice selects the invoice FOR UPDATE.
func (t *paymentTx) LockInvoice(ctx context.Context, userID, invoiceID string) (billingapi.Invoice, error) {
	id, uid, ok := invoiceKey(userID, invoiceID)
	if !ok {
		return billingapi.Invoice{}, billingapi.ErrInvoiceNotFound
	}
	row, err := t.q.LockInvoice(ctx, LockInvoiceParams{ID: id, UserID: uid})
	if err != nil {
		return billingapi.Invoice{}, invoiceError(err)
	}
	return fromInvoice(row), nil
}

// InsertPayment records p; a second succeeded payment for its invoice is billingapi.ErrInvoiceAlreadyPaid.
func (t *paymentTx) InsertPayment(ctx context.Context, p billingapi.Payment) error {
	params, err := toPaymentParams(p)
	if err != nil {
		return err
	}
	err = t.q.InsertPayment(ctx, params)
	var pgErr *pgconn.PgError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &pgErr) && pgErr.Code == codeUniqueViolation && pgErr.ConstraintName == oneSuccessPerInvoice:
		return fmt.Errorf("insert payment: %w", billingapi.ErrInvoiceAlreadyPaid)
	case errors.As(err, &pgErr) && pgErr.Code == codeFKViolation:
		return fmt.Errorf("insert payment: %w", billingapi.ErrInvoiceNotFound)
	default:
		return fmt.Errorf("insert payment: %w", err)
	}
}

// MarkInvoicePaid moves an open invoice to paid; billingapi.ErrInvoiceAlreadyPaid when it is not open.
func (t *paymentTx) MarkInvoicePaid(ctx context.Context, invoiceID string, paidAt time.Time) (billingapi.Invoice, error) {
	id, err := toUUID(invoiceID)
	if err != nil {
		return billingapi.Invoice{}, fmt.Errorf("invoice id: %w", err)
	}
	row, err := t.q.MarkInvoicePaid(ctx, MarkInvoicePaidParams{ID: id, PaidAt: toTimestamptz(paidAt)})
	if errors.Is(err, pgx.ErrNoRows) {
		return billingapi.Invoice{}, billingapi.ErrInvoiceAlreadyPaid
	}
	if err != nil {
		return billingapi.Invoice{}, fmt.Errorf("mark invoice paid: %w", err)
	}
	return fromInvoice(row), nil
}

// Publish records ev in billing's outbox within the transaction.
func (t *paymentTx) Publish(ctx context.Context, ev billingdomain.Event) error {
	return publish(ctx, t.tx, ev)
}

// CompleteIdempotencyKey stores resp on rec's row; billingdomain.ErrIdempotencyKeyLost when rec's claim is gone.
func (t *paymentTx) CompleteIdempotencyKey(ctx context.Context, rec billingdomain.IdempotencyRecord, resp billingdomain.Response, now time.Time) error {
	uid, err := toUUID(rec.UserID)
	if err != nil {
		return fmt.Errorf("user id: %w", err)
	}
	n, err := t.q.CompleteIdempotencyKey(ctx, CompleteIdempotencyKeyParams{
		ResponseStatus: pgtype.Int4{Int32: int32(resp.Status), Valid: true},
		ResponseBody:   resp.Body,
		Now:            toTimestamptz(now),
		UserID:         uid,
		Key:            rec.Key,
		ClaimedAt:      toTimestamptz(rec.UpdatedAt),
	})
	return claimResult("complete idempotency key", n, err)
}

func publish(ctx context.Context, tx pgx.Tx, ev billingdomain.Event) error {
	_, err := outbox.Enqueue(ctx, tx, Schema, outbox.Event{Subject: ev.Subject, Type: ev.Type, Key: ev.Key, Payload: ev.Payload})
	if err != nil {
		return fmt.Errorf("publish %s: %w", ev.Type, err)
	}
	return nil
}

// claimResult maps the rows an update guarded by a claim's fencing token touched.
func claimResult(what string, n int64, err error) error {
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if n == 0 {
		return fmt.Errorf("%s: %w", what, billingdomain.ErrIdempotencyKeyLost)
	}
	return nil
}

// invoiceKey parses the ids of an invoice lookup; a malformed id cannot name a visible invoice.
func invoiceKey(userID, invoiceID string) (id, uid pgtype.UUID, ok bool) {
	id, err := toUUID(invoiceID)
	if err != nil {
		return id, uid, false
	}
	uid, err = toUUID(userID)
	return id, uid, err == nil
}

func invoiceError(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return billingapi.ErrInvoiceNotFound
	}
	return fmt.Errorf("read invoice: %w", err)
}

func toUUID(s string) (pgtype.UUID, error) {
	u, err := uuid.Parse(s)
	if err != nil {
		return pgtype.UUID{}, fmt.Errorf("%q is not a UUID: %w", s, err)
	}
	return pgtype.UUID{Bytes: u, Valid: true}, nil
}

func fromUUID(u pgtype.UUID) string {
	if !u.Valid {
		return ""
	}
	return uuid.UUID(u.Bytes).String()
}

func toTimestamptz(t time.Time) pgtype.Timestamptz {
	return pgtype.Timestamptz{Time: t, Valid: true}
}

func fromTimestamptz(t pgtype.Timestamptz) time.Time {
	if !t.Valid {
		return time.Time{}
	}
	return t.Time.UTC()
}

func fromInvoice(row Invoice) billingapi.Invoice {
	inv := billingapi.Invoice{
		ID:          fromUUID(row.ID),
		UserID:      fromUUID(row.UserID),
		AmountMinor: row.AmountMinor,
		Currency:    row.Currency,
		Description: row.Description,
		Status:      row.Status,
		CreatedAt:   fromTimestamptz(row.CreatedAt),
	}
	if row.PaidAt.Valid {
		paidAt := fromTimestamptz(row.PaidAt)
		inv.PaidAt = &paidAt
	}
	return inv
}

func toPaymentParams(p billingapi.Payment) (InsertPaymentParams, error) {
	id, err := toUUID(p.ID)
	if err != nil {
		return InsertPaymentParams{}, fmt.Errorf("payment id: %w", err)
	}
	invoiceID, err := toUUID(p.InvoiceID)
	if err != nil {
		return InsertPaymentParams{}, fmt.Errorf("invoice id: %w", err)
	}
	uid, err := toUUID(p.UserID)
	if err != nil {
		return InsertPaymentParams{}, fmt.Errorf("user id: %w", err)
	}
	return InsertPaymentParams{
		ID:          id,
		InvoiceID:   invoiceID,
		UserID:      uid,
		AmountMinor: p.AmountMinor,
		Currency:    p.Currency,
		Status:      p.Status,
		ProviderRef: p.ProviderRef,
		DeclineCode: pgtype.Text{String: p.DeclineCode, Valid: p.DeclineCode != ""},
		CreatedAt:   toTimestamptz(p.CreatedAt),
	}, nil
}

func fromIdempotencyKey(row IdempotencyKey) billingdomain.IdempotencyRecord {
	rec := billingdomain.IdempotencyRecord{
		UserID:      fromUUID(row.UserID),
		Key:         row.Key,
		RequestHash: row.RequestHash,
		PaymentID:   fromUUID(row.PaymentID),
		State:       row.State,
		CreatedAt:   fromTimestamptz(row.CreatedAt),
		UpdatedAt:   fromTimestamptz(row.UpdatedAt),
	}
	if row.ResponseStatus.Valid {
		rec.Response = billingdomain.Response{Status: int(row.ResponseStatus.Int32), Body: row.ResponseBody}
	}
	return rec
}
