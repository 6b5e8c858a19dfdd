package notifications

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
	notificationsapi "github.com/seamkit/seam/modules/notifications/api"
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

// fakeNotifications records the listings asked for and answers with list.
type fakeNotifications struct {
	list   []notificationsapi.Notification
	userID string
	limit  int
}

func (f *fakeNotifications) List(_ context.Context, userID string, limit int) ([]notificationsapi.Notification, error) {
	f.userID, f.limit = userID, limit
	return f.list, nil
}

func newTestServer(t *testing.T, svc notificationsapi.Notifications) http.Handler {
	t.Helper()
	logger := slog.New(slog.DiscardHandler)
	var cfg httpx.Config
	cfg.SetDefaults()
	srv, err := httpx.NewServer(httpx.ServerParams{Config: cfg, Logger: logger,
		Verifier: tokens{"alice-token": {UserID: "alice-id", Email: "alice@example.com", Role: identity.RoleUser}},
		Routes:   []httpx.Routes{newRoutes(svc, logger)}})
	if err != nil {
		t.Fatal(err)
	}
	return srv.Handler()
}

func get(t *testing.T, h http.Handler, target, token string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, target, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestListNotifications(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	svc := &fakeNotifications{list: []notificationsapi.Notification{{ID: "m1", Template: "welcome", Subject: "Welcome to Seam",
		Body: "Hello", CreatedAt: at, Status: "sent"}}}
	h := newTestServer(t, svc)

	rec := get(t, h, "/api/notifications", "alice-token")
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("status %d, content type %q: %s", rec.Code, rec.Header().Get("Content-Type"), rec.Body)
	}
	const want = `{"notifications":[{"id":"m1","template":"welcome","subject":"Welcome to Seam","body":"Hello",` +
		`"created_at":"2026-03-01T12:00:00Z","status":"sent"}]}`
	if got := strings.TrimSpace(rec.Body.String()); got != want {
		t.Fatalf("body = %s\nwant   %s", got, want)
	}
	if svc.userID != "alice-id" || svc.limit != notificationsapi.DefaultLimit {
		t.Fatalf("listed user %q limit %d", svc.userID, svc.limit)
	}

	for _, limit := range []string{"1", "100", "7"} {
		if rec := get(t, h, "/api/notifications?limit="+limit, "alice-token"); rec.Code != http.StatusOK {
			t.Fatalf("limit %s: status %d", limit, rec.Code)
		}
	}
	if svc.limit != 7 {
		t.Fatalf("limit = %d, want 7", svc.limit)
	}
}

func TestListNotificationsEmptyIsAnArray(t *testing.T) {
	rec := get(t, newTestServer(t, &fakeNotifications{}), "/api/notifications", "alice-token")
	if got := strings.TrimSpace(rec.Body.String()); rec.Code != http.StatusOK || got != `{"notifications":[]}` {
		t.Fatalf("status %d body %s", rec.Code, got)
	}
}

func TestListNotificationsRefusesBadRequests(t *testing.T) {
	svc := &fakeNotifications{}
	h := newTestServer(t, svc)
	tests := []struct {
		name, target, token string
		status              int
		code                string
	}{
		{"anonymous", "/api/notifications", "", 401, "auth.unauthenticated"},
		{"invalid token", "/api/notifications", "forged", 401, "auth.invalid_token"},
		{"limit zero", "/api/notifications?limit=0", "alice-token", 422, "validation_failed"},
		{"limit negative", "/api/notifications?limit=-1", "alice-token", 422, "validation_failed"},
		{"limit too big", "/api/notifications?limit=101", "alice-token", 422, "validation_failed"},
		{"limit absurd", "/api/notifications?limit=1000000000000000000000", "alice-token", 422, "validation_failed"},
		{"limit not a number", "/api/notifications?limit=ten", "alice-token", 422, "validation_failed"},
		{"limit fractional", "/api/notifications?limit=1.5", "alice-token", 422, "validation_failed"},
		{"limit empty", "/api/notifications?limit=", "alice-token", 422, "validation_failed"},
		{"limit twice", "/api/notifications?limit=1&limit=2", "alice-token", 422, "validation_failed"},
		{"wrong method", "/api/notifications", "alice-token", 405, "http.method_not_allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc.limit = -1
			method := http.MethodGet
			if tt.status == 405 {
				method = http.MethodPost
			}
			req := httptest.NewRequest(method, tt.target, nil)
			if tt.token != "" {
				req.Header.Set("Authorization", "Bearer "+tt.token)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			var problem httpx.Problem
			if err := json.Unmarshal(rec.Body.Bytes(), &problem); err != nil {
				t.Fatalf("body %s: %v", rec.Body, err)
			}
			if rec.Code != tt.status || problem.Code != tt.code || rec.Header().Get("Content-Type") != httpx.ProblemContentType {
				t.Fatalf("status %d code %q content type %q, want %d %q", rec.Code, problem.Code, rec.Header().Get("Content-Type"), tt.status, tt.code)
			}
			if tt.status == 422 && (len(problem.Errors) != 1 || problem.Errors[0].Field != "limit") {
				t.Fatalf("field errors = %+v", problem.Errors)
			}
			if svc.limit != -1 {
				t.Fatal("the service was called for a refused request")
			}
		})
	}
}
