package fault

import "testing"

// TestConsumerKilledAfterCommit is fault test 3 (docs/reliability.md): the process is killed (SIGKILL) after
// a consumer committed an event's effect but before it acknowledged the event. On restart the event is
// delivered again, the inbox recognises it, and the payment still has exactly one effect downstream.
func TestConsumerKilledAfterCommit(t *testing.T) {
	t.Parallel()
	o := crashAfterPayment(t, "inbox.after_commit=exit@1")
	t.Logf("fault 3 (consumer killed after commit): %s", o)
}
