package reporting

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	authapi "github.com/seamkit/seam/modules/auth/api"
	reportingdomain "github.com/seamkit/seam/modules/reporting/domain"
	"github.com/seamkit/seam/platform/httpx"
	"github.com/seamkit/seam/platform/identity"
)

// tokens is a TokenVerifier that knows a fixed set of tokens.
type tokens map[string]identity.Principal

func (v tokens) VerifyToken(_ context.Context, token string) (identity.Principal, error) {
	p, ok := v[token]
	if !ok {
		return identity.Principal{}, authapi.ErrInvalidToken
	}
	return p, nil
}

// fixedReader answers every range with act.
type fixedReader struct {
	act   reportingdomain.Activity
	calls int
}

func (r *fixedReader) Activity(context.Context, time.Time, time.Time) (reportingdomain.Activity, error) {
	r.calls++
	return r.act, nil
}

func newTestServer(t *testing.T, reader reportingdomain.Reader) http.Handler {
	t.Helper()
	logger := slog.New(slog.DiscardHandler)
	var cfg httpx.Config
	cfg.SetDefaults()
	srv, err := httpx.NewServer(httpx.ServerParams{Config: cfg, Logger: logger,
		Verifier: tokens{
			"admin-token": {UserID: "a", Email: "admin@example.com", Role: identity.RoleAdmin},
			"user-token":  {UserID: "u", Email: "user@example.com", Role: identity.RoleUser},
		},
		Routes: []httpx.Routes{newRoutes(reportingdomain.NewService(reader), logger)}})
	if err != nil {
		t.Fatal(err)
	}
	return srv.Handler()
}

func get(h http.Handler, target, token string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, target, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestSummaryForAdmins(t *testing.T) {
	d := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	reader := &fixedReader{act: reportingdomain.Activity{
		Signups: []reportingdomain.DayCount{{Day: d, Count: 2}},
		Revenue: []reportingdomain.DayAmount{{Day: d, Currency: "EUR", Count: 1, AmountMinor: 1250}},
	}}
	rec := get(newTestServer(t, reader), "/api/reports/summary?from=2026-01-01&to=2026-01-31", "admin-token")
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	const want = `{"from":"2026-01-01","to":"2026-01-31","signups":2,"invoices":[],` +
		`"revenue":[{"currency":"EUR","payments":1,"amount_minor":1250}],"failed_payments":[],` +
		`"days":[{"day":"2026-01-05","signups":2,"invoices":[],"revenue":[{"currency":"EUR","payments":1,"amount_minor":1250}],"failed_payments":[]}]}`
	if got := strings.TrimSpace(rec.Body.String()); got != want {
		t.Fatalf("body = %s\nwant   %s", got, want)
	}
}

func TestSummaryDefaultRange(t *testing.T) {
	rec := get(newTestServer(t, &fixedReader{}), "/api/reports/summary", "admin-token")
	var out struct{ From, To string }
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || rec.Code != http.StatusOK {
		t.Fatalf("status %d body %s", rec.Code, rec.Body)
	}
	today := time.Now().UTC()
	to, _ := time.Parse("2006-01-02", out.To)
	from, _ := time.Parse("2006-01-02", out.From)
	// The day may turn between the request and this check.
	if d := today.Sub(to); d < 0 || d > 48*time.Hour || to.Sub(from) != 29*24*time.Hour {
		t.Fatalf("default range %s..%s (today %s)", out.From, out.To, today.Format(time.DateOnly))
	}
}

func TestSummaryRefusesBadRequests(t *testing.T) {
	reader := &fixedReader{}
	h := newTestServer(t, reader)
	tests := []struct {
		name, target, token string
		status              int
		code                string
		fields              []string
	}{
		{"anonymous", "/api/reports/summary", "", 401, "auth.unauthenticated", nil},
		{"tampered token", "/api/reports/summary", "forged", 401, "auth.invalid_token", nil},
		{"user", "/api/reports/summary", "user-token", 403, "auth.forbidden", nil},
		{"bad from", "/api/reports/summary?from=yesterday", "admin-token", 422, "validation_failed", []string{"from"}},
		{"bad to", "/api/reports/summary?to=2026-02-30", "admin-token", 422, "validation_failed", []string{"to"}},
		{"both bad", "/api/reports/summary?from=x&to=y", "admin-token", 422, "validation_failed", []string{"from", "to"}},
		{"reversed", "/api/reports/summary?from=2026-02-01&to=2026-01-01", "admin-token", 422, "validation_failed", []string{"from"}},
		{"too long", "/api/reports/summary?from=2020-01-01&to=2026-01-01", "admin-token", 422, "validation_failed", []string{"to"}},
		{"unknown path", "/api/reports/nope", "admin-token", 404, "http.not_found", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := get(h, tt.target, tt.token)
			var problem httpx.Problem
			if err := json.Unmarshal(rec.Body.Bytes(), &problem); err != nil {
				t.Fatalf("body %s: %v", rec.Body, err)
			}
			if rec.Code != tt.status || problem.Code != tt.code || rec.Header().Get("Content-Type") != httpx.ProblemContentType {
				t.Fatalf("status %d code %q, want %d %q", rec.Code, problem.Code, tt.status, tt.code)
			}
			var fields []string
			for _, f := range problem.Errors {
				fields = append(fields, f.Field)
			}
			if strings.Join(fields, ",") != strings.Join(tt.fields, ",") {
				t.Fatalf("fields %v, want %v", fields, tt.fields)
			}
		})
	}
	if reader.calls != 0 {
		t.Fatalf("refused requests read the database %d times", reader.calls)
	}
}
