package fault

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seamkit/seam/test/harness"
)

// deadline bounds how long a saga or an event may take to settle in these tests.
const deadline = 60 * time.Second

const password = "correct horse battery"

// upgradePath is where plan upgrades are requested.
const upgradePath = "/api/billing/plan-upgrade"

// start runs the monolith on dataDir (fresh when empty) with the failpoints spec.
func start(t *testing.T, dataDir, failpoints string) *harness.Process {
	t.Helper()
	if testing.Short() {
		t.Skip("fault test: skipped with -short")
	}
	env := []string{"SEAM_LOG_LEVEL=warn"}
	if failpoints != "" {
		env = append(env, "SEAM_FAILPOINTS="+failpoints)
	}
	return harness.Start(t, harness.Options{Binary: harness.Build(t, "./cmd/monolith"), DataDir: dataDir, Env: env})
}

// client is a signed-in user of a process.
type client struct {
	t     *testing.T
	c     *harness.Client
	id    string
	token string
}

var seq atomic.Int64

func signup(t *testing.T, p *harness.Process) *client {
	t.Helper()
	c := &client{t: t, c: harness.NewClient(t, p.BaseURL)}
	email := fmt.Sprintf("saga-%d-%d@example.test", time.Now().UnixNano(), seq.Add(1))
	var u struct {
		ID   string `json:"id"`
		Plan string `json:"plan"`
	}
	c.expect(harness.Request{Method: "POST", Path: "/api/auth/signup",
		Body: map[string]string{"email": email, "password": password}}, http.StatusCreated).JSON(t, &u)
	if u.Plan != "free" {
		t.Fatalf("a new account is on plan %q, want free", u.Plan)
	}
	c.id = u.ID
	c.login(p, email)
	return c
}

// login (re)connects c to p and signs in.
func (c *client) login(p *harness.Process, email string) {
	c.t.Helper()
	c.c = harness.NewClient(c.t, p.BaseURL)
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	c.expect(harness.Request{Method: "POST", Path: "/api/auth/login",
		Body: map[string]string{"email": email, "password": password}}, http.StatusOK).JSON(c.t, &tok)
	c.token = tok.AccessToken
}

func (c *client) expect(req harness.Request, status int) harness.Response {
	c.t.Helper()
	resp := c.c.Do(req)
	if resp.Status != status {
		c.t.Fatalf("%s %s: status %d, want %d; body %s", req.Method, req.Path, resp.Status, status, resp.Body)
	}
	return resp
}

type upgrade struct {
	ID          string `json:"id"`
	Plan        string `json:"plan"`
	Status      string `json:"status"`
	InvoiceID   string `json:"invoice_id"`
	RefundRef   string `json:"refund_ref"`
	FailedStep  string `json:"failed_step"`
	FailureCode string `json:"failure_code"`
}

func upgradeRequest(token, key, plan string) harness.Request {
	return harness.Request{Method: "POST", Path: upgradePath, Token: token,
		Header: map[string]string{"Idempotency-Key": key},
		Body:   map[string]string{"plan": plan, "payment_method": "pm_card_visa"}}
}

func (c *client) upgrade(key, plan string) upgrade {
	c.t.Helper()
	var up upgrade
	c.expect(upgradeRequest(c.token, key, plan), http.StatusAccepted).JSON(c.t, &up)
	return up
}

// settled waits for the upgrade to end and returns it.
func (c *client) settled(id string) upgrade {
	c.t.Helper()
	var up upgrade
	harness.Wait(c.t, deadline, "plan upgrade "+id+" to end", func(context.Context) (bool, error) {
		c.expect(harness.Request{Method: "GET", Path: "/api/billing/plan-upgrades/" + id, Token: c.token}, http.StatusOK).JSON(c.t, &up)
		return up.Status == "completed" || up.Status == "compensated" || up.Status == "failed", nil
	})
	return up
}

func (c *client) plan() string {
	c.t.Helper()
	var me struct {
		Plan string `json:"plan"`
	}
	c.expect(harness.Request{Method: "GET", Path: "/api/auth/me", Token: c.token}, http.StatusOK).JSON(c.t, &me)
	return me.Plan
}

type invoice struct {
	ID     string `json:"id"`
	Status string `json:"status"`
}

func (c *client) invoices() []invoice {
	c.t.Helper()
	var out struct {
		Invoices []invoice `json:"invoices"`
	}
	c.expect(harness.Request{Method: "GET", Path: "/api/billing/invoices", Token: c.token}, http.StatusOK).JSON(c.t, &out)
	return out.Invoices
}

func (c *client) invoiceStatus(id string) string {
	c.t.Helper()
	var inv invoice
	c.expect(harness.Request{Method: "GET", Path: "/api/billing/invoices/" + id, Token: c.token}, http.StatusOK).JSON(c.t, &inv)
	return inv.Status
}

// notifications counts the caller's notifications by template.
func (c *client) notifications() map[string]int {
	c.t.Helper()
	var out struct {
		Notifications []struct {
			Template string `json:"template"`
		} `json:"notifications"`
	}
	c.expect(harness.Request{Method: "GET", Path: "/api/notifications?limit=100", Token: c.token}, http.StatusOK).JSON(c.t, &out)
	counts := map[string]int{}
	for _, n := range out.Notifications {
		counts[n.Template]++
	}
	return counts
}

// waitNotifications waits until the caller has at least want[template] notifications of each template.
func (c *client) waitNotifications(want map[string]int) map[string]int {
	c.t.Helper()
	var got map[string]int
	harness.Wait(c.t, deadline, fmt.Sprintf("notifications %v", want), func(context.Context) (bool, error) {
		got = c.notifications()
		for tmpl, n := range want {
			if got[tmpl] < n {
				return false, nil
			}
		}
		return true, nil
	})
	return got
}

// TestSagaFailEachStep is fault test 9, first half: the plan-upgrade saga with each of its steps failing in
// turn, then succeeding. A failed charge leaves nothing to compensate; a failed grant refunds the charge
// once (invoice refunded, one refund notification); neither changes the plan; an upgrade without faults
// puts the user on it.
func TestSagaFailEachStep(t *testing.T) {
	t.Parallel()
	// The first charge fails, then the first grant: so the first upgrade fails at step 1 (charge), the second
	// at step 2 (grant_plan), and the third goes through.
	p := start(t, "", "saga.plan_upgrade.charge.do=error@1,auth.grant_plan=error@1")
	c := signup(t, p)

	failedCharge := c.upgrade("k-charge", "pro")
	if failedCharge.Status != "compensated" || failedCharge.FailedStep != "charge" || failedCharge.InvoiceID != "" ||
		failedCharge.RefundRef != "" {
		t.Fatalf("upgrade with a failing charge = %+v, want compensated at charge with nothing charged", failedCharge)
	}
	if n := len(c.invoices()); n != 0 {
		t.Fatalf("a failed charge left %d invoices", n)
	}

	failedGrant := c.upgrade("k-grant", "pro")
	if failedGrant.Status != "compensated" || failedGrant.FailedStep != "grant_plan" || failedGrant.InvoiceID == "" ||
		failedGrant.RefundRef == "" {
		t.Fatalf("upgrade with a failing grant = %+v, want compensated at grant_plan and refunded", failedGrant)
	}
	if s := c.invoiceStatus(failedGrant.InvoiceID); s != "refunded" {
		t.Errorf("invoice of the refunded upgrade is %q, want refunded", s)
	}
	if plan := c.plan(); plan != "free" {
		t.Errorf("plan after two failed upgrades = %q, want free", plan)
	}
	// The retried request returns the same, ended upgrade and charges nothing more.
	if again := c.upgrade("k-grant", "pro"); again.ID != failedGrant.ID || again.Status != "compensated" {
		t.Errorf("retried request = %+v, want %+v", again, failedGrant)
	}

	ok := c.upgrade("k-ok", "team")
	if ok.Status != "completed" || ok.FailedStep != "" || ok.RefundRef != "" {
		t.Fatalf("upgrade without faults = %+v, want completed", ok)
	}
	if plan := c.plan(); plan != "team" {
		t.Errorf("plan after the upgrade = %q, want team", plan)
	}
	// Events are relayed in order: once the last payment's notification is there, every refund is too.
	got := c.waitNotifications(map[string]int{"payment_received": 2, "payment_refunded": 1})
	if got["payment_refunded"] != 1 || got["payment_received"] != 2 {
		t.Errorf("notifications = %v, want 2 payments received and exactly 1 refund", got)
	}
	if n := len(c.invoices()); n != 2 {
		t.Errorf("%d invoices, want 2 (the refunded one and the paid one)", n)
	}
}

// TestSagaKilledMidCompensation is fault test 9, second half: the grant fails and the process is killed
// (SIGKILL) in the middle of the refund, after the provider refunded but before the refund committed. On
// restart on the same data directory, the saga resumes and ends compensated with exactly one refund and one
// refund notification.
func TestSagaKilledMidCompensation(t *testing.T) {
	t.Parallel()
	dataDir := harness.DataDir(t)
	p := start(t, dataDir, "auth.grant_plan=error,saga.plan_upgrade.charge.compensated=exit")
	c := signup(t, p)
	var email struct {
		Email string `json:"email"`
	}
	c.expect(harness.Request{Method: "GET", Path: "/api/auth/me", Token: c.token}, http.StatusOK).JSON(t, &email)

	// The request dies with the process: no response.
	req := upgradeRequest(c.token, "k-crash", "pro")
	body := []byte(`{"plan":"pro","payment_method":"pm_card_visa"}`)
	hr, err := http.NewRequest(http.MethodPost, p.BaseURL+req.Path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	hr.Header.Set("Content-Type", "application/json")
	hr.Header.Set("Authorization", "Bearer "+c.token)
	hr.Header.Set("Idempotency-Key", "k-crash")
	if resp, err := (&http.Client{Timeout: deadline}).Do(hr); err == nil {
		_ = resp.Body.Close()
		t.Fatalf("the request answered %d; the failpoint should have killed the process", resp.StatusCode)
	}
	p.ExitCode() // waits until the kill has landed

	restarted := start(t, dataDir, "")
	c.login(restarted, email.Email)
	// The same request after the restart finds the saga its key started, not a new one.
	var first upgrade
	c.expect(req, http.StatusAccepted).JSON(t, &first)
	up := c.settled(first.ID)
	if up.Status != "compensated" || up.FailedStep != "grant_plan" || up.RefundRef == "" || up.InvoiceID == "" {
		t.Fatalf("after the restart the upgrade is %+v, want compensated with a refund", up)
	}
	if s := c.invoiceStatus(up.InvoiceID); s != "refunded" {
		t.Errorf("invoice status = %q, want refunded", s)
	}
	if n := len(c.invoices()); n != 1 {
		t.Errorf("%d invoices, want 1", n)
	}
	if plan := c.plan(); plan != "free" {
		t.Errorf("plan = %q, want free", plan)
	}
	// A later upgrade's payment notification comes after the refund's on the same stream: once it is there,
	// a second refund notification would be too.
	if ok := c.upgrade("k-after", "team"); ok.Status != "completed" {
		t.Fatalf("upgrade after the restart = %+v, want completed", ok)
	}
	got := c.waitNotifications(map[string]int{"payment_received": 2, "payment_refunded": 1})
	if got["payment_refunded"] != 1 {
		t.Errorf("notifications = %v, want exactly one refund", got)
	}
}
