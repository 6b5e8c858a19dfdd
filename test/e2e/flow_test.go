package e2e

import (
	"bytes"
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/seamkit/seam/test/harness"
)

// eventDeadline bounds how long an event may take to reach its consumers in a test.
const eventDeadline = 30 * time.Second

// TestJourney is the whole flow: sign up, log in, create an invoice, pay it, see the notification, and see
// the revenue in the admin's report.
func TestJourney(t *testing.T) {
	t.Parallel()
	p := startMonolith(t, "")
	a := newAPI(t, p)

	email := uniqueEmail("alice")
	alice := a.signup(email, "correct horse battery")
	if alice.Role != "user" || alice.Email != email {
		t.Fatalf("signup returned %+v", alice)
	}
	alice.Token = a.login(email, "correct horse battery")

	var me user
	a.expect(harness.Request{Method: "GET", Path: "/api/auth/me", Token: alice.Token}, http.StatusOK).JSON(t, &me)
	if me.ID != alice.ID || me.Email != email {
		t.Fatalf("me = %+v, want %+v", me, alice)
	}

	inv := a.createInvoice(alice.Token, 1250, "EUR")
	if inv.Status != "open" || inv.UserID != alice.ID || inv.AmountMinor != 1250 {
		t.Fatalf("invoice = %+v", inv)
	}
	var got invoice
	a.expect(harness.Request{Method: "GET", Path: "/api/billing/invoices/" + inv.ID, Token: alice.Token}, http.StatusOK).JSON(t, &got)
	if got.ID != inv.ID {
		t.Fatalf("get invoice = %+v", got)
	}

	paid := a.expect(payRequest(alice.Token, inv.ID, "pay-"+inv.ID, "pm_card_visa"), http.StatusOK)
	var payResult struct {
		Payment struct {
			ID     string `json:"id"`
			Status string `json:"status"`
		} `json:"payment"`
		Invoice invoice `json:"invoice"`
	}
	paid.JSON(t, &payResult)
	if payResult.Payment.Status != "succeeded" || payResult.Invoice.Status != "paid" {
		t.Fatalf("pay = %s", paid.Body)
	}
	replay := a.expect(payRequest(alice.Token, inv.ID, "pay-"+inv.ID, "pm_card_visa"), http.StatusOK)
	if !bytes.Equal(replay.Body, paid.Body) {
		t.Fatalf("replayed response differs:\nfirst  %s\nreplay %s", paid.Body, replay.Body)
	}

	harness.Wait(t, eventDeadline, "the payment notification", func(context.Context) (bool, error) {
		return hasNotification(a.notifications(alice.Token), "12.50 EUR"), nil
	})
	if list := a.notifications(alice.Token); !hasNotification(list, email) && len(list) < 2 {
		t.Fatalf("want a welcome and a payment notification, got %+v", list)
	}

	adminToken := a.login(adminEmail, adminPassword)
	harness.Wait(t, eventDeadline, "the revenue in the report", func(context.Context) (bool, error) {
		s := a.summary(adminToken)
		rev := totalFor(s.Revenue, "EUR")
		return rev.AmountMinor == 1250 && rev.Payments == 1 && s.Signups >= 2 &&
			totalFor(s.Invoices, "EUR").Count == 1, nil
	})
}

// TestRestartKeepsEverything stops the binary and starts it again on the same data directory: users,
// invoices and notifications are all still there, and new events still flow.
func TestRestartKeepsEverything(t *testing.T) {
	t.Parallel()
	p := startMonolith(t, "")
	a := newAPI(t, p)

	bob := a.newUser("bob")
	inv := a.createInvoice(bob.Token, 990, "USD")
	a.expect(payRequest(bob.Token, inv.ID, "k1", "pm_card_visa"), http.StatusOK)
	// Three events reach notifications: user registered, invoice created, payment completed.
	harness.Wait(t, eventDeadline, "three notifications", func(context.Context) (bool, error) {
		list := a.notifications(bob.Token)
		return len(list) == 3 && hasNotification(list, "9.90 USD"), nil
	})
	before := a.notifications(bob.Token)

	p.Restart()
	if code := p.ExitCodeOfLastStop(); code != 0 {
		t.Fatalf("graceful stop exited with %d:\n%s", code, p.Logs())
	}

	token := a.login(bob.Email, "correct horse battery")
	invs := a.invoices(token)
	if len(invs) != 1 || invs[0].ID != inv.ID || invs[0].Status != "paid" {
		t.Fatalf("invoices after restart = %+v", invs)
	}
	if after := a.notifications(token); len(after) != len(before) {
		t.Fatalf("notifications after restart = %+v, before = %+v", after, before)
	}
	second := a.createInvoice(token, 500, "USD")
	a.expect(payRequest(token, second.ID, "k2", "pm_card_visa"), http.StatusOK)
	harness.Wait(t, eventDeadline, "a notification after the restart", func(context.Context) (bool, error) {
		return hasNotification(a.notifications(token), "5.00 USD"), nil
	})
}
