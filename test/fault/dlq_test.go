package fault

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/seamkit/seam/test/harness"
)

// deadLetter is a dead letter as the admin API shows it.
type deadLetter struct {
	ID       string `json:"id"`
	Module   string `json:"module"`
	Consumer string `json:"consumer"`
	Subject  string `json:"subject"`
	Error    string `json:"error"`
	Attempts int    `json:"attempts"`
	Status   string `json:"status"`
}

// TestPoisonEventsGoToTheDeadLetterStore makes reporting's billing consumer fail its first six handler calls:
// the first two invoices it sees each fail three deliveries (inbox.max_deliver) and land in the dead-letter
// store, later events are applied, a retry applies a dead letter once, and a discard gives one up.
func TestPoisonEventsGoToTheDeadLetterStore(t *testing.T) {
	p := startSeam(t, "", "inbox.reporting-billing.handle=error*6",
		"SEAM_INBOX_MAX_DELIVER=3", "SEAM_INBOX_RETRY_DELAY=50ms")
	admin := adminToken(t, p)
	u := signup(t, p)
	api := harness.NewClient(t, p.BaseURL)
	call := func(method, path, token string, status int) harness.Response {
		t.Helper()
		resp := api.Do(harness.Request{Method: method, Path: path, Token: token})
		if resp.Status != status {
			t.Fatalf("%s %s: status %d, want %d; body %s", method, path, resp.Status, status, resp.Body)
		}
		return resp
	}
	pending := func() []deadLetter {
		t.Helper()
		var out struct {
			DeadLetters []deadLetter `json:"dead_letters"`
		}
		call("GET", "/api/admin/dlq?module=reporting&status=pending", admin, http.StatusOK).JSON(t, &out)
		return out.DeadLetters
	}
	invoices := func() int64 {
		t.Helper()
		var s summary
		call("GET", "/api/reports/summary", admin, http.StatusOK).JSON(t, &s)
		return totalFor(s.Invoices, "EUR").Count
	}
	create := func() {
		t.Helper()
		u.expect(harness.Request{Method: "POST", Path: "/api/billing/invoices", Token: u.token,
			Body: map[string]any{"amount_minor": 100, "currency": "EUR", "description": "dlq"}}, http.StatusCreated)
	}

	create()
	create()
	var dls []deadLetter
	harness.Wait(t, deadline, "two dead letters", func(context.Context) (bool, error) {
		dls = pending()
		return len(dls) == 2, nil
	})
	for _, d := range dls {
		if d.Consumer != "reporting-billing" || d.Attempts != 3 || d.Subject != "billing.events.invoice_created" ||
			!strings.Contains(d.Error, "injected") {
			t.Fatalf("dead letter = %+v", d)
		}
	}
	create()
	harness.Wait(t, deadline, "a later invoice in the report", func(context.Context) (bool, error) {
		return invoices() == 1, nil
	})

	first, second := dls[0], dls[1]
	var shown deadLetter
	call("GET", "/api/admin/dlq/reporting/"+first.ID, admin, http.StatusOK).JSON(t, &shown)
	if shown.ID != first.ID || shown.Status != "pending" {
		t.Fatalf("show = %+v", shown)
	}
	var retried struct {
		Applied    bool       `json:"applied"`
		DeadLetter deadLetter `json:"dead_letter"`
	}
	call("POST", "/api/admin/dlq/reporting/"+first.ID+"/retry", admin, http.StatusOK).JSON(t, &retried)
	if !retried.Applied || retried.DeadLetter.Status != "retried" {
		t.Fatalf("retry = %+v", retried)
	}
	if n := invoices(); n != 2 {
		t.Fatalf("%d invoices in the report after the retry, want 2", n)
	}
	call("POST", "/api/admin/dlq/reporting/"+first.ID+"/retry", admin, http.StatusConflict)
	call("POST", "/api/admin/dlq/reporting/"+first.ID+"/discard", admin, http.StatusConflict)

	call("POST", "/api/admin/dlq/reporting/"+second.ID+"/discard", admin, http.StatusOK)
	call("POST", "/api/admin/dlq/reporting/"+second.ID+"/retry", admin, http.StatusConflict)
	if n := invoices(); n != 2 {
		t.Fatalf("%d invoices in the report after the discard, want 2", n)
	}
	if left := pending(); len(left) != 0 {
		t.Fatalf("pending dead letters left: %+v", left)
	}
	call("GET", "/api/admin/dlq/reporting/00000000-0000-0000-0000-000000000001", admin, http.StatusNotFound)
	call("GET", "/api/admin/dlq", u.token, http.StatusForbidden)
	call("GET", "/api/admin/dlq", "", http.StatusUnauthorized)
}
