package httpx_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/seamkit/seam/platform/httpx"
)

// TestDatabaseDownIs503 checks that failures to reach the database become a 503 "unavailable" problem that
// names no host, port or driver detail, while other driver errors stay a generic 500.
func TestDatabaseDownIs503(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close() // nothing listens there now: connecting fails
	_, connectErr := pgx.Connect(t.Context(), "postgres://seam@"+addr+"/seam?connect_timeout=2")
	if connectErr == nil {
		t.Fatal("connecting to a closed port succeeded")
	}
	cases := []struct {
		name   string
		err    error
		status int
		code   string
	}{
		{"connect error", fmt.Errorf("begin: %w", connectErr), http.StatusServiceUnavailable, "unavailable"},
		{"server shutting down", &pgconn.PgError{Code: "57P01", Message: "terminating connection due to administrator command"},
			http.StatusServiceUnavailable, "unavailable"},
		{"connection exception", fmt.Errorf("query: %w", &pgconn.PgError{Code: "08006"}), http.StatusServiceUnavailable, "unavailable"},
		{"network error", &net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset by peer")},
			http.StatusServiceUnavailable, "unavailable"},
		{"constraint violation", &pgconn.PgError{Code: "23505", Message: "duplicate key"}, http.StatusInternalServerError, "internal"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequestWithContext(context.Background(), http.MethodGet, "/api/x", nil)
			status, body := httpx.RenderProblem(r, tc.err)
			if status != tc.status || !strings.Contains(string(body), `"code":"`+tc.code+`"`) {
				t.Fatalf("status %d body %s, want %d with code %s", status, body, tc.status, tc.code)
			}
			port := addr[strings.LastIndex(addr, ":")+1:]
			for _, leak := range []string{port, "dial", "SQLSTATE", "pgconn", "reset", "duplicate"} {
				if strings.Contains(string(body), leak) {
					t.Errorf("body %s leaks %q", body, leak)
				}
			}
		})
	}
}
