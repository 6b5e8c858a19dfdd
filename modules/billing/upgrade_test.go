package billing

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"testing"

	authapi "github.com/seamkit/seam/modules/auth/api"
	billingapi "github.com/seamkit/seam/modules/billing/api"
	billingdata "github.com/seamkit/seam/modules/billing/data"
	billingdomain "github.com/seamkit/seam/modules/billing/domain"
	"github.com/seamkit/seam/platform/failpoint"
	"github.com/seamkit/seam/platform/saga"
)

// GrantPlan grants every plan unless the failpoint auth's GrantPlan passes says otherwise.
func (users) GrantPlan(context.Context, string, string, string) error {
	return failpoint.Inject("auth.grant_plan")
}

// GrantPlan refuses, as there are no users.
func (noAuth) GrantPlan(context.Context, string, string, string) error {
	return authapi.ErrUserNotFound
}

func (a *api) upgrade(token, key, body string) response {
	a.t.Helper()
	header := map[string]string{}
	if key != "" {
		header[IdempotencyKeyHeader] = key
	}
	return a.do("POST", "/api/billing/plan-upgrade", token, body, header)
}

func decodeUpgrade(t *testing.T, r response, status int) billingapi.PlanUpgrade {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d (%s), want %d", r.status, r.body, status)
	}
	var up billingapi.PlanUpgrade
	if err := json.Unmarshal(r.body, &up); err != nil {
		t.Fatalf("body %s: %v", r.body, err)
	}
	return up
}

func configureFailpoints(t *testing.T, spec string) {
	t.Helper()
	if err := failpoint.Configure(spec); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = failpoint.Configure("") })
}

func (a *api) invoiceStatus(id string) string {
	a.t.Helper()
	r := a.do("GET", "/api/billing/invoices/"+id, alice, "", nil)
	if r.status != http.StatusOK {
		a.t.Fatalf("get invoice %s = %d %s", id, r.status, r.body)
	}
	var inv billingapi.Invoice
	if err := json.Unmarshal(r.body, &inv); err != nil {
		a.t.Fatal(err)
	}
	return inv.Status
}

func TestPlanUpgradeCompletes(t *testing.T) {
	a := newAPI(t)
	r := a.upgrade(alice, "up-1", `{"plan":"pro","payment_method":"pm_card_visa"}`)
	up := decodeUpgrade(t, r, http.StatusAccepted)
	if up.Status != billingapi.UpgradeCompleted || up.Plan != "pro" || up.AmountMinor != 1900 || up.Currency != "EUR" ||
		up.InvoiceID == "" || up.PaymentID == "" || up.RefundRef != "" || up.FailedStep != "" || up.UserID != alice {
		t.Fatalf("upgrade = %+v", up)
	}
	if loc := r.header.Get("Location"); loc != "/api/billing/plan-upgrades/"+up.ID {
		t.Errorf("Location = %q", loc)
	}
	if s := a.invoiceStatus(up.InvoiceID); s != billingapi.StatusPaid {
		t.Errorf("invoice status = %q, want paid", s)
	}
	again := decodeUpgrade(t, a.upgrade(alice, "up-1", `{"payment_method":"pm_card_visa","plan":"pro"}`), http.StatusAccepted)
	if again.ID != up.ID || again.Status != up.Status {
		t.Errorf("retried request = %+v, want the same upgrade %+v", again, up)
	}
	if n := a.count(`SELECT count(*) FROM billing.payments`); n != 1 {
		t.Errorf("%d payments after a retried request, want 1", n)
	}
	problem(t, a.upgrade(alice, "up-1", `{"plan":"team","payment_method":"pm_card_visa"}`),
		http.StatusUnprocessableEntity, billingapi.ErrIdempotencyKeyReused.Code)

	got := decodeUpgrade(t, a.do("GET", "/api/billing/plan-upgrades/"+up.ID, alice, "", nil), http.StatusOK)
	if got.ID != up.ID || got.Status != billingapi.UpgradeCompleted {
		t.Errorf("GET = %+v", got)
	}
	problem(t, a.do("GET", "/api/billing/plan-upgrades/"+up.ID, bob, "", nil), http.StatusNotFound, billingapi.ErrPlanUpgradeNotFound.Code)
	problem(t, a.do("GET", "/api/billing/plan-upgrades/nope", alice, "", nil), http.StatusNotFound, billingapi.ErrPlanUpgradeNotFound.Code)
	problem(t, a.do("GET", "/api/billing/plan-upgrades/"+up.ID, "", "", nil), http.StatusUnauthorized, "")
}

func TestPlanUpgradeBadInput(t *testing.T) {
	a := newAPI(t)
	tests := []struct {
		name, token, key, body string
		status                 int
		code                   string
	}{
		{"no token", "", "k", `{"plan":"pro","payment_method":"pm_card_visa"}`, http.StatusUnauthorized, ""},
		{"no key", alice, "", `{"plan":"pro","payment_method":"pm_card_visa"}`, http.StatusBadRequest, billingapi.ErrIdempotencyKeyMissing.Code},
		{"unknown plan", alice, "k", `{"plan":"gold","payment_method":"pm_card_visa"}`, http.StatusUnprocessableEntity, "validation_failed"},
		{"free plan", alice, "k", `{"plan":"free","payment_method":"pm_card_visa"}`, http.StatusUnprocessableEntity, "validation_failed"},
		{"no payment method", alice, "k", `{"plan":"pro"}`, http.StatusUnprocessableEntity, "validation_failed"},
		{"unknown field", alice, "k", `{"plan":"pro","payment_method":"pm_card_visa","x":1}`, http.StatusBadRequest, ""},
		{"wrong type", alice, "k", `{"plan":1,"payment_method":"pm_card_visa"}`, http.StatusBadRequest, ""},
		{"malformed", alice, "k", `{"plan":`, http.StatusBadRequest, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			problem(t, a.upgrade(tt.token, tt.key, tt.body), tt.status, tt.code)
		})
	}
	if n := a.count(`SELECT count(*) FROM billing.sagas`); n != 0 {
		t.Errorf("%d sagas after refused requests, want 0", n)
	}
}

func TestPlanUpgradeDeclinedCardChargesNothing(t *testing.T) {
	a := newAPI(t)
	up := decodeUpgrade(t, a.upgrade(alice, "up-d", `{"plan":"team","payment_method":"pm_card_declined"}`), http.StatusAccepted)
	if up.Status != billingapi.UpgradeCompensated || up.FailedStep != billingdomain.StepCharge ||
		up.FailureCode != billingapi.ErrPaymentDeclined.Code || up.InvoiceID != "" || up.RefundRef != "" {
		t.Fatalf("upgrade = %+v", up)
	}
	if n := a.count(`SELECT count(*) FROM billing.invoices`); n != 0 {
		t.Errorf("%d invoices after a declined upgrade, want 0", n)
	}
}

// TestPlanUpgradeGrantFailureRefunds fails auth's grant: the charge is refunded once, the invoice shows
// it, and PaymentRefunded is in the outbox once.
func TestPlanUpgradeGrantFailureRefunds(t *testing.T) {
	a := newAPI(t)
	configureFailpoints(t, "auth.grant_plan=error")
	up := decodeUpgrade(t, a.upgrade(alice, "up-g", `{"plan":"pro","payment_method":"pm_card_visa"}`), http.StatusAccepted)
	if up.Status != billingapi.UpgradeCompensated || up.FailedStep != billingdomain.StepGrantPlan ||
		up.FailureCode != "internal" || up.InvoiceID == "" || up.RefundRef == "" {
		t.Fatalf("upgrade = %+v", up)
	}
	a.checkRefundedOnce(up)
}

func (a *api) checkRefundedOnce(up billingapi.PlanUpgrade) {
	a.t.Helper()
	if s := a.invoiceStatus(up.InvoiceID); s != billingapi.StatusRefunded {
		a.t.Errorf("invoice status = %q, want refunded", s)
	}
	if n := a.count(`SELECT count(*) FROM billing.payments WHERE status = 'refunded' AND refund_ref = $1`, up.RefundRef); n != 1 {
		a.t.Errorf("%d refunded payments with ref %s, want 1", n, up.RefundRef)
	}
	if n := a.count(`SELECT count(*) FROM billing.outbox WHERE subject = $1`, billingapi.SubjectPaymentRefunded); n != 1 {
		a.t.Errorf("%d payment_refunded events, want 1", n)
	}
	var ev billingapi.PaymentRefunded
	if err := a.pool.QueryRow(a.t.Context(), `SELECT payload FROM billing.outbox WHERE subject = $1`,
		billingapi.SubjectPaymentRefunded).Scan(&ev); err != nil {
		a.t.Fatal(err)
	}
	if ev.UserID != alice || ev.InvoiceID != up.InvoiceID || ev.AmountMinor != up.AmountMinor ||
		ev.RefundRef != up.RefundRef || ev.Reason != billingdomain.RefundReasonPlanNotGranted {
		a.t.Errorf("refund event = %+v", ev)
	}
}

// TestPlanUpgradeCrashMidRefundResumes crashes the request (a panic, recovered by the HTTP layer) after the
// refund was written but before it committed; a fresh runner, as after a restart, finishes the saga with
// exactly one refund.
func TestPlanUpgradeCrashMidRefundResumes(t *testing.T) {
	a := newAPI(t)
	configureFailpoints(t, "auth.grant_plan=error,saga.plan_upgrade.charge.compensated=panic@1")
	r := a.upgrade(alice, "up-c", `{"plan":"pro","payment_method":"pm_card_visa"}`)
	if r.status != http.StatusInternalServerError {
		t.Fatalf("crashed request = %d %s, want 500", r.status, r.body)
	}
	logger := slog.New(slog.DiscardHandler)
	runner, err := saga.NewRunner(a.pool, Name, logger, saga.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var cfg Config
	cfg.SetDefaults()
	provider, _ := newProvider(cfg)
	upgrades, err := newUpgrades(runner, billingdata.NewUpgradeStore(a.pool), provider, users{}, logger)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := runner.Resume(t.Context()); err != nil {
		t.Fatal(err)
	}
	id := saga.Key(billingdomain.SagaPlanUpgrade, alice, "up-c")
	up, err := upgrades.GetUpgrade(t.Context(), alice, id)
	if err != nil {
		t.Fatal(err)
	}
	if up.Status != billingapi.UpgradeCompensated || up.RefundRef == "" {
		t.Fatalf("after resume: %+v", up)
	}
	a.checkRefundedOnce(up)
}
