package httpx_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/seamkit/seam/platform/httpx"
	"github.com/seamkit/seam/platform/rpc/rpctest"
)

const gatewaySubject = "seam.http.demo"

// gatewayPair serves h on the bus and returns an HTTP server forwarding to it through a Gateway with timeout,
// behind the request id and body limit middleware (1024 bytes).
func gatewayPair(t *testing.T, h http.Handler, timeout time.Duration) *httptest.Server {
	t.Helper()
	conn := rpctest.Connect(t)
	if h != nil {
		served := rpctest.Dial(t, conn.ConnectedUrl())
		ns, err := httpx.ServeNATS(served, gatewaySubject, h, time.Minute, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := ns.Stop(ctx); err != nil {
				t.Error(err)
			}
		})
	}
	gw := httpx.NewGateway(func() *nats.Conn { return conn }, gatewaySubject, timeout, slog.New(slog.DiscardHandler))
	srv := httptest.NewServer(httpx.RequestID(httpx.BodyLimit(1024, slog.New(slog.DiscardHandler))(gw)))
	t.Cleanup(srv.Close)
	return srv
}

func TestGatewayForwardsRequestAndResponse(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a NATS server: skipped with -short")
	}
	srv := gatewayPair(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Seen", r.Method+" "+r.URL.Path+"?"+r.URL.RawQuery+" "+r.Header.Get("Authorization")+" "+
			r.Header.Get(httpx.RequestIDHeader)+" "+string(body))
		w.Header().Add("X-Multi", "a")
		w.Header().Add("X-Multi", "b")
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, "made")
	}), 5*time.Second)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+"/api/demo/things?x=1&y=2", strings.NewReader("payload"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer tok")
	req.Header.Set(httpx.RequestIDHeader, "req-42")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated || string(body) != "made" {
		t.Fatalf("response = %d %q", resp.StatusCode, body)
	}
	if got, want := resp.Header.Get("X-Seen"), "POST /api/demo/things?x=1&y=2 Bearer tok req-42 payload"; got != want {
		t.Errorf("the served handler saw %q, want %q", got, want)
	}
	if got := resp.Header.Values("X-Multi"); len(got) != 2 {
		t.Errorf("X-Multi = %v, want both values", got)
	}
	if resp.Header.Get(httpx.HeaderForwardStatus) != "" {
		t.Error("the forwarding status header leaked to the client")
	}
}

// problemOf decodes a problem+json response and checks its status.
func problemOf(t *testing.T, resp *http.Response, status int) httpx.Problem {
	t.Helper()
	var p httpx.Problem
	if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != status || resp.Header.Get("Content-Type") != httpx.ProblemContentType {
		t.Fatalf("response = %d %s %+v, want %d problem+json", resp.StatusCode, resp.Header.Get("Content-Type"), p, status)
	}
	return p
}

func TestGatewayWithoutInstancesAnswers503AtOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a NATS server: skipped with -short")
	}
	srv := gatewayPair(t, nil, time.Minute)
	start := time.Now()
	resp, err := http.Get(srv.URL + "/api/demo/things")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	p := problemOf(t, resp, http.StatusServiceUnavailable)
	if p.Code != httpx.ErrModuleUnavailable.Code {
		t.Errorf("code = %q, want %q", p.Code, httpx.ErrModuleUnavailable.Code)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("took %s, want an answer without waiting for the timeout", took)
	}
}

func TestGatewayTimesOut(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a NATS server: skipped with -short")
	}
	release := make(chan struct{})
	srv := gatewayPair(t, http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-release }), 200*time.Millisecond)
	t.Cleanup(func() { close(release) }) // before the server stops: it waits for the handler
	resp, err := http.Get(srv.URL + "/api/demo/slow")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	problemOf(t, resp, http.StatusServiceUnavailable)
}

func TestGatewayRespectsTheBodyLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a NATS server: skipped with -short")
	}
	srv := gatewayPair(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }), time.Minute)
	pr, pw := io.Pipe()
	go func() {
		_, _ = pw.Write([]byte(strings.Repeat("x", 4096)))
		_ = pw.Close()
	}()
	resp, err := http.Post(srv.URL+"/api/demo/things", "application/octet-stream", pr)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	problemOf(t, resp, http.StatusRequestEntityTooLarge)
}
