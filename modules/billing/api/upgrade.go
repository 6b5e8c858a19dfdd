package billingapi

import (
	"time"

	"github.com/seamkit/seam/platform/errs"
)

// Plan-upgrade statuses: those of the saga that runs the upgrade (charge, then grant the plan; a failed
// grant refunds the charge).
const (
	// UpgradeRunning is an upgrade still charging or granting.
	UpgradeRunning = "running"
	// UpgradeCompensating is an upgrade that failed and is being refunded.
	UpgradeCompensating = "compensating"
	// UpgradeCompleted is an upgrade that was charged and whose plan was granted.
	UpgradeCompleted = "completed"
	// UpgradeCompensated is an upgrade that failed; anything charged was refunded.
	UpgradeCompensated = "compensated"
	// UpgradeFailed is an upgrade whose refund kept failing; support has been alerted.
	UpgradeFailed = "failed"
)

// PlanUpgrade is one request to move a user to a paid plan, as the user sees it.
type PlanUpgrade struct {
	ID          string `json:"id"`
	UserID      string `json:"user_id"`
	Plan        string `json:"plan"`
	Status      string `json:"status"`
	AmountMinor int64  `json:"amount_minor"`
	Currency    string `json:"currency"`
	// InvoiceID and PaymentID are set once the charge succeeded.
	InvoiceID string `json:"invoice_id,omitempty"`
	PaymentID string `json:"payment_id,omitempty"`
	// RefundRef is the provider's reference of the refund, once refunded.
	RefundRef string `json:"refund_ref,omitempty"`
	// FailedStep ("charge" or "grant_plan") and FailureCode (a stable error code, e.g.
	// "billing.payment_declined", or "internal") say why an upgrade failed.
	FailedStep  string    `json:"failed_step,omitempty"`
	FailureCode string    `json:"failure_code,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// The errors of plan upgrades; match them with errors.Is.
var (
	// ErrPlanUpgradeNotFound means no plan upgrade with that id belongs to the caller.
	ErrPlanUpgradeNotFound = errs.New(errs.NotFound, "billing.plan_upgrade_not_found", "plan upgrade not found")
	// ErrPlanAlreadyActive means the caller is on the requested plan already.
	ErrPlanAlreadyActive = errs.New(errs.Conflict, "billing.plan_already_active", "the account is already on this plan")
)
