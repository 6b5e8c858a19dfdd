package billingdomain

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	authapi "github.com/seamkit/seam/modules/auth/api"
	billingapi "github.com/seamkit/seam/modules/billing/api"
	"github.com/seamkit/seam/platform/errs"
	"github.com/seamkit/seam/platform/saga"
)

// The plan-upgrade saga: its type and its steps, as named in the saga tables, logs and failpoints
// ("saga.plan_upgrade.charge.compensate", ...).
const (
	// SagaPlanUpgrade is the saga type of plan upgrades.
	SagaPlanUpgrade = "plan_upgrade"
	// StepCharge charges the plan's price (invoice, payment); its compensation refunds it.
	StepCharge = "charge"
	// StepGrantPlan asks auth to put the user on the plan.
	StepGrantPlan = "grant_plan"
)

// RefundReasonPlanNotGranted is the reason of a refund made because the plan could not be granted.
const RefundReasonPlanNotGranted = "plan_not_granted"

// PlanPrices are the prices of the paid plans.
var PlanPrices = map[string]Money{
	authapi.PlanPro:  {AmountMinor: 1900, Currency: "EUR"},
	authapi.PlanTeam: {AmountMinor: 4900, Currency: "EUR"},
}

// UpgradeState is the plan-upgrade saga's state, persisted with the saga after every step.
type UpgradeState struct {
	SagaID        string    `json:"saga_id"`
	UserID        string    `json:"user_id"`
	Email         string    `json:"email"`
	Plan          string    `json:"plan"`
	PaymentMethod string    `json:"payment_method"`
	AmountMinor   int64     `json:"amount_minor"`
	Currency      string    `json:"currency"`
	InvoiceID     string    `json:"invoice_id"`
	PaymentID     string    `json:"payment_id"`
	RequestedAt   time.Time `json:"requested_at"`
	// Set by the charge step.
	Charged     bool   `json:"charged"`
	ProviderRef string `json:"provider_ref,omitempty"`
	// Set by the charge's compensation.
	RefundRef string `json:"refund_ref,omitempty"`
}

// UpgradeStore is the storage port of plan upgrades: the operations a saga step makes in its transaction.
type UpgradeStore interface {
	// Within returns the operations inside tx, the saga step's transaction, so they commit with the step.
	Within(tx saga.Tx) UpgradeTx
}

// UpgradeTx is what the plan-upgrade steps write, inside the step's transaction.
type UpgradeTx interface {
	// CreateInvoice stores inv (open).
	CreateInvoice(ctx context.Context, inv billingapi.Invoice) error
	// InsertPayment records a payment; a second succeeded payment for an invoice is
	// billingapi.ErrInvoiceAlreadyPaid.
	InsertPayment(ctx context.Context, p billingapi.Payment) error
	// MarkInvoicePaid sets an open invoice paid at paidAt and returns it.
	MarkInvoicePaid(ctx context.Context, invoiceID string, paidAt time.Time) (billingapi.Invoice, error)
	// RefundPayment moves a succeeded payment and its paid invoice to refunded with the provider's refund
	// reference; it reports false, changing nothing, when the payment is not (or no longer) succeeded.
	RefundPayment(ctx context.Context, paymentID, invoiceID, refundRef string, at time.Time) (bool, error)
	// Publish records ev in the outbox, so it is published if and only if the transaction commits.
	Publish(ctx context.Context, ev Event) error
}

// Upgrades moves users to paid plans with the plan-upgrade saga: billing charges the price, auth grants
// the plan, and a failed grant refunds the charge (visible on the invoice and announced with
// billingapi.PaymentRefunded).
type Upgrades struct {
	runner   *saga.Runner
	store    UpgradeStore
	provider PaymentProvider
	auth     authapi.Auth
	logger   *slog.Logger
	now      func() time.Time
}

// NewUpgrades returns Upgrades running its saga on runner (registering it there), writing through store,
// charging through provider and granting plans through auth.
func NewUpgrades(runner *saga.Runner, store UpgradeStore, provider PaymentProvider, auth authapi.Auth,
	logger *slog.Logger) (*Upgrades, error) {
	u := &Upgrades{runner: runner, store: store, provider: provider, auth: auth, logger: logger,
		now: func() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }}
	err := saga.Register(runner, saga.Definition[UpgradeState]{Type: SagaPlanUpgrade, Steps: []saga.Step[UpgradeState]{
		{Name: StepCharge, Do: u.charge, Compensate: u.refund},
		{Name: StepGrantPlan, Do: u.grant},
	}})
	if err != nil {
		return nil, fmt.Errorf("plan upgrades: %w", err)
	}
	return u, nil
}

// UpgradeRequest asks to move a user to a paid plan.
type UpgradeRequest struct {
	UserID        string
	Plan          string
	PaymentMethod string
	// IdempotencyKey is the client's Idempotency-Key: the same key starts no second upgrade.
	IdempotencyKey string
}

// ValidateUpgrade checks the plan and payment method, as a validation error naming the JSON fields.
func ValidateUpgrade(plan, paymentMethod string) error {
	var c errs.Collector
	_, known := PlanPrices[plan]
	c.Check(known, "plan", "must be %q or %q", authapi.PlanPro, authapi.PlanTeam)
	c.Check(paymentMethod != "" && len(paymentMethod) <= MaxPaymentMethodLength, "payment_method",
		"is required, at most %d characters", MaxPaymentMethodLength)
	return c.Err()
}

// Upgrade starts (or, for a key used before with the same request, returns) the user's plan upgrade and
// runs it as far as it goes now: normally to its end, or to a refund awaiting its retry. A key used before
// with another plan or payment method is billingapi.ErrIdempotencyKeyReused; a user already on the plan
// billingapi.ErrPlanAlreadyActive.
func (u *Upgrades) Upgrade(ctx context.Context, req UpgradeRequest) (billingapi.PlanUpgrade, error) {
	if err := ValidateIdempotencyKey(req.IdempotencyKey); err != nil {
		return billingapi.PlanUpgrade{}, err
	}
	if err := ValidateUpgrade(req.Plan, req.PaymentMethod); err != nil {
		return billingapi.PlanUpgrade{}, err
	}
	id := saga.Key(SagaPlanUpgrade, req.UserID, req.IdempotencyKey)
	inst, err := u.runner.Get(ctx, id)
	switch {
	case err == nil:
		return u.replay(inst, req)
	case !errors.Is(err, saga.ErrNotFound):
		return billingapi.PlanUpgrade{}, fmt.Errorf("plan upgrade: %w", err)
	}
	user, err := u.auth.GetUser(ctx, req.UserID)
	if errors.Is(err, authapi.ErrUserNotFound) {
		return billingapi.PlanUpgrade{}, fmt.Errorf("user %s: %w", req.UserID, billingapi.ErrAccountNotFound)
	}
	if err != nil {
		return billingapi.PlanUpgrade{}, fmt.Errorf("plan upgrade: look up user %s: %w", req.UserID, err)
	}
	if user.Plan == req.Plan {
		return billingapi.PlanUpgrade{}, billingapi.ErrPlanAlreadyActive
	}
	price := PlanPrices[req.Plan]
	st := UpgradeState{
		SagaID:        id,
		UserID:        req.UserID,
		Email:         user.Email,
		Plan:          req.Plan,
		PaymentMethod: req.PaymentMethod,
		AmountMinor:   price.AmountMinor,
		Currency:      price.Currency,
		InvoiceID:     saga.Key(id, "invoice"),
		PaymentID:     saga.Key(id, "payment"),
		RequestedAt:   u.now(),
	}
	inst, err = u.runner.Start(ctx, SagaPlanUpgrade, id, st)
	if err != nil {
		return billingapi.PlanUpgrade{}, fmt.Errorf("plan upgrade: %w", err)
	}
	// A concurrent request with the same key may have started it first.
	return u.replay(inst, req)
}

// replay returns the upgrade inst if it was started by the same request as req.
func (u *Upgrades) replay(inst saga.Instance, req UpgradeRequest) (billingapi.PlanUpgrade, error) {
	view, st, err := upgradeView(inst)
	if err != nil {
		return billingapi.PlanUpgrade{}, err
	}
	if st.UserID != req.UserID || st.Plan != req.Plan || st.PaymentMethod != req.PaymentMethod {
		return billingapi.PlanUpgrade{}, billingapi.ErrIdempotencyKeyReused
	}
	return view, nil
}

// GetUpgrade returns one of userID's plan upgrades, or billingapi.ErrPlanUpgradeNotFound (also another
// user's).
func (u *Upgrades) GetUpgrade(ctx context.Context, userID, id string) (billingapi.PlanUpgrade, error) {
	inst, err := u.runner.Get(ctx, id)
	if errors.Is(err, saga.ErrNotFound) {
		return billingapi.PlanUpgrade{}, billingapi.ErrPlanUpgradeNotFound
	}
	if err != nil {
		return billingapi.PlanUpgrade{}, fmt.Errorf("get plan upgrade: %w", err)
	}
	if inst.Type != SagaPlanUpgrade {
		return billingapi.PlanUpgrade{}, billingapi.ErrPlanUpgradeNotFound
	}
	view, st, err := upgradeView(inst)
	if err != nil {
		return billingapi.PlanUpgrade{}, err
	}
	if st.UserID != userID {
		return billingapi.PlanUpgrade{}, billingapi.ErrPlanUpgradeNotFound
	}
	return view, nil
}

// upgradeView renders a plan-upgrade saga for its user.
func upgradeView(inst saga.Instance) (billingapi.PlanUpgrade, UpgradeState, error) {
	var st UpgradeState
	if err := inst.Decode(&st); err != nil {
		return billingapi.PlanUpgrade{}, st, err
	}
	v := billingapi.PlanUpgrade{
		ID:          inst.ID,
		UserID:      st.UserID,
		Plan:        st.Plan,
		Status:      string(inst.Status),
		AmountMinor: st.AmountMinor,
		Currency:    st.Currency,
		RefundRef:   st.RefundRef,
		FailedStep:  inst.FailedStep,
		CreatedAt:   inst.CreatedAt.UTC(),
		UpdatedAt:   inst.UpdatedAt.UTC(),
	}
	if st.Charged {
		v.InvoiceID, v.PaymentID = st.InvoiceID, st.PaymentID
	}
	if inst.FailedStep != "" {
		v.FailureCode = inst.ErrorCode
		if v.FailureCode == "" {
			v.FailureCode = "internal"
		}
	}
	return v, st, nil
}

// charge is the first step: an invoice for the plan's price, paid by charging the payment method, in the
// step's transaction with its events. The payment id derives from the saga id, so a charge run again after
// a crash is deduplicated by the provider.
func (u *Upgrades) charge(ctx context.Context, tx saga.Tx, st *UpgradeState) error {
	amount, err := NewMoney(st.AmountMinor, st.Currency)
	if err != nil {
		return fmt.Errorf("plan upgrade %s: %w", st.SagaID, err)
	}
	w := u.store.Within(tx)
	now := u.now()
	inv := billingapi.Invoice{
		ID:          st.InvoiceID,
		UserID:      st.UserID,
		AmountMinor: amount.AmountMinor,
		Currency:    amount.Currency,
		Description: "Plan upgrade: " + st.Plan,
		Status:      billingapi.StatusOpen,
		CreatedAt:   now,
	}
	if err := w.CreateInvoice(ctx, inv); err != nil {
		return fmt.Errorf("plan upgrade: create invoice: %w", err)
	}
	err = w.Publish(ctx, Event{Subject: billingapi.SubjectInvoiceCreated, Type: billingapi.EventInvoiceCreated, Key: inv.ID,
		Payload: billingapi.InvoiceCreated{InvoiceID: inv.ID, UserID: inv.UserID, Email: st.Email,
			AmountMinor: inv.AmountMinor, Currency: inv.Currency, Description: inv.Description, CreatedAt: now}})
	if err != nil {
		return fmt.Errorf("plan upgrade: %w", err)
	}
	res, err := u.provider.Charge(ctx, PaymentRequest{PaymentID: st.PaymentID, InvoiceID: inv.ID, UserID: st.UserID,
		Amount: amount, PaymentMethod: st.PaymentMethod})
	switch {
	case errors.Is(err, ErrUnknownPaymentMethod):
		return fmt.Errorf("plan upgrade: %w: %w", billingapi.ErrUnknownPaymentMethod, err)
	case errors.Is(err, ErrProviderUnavailable):
		return fmt.Errorf("plan upgrade: %w: %w", billingapi.ErrProviderUnavailable, err)
	case err != nil:
		return fmt.Errorf("plan upgrade: charge: %w", err)
	case !res.Approved:
		code := res.DeclineCode
		if code == "" {
			code = declineFallback
		}
		return fmt.Errorf("plan upgrade: %w", declined(code))
	}
	payment := billingapi.Payment{ID: st.PaymentID, InvoiceID: inv.ID, UserID: st.UserID,
		Status: billingapi.PaymentStatusSucceeded, AmountMinor: amount.AmountMinor, Currency: amount.Currency,
		ProviderRef: res.ProviderRef, CreatedAt: now}
	if err := w.InsertPayment(ctx, payment); err != nil {
		return fmt.Errorf("plan upgrade: record payment: %w", err)
	}
	if _, err := w.MarkInvoicePaid(ctx, inv.ID, now); err != nil {
		return fmt.Errorf("plan upgrade: mark invoice paid: %w", err)
	}
	err = w.Publish(ctx, Event{Subject: billingapi.SubjectPaymentCompleted, Type: billingapi.EventPaymentCompleted, Key: inv.ID,
		Payload: billingapi.PaymentCompleted{PaymentID: payment.ID, InvoiceID: inv.ID, UserID: st.UserID, Email: st.Email,
			AmountMinor: amount.AmountMinor, Currency: amount.Currency, PaidAt: now}})
	if err != nil {
		return fmt.Errorf("plan upgrade: %w", err)
	}
	st.Charged, st.ProviderRef = true, res.ProviderRef
	return nil
}

// grant is the second step: auth puts the user on the plan, idempotently per saga id.
func (u *Upgrades) grant(ctx context.Context, _ saga.Tx, st *UpgradeState) error {
	if err := u.auth.GrantPlan(ctx, st.UserID, st.Plan, st.SagaID); err != nil {
		return fmt.Errorf("plan upgrade: grant %s: %w", st.Plan, err)
	}
	return nil
}

// refund compensates the charge: the provider refunds it (the refund's reference derives from the charge,
// so a refund run again after a crash is deduplicated), and in the step's transaction the payment and
// invoice become refunded and billingapi.PaymentRefunded is published, once.
func (u *Upgrades) refund(ctx context.Context, tx saga.Tx, st *UpgradeState) error {
	amount, err := NewMoney(st.AmountMinor, st.Currency)
	if err != nil {
		return fmt.Errorf("plan upgrade %s: %w", st.SagaID, err)
	}
	ref, err := u.provider.Refund(ctx, st.ProviderRef, amount)
	if err != nil {
		return fmt.Errorf("plan upgrade: refund %s: %w", st.ProviderRef, err)
	}
	now := u.now()
	refunded, err := u.store.Within(tx).RefundPayment(ctx, st.PaymentID, st.InvoiceID, ref, now)
	if err != nil {
		return fmt.Errorf("plan upgrade: record refund: %w", err)
	}
	st.RefundRef = ref
	if !refunded {
		u.logger.WarnContext(ctx, "plan upgrade: payment was refunded before", slog.String("saga_id", st.SagaID),
			slog.String("payment_id", st.PaymentID))
		return nil
	}
	err = u.store.Within(tx).Publish(ctx, Event{Subject: billingapi.SubjectPaymentRefunded, Type: billingapi.EventPaymentRefunded,
		Key: st.InvoiceID, Payload: billingapi.PaymentRefunded{PaymentID: st.PaymentID, InvoiceID: st.InvoiceID,
			UserID: st.UserID, Email: st.Email, AmountMinor: amount.AmountMinor, Currency: amount.Currency,
			RefundRef: ref, Reason: RefundReasonPlanNotGranted, RefundedAt: now}})
	if err != nil {
		return fmt.Errorf("plan upgrade: %w", err)
	}
	return nil
}
