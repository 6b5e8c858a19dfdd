// Package fault runs the real monolith binary with failpoints (SEAM_FAILPOINTS, see platform/failpoint)
// that make it fail, or die, at chosen points, and checks that it ends in a consistent state: nothing
// applied twice, nothing lost, after a restart on the same data directory where the fault was a crash.
package fault

import (
	"os"
	"testing"

	"github.com/seamkit/seam/test/harness"
)

func TestMain(m *testing.M) {
	code := m.Run()
	harness.Cleanup()
	os.Exit(code)
}
