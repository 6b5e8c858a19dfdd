package fault

import (
	"syscall"
	"testing"
	"time"

	"github.com/seamkit/seam/test/harness"
)

// TestKillDuringPayments is fault test 1 (docs/reliability.md): the process is killed with SIGKILL midway
// through a few hundred concurrent payments sent at a steady rate, then restarted on the same data
// directory. Every acknowledged payment has exactly one paid invoice, one notification and one report
// increment; an unacknowledged one has zero or one of each, never two.
func TestKillDuringPayments(t *testing.T) {
	t.Parallel()
	dataDir := harness.DataDir(t)
	p := startSeam(t, dataDir, "")
	users := newUsers(t, p, "kill", 30*soak(), 10)
	start := time.Now()
	ps := payAll(t.Context(), p.BaseURL, users, 8, 5*time.Millisecond, func() {
		if err := p.Signal(syscall.SIGKILL); err != nil {
			t.Error(err)
		}
	}, nil)
	t.Logf("%d payments sent in %s", len(ps), time.Since(start).Round(time.Millisecond))
	waitExit(t, p, deadline)
	acked := acknowledged(ps)

	restarted := startSeam(t, dataDir, "")
	o := checkPayments(t, restarted, users, acked)
	t.Logf("fault 1 (kill -9 during payments): %s", o)
	if o.Lost != 0 || o.Duplicated != 0 {
		t.Fatalf("kill -9 during payments: %s; want nothing lost or duplicated", o)
	}
	if o.Acknowledged == 0 || o.Unknown == 0 {
		t.Errorf("kill -9 during payments: %s; the kill should land mid-way", o)
	}
}
