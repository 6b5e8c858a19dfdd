// Package trace checks distributed tracing across real processes: the monolith with billing remote and the
// extracted billing binary, both exporting spans over OTLP/HTTP to a collector the test runs, must put an
// HTTP request, its forwarding, the event it causes and that event's consumers in one trace.
package trace

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
