package arch_test

import (
	"testing"

	"github.com/seamkit/seam/arch"
	"github.com/seamkit/seam/platform/bus"
)

func TestStreamAndSubjectNamesMatchTheBus(t *testing.T) {
	for _, m := range []string{"billing", "inventory2"} {
		if got, want := arch.StreamOf(m), bus.StreamName(m); got != want {
			t.Errorf("StreamOf(%q) = %q, bus says %q", m, got, want)
		}
		if got, want := arch.EventSubjectPrefix(m), bus.EventSubject(m, ""); got != want {
			t.Errorf("EventSubjectPrefix(%q) = %q, bus says %q", m, got, want)
		}
	}
}
