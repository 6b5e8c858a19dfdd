package httpx_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/seamkit/seam/platform/httpx"
	"github.com/seamkit/seam/platform/rpc"
	"github.com/seamkit/seam/platform/rpc/rpctest"
)

// laneModule is the module the lane tests' instances serve.
const laneModule = "demo"

// serveOnLanes serves h for laneModule on direct lanes only (nothing on NATS's HTTP subject), on a
// connection of its own to url's NATS server, as another instance would.
func serveOnLanes(t *testing.T, url string, h http.Handler) {
	t.Helper()
	conn := rpctest.Dial(t, url)
	logger := slog.New(slog.DiscardHandler)
	svc, err := rpc.Serve(conn, rpc.Service{Module: laneModule, Logger: logger},
		rpc.ServeLanes(rpc.Config{Lanes: true, Listen: "127.0.0.1:0"}), rpc.AlsoServe(httpx.LaneEndpoint(h, time.Minute, logger)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := svc.Stop(); err != nil {
			t.Error(err)
		}
	})
}

// laneGateway returns a gateway over conn with lanes to laneModule's instances, open before it returns.
func laneGateway(t *testing.T, conn *nats.Conn, timeout time.Duration) *httpx.Gateway {
	t.Helper()
	lanes := rpc.NewLanes(slog.New(slog.DiscardHandler))
	t.Cleanup(func() { _ = lanes.Close() })
	if n, err := lanes.Open(t.Context(), conn, laneModule); err != nil || n == 0 {
		t.Fatalf("open lanes: %d, %v", n, err)
	}
	return httpx.NewGateway(func() *nats.Conn { return conn }, gatewaySubject, timeout, slog.New(slog.DiscardHandler),
		httpx.OverLanes(lanes, laneModule))
}

// lanePair is gatewayPair on a direct lane: h is served on lanes only, so a request the gateway sent over
// NATS would find no instance.
func lanePair(t *testing.T, h http.Handler, timeout time.Duration) *httptest.Server {
	t.Helper()
	conn := rpctest.Connect(t)
	if h != nil {
		serveOnLanes(t, conn.ConnectedUrl(), h)
	}
	var gw http.Handler = httpx.NewGateway(func() *nats.Conn { return conn }, gatewaySubject, timeout, slog.New(slog.DiscardHandler))
	if h != nil {
		gw = laneGateway(t, conn, timeout)
	}
	srv := httptest.NewServer(httpx.RequestID(httpx.BodyLimit(1024, slog.New(slog.DiscardHandler))(gw)))
	t.Cleanup(srv.Close)
	return srv
}

// laneLost runs a request through a gateway whose lane to the instance serving it breaks while the
// instance serves it; another instance serves the HTTP subject over NATS. It returns the response's status
// and body and how many times that other instance served the request.
func laneLost(t *testing.T, method string, header http.Header) (int, []byte, int) {
	t.Helper()
	conn := rpctest.Connect(t)
	started := make(chan struct{})
	hang := make(chan struct{})
	t.Cleanup(func() { close(hang) })
	serveOnLanes(t, conn.ConnectedUrl(), http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		close(started)
		select {
		case <-hang:
		case <-r.Context().Done(): // the instance cancels the request its lane lost
		}
	}))
	var served atomic.Int32
	serveOn(t, conn.ConnectedUrl(), http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		served.Add(1)
		_, _ = io.WriteString(w, "from the survivor")
	}))
	lanes := rpc.NewLanes(slog.New(slog.DiscardHandler))
	if n, err := lanes.Open(t.Context(), conn, laneModule); err != nil || n != 1 {
		t.Fatalf("open lanes: %d, %v", n, err)
	}
	gw := httpx.NewGateway(func() *nats.Conn { return conn }, gatewaySubject, time.Minute, slog.New(slog.DiscardHandler),
		httpx.OverLanes(lanes, laneModule))
	srv := httptest.NewServer(gw)
	t.Cleanup(srv.Close)
	go func() {
		<-started
		_ = lanes.Close() // the lane's sockets close, as a dead process's would
	}()
	status, body := sendThing(t, srv.URL, method, header)
	return status, body, int(served.Load())
}

// TestGatewayOnALaneResendsASafeRequestAtOnceWhenTheLaneBreaks: a safe request whose lane breaks is sent
// again (over NATS here, the lanes being closed) without waiting for ForwardLostAfter.
func TestGatewayOnALaneResendsASafeRequestAtOnceWhenTheLaneBreaks(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a NATS server: skipped with -short")
	}
	start := time.Now()
	status, body, served := laneLost(t, http.MethodGet, nil)
	if status != http.StatusOK || string(body) != "from the survivor" || served != 1 {
		t.Fatalf("response %d %q, survivor served %d times; want 200 from the survivor, once", status, body, served)
	}
	if took := time.Since(start); took > httpx.ForwardLostAfter {
		t.Errorf("took %s: a broken lane was not noticed at once", took)
	}
}

// TestGatewayOnALaneAnswersInstanceLostForAnUnsafeRequest: an unsafe request whose lane breaks is not sent
// again; the client is told its outcome is unknown.
func TestGatewayOnALaneAnswersInstanceLostForAnUnsafeRequest(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a NATS server: skipped with -short")
	}
	assertInstanceLost(t, laneLost)
}

// TestGatewayFallsBackToNATSWithoutALane: a gateway with lanes whose module has no lane to it (its
// instances serve over NATS only) forwards over NATS.
func TestGatewayFallsBackToNATSWithoutALane(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a NATS server: skipped with -short")
	}
	conn := rpctest.Connect(t)
	serveOn(t, conn.ConnectedUrl(), http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusAccepted) }))
	lanes := rpc.NewLanes(slog.New(slog.DiscardHandler))
	t.Cleanup(func() { _ = lanes.Close() })
	srv := httptest.NewServer(httpx.NewGateway(func() *nats.Conn { return conn }, gatewaySubject, time.Minute,
		slog.New(slog.DiscardHandler), httpx.OverLanes(lanes, laneModule)))
	t.Cleanup(srv.Close)
	resp, err := http.Post(srv.URL+"/api/demo/things", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("status %d, want 202 over NATS", resp.StatusCode)
	}
}

// TestLaneEndpointRefusesAMalformedRequest: bytes that are not a forwarded request are a bad request, not a
// request served.
func TestLaneEndpointRefusesAMalformedRequest(t *testing.T) {
	var served atomic.Int32
	ep := httpx.LaneEndpoint(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { served.Add(1) }), time.Minute,
		slog.New(slog.DiscardHandler))
	for _, body := range [][]byte{nil, {0xff}, {4, 'G', 'E'}, {3, 'G', 'E', 'T', 1, '/', 0, 200}} {
		if _, err := ep.Handler(context.Background(), body); err == nil {
			t.Errorf("body %q: served, want an error", body)
		}
	}
	if served.Load() != 0 {
		t.Fatalf("a malformed request reached the handler %d times", served.Load())
	}
}
