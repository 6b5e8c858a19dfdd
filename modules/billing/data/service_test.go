package billingdata_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	billingapi "github.com/seamkit/seam/modules/billing/api"
	billingdata "github.com/seamkit/seam/modules/billing/data"
	billingdomain "github.com/seamkit/seam/modules/billing/domain"
	"github.com/seamkit/seam/platform/errs"
)

// countingProvider is SimulatedProvider counting the charges it approves.
type countingProvider struct {
	billingdomain.SimulatedProvider
	approved atomic.Int32
}

func (p *countingProvider) Charge(ctx context.Context, req billingdomain.PaymentRequest) (billingdomain.PaymentResult, error) {
	res, err := p.SimulatedProvider.Charge(ctx, req)
	if err == nil && res.Approved {
		p.approved.Add(1)
	}
	return res, err
}

// render stores outcomes as {"code": ...} or the result, enough to tell them apart.
func render(res billingdomain.PayResult, err error) (billingdomain.Response, error) {
	if e, ok := errs.As(err); ok {
		status := map[string]int{
			billingapi.ErrPaymentDeclined.Code:    http.StatusPaymentRequired,
			billingapi.ErrInvoiceAlreadyPaid.Code: http.StatusConflict,
			billingapi.ErrInvoiceNotFound.Code:    http.StatusNotFound,
		}[e.Code]
		return billingdomain.Response{Status: status, Body: []byte(`{"code":"` + e.Code + `"}`)}, nil
	}
	body, err := json.Marshal(res)
	return billingdomain.Response{Status: http.StatusOK, Body: body}, err
}

func TestServiceOnPostgres(t *testing.T) {
	repo, pool := newRepo(t)
	provider := &countingProvider{}
	svc := billingdomain.NewService(repo, provider, fakeAuth{}, discard(), billingdomain.Options{})
	ctx := t.Context()
	inv, err := svc.CreateInvoice(ctx, alice, billingdomain.NewInvoice{AmountMinor: 4200, Currency: "JPY", Description: "ramen"})
	if err != nil {
		t.Fatalf("CreateInvoice: %v", err)
	}
	pay := func(key, method string) (billingdomain.Response, error) {
		return svc.Pay(ctx, billingdomain.PayRequest{UserID: alice, InvoiceID: inv.ID, PaymentMethod: method, IdempotencyKey: key,
			RequestHash: billingdomain.RequestHash("POST", "/pay/"+inv.ID, []byte(method))}, render)
	}

	declined, err := pay("declined", billingdomain.MethodCardExpired)
	if err != nil || declined.Status != http.StatusPaymentRequired {
		t.Fatalf("declined card = %d, %v", declined.Status, err)
	}

	// Many payers with different keys at once: one charge, everyone else told the invoice is paid.
	const n = 6
	statuses := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			resp, err := pay(fmt.Sprintf("key-%d", i), billingdomain.MethodCardVisa)
			if err != nil {
				t.Errorf("Pay %d: %v", i, err)
			}
			statuses[i] = resp.Status
		})
	}
	wg.Wait()
	paid := 0
	for _, s := range statuses {
		if s == http.StatusOK {
			paid++
		} else if s != http.StatusConflict {
			t.Errorf("status %d, want 200 or 409", s)
		}
	}
	if paid != 1 || provider.approved.Load() != 1 {
		t.Errorf("%d requests paid and %d charges approved, want 1 and 1 (statuses %v)", paid, provider.approved.Load(), statuses)
	}
	if got := count(t, pool, `SELECT count(*) FROM billing.payments WHERE invoice_id = $1 AND status = 'succeeded'`, inv.ID); got != 1 {
		t.Errorf("succeeded payments = %d, want 1", got)
	}
	if got := count(t, pool, `SELECT count(*) FROM billing.outbox WHERE subject = $1`, billingapi.SubjectPaymentCompleted); got != 1 {
		t.Errorf("PaymentCompleted events = %d, want 1", got)
	}
	if got := count(t, pool, `SELECT count(*) FROM billing.outbox WHERE subject = $1`, billingapi.SubjectPaymentFailed); got != 1 {
		t.Errorf("PaymentFailed events = %d, want 1", got)
	}

	// Every key replays its own stored answer, byte for byte.
	again, err := pay("declined", billingdomain.MethodCardExpired)
	if err != nil || !again.Replayed || !bytes.Equal(again.Body, declined.Body) || again.Status != declined.Status {
		t.Errorf("replayed decline = %d %q replayed %v, %v", again.Status, again.Body, again.Replayed, err)
	}
	if _, err := pay("declined", billingdomain.MethodCardVisa); !errors.Is(err, billingapi.ErrIdempotencyKeyReused) {
		t.Errorf("reused key error = %v, want ErrIdempotencyKeyReused", err)
	}

	// A provider outage (an amount ending in 13) leaves no key behind, so the client may retry.
	outage, err := svc.CreateInvoice(ctx, alice, billingdomain.NewInvoice{AmountMinor: 1013, Currency: "EUR", Description: "x"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = svc.Pay(ctx, billingdomain.PayRequest{UserID: alice, InvoiceID: outage.ID, PaymentMethod: billingdomain.MethodCardVisa,
		IdempotencyKey: "outage", RequestHash: make([]byte, 32)}, render)
	if !errors.Is(err, billingapi.ErrProviderUnavailable) {
		t.Fatalf("outage error = %v, want ErrProviderUnavailable", err)
	}
	if got := count(t, pool, `SELECT count(*) FROM billing.idempotency_keys WHERE key = 'outage'`); got != 0 {
		t.Errorf("the outage left its key behind")
	}
}

func TestPayTakesOverTheKeyOfAProcessThatDiedMidPayment(t *testing.T) {
	repo, pool := newRepo(t)
	provider := &countingProvider{}
	svc := billingdomain.NewService(repo, provider, fakeAuth{}, discard(), billingdomain.Options{})
	ctx := t.Context()
	inv, err := svc.CreateInvoice(ctx, alice, billingdomain.NewInvoice{AmountMinor: 1250, Currency: "EUR", Description: "x"})
	if err != nil {
		t.Fatal(err)
	}
	req := billingdomain.PayRequest{UserID: alice, InvoiceID: inv.ID, PaymentMethod: billingdomain.MethodCardVisa,
		IdempotencyKey: "k-crash", RequestHash: billingdomain.RequestHash("POST", "/pay/"+inv.ID, nil)}

	// The first process claims the key, then dies in the payment's transaction with the invoice locked.
	dead, err := repo.HoldIdempotencyKey(ctx, alice, req.IdempotencyKey)
	if err != nil {
		t.Fatal(err)
	}
	defer dead.Release()
	claim := billingdomain.IdempotencyRecord{UserID: alice, Key: req.IdempotencyKey, RequestHash: req.RequestHash,
		PaymentID: "0190a000-0000-7000-8000-0000000dead0", State: billingdomain.KeyStateInProgress, CreatedAt: at(0), UpdatedAt: at(0)}
	if err := dead.CreateIdempotencyKey(ctx, claim); err != nil {
		t.Fatal(err)
	}
	err = dead.InPaymentTx(ctx, func(ctx context.Context, tx billingdomain.PaymentTx) error {
		if _, err := tx.LockInvoice(ctx, alice, inv.ID); err != nil {
			return err
		}
		return billingdata.SeverHold(dead)
	})
	if err == nil {
		t.Fatal("the dead process's payment committed")
	}

	// The gateway resends the request a moment later to a live instance: it goes through as soon as the
	// database has ended the dead session, which frees the key's lock and the invoice's row lock together.
	start := time.Now()
	var resp billingdomain.Response
	waitFor(t, "the resent request to take the key over", func(ctx context.Context) (bool, error) {
		r, err := svc.Pay(ctx, req, render)
		if errors.Is(err, billingapi.ErrIdempotencyKeyInUse) {
			return false, nil
		}
		resp = r
		return err == nil, err
	})
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the resent request went through %v after the crash, want within seconds", took)
	}
	var res billingdomain.PayResult
	if err := json.Unmarshal(resp.Body, &res); err != nil || resp.Status != http.StatusOK {
		t.Fatalf("resent request = %d %s, want 200", resp.Status, resp.Body)
	}
	if res.Payment.ID != claim.PaymentID || provider.approved.Load() != 1 {
		t.Errorf("paid under %s with %d approved charges, want the dead claim's %s and 1", res.Payment.ID, provider.approved.Load(), claim.PaymentID)
	}
	if got := count(t, pool, `SELECT count(*) FROM billing.payments WHERE invoice_id = $1 AND status = 'succeeded'`, inv.ID); got != 1 {
		t.Errorf("succeeded payments = %d, want 1", got)
	}
}

func TestPayTakesOneConnection(t *testing.T) {
	_, pool := newRepo(t)
	// On a pool of one connection, a payment that wanted a second one would wait for it until it timed out.
	cfg := pool.Config()
	cfg.MaxConns = 1
	one, err := pgxpool.NewWithConfig(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer one.Close()
	svc := billingdomain.NewService(billingdata.NewRepository(one), &countingProvider{}, fakeAuth{}, discard(),
		billingdomain.Options{PaymentTimeout: 5 * time.Second})
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	pay := func(invoiceID, key string) (billingdomain.Response, error) {
		return svc.Pay(ctx, billingdomain.PayRequest{UserID: alice, InvoiceID: invoiceID, PaymentMethod: billingdomain.MethodCardVisa,
			IdempotencyKey: key, RequestHash: billingdomain.RequestHash("POST", "/pay/"+invoiceID, nil)}, render)
	}
	inv, err := svc.CreateInvoice(ctx, alice, billingdomain.NewInvoice{AmountMinor: 4200, Currency: "EUR", Description: "x"})
	if err != nil {
		t.Fatal(err)
	}
	const n = 4
	statuses := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			resp, err := pay(inv.ID, fmt.Sprintf("key-%d", i))
			if err != nil {
				t.Errorf("Pay %d: %v", i, err)
			}
			statuses[i] = resp.Status
		})
	}
	wg.Wait()
	if slices.Sort(statuses); !slices.Equal(statuses, []int{http.StatusOK, http.StatusConflict, http.StatusConflict, http.StatusConflict}) {
		t.Errorf("statuses = %v, want one 200 and three 409", statuses)
	}
	if again, err := pay(inv.ID, "key-0"); err != nil || !again.Replayed {
		t.Errorf("replay = %+v, %v", again, err)
	}
	outage, err := svc.CreateInvoice(ctx, alice, billingdomain.NewInvoice{AmountMinor: 1013, Currency: "EUR", Description: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pay(outage.ID, "outage"); !errors.Is(err, billingapi.ErrProviderUnavailable) {
		t.Errorf("outage error = %v, want ErrProviderUnavailable", err)
	}
	if got := count(t, pool, `SELECT count(*) FROM billing.idempotency_keys WHERE key = 'outage'`); got != 0 {
		t.Errorf("the outage left its key behind")
	}
}
