package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seamkit/seam/test/harness"
)

// api wraps a client with the calls the tests make, failing on unexpected statuses.
type api struct {
	t *testing.T
	c *harness.Client
}

func newAPI(t *testing.T, p *harness.Process) *api {
	return &api{t: t, c: harness.NewClient(t, p.BaseURL)}
}

var emailSeq atomic.Int64

func uniqueEmail(prefix string) string {
	return fmt.Sprintf("%s-%d-%d@example.test", prefix, time.Now().UnixNano(), emailSeq.Add(1))
}

type user struct {
	ID    string `json:"id"`
	Email string `json:"email"`
	Role  string `json:"role"`
	Token string `json:"-"`
}

func (a *api) expect(req harness.Request, status int) harness.Response {
	a.t.Helper()
	resp := a.c.Do(req)
	if resp.Status != status {
		a.t.Fatalf("%s %s: status %d, want %d; body %s", req.Method, req.Path, resp.Status, status, resp.Body)
	}
	return resp
}

func (a *api) signup(email, password string) user {
	a.t.Helper()
	var u user
	a.expect(harness.Request{Method: "POST", Path: "/api/auth/signup",
		Body: map[string]string{"email": email, "password": password}}, http.StatusCreated).JSON(a.t, &u)
	return u
}

func (a *api) login(email, password string) string {
	a.t.Helper()
	var out struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
	}
	a.expect(harness.Request{Method: "POST", Path: "/api/auth/login",
		Body: map[string]string{"email": email, "password": password}}, http.StatusOK).JSON(a.t, &out)
	if out.AccessToken == "" || out.TokenType != "Bearer" {
		a.t.Fatalf("login returned %+v", out)
	}
	return out.AccessToken
}

// newUser signs up and logs in a fresh user.
func (a *api) newUser(prefix string) user {
	a.t.Helper()
	email := uniqueEmail(prefix)
	u := a.signup(email, "correct horse battery")
	u.Token = a.login(email, "correct horse battery")
	return u
}

type invoice struct {
	ID          string `json:"id"`
	UserID      string `json:"user_id"`
	AmountMinor int64  `json:"amount_minor"`
	Currency    string `json:"currency"`
	Description string `json:"description"`
	Status      string `json:"status"`
}

func (a *api) createInvoice(token string, amount int64, currency string) invoice {
	a.t.Helper()
	var inv invoice
	a.expect(harness.Request{Method: "POST", Path: "/api/billing/invoices", Token: token,
		Body: map[string]any{"amount_minor": amount, "currency": currency, "description": "Plan upgrade"}},
		http.StatusCreated).JSON(a.t, &inv)
	return inv
}

func (a *api) invoices(token string) []invoice {
	a.t.Helper()
	var out struct {
		Invoices []invoice `json:"invoices"`
	}
	a.expect(harness.Request{Method: "GET", Path: "/api/billing/invoices", Token: token}, http.StatusOK).JSON(a.t, &out)
	return out.Invoices
}

func payRequest(token, invoiceID, key, method string) harness.Request {
	return harness.Request{Method: "POST", Path: "/api/billing/invoices/" + invoiceID + "/pay", Token: token,
		Header: map[string]string{"Idempotency-Key": key}, Body: map[string]string{"payment_method": method}}
}

type notification struct {
	ID      string `json:"id"`
	Subject string `json:"subject"`
	Body    string `json:"body"`
}

func (a *api) notifications(token string) []notification {
	a.t.Helper()
	var out struct {
		Notifications []notification `json:"notifications"`
	}
	a.expect(harness.Request{Method: "GET", Path: "/api/notifications", Token: token}, http.StatusOK).JSON(a.t, &out)
	return out.Notifications
}

type currencyTotal struct {
	Currency    string `json:"currency"`
	Count       int64  `json:"count"`
	Payments    int64  `json:"payments"`
	AmountMinor int64  `json:"amount_minor"`
}

type summary struct {
	From           string          `json:"from"`
	To             string          `json:"to"`
	Signups        int64           `json:"signups"`
	Invoices       []currencyTotal `json:"invoices"`
	Revenue        []currencyTotal `json:"revenue"`
	FailedPayments []currencyTotal `json:"failed_payments"`
}

func (a *api) summary(token string) summary {
	a.t.Helper()
	var s summary
	a.expect(harness.Request{Method: "GET", Path: "/api/reports/summary", Token: token}, http.StatusOK).JSON(a.t, &s)
	return s
}

func totalFor(list []currencyTotal, currency string) currencyTotal {
	for _, c := range list {
		if c.Currency == currency {
			return c
		}
	}
	return currencyTotal{Currency: currency}
}

func hasNotification(list []notification, contains string) bool {
	for _, n := range list {
		if strings.Contains(n.Body, contains) || strings.Contains(n.Subject, contains) {
			return true
		}
	}
	return false
}
