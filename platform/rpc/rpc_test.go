package rpc_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/seamkit/seam/platform/errs"
	"github.com/seamkit/seam/platform/identity"
	"github.com/seamkit/seam/platform/observe"
	"github.com/seamkit/seam/platform/observe/observetest"
	"github.com/seamkit/seam/platform/rpc"
	"github.com/seamkit/seam/platform/rpc/rpctest"
)

type echoReq struct {
	Text string `json:"text"`
}

type echoResp struct {
	Text string `json:"text"`
}

var errThingNotFound = errs.New(errs.NotFound, "test.thing_not_found", "thing not found")

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// transport is how a test's calls travel: over NATS only, or on direct lanes (found over NATS).
type transport struct {
	// lanes are the caller's lanes; nil means NATS only.
	lanes *rpc.Lanes
}

// eachTransport runs test once over NATS only and once on lanes.
func eachTransport(t *testing.T, test func(t *testing.T, tr transport)) {
	t.Run("nats", func(t *testing.T) { test(t, transport{}) })
	t.Run("lanes", func(t *testing.T) {
		lanes := rpc.NewLanes(discardLogger())
		t.Cleanup(func() { _ = lanes.Close() })
		test(t, transport{lanes: lanes})
	})
}

// serveOpts are the options the test's servers are started with.
func (tr transport) serveOpts() []rpc.ServeOption {
	if tr.lanes == nil {
		return nil
	}
	return []rpc.ServeOption{rpc.ServeLanes(rpc.Config{Lanes: true, Listen: "127.0.0.1:0"})}
}

// call is rpc.Call over the transport.
func (tr transport) call(ctx context.Context, conn *nats.Conn, subject string, req, resp any, opts ...rpc.CallOption) error {
	if tr.lanes != nil {
		opts = append(opts, rpc.OverLanes(tr.lanes))
	}
	return rpc.Call(ctx, conn, subject, req, resp, opts...)
}

// serve serves fn as method Echo of module "test" over the transport and returns the server's log; with
// lanes, it returns once the caller has a lane to every instance of "test" so far.
func (tr transport) serve(t *testing.T, conn *nats.Conn, fn func(ctx context.Context, req *echoReq) (echoResp, error)) *syncBuffer {
	t.Helper()
	logs := &syncBuffer{}
	svc, err := rpc.Serve(conn, rpc.Service{
		Module:    "test",
		Logger:    slog.New(slog.NewTextHandler(logs, nil)),
		Endpoints: []rpc.Endpoint{{Method: "Echo", Handler: rpc.Handle(fn)}},
	}, tr.serveOpts()...)
	if err != nil {
		t.Fatalf("Serve: %v", err)
	}
	t.Cleanup(func() {
		if err := svc.Stop(); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	tr.open(t, conn)
	return logs
}

// open waits until the caller has lanes to the instances of "test" (nothing over NATS only).
func (tr transport) open(t *testing.T, conn *nats.Conn) {
	t.Helper()
	if tr.lanes == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := tr.lanes.Open(ctx, conn, "test"); err != nil {
		t.Fatalf("open lanes: %v", err)
	}
}

var subject = rpc.Subject("test", "Echo")

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func TestRoundTripAndMicroDiscovery(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr transport) {
		conn := rpctest.Connect(t)
		tr.serve(t, conn, func(_ context.Context, req *echoReq) (echoResp, error) {
			return echoResp{Text: "echo: " + req.Text}, nil
		})
		var resp echoResp
		if err := tr.call(context.Background(), conn, subject, echoReq{Text: "hi"}, &resp); err != nil {
			t.Fatalf("Call: %v", err)
		}
		if resp.Text != "echo: hi" {
			t.Fatalf("resp = %q", resp.Text)
		}
		pingSubject, err := micro.ControlSubject(micro.PingVerb, "seam-test", "")
		if err != nil {
			t.Fatal(err)
		}
		msg, err := conn.Request(pingSubject, nil, time.Second)
		if err != nil {
			t.Fatalf("micro ping: %v", err)
		}
		var ping micro.Ping
		if err := json.Unmarshal(msg.Data, &ping); err != nil || ping.Name != "seam-test" {
			t.Fatalf("ping = %s (%v)", msg.Data, err)
		}
	})
}

func TestSentinelErrorSurvivesTheWire(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr transport) {
		conn := rpctest.Connect(t)
		tr.serve(t, conn, func(context.Context, *echoReq) (echoResp, error) {
			e := errThingNotFound.WithRetryAfter(1500 * time.Millisecond)
			e.Fields = []errs.FieldError{{Field: "id", Detail: "unknown"}}
			return echoResp{}, fmt.Errorf("lookup: %w", e)
		})
		err := tr.call(context.Background(), conn, subject, echoReq{}, &echoResp{})
		if !errors.Is(err, errThingNotFound) {
			t.Fatalf("err = %v, want errThingNotFound", err)
		}
		e, _ := errs.As(err)
		if e.Kind != errs.NotFound || e.Message != "thing not found" || e.RetryAfter != 1500*time.Millisecond ||
			len(e.Fields) != 1 || e.Fields[0].Field != "id" {
			t.Fatalf("rebuilt error = %+v", e)
		}
		if errors.Is(err, errs.ErrValidation) {
			t.Fatal("rebuilt error matches an unrelated sentinel")
		}
	})
}

func TestUnknownErrorIsHidden(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr transport) {
		conn := rpctest.Connect(t)
		logs := tr.serve(t, conn, func(context.Context, *echoReq) (echoResp, error) {
			return echoResp{}, errors.New("pq: password authentication failed for user secret_owner")
		})
		ctx := observe.WithRequestID(context.Background(), "req-42")
		err := tr.call(ctx, conn, subject, echoReq{}, &echoResp{})
		var remote *rpc.RemoteError
		if !errors.As(err, &remote) || !errors.Is(err, rpc.ErrRemote) {
			t.Fatalf("err = %v, want *RemoteError", err)
		}
		if remote.RequestID != "req-42" || strings.Contains(err.Error(), "secret_owner") {
			t.Fatalf("remote error = %+v (%v)", remote, err)
		}
		if e, ok := errs.As(err); !ok || e.Kind != errs.Internal || e.Code != "rpc.remote_error" {
			t.Fatalf("errs.As = %+v, %v", e, ok)
		}
		if l := logs.String(); !strings.Contains(l, "secret_owner") || !strings.Contains(l, "req-42") {
			t.Fatalf("server log lacks the details: %s", l)
		}
	})
}

func TestPanicIsHidden(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr transport) {
		conn := rpctest.Connect(t)
		logs := tr.serve(t, conn, func(context.Context, *echoReq) (echoResp, error) { panic("boom-detail") })
		err := tr.call(context.Background(), conn, subject, echoReq{}, &echoResp{})
		if !errors.Is(err, rpc.ErrRemote) || strings.Contains(err.Error(), "boom-detail") {
			t.Fatalf("err = %v", err)
		}
		if !strings.Contains(logs.String(), "boom-detail") {
			t.Fatalf("server log lacks the panic: %s", logs.String())
		}
	})
}

func TestCallerDeadline(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr transport) {
		conn := rpctest.Connect(t)
		serverDeadline := make(chan time.Time, 1)
		release := make(chan struct{})
		tr.serve(t, conn, func(ctx context.Context, _ *echoReq) (echoResp, error) {
			dl, _ := ctx.Deadline()
			serverDeadline <- dl
			select {
			case <-release:
			case <-ctx.Done():
			}
			return echoResp{}, ctx.Err()
		})
		t.Cleanup(func() { close(release) }) // runs before the service's Stop, which waits for handlers
		ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
		defer cancel()
		want, _ := ctx.Deadline()
		start := time.Now()
		err := tr.call(ctx, conn, subject, echoReq{}, &echoResp{})
		elapsed := time.Since(start)
		if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, rpc.ErrUnavailable) {
			t.Fatalf("err = %v, want context.DeadlineExceeded", err)
		}
		if elapsed > 400*time.Millisecond {
			t.Fatalf("Call returned after %s, deadline was 150ms", elapsed)
		}
		if got := <-serverDeadline; !got.Equal(want) {
			t.Fatalf("server deadline = %s, want %s", got, want)
		}
	})
}

func TestServerReportsContextError(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr transport) {
		conn := rpctest.Connect(t)
		tr.serve(t, conn, func(context.Context, *echoReq) (echoResp, error) {
			return echoResp{}, fmt.Errorf("query: %w", context.Canceled)
		})
		err := tr.call(context.Background(), conn, subject, echoReq{}, &echoResp{})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	})
}

func TestCallerCancels(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr transport) {
		conn := rpctest.Connect(t)
		started := make(chan struct{})
		release := make(chan struct{})
		tr.serve(t, conn, func(context.Context, *echoReq) (echoResp, error) {
			close(started)
			<-release
			return echoResp{}, nil
		})
		t.Cleanup(func() { close(release) }) // runs before the service's Stop, which waits for handlers
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			<-started
			cancel()
		}()
		err := tr.call(ctx, conn, subject, echoReq{}, &echoResp{})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	})
}

func TestCancellationReachesTheServer(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr transport) {
		conn := rpctest.Connect(t)
		started := make(chan struct{})
		cause := make(chan error, 1)
		tr.serve(t, conn, func(ctx context.Context, _ *echoReq) (echoResp, error) {
			close(started)
			select {
			case <-ctx.Done():
				cause <- context.Cause(ctx)
			case <-time.After(10 * time.Second):
				cause <- errors.New("the server's context was never cancelled")
			}
			return echoResp{}, ctx.Err()
		})
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			<-started
			cancel()
		}()
		if err := tr.call(ctx, conn, subject, echoReq{}, &echoResp{}); !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
		if got := <-cause; !errors.Is(got, rpc.ErrCallerCanceled) {
			t.Fatalf("the server's context ended with %v, want rpc.ErrCallerCanceled", got)
		}
	})
}

func TestDefaultTimeoutIsUnavailable(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr transport) {
		conn := rpctest.Connect(t)
		release := make(chan struct{})
		tr.serve(t, conn, func(context.Context, *echoReq) (echoResp, error) {
			<-release
			return echoResp{}, nil
		})
		t.Cleanup(func() { close(release) }) // runs before the service's Stop, which waits for handlers
		start := time.Now()
		err := tr.call(context.Background(), conn, subject, echoReq{}, &echoResp{}, rpc.WithTimeout(100*time.Millisecond))
		if !errors.Is(err, rpc.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want ErrUnavailable and DeadlineExceeded", err)
		}
		if elapsed := time.Since(start); elapsed > 400*time.Millisecond {
			t.Fatalf("Call returned after %s, timeout was 100ms", elapsed)
		}
	})
}

func TestNoServerIsUnavailableFast(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr transport) {
		conn := rpctest.Connect(t)
		start := time.Now()
		err := tr.call(context.Background(), conn, subject, echoReq{}, &echoResp{})
		if !errors.Is(err, rpc.ErrUnavailable) || !errors.Is(err, nats.ErrNoResponders) {
			t.Fatalf("err = %v, want ErrUnavailable", err)
		}
		if e, ok := errs.As(err); !ok || e.Kind != errs.Unavailable || e.Code != "rpc.unavailable" {
			t.Fatalf("errs.As = %+v, %v", e, ok)
		}
		if elapsed := time.Since(start); elapsed > 500*time.Millisecond {
			t.Fatalf("Call took %s without a server", elapsed)
		}
	})
}

func TestContextPropagation(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr transport) {
		conn := rpctest.Connect(t)
		type seen struct {
			principal identity.Principal
			ok        bool
			requestID string
			traced    bool
		}
		got := make(chan seen, 1)
		tr.serve(t, conn, func(ctx context.Context, _ *echoReq) (echoResp, error) {
			p, ok := identity.From(ctx)
			got <- seen{p, ok, observe.RequestID(ctx), trace.SpanContextFromContext(ctx).IsValid()}
			return echoResp{}, nil
		})
		want := identity.Principal{UserID: "u-1", Email: "a@example.com", Role: identity.RoleAdmin}
		// With tracing off, a trace context in the caller's context does not travel: nothing is traced.
		parent := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
			TraceID: trace.TraceID{1}, SpanID: trace.SpanID{2}, TraceFlags: trace.FlagsSampled}))
		ctx := identity.With(observe.WithRequestID(parent, "req-7"), want)
		if err := tr.call(ctx, conn, subject, echoReq{}, &echoResp{}); err != nil {
			t.Fatalf("Call: %v", err)
		}
		s := <-got
		if !s.ok || s.principal != want || s.requestID != "req-7" || s.traced {
			t.Fatalf("server saw %+v", s)
		}
		if err := tr.call(context.Background(), conn, subject, echoReq{}, &echoResp{}); err != nil {
			t.Fatalf("Call: %v", err)
		}
		if s := <-got; s.ok || s.requestID != "" || s.traced {
			t.Fatalf("server saw %+v from an empty context", s)
		}
	})
}

// TestCallSpans: with tracing on, a call runs in a client span that is a child of the caller's span, the
// server handles it in a server span that is a child of the client span, and errors are recorded (a
// client error as its code, an internal failure also as the span's Error status).
func TestCallSpans(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr transport) {
		rec := observetest.Tracing(t)
		conn := rpctest.Connect(t)
		handlerTrace := make(chan trace.SpanContext, 3)
		tr.serve(t, conn, func(ctx context.Context, req *echoReq) (echoResp, error) {
			handlerTrace <- trace.SpanContextFromContext(ctx)
			switch req.Text {
			case "missing":
				return echoResp{}, errThingNotFound
			case "broken":
				return echoResp{}, errors.New("disk on fire")
			}
			return echoResp{Text: req.Text}, nil
		})
		ctx, root := observe.StartSpan(context.Background(), "caller", trace.SpanKindInternal)
		var resp echoResp
		if err := tr.call(ctx, conn, subject, echoReq{Text: "hi"}, &resp); err != nil {
			t.Fatalf("Call: %v", err)
		}
		root.End()
		seen := <-handlerTrace
		client := observetest.WaitSpan(t, rec, 5*time.Second, "client span", observetest.Named("test/Echo", trace.SpanKindClient))
		server := observetest.WaitSpan(t, rec, 5*time.Second, "server span", observetest.Named("test/Echo", trace.SpanKindServer))
		traceID := root.SpanContext().TraceID()
		switch {
		case client.SpanContext().TraceID() != traceID || client.Parent().SpanID() != root.SpanContext().SpanID():
			t.Fatalf("client span %v is not a child of the caller's span %v", client.Parent(), root.SpanContext())
		case server.SpanContext().TraceID() != traceID || server.Parent().SpanID() != client.SpanContext().SpanID() || !server.Parent().IsRemote():
			t.Fatalf("server span's parent %v is not the client span %v", server.Parent(), client.SpanContext())
		case seen.SpanID() != server.SpanContext().SpanID():
			t.Fatalf("handler ran in span %v, want the server span %v", seen, server.SpanContext())
		case observetest.Attr(server, "rpc.system.name") != "seam" || observetest.Attr(client, "rpc.response.status_code") != "OK":
			t.Fatalf("attributes: client %v, server %v", client.Attributes(), server.Attributes())
		}

		// The client knows a hidden failure by rpc.remote_error; the server, by the real error's type.
		for _, tc := range []struct {
			text, clientType, serverType string
			status                       codes.Code
		}{
			{"missing", "test.thing_not_found", "test.thing_not_found", codes.Unset},
			{"broken", "rpc.remote_error", "_OTHER", codes.Error},
		} {
			rec.Reset()
			if err := tr.call(context.Background(), conn, subject, echoReq{Text: tc.text}, &resp); err == nil {
				t.Fatalf("%s: Call succeeded", tc.text)
			}
			<-handlerTrace
			for kind, errorType := range map[trace.SpanKind]string{trace.SpanKindClient: tc.clientType, trace.SpanKindServer: tc.serverType} {
				s := observetest.WaitSpan(t, rec, 5*time.Second, tc.text+" span", observetest.Named("test/Echo", kind))
				if got := observetest.Attr(s, "error.type"); got != errorType || s.Status().Code != tc.status || len(s.Events()) == 0 {
					t.Errorf("%s %s span: error.type %q, status %v, events %d; want %q, %v and an exception event",
						tc.text, kind, got, s.Status().Code, len(s.Events()), errorType, tc.status)
				}
				if got := observetest.Attr(s, "rpc.response.status_code"); got != tc.clientType {
					t.Errorf("%s %s span: rpc.response.status_code %q, want %q", tc.text, kind, got, tc.clientType)
				}
			}
		}
	})
}

func TestRetryOnlyIdempotent(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr transport) {
		conn := rpctest.Connect(t)
		errBusy := errs.New(errs.Unavailable, "test.busy", "busy")
		var calls atomic.Int32
		tr.serve(t, conn, func(context.Context, *echoReq) (echoResp, error) {
			if calls.Add(1)%2 == 1 {
				return echoResp{}, errBusy
			}
			return echoResp{Text: "ok"}, nil
		})
		var resp echoResp
		if err := tr.call(context.Background(), conn, subject, echoReq{}, &resp, rpc.Idempotent()); err != nil || resp.Text != "ok" {
			t.Fatalf("idempotent call = %v, %q", err, resp.Text)
		}
		if n := calls.Load(); n != 2 {
			t.Fatalf("idempotent call made %d attempts, want 2", n)
		}
		calls.Store(0)
		if err := tr.call(context.Background(), conn, subject, echoReq{}, &resp); !errors.Is(err, errBusy) {
			t.Fatalf("plain call err = %v, want errBusy", err)
		}
		if n := calls.Load(); n != 1 {
			t.Fatalf("plain call made %d attempts, want 1", n)
		}
	})
}

func TestRetryGivesUpWithoutServer(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr transport) {
		conn := rpctest.Connect(t)
		start := time.Now()
		err := tr.call(context.Background(), conn, subject, echoReq{}, &echoResp{}, rpc.Idempotent(), rpc.WithRetry(3, 10*time.Millisecond))
		if !errors.Is(err, rpc.ErrUnavailable) {
			t.Fatalf("err = %v, want ErrUnavailable", err)
		}
		if elapsed := time.Since(start); elapsed > 500*time.Millisecond {
			t.Fatalf("3 attempts took %s", elapsed)
		}
	})
}

func TestBadRequest(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr transport) {
		conn := rpctest.Connect(t)
		tr.serve(t, conn, func(context.Context, *echoReq) (echoResp, error) { return echoResp{}, nil })
		err := tr.call(context.Background(), conn, subject, []int{1}, &echoResp{})
		if !errors.Is(err, rpc.ErrBadRequest) {
			t.Fatalf("err = %v, want ErrBadRequest", err)
		}
	})
}

func TestInstancesShareLoad(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr transport) {
		conn := rpctest.Connect(t)
		other := rpctest.Dial(t, conn.ConnectedUrl())
		var a, b atomic.Int32
		tr.serve(t, conn, func(context.Context, *echoReq) (echoResp, error) { a.Add(1); return echoResp{}, nil })
		tr.serve(t, other, func(context.Context, *echoReq) (echoResp, error) { b.Add(1); return echoResp{}, nil })
		for range 40 {
			if err := tr.call(context.Background(), conn, subject, echoReq{}, &echoResp{}); err != nil {
				t.Fatalf("Call: %v", err)
			}
		}
		if a.Load()+b.Load() != 40 || a.Load() == 0 || b.Load() == 0 {
			t.Fatalf("instances served %d and %d of 40 calls", a.Load(), b.Load())
		}
	})
}

func TestConcurrentRequestsOnOneInstance(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr transport) {
		conn := rpctest.Connect(t)
		const n = 8
		var arrived atomic.Int32
		all := make(chan struct{})
		tr.serve(t, conn, func(ctx context.Context, _ *echoReq) (echoResp, error) {
			if arrived.Add(1) == n {
				close(all)
			}
			select {
			case <-all:
				return echoResp{}, nil
			case <-ctx.Done():
				return echoResp{}, ctx.Err()
			}
		})
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var wg sync.WaitGroup
		errc := make(chan error, n)
		for range n {
			wg.Go(func() { errc <- tr.call(ctx, conn, subject, echoReq{}, &echoResp{}) })
		}
		wg.Wait()
		close(errc)
		for err := range errc {
			if err != nil {
				t.Fatalf("concurrent call: %v (requests were served one at a time?)", err)
			}
		}
	})
}

func TestStopWaitsForRequestsInFlight(t *testing.T) {
	eachTransport(t, func(t *testing.T, tr transport) {
		conn := rpctest.Connect(t)
		started := make(chan struct{})
		release := make(chan struct{})
		svc, err := rpc.Serve(conn, rpc.Service{Module: "test", Logger: discardLogger(),
			Endpoints: []rpc.Endpoint{{Method: "Echo", Handler: rpc.Handle(func(context.Context, *echoReq) (echoResp, error) {
				close(started)
				<-release
				return echoResp{Text: "done"}, nil
			})}}}, tr.serveOpts()...)
		if err != nil {
			t.Fatal(err)
		}
		tr.open(t, conn)
		callErr := make(chan error, 1)
		var resp echoResp
		go func() { callErr <- tr.call(context.Background(), conn, subject, echoReq{}, &resp) }()
		<-started
		stopped := make(chan error, 1)
		go func() { stopped <- svc.Stop() }()
		select {
		case err := <-stopped:
			t.Fatalf("Stop returned (%v) while a request was in flight", err)
		case err := <-callErr:
			t.Fatalf("call returned (%v) before its handler finished", err)
		default:
		}
		close(release)
		if err := <-callErr; err != nil || resp.Text != "done" {
			t.Fatalf("in-flight call = %v, %q", err, resp.Text)
		}
		if err := <-stopped; err != nil {
			t.Fatalf("Stop: %v", err)
		}
		if err := tr.call(context.Background(), conn, subject, echoReq{}, &resp); !errors.Is(err, rpc.ErrUnavailable) {
			t.Fatalf("call after Stop: err = %v, want ErrUnavailable", err)
		}
	})
}
