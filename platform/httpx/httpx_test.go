package httpx_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"

	"github.com/seamkit/seam/platform/errs"
	"github.com/seamkit/seam/platform/httpx"
	"github.com/seamkit/seam/platform/identity"
)

var errThingNotFound = errs.New(errs.NotFound, "demo.thing_not_found", "thing not found")

type thing struct {
	Name  string `json:"name"`
	Count int    `json:"count"`
}

func (t thing) Validate() error {
	var c errs.Collector
	c.Check(t.Name != "", "name", "is required")
	c.Check(t.Count >= 0, "count", "must not be negative")
	return c.Err()
}

type verifier struct{}

func (verifier) VerifyToken(_ context.Context, token string) (identity.Principal, error) {
	switch token {
	case "user-token":
		return identity.Principal{UserID: "u1", Role: identity.RoleUser}, nil
	case "admin-token":
		return identity.Principal{UserID: "a1", Role: identity.RoleAdmin}, nil
	}
	return identity.Principal{}, errs.New(errs.Unauthenticated, "auth.invalid_token", "the token is invalid or expired")
}

func newHandler(t *testing.T) http.Handler {
	t.Helper()
	logger := slog.New(slog.DiscardHandler)
	routes := httpx.Routes{Prefix: "/api/demo", Mount: func(r chi.Router) {
		r.Post("/things", httpx.Errors(logger, func(w http.ResponseWriter, r *http.Request) error {
			var in thing
			if err := httpx.DecodeJSON(r, &in); err != nil {
				return err
			}
			return httpx.WriteJSON(w, http.StatusCreated, in)
		}))
		r.Get("/missing", httpx.Errors(logger, func(http.ResponseWriter, *http.Request) error {
			return errThingNotFound
		}))
		r.Get("/boom", httpx.Errors(logger, func(http.ResponseWriter, *http.Request) error {
			return errors.New("pq: relation \"secret_table\" does not exist")
		}))
		r.Get("/panic", func(http.ResponseWriter, *http.Request) { panic("kaput") })
		r.With(httpx.RequireUser(logger)).Get("/me", httpx.Errors(logger, func(w http.ResponseWriter, r *http.Request) error {
			p, err := httpx.Caller(r)
			if err != nil {
				return err
			}
			return httpx.WriteJSON(w, http.StatusOK, p)
		}))
		r.With(httpx.RequireRole(identity.RoleAdmin, logger)).Get("/admin", func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusNoContent)
		})
	}}
	s, err := httpx.NewServer(httpx.ServerParams{
		Config:   httpx.Config{MaxBodyBytes: 1024},
		Logger:   logger,
		Verifier: verifier{},
		Routes:   []httpx.Routes{routes},
	})
	if err != nil {
		t.Fatal(err)
	}
	return s.Handler()
}

type call struct {
	method, path, contentType, body, token string
}

func do(t *testing.T, h http.Handler, c call) (*httptest.ResponseRecorder, httpx.Problem) {
	t.Helper()
	req := httptest.NewRequest(c.method, c.path, strings.NewReader(c.body))
	if c.contentType != "" {
		req.Header.Set("Content-Type", c.contentType)
	}
	if c.token != "" {
		req.Header.Set("Authorization", c.token)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var p httpx.Problem
	if rec.Code >= 400 {
		if ct := rec.Header().Get("Content-Type"); ct != httpx.ProblemContentType {
			t.Fatalf("%s %s: content type %q, want problem+json; body %s", c.method, c.path, ct, rec.Body)
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
			t.Fatalf("problem body not JSON: %s", rec.Body)
		}
		if p.Status != rec.Code || p.Type == "" || p.Title == "" || p.RequestID == "" {
			t.Fatalf("incomplete problem: %+v", p)
		}
	}
	return rec, p
}

func TestErrorsBecomeProblems(t *testing.T) {
	h := newHandler(t)
	const js = "application/json"
	cases := []struct {
		name   string
		call   call
		status int
		code   string
	}{
		{"valid", call{"POST", "/api/demo/things", js, `{"name":"a","count":1}`, ""}, 201, ""},
		{"malformed json", call{"POST", "/api/demo/things", js, `{"name":`, ""}, 400, "http.malformed_body"},
		{"unknown field", call{"POST", "/api/demo/things", js, `{"name":"a","extra":1}`, ""}, 400, "http.malformed_body"},
		{"wrong type", call{"POST", "/api/demo/things", js, `{"name":"a","count":"x"}`, ""}, 400, "http.malformed_body"},
		{"trailing data", call{"POST", "/api/demo/things", js, `{"name":"a"} {}`, ""}, 400, "http.malformed_body"},
		{"missing field", call{"POST", "/api/demo/things", js, `{"count":1}`, ""}, 422, errs.CodeValidation},
		{"wrong content type", call{"POST", "/api/demo/things", "text/plain", `{"name":"a"}`, ""}, 415, "http.unsupported_media_type"},
		{"oversized body", call{"POST", "/api/demo/things", js, `{"name":"` + strings.Repeat("a", 2000) + `"}`, ""}, 413, "http.body_too_large"},
		{"not found sentinel", call{"GET", "/api/demo/missing", "", "", ""}, 404, "demo.thing_not_found"},
		{"unknown route", call{"GET", "/api/nowhere", "", "", ""}, 404, "http.not_found"},
		{"wrong method", call{"DELETE", "/api/demo/things", "", "", ""}, 405, "http.method_not_allowed"},
		{"internal error hides details", call{"GET", "/api/demo/boom", "", "", ""}, 500, "internal"},
		{"panic", call{"GET", "/api/demo/panic", "", "", ""}, 500, "internal"},
		{"anonymous", call{"GET", "/api/demo/me", "", "", ""}, 401, "auth.unauthenticated"},
		{"bad scheme", call{"GET", "/api/demo/me", "", "", "Basic dXNlcjpwdw=="}, 401, "auth.unauthenticated"},
		{"invalid token", call{"GET", "/api/demo/me", "", "", "Bearer forged"}, 401, "auth.invalid_token"},
		{"user", call{"GET", "/api/demo/me", "", "", "Bearer user-token"}, 200, ""},
		{"user on admin route", call{"GET", "/api/demo/admin", "", "", "Bearer user-token"}, 403, "auth.forbidden"},
		{"admin", call{"GET", "/api/demo/admin", "", "", "Bearer admin-token"}, 204, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec, p := do(t, h, tc.call)
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d; body %s", rec.Code, tc.status, rec.Body)
			}
			if p.Code != tc.code {
				t.Fatalf("code %q, want %q", p.Code, tc.code)
			}
			body := rec.Body.String()
			for _, leak := range []string{"secret_table", "kaput", "goroutine", ".go:"} {
				if strings.Contains(body, leak) {
					t.Fatalf("response leaks %q: %s", leak, body)
				}
			}
		})
	}
}

func TestValidationListsFields(t *testing.T) {
	h := newHandler(t)
	_, p := do(t, h, call{"POST", "/api/demo/things", "application/json", `{"count":-1}`, ""})
	if len(p.Errors) != 2 || p.Errors[0].Field != "name" || p.Errors[1].Field != "count" {
		t.Fatalf("errors = %+v", p.Errors)
	}
}

func TestRequestIDEchoedOrMade(t *testing.T) {
	h := newHandler(t)
	req := httptest.NewRequest(http.MethodGet, "/healthz", nil)
	req.Header.Set(httpx.RequestIDHeader, "abc-123")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if got := rec.Header().Get(httpx.RequestIDHeader); got != "abc-123" {
		t.Fatalf("request id %q, want echoed", got)
	}
	req = httptest.NewRequest(http.MethodGet, "/healthz", nil)
	req.Header.Set(httpx.RequestIDHeader, "bad id with spaces\n")
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if got := rec.Header().Get(httpx.RequestIDHeader); len(got) != 32 {
		t.Fatalf("request id %q, want a fresh one", got)
	}
}

func TestReadinessReportsDownDependency(t *testing.T) {
	logger := slog.New(slog.DiscardHandler)
	s, err := httpx.NewServer(httpx.ServerParams{
		Config: httpx.Config{MaxBodyBytes: 1024},
		Logger: logger,
		Checks: []httpx.ReadinessCheck{
			{Name: "db", Check: func(context.Context) error { return nil }},
			{Name: "bus", Check: func(context.Context) error { return errors.New("nats: no servers") }},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	rec, p := do(t, s.Handler(), call{method: "GET", path: "/readyz"})
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(p.Detail, "bus") || strings.Contains(rec.Body.String(), "nats:") {
		t.Fatalf("status %d body %s", rec.Code, rec.Body)
	}
}

func TestDuplicatePrefixRefused(t *testing.T) {
	noop := func(chi.Router) {}
	_, err := httpx.NewServer(httpx.ServerParams{
		Config: httpx.Config{MaxBodyBytes: 1024},
		Logger: slog.New(slog.DiscardHandler),
		Routes: []httpx.Routes{{Prefix: "/api/x", Mount: noop}, {Prefix: "api/x/", Mount: noop}},
	})
	if !errors.Is(err, httpx.ErrDuplicatePrefix) {
		t.Fatalf("err = %v", err)
	}
}
