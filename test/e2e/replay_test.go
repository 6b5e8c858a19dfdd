package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"testing"

	"github.com/seamkit/seam/test/harness"
)

// consumerStatus is one consumer as GET /api/admin/consumers reports it.
type consumerStatus struct {
	Module     string `json:"module"`
	Consumer   string `json:"consumer"`
	Pending    uint64 `json:"pending"`
	AckPending int    `json:"ack_pending"`
	Delivered  uint64 `json:"delivered"`
}

// idle reports whether module's consumers have no pending events.
func (a *api) idle(token, module string) bool {
	a.t.Helper()
	var out struct {
		Consumers []consumerStatus `json:"consumers"`
	}
	a.expect(harness.Request{Method: "GET", Path: "/api/admin/consumers", Token: token}, http.StatusOK).JSON(a.t, &out)
	seen := 0
	for _, c := range out.Consumers {
		if c.Module == module {
			seen++
			if c.Pending+uint64(c.AckPending) > 0 {
				return false
			}
		}
	}
	return seen > 0
}

// TestReplayRebuildsTheReadModel builds reporting's read model through the monolith, replays it from the
// streams with `seam replay reporting --wait`, and checks the report is the same as the incremental one.
func TestReplayRebuildsTheReadModel(t *testing.T) {
	t.Parallel()
	p := startMonolith(t, "")
	a := newAPI(t, p)
	adminToken := a.login(adminEmail, adminPassword)

	for i := range 3 {
		u := a.newUser(fmt.Sprintf("replay%d", i))
		inv := a.createInvoice(u.Token, int64(1000+i), "EUR")
		a.expect(payRequest(u.Token, inv.ID, "pay-"+inv.ID, "pm_card_visa"), http.StatusOK)
		failed := a.createInvoice(u.Token, 700, "USD")
		a.expect(payRequest(u.Token, failed.ID, "pay-"+failed.ID, "pm_card_declined"), http.StatusPaymentRequired)
	}
	harness.Wait(t, eventDeadline, "the report built incrementally", func(context.Context) (bool, error) {
		s := a.summary(adminToken)
		return s.Signups >= 3 && totalFor(s.Revenue, "EUR").Payments == 3 && totalFor(s.Invoices, "USD").Count == 3 &&
			totalFor(s.FailedPayments, "USD").Count == 3 && a.idle(adminToken, "reporting"), nil
	})
	before := a.expect(harness.Request{Method: "GET", Path: "/api/reports/summary", Token: adminToken}, http.StatusOK).Body

	cmd := exec.CommandContext(t.Context(), harness.Build(t, "./cmd/seam"), "replay", "reporting", "--wait",
		"--url", p.BaseURL, "--timeout", eventDeadline.String())
	cmd.Env = append(cmd.Environ(), "SEAM_TOKEN="+adminToken)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("seam replay: %v\n%s\nprocess log:\n%s", err, out, p.Logs())
	}
	// 3 signups and the admin, 6 invoices, 3 payments and 3 failed payments were handled before.
	if !bytes.Contains(out, []byte("caught up")) || !bytes.Contains(out, []byte("16 handled events")) {
		t.Fatalf("seam replay output:\n%s", out)
	}
	after := a.expect(harness.Request{Method: "GET", Path: "/api/reports/summary", Token: adminToken}, http.StatusOK).Body
	if !bytes.Equal(before, after) {
		t.Fatalf("report after replay differs:\nbefore %s\nafter  %s", before, after)
	}

	// The replayed consumers keep consuming new events.
	u := a.newUser("after-replay")
	inv := a.createInvoice(u.Token, 5000, "EUR")
	a.expect(payRequest(u.Token, inv.ID, "pay-"+inv.ID, "pm_card_visa"), http.StatusOK)
	harness.Wait(t, eventDeadline, "a payment after the replay in the report", func(context.Context) (bool, error) {
		return totalFor(a.summary(adminToken).Revenue, "EUR").Payments == 4, nil
	})

	// Replaying a module without a read model, or one this process does not run, is refused.
	a.expect(harness.Request{Method: "POST", Path: "/api/admin/replay/notifications", Token: adminToken}, http.StatusConflict)
	a.expect(harness.Request{Method: "POST", Path: "/api/admin/replay/nosuch", Token: adminToken}, http.StatusNotFound)
}

// TestAdminAPIIsForAdminsOnly checks every admin endpoint refuses anonymous callers (401) and users (403).
func TestAdminAPIIsForAdminsOnly(t *testing.T) {
	t.Parallel()
	p := startMonolith(t, "")
	a := newAPI(t, p)
	u := a.newUser("not-admin")
	const id = "00000000-0000-0000-0000-000000000001"
	for _, req := range []harness.Request{
		{Method: "GET", Path: "/api/admin/dlq"},
		{Method: "GET", Path: "/api/admin/dlq/reporting/" + id},
		{Method: "POST", Path: "/api/admin/dlq/reporting/" + id + "/retry"},
		{Method: "POST", Path: "/api/admin/dlq/reporting/" + id + "/discard"},
		{Method: "GET", Path: "/api/admin/consumers"},
		{Method: "POST", Path: "/api/admin/replay/reporting"},
	} {
		a.expect(req, http.StatusUnauthorized)
		req.Token = u.Token
		a.expect(req, http.StatusForbidden)
	}
	adminToken := a.login(adminEmail, adminPassword)
	a.expect(harness.Request{Method: "GET", Path: "/api/admin/dlq/reporting/" + id, Token: adminToken}, http.StatusNotFound)
	a.expect(harness.Request{Method: "GET", Path: "/api/admin/dlq/reporting/not-a-uuid", Token: adminToken}, http.StatusBadRequest)
	a.expect(harness.Request{Method: "GET", Path: "/api/admin/dlq?status=weird", Token: adminToken}, http.StatusBadRequest)
}
