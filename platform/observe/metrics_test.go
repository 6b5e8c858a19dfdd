package observe_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/seamkit/seam/platform/observe"
)

func TestMetricsServeOutboxGauges(t *testing.T) {
	m := observe.NewMetrics()
	m.ObserveOutbox("billing", 42, 1500*time.Millisecond)
	m.ObserveOutbox("auth", 0, 0)
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`seam_outbox_backlog{module="billing"} 42`,
		`seam_outbox_oldest_unsent_seconds{module="billing"} 1.5`,
		`seam_outbox_backlog{module="auth"} 0`,
		`go_goroutines `,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q:\n%s", want, body)
		}
	}
}
