package billingdomain_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"

	billingapi "github.com/seamkit/seam/modules/billing/api"
	billingdomain "github.com/seamkit/seam/modules/billing/domain"
	"github.com/seamkit/seam/platform/errs"
)

func TestPaySucceedsAndReplays(t *testing.T) {
	e := newEnv(t)
	inv := e.invoice(t, alice, 1250)

	resp, err := e.pay(t.Context(), alice, inv.ID, "k1", billingdomain.MethodCardVisa)
	if err != nil {
		t.Fatalf("Pay: %v", err)
	}
	if resp.Status != http.StatusOK || resp.Replayed {
		t.Fatalf("Pay = %d (replayed %v), want a fresh 200", resp.Status, resp.Replayed)
	}
	res := decodeBody(t, resp).Result
	if res == nil || res.Payment.Status != billingapi.PaymentStatusSucceeded || res.Payment.AmountMinor != 1250 ||
		res.Payment.Currency != "EUR" || res.Payment.ProviderRef != "sim_"+res.Payment.ID ||
		res.Invoice.Status != billingapi.StatusPaid || res.Invoice.PaidAt == nil {
		t.Fatalf("pay result = %+v", res)
	}

	st := e.repo.snapshot()
	if got := st.invoices[inv.ID]; got.Status != billingapi.StatusPaid {
		t.Errorf("stored invoice status = %s, want paid", got.Status)
	}
	if len(st.payments) != 1 || st.payments[0].ID != res.Payment.ID {
		t.Errorf("payments = %+v", st.payments)
	}
	last := st.events[len(st.events)-1]
	completed, ok := last.Payload.(billingapi.PaymentCompleted)
	if last.Subject != billingapi.SubjectPaymentCompleted || last.Key != inv.ID || !ok ||
		completed.Email != "alice@example.com" || completed.PaymentID != res.Payment.ID || completed.AmountMinor != 1250 {
		t.Errorf("last event = %+v", last)
	}
	key := st.keys[keyID(alice, "k1")]
	if key.State != billingdomain.KeyStateDone || key.Response.Status != http.StatusOK || !bytes.Equal(key.Response.Body, resp.Body) {
		t.Errorf("stored key = %+v", key)
	}

	again, err := e.pay(t.Context(), alice, inv.ID, "k1", billingdomain.MethodCardVisa)
	if err != nil {
		t.Fatalf("replayed Pay: %v", err)
	}
	if !again.Replayed || again.Status != resp.Status || !bytes.Equal(again.Body, resp.Body) {
		t.Errorf("replay = %d %q (replayed %v), want the stored %d %q", again.Status, again.Body, again.Replayed, resp.Status, resp.Body)
	}
	if n := len(e.provider.charges()); n != 1 {
		t.Errorf("provider charged %d times, want 1", n)
	}
	if n := len(e.repo.snapshot().events); n != len(st.events) {
		t.Errorf("the replay published events")
	}
}

func TestPayKeyRules(t *testing.T) {
	t.Run("missing or invalid key changes nothing", func(t *testing.T) {
		e := newEnv(t)
		inv := e.invoice(t, alice, 1250)
		if _, err := e.pay(t.Context(), alice, inv.ID, "", billingdomain.MethodCardVisa); !errors.Is(err, billingapi.ErrIdempotencyKeyMissing) {
			t.Errorf("no key: error = %v, want ErrIdempotencyKeyMissing", err)
		}
		if _, err := e.pay(t.Context(), alice, inv.ID, "bad\nkey", billingdomain.MethodCardVisa); !errors.Is(err, billingapi.ErrIdempotencyKeyInvalid) {
			t.Errorf("bad key: error = %v, want ErrIdempotencyKeyInvalid", err)
		}
		if _, err := e.pay(t.Context(), alice, inv.ID, "k", ""); !errors.Is(err, errs.ErrValidation) {
			t.Errorf("no method: error = %v, want a validation error", err)
		}
		if st := e.repo.snapshot(); len(st.keys) != 0 || len(st.payments) != 0 || len(e.provider.charges()) != 0 {
			t.Errorf("refused requests left state: keys %v payments %v", st.keys, st.payments)
		}
	})

	t.Run("same key with another request is refused", func(t *testing.T) {
		e := newEnv(t)
		inv := e.invoice(t, alice, 1250)
		other := e.invoice(t, alice, 500)
		if _, err := e.pay(t.Context(), alice, inv.ID, "k1", billingdomain.MethodCardVisa); err != nil {
			t.Fatalf("Pay: %v", err)
		}
		if _, err := e.pay(t.Context(), alice, inv.ID, "k1", billingdomain.MethodCardMastercard); !errors.Is(err, billingapi.ErrIdempotencyKeyReused) {
			t.Errorf("other body: error = %v, want ErrIdempotencyKeyReused", err)
		}
		if _, err := e.pay(t.Context(), alice, other.ID, "k1", billingdomain.MethodCardVisa); !errors.Is(err, billingapi.ErrIdempotencyKeyReused) {
			t.Errorf("other invoice: error = %v, want ErrIdempotencyKeyReused", err)
		}
		if n := len(e.provider.charges()); n != 1 {
			t.Errorf("provider charged %d times, want 1", n)
		}
	})

	t.Run("keys are scoped per user", func(t *testing.T) {
		e := newEnv(t)
		a := e.invoice(t, alice, 1250)
		b := e.invoice(t, bob, 700)
		for _, p := range []struct{ user, invoice string }{{alice, a.ID}, {bob, b.ID}} {
			resp, err := e.pay(t.Context(), p.user, p.invoice, "same-key", billingdomain.MethodCardVisa)
			if err != nil || resp.Status != http.StatusOK || resp.Replayed {
				t.Errorf("Pay(%s) = %d replayed %v, %v; want a fresh 200", p.user, resp.Status, resp.Replayed, err)
			}
		}
	})

	t.Run("a key whose holder is alive is in use", func(t *testing.T) {
		e := newEnv(t)
		inv := e.invoice(t, alice, 1250)
		release := make(chan struct{})
		inCharge := make(chan struct{})
		var once sync.Once
		e.provider.hook = func(context.Context) {
			once.Do(func() {
				close(inCharge)
				<-release
			})
		}
		done := make(chan error, 1)
		go func() {
			_, err := e.pay(context.Background(), alice, inv.ID, "k1", billingdomain.MethodCardVisa)
			done <- err
		}()
		<-inCharge
		if _, err := e.pay(t.Context(), alice, inv.ID, "k1", billingdomain.MethodCardVisa); !errors.Is(err, billingapi.ErrIdempotencyKeyInUse) {
			t.Errorf("concurrent same key: error = %v, want ErrIdempotencyKeyInUse", err)
		}
		if _, err := e.pay(t.Context(), alice, inv.ID, "k1", billingdomain.MethodCardMastercard); !errors.Is(err, billingapi.ErrIdempotencyKeyReused) {
			t.Errorf("concurrent same key, other request: error = %v, want ErrIdempotencyKeyReused", err)
		}
		close(release)
		if err := <-done; err != nil {
			t.Fatalf("first Pay: %v", err)
		}
		if n := len(e.provider.charges()); n != 1 {
			t.Errorf("provider charged %d times, want 1", n)
		}
	})

	t.Run("a held key answers from its row", func(t *testing.T) {
		e := newEnv(t)
		inv := e.invoice(t, alice, 1250)
		paid, err := e.pay(t.Context(), alice, inv.ID, "k-done", billingdomain.MethodCardVisa)
		if err != nil {
			t.Fatal(err)
		}
		// Another live process holds the keys (a replay of k-done in flight, a request for k-new that has not
		// recorded its key yet).
		for _, key := range []string{"k-done", "k-new"} {
			hold, err := e.repo.HoldIdempotencyKey(t.Context(), alice, key)
			if err != nil {
				t.Fatal(err)
			}
			defer hold.Release()
		}
		again, err := e.pay(t.Context(), alice, inv.ID, "k-done", billingdomain.MethodCardVisa)
		if err != nil || !again.Replayed || !bytes.Equal(again.Body, paid.Body) {
			t.Errorf("done key held elsewhere = %q replayed %v, %v; want the stored response", again.Body, again.Replayed, err)
		}
		if _, err := e.pay(t.Context(), alice, inv.ID, "k-done", billingdomain.MethodCardMastercard); !errors.Is(err, billingapi.ErrIdempotencyKeyReused) {
			t.Errorf("done key held elsewhere, other request: error = %v, want ErrIdempotencyKeyReused", err)
		}
		if _, err := e.pay(t.Context(), alice, inv.ID, "k-new", billingdomain.MethodCardVisa); !errors.Is(err, billingapi.ErrIdempotencyKeyInUse) {
			t.Errorf("unrecorded key held elsewhere: error = %v, want ErrIdempotencyKeyInUse", err)
		}
		if n := len(e.provider.charges()); n != 1 {
			t.Errorf("provider charged %d times, want 1", n)
		}
	})

	t.Run("a key left in progress by a dead process is taken over at once with its payment id", func(t *testing.T) {
		e := newEnv(t)
		inv := e.invoice(t, alice, 800)
		claimedPaymentID := "0190a000-0000-7000-8000-0000000dead0"
		claim := billingdomain.IdempotencyRecord{
			UserID: alice, Key: "k-crashed", RequestHash: payHash(inv.ID, billingdomain.MethodCardVisa), PaymentID: claimedPaymentID,
			State: billingdomain.KeyStateInProgress, CreatedAt: e.clock.Now(), UpdatedAt: e.clock.Now(),
		}
		hold, err := e.repo.HoldIdempotencyKey(t.Context(), alice, "k-crashed")
		if err != nil {
			t.Fatal(err)
		}
		if err := hold.CreateIdempotencyKey(t.Context(), claim); err != nil {
			t.Fatal(err)
		}
		if _, err := e.pay(t.Context(), alice, inv.ID, "k-crashed", billingdomain.MethodCardVisa); !errors.Is(err, billingapi.ErrIdempotencyKeyInUse) {
			t.Errorf("in-progress key whose holder lives: error = %v, want ErrIdempotencyKeyInUse", err)
		}
		// The holder dies without completing: its lock is freed (its session ended), its row stays in progress.
		hold.Release()
		resp, err := e.pay(t.Context(), alice, inv.ID, "k-crashed", billingdomain.MethodCardVisa)
		if err != nil || resp.Status != http.StatusOK || resp.Replayed {
			t.Fatalf("retry after the holder died: Pay = %d replayed %v, %v; want a fresh 200 at once", resp.Status, resp.Replayed, err)
		}
		if got := decodeBody(t, resp).Result.Payment.ID; got != claimedPaymentID {
			t.Errorf("the takeover paid under payment id %s, want the dead claim's %s", got, claimedPaymentID)
		}
		if charges := e.provider.charges(); len(charges) != 1 || charges[0].PaymentID != claimedPaymentID {
			t.Errorf("charges = %+v, want one under %s", charges, claimedPaymentID)
		}
		key := e.repo.snapshot().keys[keyID(alice, "k-crashed")]
		if key.State != billingdomain.KeyStateDone || !key.CreatedAt.Equal(claim.CreatedAt) {
			t.Errorf("key = %+v, want the dead claim's row completed", key)
		}
	})
}

func payHash(invoiceID, method string) []byte {
	return billingdomain.RequestHash(http.MethodPost, "/api/billing/invoices/"+invoiceID+"/pay",
		[]byte(`{"payment_method":"`+method+`"}`))
}

func TestPayDeclined(t *testing.T) {
	e := newEnv(t)
	inv := e.invoice(t, alice, 1250)
	resp, err := e.pay(t.Context(), alice, inv.ID, "k1", billingdomain.MethodCardInsufficientFunds)
	if err != nil {
		t.Fatalf("Pay: %v", err)
	}
	body := decodeBody(t, resp)
	if resp.Status != http.StatusPaymentRequired || body.Code != billingapi.ErrPaymentDeclined.Code ||
		body.Message != "the payment was declined (decline code: insufficient_funds)" {
		t.Fatalf("declined = %d %+v", resp.Status, body)
	}
	st := e.repo.snapshot()
	if st.invoices[inv.ID].Status != billingapi.StatusOpen {
		t.Errorf("a declined payment changed the invoice: %+v", st.invoices[inv.ID])
	}
	if len(st.payments) != 1 || st.payments[0].Status != billingapi.PaymentStatusFailed || st.payments[0].DeclineCode != "insufficient_funds" {
		t.Errorf("payments = %+v, want one failed", st.payments)
	}
	last := st.events[len(st.events)-1]
	failed, ok := last.Payload.(billingapi.PaymentFailed)
	if last.Subject != billingapi.SubjectPaymentFailed || !ok || failed.DeclineCode != "insufficient_funds" || failed.Email != "alice@example.com" {
		t.Errorf("last event = %+v", last)
	}

	again, err := e.pay(t.Context(), alice, inv.ID, "k1", billingdomain.MethodCardInsufficientFunds)
	if err != nil || !again.Replayed || !bytes.Equal(again.Body, resp.Body) || again.Status != resp.Status {
		t.Errorf("replayed decline = %d %q replayed %v, %v", again.Status, again.Body, again.Replayed, err)
	}
	if n := len(e.provider.charges()); n != 1 {
		t.Errorf("provider charged %d times, want 1", n)
	}

	ok2, err := e.pay(t.Context(), alice, inv.ID, "k2", billingdomain.MethodCardVisa)
	if err != nil || ok2.Status != http.StatusOK {
		t.Fatalf("paying with another card after a decline = %d, %v", ok2.Status, err)
	}
}

func TestPayStoredBusinessErrors(t *testing.T) {
	tests := []struct {
		name       string
		setup      func(t *testing.T, e *env) (invoiceID string)
		user       string
		method     string
		wantStatus int
		wantCode   string
		wantCharge bool
	}{
		{
			name: "already paid",
			setup: func(t *testing.T, e *env) string {
				inv := e.invoice(t, alice, 1250)
				if _, err := e.pay(t.Context(), alice, inv.ID, "first", billingdomain.MethodCardVisa); err != nil {
					t.Fatal(err)
				}
				return inv.ID
			},
			user: alice, method: billingdomain.MethodCardVisa,
			wantStatus: http.StatusConflict, wantCode: billingapi.ErrInvoiceAlreadyPaid.Code,
		},
		{
			name:  "another user's invoice",
			setup: func(t *testing.T, e *env) string { return e.invoice(t, alice, 1250).ID },
			user:  bob, method: billingdomain.MethodCardVisa,
			wantStatus: http.StatusNotFound, wantCode: billingapi.ErrInvoiceNotFound.Code,
		},
		{
			name:  "unknown invoice",
			setup: func(*testing.T, *env) string { return "00000000-0000-4000-8000-000000000000" },
			user:  alice, method: billingdomain.MethodCardVisa,
			wantStatus: http.StatusNotFound, wantCode: billingapi.ErrInvoiceNotFound.Code,
		},
		{
			name:  "unknown payment method",
			setup: func(t *testing.T, e *env) string { return e.invoice(t, alice, 1250).ID },
			user:  alice, method: "pm_card_made_up",
			wantStatus: http.StatusUnprocessableEntity, wantCode: billingapi.ErrUnknownPaymentMethod.Code, wantCharge: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			invoiceID := tt.setup(t, e)
			charges, before := len(e.provider.charges()), e.repo.snapshot()
			resp, err := e.pay(t.Context(), tt.user, invoiceID, "k", tt.method)
			if err != nil {
				t.Fatalf("Pay: %v", err)
			}
			if body := decodeBody(t, resp); resp.Status != tt.wantStatus || body.Code != tt.wantCode {
				t.Fatalf("Pay = %d %+v, want %d %s", resp.Status, body, tt.wantStatus, tt.wantCode)
			}
			if got := len(e.provider.charges()) - charges; (got == 1) != tt.wantCharge || got > 1 {
				t.Errorf("provider called %d times", got)
			}
			after := e.repo.snapshot()
			if len(after.payments) != len(before.payments) || len(after.events) != len(before.events) {
				t.Errorf("a refused payment recorded payments or events")
			}
			again, err := e.pay(t.Context(), tt.user, invoiceID, "k", tt.method)
			if err != nil || !again.Replayed || !bytes.Equal(again.Body, resp.Body) {
				t.Errorf("replay = %q replayed %v, %v; want the stored response", again.Body, again.Replayed, err)
			}
		})
	}
}

func TestPayProviderUnavailableFreesTheKey(t *testing.T) {
	e := newEnv(t)
	inv := e.invoice(t, alice, 1250)
	e.provider.setDown(true)
	_, err := e.pay(t.Context(), alice, inv.ID, "k1", billingdomain.MethodCardVisa)
	if !errors.Is(err, billingapi.ErrProviderUnavailable) {
		t.Fatalf("error = %v, want ErrProviderUnavailable", err)
	}
	st := e.repo.snapshot()
	if len(st.keys) != 0 || len(st.payments) != 0 || st.invoices[inv.ID].Status != billingapi.StatusOpen {
		t.Fatalf("an outage left state: keys %v payments %v", st.keys, st.payments)
	}
	e.provider.setDown(false)
	resp, err := e.pay(t.Context(), alice, inv.ID, "k1", billingdomain.MethodCardVisa)
	if err != nil || resp.Status != http.StatusOK || resp.Replayed {
		t.Fatalf("retry after the outage = %d replayed %v, %v", resp.Status, resp.Replayed, err)
	}

	// The simulated provider's own outage (an amount ending in 13) behaves the same.
	outage := e.invoice(t, alice, 1013)
	if _, err := e.pay(t.Context(), alice, outage.ID, "k2", billingdomain.MethodCardVisa); !errors.Is(err, billingapi.ErrProviderUnavailable) {
		t.Errorf("amount ending in 13: error = %v, want ErrProviderUnavailable", err)
	}
}

func TestPayRecordingFailureAfterAChargeLeavesTheKeyToARetry(t *testing.T) {
	e := newEnv(t)
	inv := e.invoice(t, alice, 1250)
	e.repo.failOnce("CompleteIdempotencyKey", errors.New("connection reset"))
	_, err := e.pay(t.Context(), alice, inv.ID, "k1", billingdomain.MethodCardVisa)
	if err == nil {
		t.Fatal("Pay succeeded, want the injected failure")
	}
	if _, ok := errs.As(err); ok {
		t.Errorf("error %v is a client error; an internal failure must stay internal", err)
	}
	st := e.repo.snapshot()
	if len(st.payments) != 0 || st.invoices[inv.ID].Status != billingapi.StatusOpen {
		t.Fatalf("the failed transaction left a payment or a paid invoice")
	}
	key, ok := st.keys[keyID(alice, "k1")]
	if !ok || key.State != billingdomain.KeyStateInProgress {
		t.Fatalf("key = %+v (present %v), want it kept in progress after an approved charge", key, ok)
	}

	resp, err := e.pay(t.Context(), alice, inv.ID, "k1", billingdomain.MethodCardVisa)
	if err != nil || resp.Status != http.StatusOK {
		t.Fatalf("immediate retry = %d, %v; want 200", resp.Status, err)
	}
	charges := e.provider.charges()
	if len(charges) != 2 || charges[0].PaymentID != charges[1].PaymentID || charges[0].PaymentID != key.PaymentID {
		t.Errorf("charges = %+v, want two with the key's payment id %s (deduplicated by the provider)", charges, key.PaymentID)
	}
}

func TestPayFailsWhenTheKeyCannotBeHeld(t *testing.T) {
	e := newEnv(t)
	inv := e.invoice(t, alice, 1250)
	down := errors.New("connection refused")
	e.repo.failOnce("HoldIdempotencyKey", down)
	_, err := e.pay(t.Context(), alice, inv.ID, "k1", billingdomain.MethodCardVisa)
	if !errors.Is(err, down) {
		t.Fatalf("error = %v, want the repository's", err)
	}
	if _, ok := errs.As(err); ok {
		t.Errorf("error %v is a client error; an internal failure must stay internal", err)
	}
	if st := e.repo.snapshot(); len(st.keys) != 0 || len(e.provider.charges()) != 0 {
		t.Fatalf("a request that could not hold its key left keys %v or charged", st.keys)
	}
}

func TestPayInternalFailureBeforeAChargeDeletesTheKey(t *testing.T) {
	e := newEnv(t)
	inv := e.invoice(t, alice, 1250)
	e.repo.failOnce("LockInvoice", errors.New("connection reset"))
	if _, err := e.pay(t.Context(), alice, inv.ID, "k1", billingdomain.MethodCardVisa); err == nil {
		t.Fatal("Pay succeeded, want the injected failure")
	}
	if st := e.repo.snapshot(); len(st.keys) != 0 {
		t.Fatalf("keys = %v, want the key deleted", st.keys)
	}
	e.auth.remove(alice)
	if _, err := e.pay(t.Context(), alice, inv.ID, "k1", billingdomain.MethodCardVisa); !errors.Is(err, billingapi.ErrAccountNotFound) {
		t.Fatalf("missing account: error = %v, want ErrAccountNotFound", err)
	}
	if st := e.repo.snapshot(); len(st.keys) != 0 || len(e.provider.charges()) != 0 {
		t.Fatalf("a missing account left keys %v or charged", st.keys)
	}
}

func TestPayConcurrentKeysChargeAnInvoiceOnce(t *testing.T) {
	e := newEnv(t)
	inv := e.invoice(t, alice, 1250)
	const n = 8
	statuses := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			resp, err := e.pay(t.Context(), alice, inv.ID, "key-"+string(rune('a'+i)), billingdomain.MethodCardVisa)
			if err != nil {
				t.Errorf("Pay %d: %v", i, err)
			}
			statuses[i] = resp.Status
		})
	}
	wg.Wait()
	ok, conflict := 0, 0
	for _, s := range statuses {
		switch s {
		case http.StatusOK:
			ok++
		case http.StatusConflict:
			conflict++
		}
	}
	if ok != 1 || conflict != n-1 {
		t.Errorf("statuses = %v, want one 200 and %d 409", statuses, n-1)
	}
	if got := len(e.provider.charges()); got != 1 {
		t.Errorf("provider charged %d times, want 1", got)
	}
}

func TestPayRunsToTheEndWhenTheClientGoesAway(t *testing.T) {
	e := newEnv(t)
	inv := e.invoice(t, alice, 1250)
	ctx, cancel := context.WithCancel(t.Context())
	var chargeCtxErr error
	e.provider.hook = func(chargeCtx context.Context) {
		cancel()
		chargeCtxErr = chargeCtx.Err()
	}
	resp, err := e.pay(ctx, alice, inv.ID, "k1", billingdomain.MethodCardVisa)
	if err != nil || resp.Status != http.StatusOK {
		t.Fatalf("Pay = %d, %v; want 200 although the client left", resp.Status, err)
	}
	if chargeCtxErr != nil {
		t.Errorf("the charge saw %v", chargeCtxErr)
	}
	if st := e.repo.snapshot(); st.keys[keyID(alice, "k1")].State != billingdomain.KeyStateDone {
		t.Errorf("the key was not completed")
	}
}
