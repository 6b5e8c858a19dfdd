package e2e

import (
	"bytes"
	"net/http"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/seamkit/seam/test/harness"
)

// TestMetricsExposition scrapes /metrics after some traffic and checks it with the Prometheus project's own
// tools: the text-format parser and promlint (what `promtool check metrics` runs). It also checks that the
// platform's metric families are there.
func TestMetricsExposition(t *testing.T) {
	t.Parallel()
	p := startMonolith(t, "")
	a := newAPI(t, p)
	alice := a.newUser("metrics")
	a.createInvoice(alice.Token, 1500, "EUR")
	a.invoices(alice.Token)

	resp := a.expect(harness.Request{Method: "GET", Path: "/metrics"}, http.StatusOK)
	if ct := resp.Header.Get("Content-Type"); ct == "" || !bytes.HasPrefix([]byte(ct), []byte("text/plain")) {
		t.Fatalf("content type %q, want the Prometheus text format", ct)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(resp.Body))
	if err != nil {
		t.Fatalf("the exposition does not parse: %v", err)
	}
	problems, err := promlint.New(bytes.NewReader(resp.Body)).Lint()
	if err != nil {
		t.Fatalf("promlint: %v", err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	for _, name := range []string{
		"seam_module_calls_total", "seam_module_call_errors_total", "seam_module_call_duration_seconds",
		"seam_shadow_comparisons_total", "seam_shadow_discrepancies_total", "seam_rollout_remote_ratio",
		"seam_rollout_shadow", "seam_outbox_backlog", "seam_outbox_oldest_unsent_seconds",
		"seam_consumer_pending_messages", "seam_dead_letters",
	} {
		if families[name] == nil {
			t.Errorf("metric family %s missing", name)
		}
	}
	calls := families["seam_module_calls_total"]
	var billingHTTP float64
	for _, m := range calls.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if labels["module"] == "billing" && labels["method"] == "http" && labels["side"] == "local" {
			billingHTTP = m.GetCounter().GetValue()
		}
	}
	if billingHTTP < 2 {
		t.Errorf("seam_module_calls_total{module=billing,method=http,side=local} = %v, want the 2 requests made", billingHTTP)
	}
}
