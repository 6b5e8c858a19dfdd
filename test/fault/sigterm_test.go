package fault

import (
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/seamkit/seam/test/harness"
)

// TestSigtermUnderLoad is fault test 7 (docs/reliability.md): SIGTERM arrives midway through payments sent at
// a steady rate. Every request that reached the server before the signal completes with 200 (the HTTP
// server drains): none sent 100 ms before the signal fails, and no unanswered one took effect; later ones
// are refused without effect, the process exits 0, and after a restart every
// acknowledged payment has exactly one effect downstream (consumers and relays drained what they held).
func TestSigtermUnderLoad(t *testing.T) {
	t.Parallel()
	dataDir := harness.DataDir(t)
	p := startSeam(t, dataDir, "")
	users := newUsers(t, p, "term", 20*soak(), 10)
	var signalled time.Time
	ps := payAll(t.Context(), p.BaseURL, users, 8, 5*time.Millisecond, func() {
		signalled = time.Now()
		if err := p.Signal(syscall.SIGTERM); err != nil {
			t.Error(err)
		}
	}, nil)
	if code := waitExit(t, p, deadline); code != 0 {
		t.Fatalf("exit code %d after SIGTERM, want 0:\n%s", code, tail(p.Logs()))
	}
	// A request sent well before the signal (100 ms) was in the server's hands: it must have completed. (One
	// sent a moment before may still have been on its way and found the listener closed.)
	var before, failedBefore, serverErrors int
	for _, pm := range ps {
		if pm.err == nil && pm.status >= 500 {
			serverErrors++
		}
		if pm.sentAt.Before(signalled.Add(-100 * time.Millisecond)) {
			before++
			if pm.err != nil || pm.status != http.StatusOK {
				failedBefore++
				t.Logf("request sent %s before the signal: status %d, %v", signalled.Sub(pm.sentAt), pm.status, pm.err)
			}
		}
	}
	restarted := startSeam(t, dataDir, "")
	o := checkPayments(t, restarted, users, acknowledged(ps))
	t.Logf("fault 7 (SIGTERM under load): %s; %d sent before the signal, %d of them failed; %d answered 5xx",
		o, before, failedBefore, serverErrors)
	if o.Lost != 0 || o.Duplicated != 0 || failedBefore != 0 || serverErrors != 0 {
		t.Fatalf("SIGTERM under load: %s, %d requests sent before the signal failed, %d 5xx answers", o, failedBefore, serverErrors)
	}
	// Whatever the timing, a payment the server took on before it stopped was answered: an unanswered
	// payment that nonetheless took effect would be a request accepted and then dropped.
	if o.UnknownApplied != 0 {
		t.Fatalf("SIGTERM under load: %d payments took effect without an answer: accepted, then dropped", o.UnknownApplied)
	}
}
