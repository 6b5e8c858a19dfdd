package rollout

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/seamkit/seam/test/deploy"
)

// sides are billing's HTTP calls served on each side, from the gateway's metrics.
func sides(t *testing.T, c *client) (local, remote float64) {
	t.Helper()
	local = metric(t, c, "seam_module_calls_total", `module="billing"`, `method="http"`, `side="local"`)
	remote = metric(t, c, "seam_module_calls_total", `module="billing"`, `method="http"`, `side="remote"`)
	return local, remote
}

// TestSeedsScenario moves billing from the monolith to its extracted process in steps, 0% → 1% → 10% → 50%
// → 100%, with `seam rollout` while a steady load runs, then back to 0% in one command: no request fails,
// and each step moves the traffic it says.
func TestSeedsScenario(t *testing.T) {
	t.Parallel()
	gw := start(t, deploy.Deployment{Name: "seeds", Split: []string{"billing"}})
	c := newClient(gw.BaseURL)
	admin := c.login(t, adminEmail, adminPassword)
	tokens := c.users(t, 100)
	l := startLoad(c, tokens, 6, 60*time.Millisecond)
	defer l.end()

	for _, step := range []struct {
		percent   string
		remoteMin float64 // share of billing's HTTP calls during the step that must be remote, at least
		remoteMax float64 // and at most
	}{
		{"0", 0, 0}, // the starting point: everything local
		{"1", 0, 0.1},
		{"10", 0.01, 0.35},
		{"50", 0.25, 0.75},
		{"100", 1, 1},
		{"0", 0, 0},
	} {
		out := seam(t, "rollout", "billing", step.percent, "--reason", "seeds step to "+step.percent+"%",
			"--url", gw.BaseURL, "--token", admin)
		if !strings.Contains(out, "billing: last changed by "+adminEmail) {
			t.Fatalf("seam rollout billing %s printed:\n%s", step.percent, out)
		}
		local0, remote0 := sides(t, c)
		time.Sleep(3 * time.Second) // the load runs at this share for a while
		local1, remote1 := sides(t, c)
		local, remote := local1-local0, remote1-remote0
		share := remote / (local + remote)
		t.Logf("at %s%%: %.0f local, %.0f remote billing requests (%.1f%% remote)", step.percent, local, remote, share*100)
		if local+remote < 20 || share < step.remoteMin || share > step.remoteMax {
			t.Fatalf("at %s%%: %.0f local and %.0f remote requests; want a remote share in [%.0f%%, %.0f%%]",
				step.percent, local, remote, step.remoteMin*100, step.remoteMax*100)
		}
	}
	failures := l.end()
	for _, f := range failures {
		t.Errorf("%s at %s: %d %s", f.what, f.at.Format(time.StampMilli), f.status, f.body)
	}
	if len(failures) > 0 {
		t.Fatalf("%d of %d requests failed while billing moved", len(failures), l.sent.Load())
	}
	t.Logf("%d requests, none failed", l.sent.Load())
	audit := seam(t, "rollout", "audit", "billing", "--url", gw.BaseURL, "--token", admin)
	if strings.Count(audit, adminEmail) != 6 {
		t.Fatalf("the audit trail does not hold the six moves:\n%s", audit)
	}
}

// TestAutomaticRollback injects errors into every request the extracted billing serves while 10% of the
// users are sent there: the rollback rule sends billing back to local within its window, only requests
// that hit the fault fail, and the audit trail says why.
func TestAutomaticRollback(t *testing.T) {
	t.Parallel()
	gw := start(t, deploy.Deployment{Name: "faulty-extraction", Split: []string{"billing"},
		ModuleEnv: map[string][]string{"billing": {"SEAM_FAILPOINTS=httpx.serve_forwarded=error"}},
		MonolithEnv: []string{"SEAM_BILLING_ROLLOUT_PERCENT=10", "SEAM_BILLING_ROLLBACK_WINDOW=5s",
			"SEAM_BILLING_ROLLBACK_MIN_CALLS=5", "SEAM_BILLING_ROLLBACK_MAX_ERROR_RATE=0.2"}})
	c := newClient(gw.BaseURL)
	admin := c.login(t, adminEmail, adminPassword)
	tokens := c.users(t, 100)
	l := startLoad(c, tokens, 6, 60*time.Millisecond)
	defer l.end()

	deadline := time.Now().Add(30 * time.Second)
	var rolledBackAt time.Time
	for rolledBackAt.IsZero() {
		var r routed
		c.must(t, "GET", "/api/admin/routes/billing", admin, nil, http.StatusOK, &r)
		if r.Percent == 0 {
			rolledBackAt = time.Now()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("billing was not rolled back within 30s of failing remotely")
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(3 * time.Second) // the load goes on, all local now
	failures := l.end()
	remoteErrors := metric(t, c, "seam_module_call_errors_total", `module="billing"`, `method="http"`, `side="remote"`)
	t.Logf("rolled back; %d of %d requests failed, %.0f remote errors counted", len(failures), l.sent.Load(), remoteErrors)
	if len(failures) == 0 || float64(len(failures)) > remoteErrors {
		t.Fatalf("%d requests failed and %.0f hit the injected fault: every failure must be one that hit it", len(failures), remoteErrors)
	}
	for _, f := range failures {
		if f.status != http.StatusInternalServerError {
			t.Errorf("%s failed with %d %s, want the injected 500", f.what, f.status, f.body)
		}
		// A request answered after the rollback was served locally (the rollback applies before the
		// answer that tripped it is written, give or take requests already in flight).
		if f.at.After(rolledBackAt.Add(time.Second)) {
			t.Errorf("%s failed at %s, after the rollback at %s", f.what, f.at.Format(time.StampMilli), rolledBackAt.Format(time.StampMilli))
		}
	}
	audit := seam(t, "rollout", "audit", "billing", "--url", gw.BaseURL, "--token", admin)
	if !strings.Contains(audit, "auto-rollback") || !strings.Contains(audit, "remote error rate") || !strings.Contains(audit, "10%") {
		t.Fatalf("the audit trail does not show the rollback and why:\n%s", audit)
	}
	t.Log(audit)
}
