package main

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// fakeAdmin serves canned admin API answers and records the requests it got.
func fakeAdmin(t *testing.T) (*httptest.Server, *[]string) {
	t.Helper()
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Method+" "+r.URL.RequestURI()+" "+r.Header.Get("Authorization"))
		switch r.URL.Path {
		case "/api/admin/dlq":
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"dead_letters":[{"id":"d1","module":"reporting","consumer":"reporting-billing",
"subject":"billing.events.invoice_created","attempts":3,"last_failed_at":"2026-01-02T03:04:05Z","status":"pending",
"error":"failpoint: injected failure\nsecond line"}]}`))
		case "/api/admin/dlq/reporting/d1/retry":
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"applied":true,"dead_letter":{"id":"d1","status":"retried"}}`))
		case "/api/admin/dlq/reporting/d2/retry":
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusConflict)
			_, _ = w.Write([]byte(`{"title":"Conflict","status":409,"detail":"the dead letter was already retried or discarded","code":"dlq.already_resolved"}`))
		case "/api/admin/replay/reporting":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusAccepted)
			_, _ = w.Write([]byte(`{"module":"reporting","status":"replaying","events_to_reapply":12}`))
		case "/api/admin/consumers":
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"consumers":[{"module":"reporting","consumer":"reporting-auth","pending":0,"ack_pending":0}]}`))
		default:
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte(`{"title":"Forbidden","status":403,"detail":"you are not allowed to do this","code":"auth.forbidden"}`))
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &got
}

func runAdmin(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := &cobra.Command{Use: "seam", SilenceUsage: true, SilenceErrors: true}
	root.AddCommand(dlqCommand(), replayCommand())
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

func TestDLQCommands(t *testing.T) {
	srv, got := fakeAdmin(t)
	out, err := runAdmin(t, "dlq", "list", "--url", srv.URL, "--token", "tok", "--module", "reporting")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"MODULE", "reporting", "d1", "reporting-billing", "billing.events.invoice_created",
		"2026-01-02T03:04:05Z", "pending", "failpoint: injected failure"} {
		if !strings.Contains(out, want) {
			t.Errorf("list output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "second line") {
		t.Errorf("list output shows more than an error's first line:\n%s", out)
	}
	if (*got)[0] != "GET /api/admin/dlq?module=reporting&status=pending Bearer tok" {
		t.Errorf("request = %q", (*got)[0])
	}

	if out, err := runAdmin(t, "dlq", "retry", "reporting", "d1", "--url", srv.URL, "--token", "tok"); err != nil ||
		!strings.Contains(out, "retried") {
		t.Fatalf("retry = %q, %v", out, err)
	}
	_, err = runAdmin(t, "dlq", "retry", "reporting", "d2", "--url", srv.URL, "--token", "tok")
	if !errors.Is(err, errAdminAPI) || !strings.Contains(err.Error(), "409 dlq.already_resolved") {
		t.Fatalf("retry of a resolved dead letter: err = %v", err)
	}
	_, err = runAdmin(t, "dlq", "discard", "billing", "d3", "--url", srv.URL, "--token", "user")
	if err == nil || !strings.Contains(err.Error(), "403") || !strings.Contains(err.Error(), "must belong to an admin") {
		t.Fatalf("as a user: err = %v", err)
	}
	t.Setenv(tokenEnv, "")
	if _, err := runAdmin(t, "dlq", "list", "--url", srv.URL); err == nil || !strings.Contains(err.Error(), tokenEnv) {
		t.Fatalf("without a token: err = %v", err)
	}
}

func TestReplayCommandWaits(t *testing.T) {
	srv, got := fakeAdmin(t)
	t.Setenv(tokenEnv, "env-token")
	out, err := runAdmin(t, "replay", "reporting", "--wait", "--url", srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "12 handled events") || !strings.Contains(out, "caught up") {
		t.Fatalf("replay output:\n%s", out)
	}
	if (*got)[0] != "POST /api/admin/replay/reporting Bearer env-token" || (*got)[1] != "GET /api/admin/consumers Bearer env-token" {
		t.Fatalf("requests = %q", *got)
	}
}
