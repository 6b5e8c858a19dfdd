package httpx_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
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

// pairs are the ways a gateway reaches an instance: over NATS (ServeNATS) and on a direct lane (lanePair).
var pairs = []struct {
	name string
	pair func(t *testing.T, h http.Handler, timeout time.Duration) *httptest.Server
}{{"nats", gatewayPair}, {"lane", lanePair}}

// eachPair runs test once for each of pairs.
func eachPair(t *testing.T, test func(t *testing.T, pair func(t *testing.T, h http.Handler, timeout time.Duration) *httptest.Server)) {
	for _, p := range pairs {
		t.Run(p.name, func(t *testing.T) { test(t, p.pair) })
	}
}

func TestGatewayForwardsRequestAndResponse(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a NATS server: skipped with -short")
	}
	eachPair(t, testGatewayForwardsRequestAndResponse)
}

func testGatewayForwardsRequestAndResponse(t *testing.T, gatewayPair func(*testing.T, http.Handler, time.Duration) *httptest.Server) {
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
	eachPair(t, testGatewayTimesOut)
}

func testGatewayTimesOut(t *testing.T, gatewayPair func(*testing.T, http.Handler, time.Duration) *httptest.Server) {
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
	eachPair(t, testGatewayRespectsTheBodyLimit)
}

func testGatewayRespectsTheBodyLimit(t *testing.T, gatewayPair func(*testing.T, http.Handler, time.Duration) *httptest.Server) {
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

// serveOn serves h for subject on a connection of its own to the gateway's NATS server, as another instance
// would, and returns that connection (closing it kills the instance as far as the bus can tell).
func serveOn(t *testing.T, url string, h http.Handler) *nats.Conn {
	t.Helper()
	conn := rpctest.Dial(t, url)
	if _, err := httpx.ServeNATS(conn, gatewaySubject, h, time.Minute, slog.New(slog.DiscardHandler)); err != nil {
		t.Error(err)
	}
	// The subscription reaches the server before anyone is told the instance serves.
	if err := conn.Flush(); err != nil {
		t.Error(err)
	}
	return conn
}

// lostInstance runs a request through a gateway whose first instance dies (its connection closes) while
// serving it, with a second instance started once the first has the request; it returns the response's
// status and body and how many times the second instance served the request.
func lostInstance(t *testing.T, method string, header http.Header) (int, []byte, int) {
	t.Helper()
	conn := rpctest.Connect(t)
	gw := httpx.NewGateway(func() *nats.Conn { return conn }, gatewaySubject, time.Minute, slog.New(slog.DiscardHandler))
	srv := httptest.NewServer(gw)
	t.Cleanup(srv.Close)

	started := make(chan struct{})
	hang := make(chan struct{})
	t.Cleanup(func() { close(hang) })
	first := serveOn(t, conn.ConnectedUrl(), http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		close(started)
		<-hang
	}))
	var served atomic.Int32
	go func() {
		<-started
		serveOn(t, conn.ConnectedUrl(), http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			served.Add(1)
			_, _ = io.WriteString(w, "from the survivor")
		}))
		first.Close()
	}()
	status, body := sendThing(t, srv.URL, method, header)
	return status, body, int(served.Load())
}

// sendThing sends a request with method and header, and a body of "{}", to /api/demo/things at url and
// returns its response's status and body.
func sendThing(t *testing.T, url, method string, header http.Header) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url+"/api/demo/things", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

func TestGatewayResendsASafeRequestWhenItsInstanceDies(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a NATS server: skipped with -short")
	}
	for _, tc := range []struct {
		name   string
		method string
		header http.Header
	}{
		{"GET", http.MethodGet, nil},
		{"POST with an Idempotency-Key", http.MethodPost, http.Header{"Idempotency-Key": {"k-1"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			status, body, served := lostInstance(t, tc.method, tc.header)
			if status != http.StatusOK || string(body) != "from the survivor" || served != 1 {
				t.Fatalf("response %d %q, survivor served %d times; want 200 from the survivor, once", status, body, served)
			}
			if took := time.Since(start); took > httpx.ForwardLostAfter+10*time.Second {
				t.Errorf("took %s: the lost instance was not noticed by its silence", took)
			}
		})
	}
}

func TestGatewayAnswersInstanceLostForAnUnsafeRequest(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a NATS server: skipped with -short")
	}
	assertInstanceLost(t, lostInstance)
}

// assertInstanceLost checks that an unsafe request whose instance lost (as lost runs it) is answered 503
// http.module_instance_lost and not sent again.
func assertInstanceLost(t *testing.T, lost func(*testing.T, string, http.Header) (int, []byte, int)) {
	t.Helper()
	status, body, served := lost(t, http.MethodPost, nil)
	var p httpx.Problem
	if err := json.Unmarshal(body, &p); err != nil || status != http.StatusServiceUnavailable {
		t.Fatalf("response %d %s, want 503 problem+json", status, body)
	}
	if p.Code != httpx.ErrModuleInstanceLost.Code || served != 0 {
		t.Fatalf("code %q, survivor served %d times; want %q and no resend", p.Code, served, httpx.ErrModuleInstanceLost.Code)
	}
}

func TestGatewayResendsARequestNoInstanceAccepted(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a NATS server: skipped with -short")
	}
	conn := rpctest.Connect(t)
	gw := httpx.NewGateway(func() *nats.Conn { return conn }, gatewaySubject, time.Minute, slog.New(slog.DiscardHandler))
	srv := httptest.NewServer(gw)
	t.Cleanup(srv.Close)
	// A member of the queue group that takes requests and never acknowledges them: a process that froze.
	frozen := rpctest.Dial(t, conn.ConnectedUrl())
	var served atomic.Int32
	if _, err := frozen.QueueSubscribe(gatewaySubject, gatewaySubject, func(*nats.Msg) {
		serveOn(t, conn.ConnectedUrl(), http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			served.Add(1)
			w.WriteHeader(http.StatusCreated)
		}))
		frozen.Close()
	}); err != nil {
		t.Fatal(err)
	}
	// The subscription is on another connection than the gateway's: known to the NATS server once flushed.
	if err := frozen.Flush(); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(srv.URL+"/api/demo/things", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusCreated || served.Load() != 1 {
		t.Fatalf("response %d, served %d times; want 201 from the other instance, once", resp.StatusCode, served.Load())
	}
}

func TestServeNATSDropsARequestPastItsAcceptByTime(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a NATS server: skipped with -short")
	}
	conn := rpctest.Connect(t)
	var served atomic.Int32
	serveOn(t, conn.ConnectedUrl(), http.HandlerFunc(func(http.ResponseWriter, *http.Request) { served.Add(1) }))
	msg := nats.NewMsg(gatewaySubject)
	msg.Header.Set(httpx.HeaderForwardMethod, http.MethodPost)
	msg.Header.Set(httpx.HeaderForwardTarget, "/api/demo/things")
	msg.Header.Set(httpx.HeaderForwardAcceptBy, strconv.FormatInt(time.Now().Add(-time.Second).UnixNano(), 10))
	if _, err := conn.RequestMsg(msg, time.Second); !errors.Is(err, nats.ErrTimeout) {
		t.Fatalf("request past its accept-by time: %v, want no answer (timeout)", err)
	}
	msg.Header.Set(httpx.HeaderForwardAcceptBy, strconv.FormatInt(time.Now().Add(time.Minute).UnixNano(), 10))
	reply, err := conn.RequestMsg(msg, 5*time.Second)
	if err != nil || reply.Header.Get(httpx.HeaderForwardProgress) != httpx.ProgressAccepted {
		t.Fatalf("request in time: %v %v, want an acknowledgement", reply, err)
	}
	waitFor(t, func() bool { return served.Load() == 1 })
}

// waitFor polls cond for up to ten seconds.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
