package trace

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/seamkit/seam/test/deploy"
	"github.com/seamkit/seam/test/harness"
)

// spanDeadline bounds how long the spans of a request may take to reach the collector: they are exported
// in batches every 100 ms here (OTEL_BSP_SCHEDULE_DELAY), the consumers' after the event is relayed.
const spanDeadline = 60 * time.Second

// TestOneTraceAcrossProcesses runs the monolith with billing remote and the extracted billing process, both
// exporting to this test's collector, drives sign-up, login, an invoice and its payment through the
// monolith, and checks that the payment is one trace across both processes: the monolith's HTTP server
// span, its route span of billing's HTTP routes (remote side), its gateway's client span, the forwarded
// request's server span in billing, billing's module call span of auth/GetUser with its rpc client span,
// billing's publish span of payment_completed (a descendant of that server span) and the monolith's
// consumer spans of the event (children of the publish span).
func TestOneTraceAcrossProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("runs real processes: skipped with -short")
	}
	col := &collector{}
	srv := httptest.NewServer(col)
	t.Cleanup(srv.Close)
	monolith := deploy.Start(t, deploy.Deployment{Name: "trace-billing-remote", Remote: []string{"billing"}}, []string{
		"SEAM_LOG_LEVEL=warn",
		"SEAM_TRACING_EXPORTER=otlp-http",
		"SEAM_TRACING_ENDPOINT=" + srv.URL,
		"OTEL_BSP_SCHEDULE_DELAY=100",
	})
	c := harness.NewClient(t, monolith.BaseURL)

	email := fmt.Sprintf("tracy-%d@example.test", time.Now().UnixNano())
	expect(t, c, harness.Request{Method: "POST", Path: "/api/auth/signup",
		Body: map[string]string{"email": email, "password": "correct horse battery"}}, http.StatusCreated, nil)
	var login struct {
		AccessToken string `json:"access_token"`
	}
	expect(t, c, harness.Request{Method: "POST", Path: "/api/auth/login",
		Body: map[string]string{"email": email, "password": "correct horse battery"}}, http.StatusOK, &login)
	var inv struct {
		ID string `json:"id"`
	}
	expect(t, c, harness.Request{Method: "POST", Path: "/api/billing/invoices", Token: login.AccessToken,
		Body: map[string]any{"amount_minor": 1250, "currency": "EUR", "description": "Traced"}}, http.StatusCreated, &inv)
	payPath := "/api/billing/invoices/" + inv.ID + "/pay"
	expect(t, c, harness.Request{Method: "POST", Path: payPath, Token: login.AccessToken,
		Header: map[string]string{"Idempotency-Key": "pay-" + inv.ID}, Body: map[string]string{"payment_method": "pm_card_visa"}},
		http.StatusOK, nil)

	var tr payTrace
	harness.Wait(t, spanDeadline, "the payment's trace in the collector", func(context.Context) (bool, error) {
		var err error
		tr, err = findPayTrace(col.all(), payPath)
		return err == nil, err
	})
	t.Logf("trace %s:\n%s", tr.root.TraceID, render(tr.spans))

	switch {
	case tr.root.Service != "seam-monolith" || tr.served.Service != "seam-billing":
		t.Fatalf("services: %q received the request, %q served it; want seam-monolith and seam-billing", tr.root.Service, tr.served.Service)
	case tr.root.Attrs["seam.request_id"] == "" || tr.root.Attrs["seam.request_id"] != tr.served.Attrs["seam.request_id"]:
		t.Fatalf("request ids: %q in the monolith, %q in billing; want the same one", tr.root.Attrs["seam.request_id"], tr.served.Attrs["seam.request_id"])
	case tr.served.Attrs["http.response.status_code"] != "200" || tr.root.Attrs["http.response.status_code"] != "200":
		t.Fatalf("status codes: %s in the monolith, %s in billing", tr.root.Attrs["http.response.status_code"], tr.served.Attrs["http.response.status_code"])
	}
}

func expect(t *testing.T, c *harness.Client, req harness.Request, status int, out any) {
	t.Helper()
	resp := c.Do(req)
	if resp.Status != status {
		t.Fatalf("%s %s: status %d, want %d; body %s", req.Method, req.Path, resp.Status, status, resp.Body)
	}
	if out != nil {
		if err := json.Unmarshal(resp.Body, out); err != nil {
			t.Fatalf("%s %s: %v: %s", req.Method, req.Path, err, resp.Body)
		}
	}
}

// payTrace is the payment request's trace and the spans the test checks in it.
type payTrace struct {
	spans    []span
	root     span // the monolith's HTTP server span of the payment
	forward  span // the monolith's gateway client span
	served   span // billing's HTTP server span of the forwarded request
	publish  span // billing's producer span of payment_completed
	routed   span // the monolith's route span of billing's HTTP request
	consumed []span
}

// findPayTrace finds the trace of the monolith's server span for payPath and checks it holds every span
// the payment causes, in a coherent parent chain; an error says what is missing so far.
func findPayTrace(all []span, payPath string) (payTrace, error) {
	var tr payTrace
	i := indexOf(all, func(s span) bool {
		return s.Service == "seam-monolith" && s.Kind == tracepb.Span_SPAN_KIND_SERVER && s.Attrs["url.path"] == payPath
	})
	if i < 0 {
		return tr, fmt.Errorf("no server span of POST %s from seam-monolith among %d spans", payPath, len(all))
	}
	tr.root = all[i]
	byID := map[string]span{}
	for _, s := range all {
		if s.TraceID == tr.root.TraceID {
			tr.spans = append(tr.spans, s)
			byID[s.SpanID] = s
		}
	}
	find := func(what string, match func(s span) bool) (span, error) {
		if i := indexOf(tr.spans, match); i >= 0 {
			return tr.spans[i], nil
		}
		return span{}, fmt.Errorf("trace %s has no %s yet:\n%s", tr.root.TraceID, what, render(tr.spans))
	}
	var err error
	// The monolith routes billing's HTTP request (platform/route's span, remote side), then forwards it.
	if tr.routed, err = find("route span of billing's HTTP routes child of the monolith's server span", func(s span) bool {
		return s.Service == "seam-monolith" && s.Kind == tracepb.Span_SPAN_KIND_INTERNAL && s.ParentID == tr.root.SpanID &&
			s.Name == "billing/http" && s.Attrs["seam.side"] == "remote"
	}); err != nil {
		return tr, err
	}
	if tr.forward, err = find("gateway client span child of the route span", func(s span) bool {
		return s.Service == "seam-monolith" && s.Kind == tracepb.Span_SPAN_KIND_CLIENT && s.ParentID == tr.routed.SpanID &&
			s.Name == "forward POST seam.http.billing"
	}); err != nil {
		return tr, err
	}
	if tr.served, err = find("billing server span child of the gateway's client span", func(s span) bool {
		return s.Service == "seam-billing" && s.Kind == tracepb.Span_SPAN_KIND_SERVER && s.ParentID == tr.forward.SpanID &&
			s.Name == "HTTP POST /api/billing/invoices/{id}/pay"
	}); err != nil {
		return tr, err
	}
	// Billing calls auth's api through its router (an extracted billing reaches auth remotely): the module
	// call's span, then the rpc client span under it.
	userCall, err := find("billing's module call span of auth/GetUser under billing's server span", func(s span) bool {
		return s.Service == "seam-billing" && s.Kind == tracepb.Span_SPAN_KIND_INTERNAL && s.Name == "auth/GetUser" &&
			s.Attrs["seam.side"] == "remote" && descends(byID, s, tr.served.SpanID)
	})
	if err != nil {
		return tr, err
	}
	if _, err := find("rpc client span of auth/GetUser under the module call span", func(s span) bool {
		return s.Service == "seam-billing" && s.Kind == tracepb.Span_SPAN_KIND_CLIENT && s.ParentID == userCall.SpanID
	}); err != nil {
		return tr, err
	}
	if tr.publish, err = find("billing publish span of payment_completed under billing's server span", func(s span) bool {
		return s.Service == "seam-billing" && s.Kind == tracepb.Span_SPAN_KIND_PRODUCER &&
			s.Name == "publish billing.events.payment_completed" && descends(byID, s, tr.served.SpanID)
	}); err != nil {
		return tr, err
	}
	for _, s := range tr.spans {
		if s.Service == "seam-monolith" && s.Kind == tracepb.Span_SPAN_KIND_CONSUMER && s.ParentID == tr.publish.SpanID &&
			s.Attrs["messaging.destination.name"] == "billing.events.payment_completed" {
			tr.consumed = append(tr.consumed, s)
		}
	}
	if len(tr.consumed) == 0 {
		_, err := find("monolith consumer span child of the publish span", func(span) bool { return false })
		return tr, err
	}
	return tr, nil
}

// descends reports whether s has ancestor among the spans byID (by parent ids within one trace).
func descends(byID map[string]span, s span, ancestor string) bool {
	for seen := 0; s.ParentID != "" && seen < len(byID); seen++ {
		if s.ParentID == ancestor {
			return true
		}
		parent, ok := byID[s.ParentID]
		if !ok {
			return false
		}
		s = parent
	}
	return false
}

func indexOf(spans []span, match func(span) bool) int {
	for i, s := range spans {
		if match(s) {
			return i
		}
	}
	return -1
}

// render lists a trace's spans as an indented tree, for logs and failure messages.
func render(spans []span) string {
	children := map[string][]span{}
	ids := map[string]bool{}
	for _, s := range spans {
		ids[s.SpanID] = true
	}
	var roots []span
	for _, s := range spans {
		if ids[s.ParentID] {
			children[s.ParentID] = append(children[s.ParentID], s)
		} else {
			roots = append(roots, s)
		}
	}
	var b strings.Builder
	var walk func(s span, depth int)
	walk = func(s span, depth int) {
		fmt.Fprintf(&b, "%s%s [%s, %s]\n", strings.Repeat("  ", depth), s.Name, s.Service, strings.TrimPrefix(s.Kind.String(), "SPAN_KIND_"))
		kids := children[s.SpanID]
		sort.Slice(kids, func(i, j int) bool { return kids[i].Name < kids[j].Name })
		for _, k := range kids {
			walk(k, depth+1)
		}
	}
	for _, r := range roots {
		walk(r, 0)
	}
	return b.String()
}
