package fault

import "testing"

// TestRelayKilledAfterPublish is fault test 2 (docs/reliability.md): the process is killed (SIGKILL) after
// the stream acknowledged a payment's events but before the outbox marked them sent. On restart the relay
// publishes them again; JetStream's duplicate window and the consumers' inboxes drop the copies, so the
// payment has exactly one effect downstream.
func TestRelayKilledAfterPublish(t *testing.T) {
	t.Parallel()
	o := crashAfterPayment(t, "outbox.after_publish=exit@1")
	t.Logf("fault 2 (relay killed after publish): %s", o)
}
