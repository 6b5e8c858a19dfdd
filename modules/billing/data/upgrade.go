package billingdata

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	billingapi "github.com/seamkit/seam/modules/billing/api"
	billingdomain "github.com/seamkit/seam/modules/billing/domain"
	"github.com/seamkit/seam/platform/saga"
)

// UpgradeStore implements billingdomain.UpgradeStore: the plan-upgrade saga's writes, made in the
// transaction of the saga step that makes them.
type UpgradeStore struct {
	q *Queries
}

var _ billingdomain.UpgradeStore = (*UpgradeStore)(nil)

// NewUpgradeStore returns an UpgradeStore for billing's pool (the saga runner's transactions are on it).
func NewUpgradeStore(pool *pgxpool.Pool) *UpgradeStore {
	return &UpgradeStore{q: New(pool)}
}

// Within returns the upgrade operations inside tx.
func (s *UpgradeStore) Within(tx saga.Tx) billingdomain.UpgradeTx {
	return &upgradeTx{paymentTx: paymentTx{tx: tx, q: s.q.WithTx(tx)}}
}

// upgradeTx implements billingdomain.UpgradeTx on top of a payment transaction's operations.
type upgradeTx struct {
	paymentTx
}

// CreateInvoice inserts inv, open.
func (t *upgradeTx) CreateInvoice(ctx context.Context, inv billingapi.Invoice) error {
	id, err := toUUID(inv.ID)
	if err != nil {
		return fmt.Errorf("invoice id: %w", err)
	}
	userID, err := toUUID(inv.UserID)
	if err != nil {
		return fmt.Errorf("user id: %w", err)
	}
	_, err = t.q.InsertInvoice(ctx, InsertInvoiceParams{
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
	return nil
}

// RefundPayment moves a succeeded payment and its paid invoice to refunded; false when the payment is not
// succeeded.
func (t *upgradeTx) RefundPayment(ctx context.Context, paymentID, invoiceID, refundRef string, at time.Time) (bool, error) {
	pid, err := toUUID(paymentID)
	if err != nil {
		return false, fmt.Errorf("payment id: %w", err)
	}
	iid, err := toUUID(invoiceID)
	if err != nil {
		return false, fmt.Errorf("invoice id: %w", err)
	}
	n, err := t.q.RefundPayment(ctx, RefundPaymentParams{
		RefundRef:  pgtype.Text{String: refundRef, Valid: true},
		RefundedAt: toTimestamptz(at),
		ID:         pid,
	})
	if err != nil {
		return false, fmt.Errorf("refund payment: %w", err)
	}
	if n == 0 {
		return false, nil
	}
	if n, err = t.q.MarkInvoiceRefunded(ctx, iid); err != nil {
		return false, fmt.Errorf("mark invoice refunded: %w", err)
	}
	if n == 0 {
		return false, fmt.Errorf("mark invoice refunded: invoice %s of payment %s is not paid", invoiceID, paymentID)
	}
	return true, nil
}
