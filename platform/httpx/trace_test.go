package httpx_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/seamkit/seam/platform/httpx"
	"github.com/seamkit/seam/platform/observe"
	"github.com/seamkit/seam/platform/observe/observetest"
	"github.com/seamkit/seam/platform/rpc/rpctest"
)

// tracedRouter is a router behind RequestID and Trace with one parameterised route, which reports the span
// context its handler runs in.
func tracedRouter(seen chan<- trace.SpanContext) http.Handler {
	r := chi.NewRouter()
	r.Use(httpx.RequestID, httpx.Trace)
	r.Get("/api/demo/things/{id}", func(w http.ResponseWriter, r *http.Request) {
		if seen != nil {
			seen <- trace.SpanContextFromContext(r.Context())
		}
		if chi.URLParam(r, "id") == "broken" {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	return r
}

// TestTraceOffCreatesNothing: with tracing off (the default) the middleware starts no span, reads no
// trace header and allocates nothing beyond what the chain allocates without it.
func TestTraceOffCreatesNothing(t *testing.T) {
	if observe.TracingEnabled() {
		t.Fatal("tracing is on before any test turned it on")
	}
	seen := make(chan trace.SpanContext, 1)
	h := tracedRouter(seen)
	req := httptest.NewRequest(http.MethodGet, "/api/demo/things/1", nil)
	req.Header.Set("Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	h.ServeHTTP(httptest.NewRecorder(), req)
	if sc := <-seen; sc.IsValid() {
		t.Fatalf("the handler runs in span context %v with tracing off", sc)
	}

	next := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	w := httptest.NewRecorder()
	bare := testing.AllocsPerRun(200, func() { next.ServeHTTP(w, req) })
	traced := httpx.Trace(next)
	withTrace := testing.AllocsPerRun(200, func() { traced.ServeHTTP(w, req) })
	if withTrace != bare {
		t.Fatalf("Trace with tracing off allocates %.0f times per request, the handler alone %.0f", withTrace, bare)
	}
	ctx, span := observe.StartSpan(context.Background(), "x", trace.SpanKindInternal)
	if span.IsRecording() || span.SpanContext().IsValid() || ctx != context.Background() {
		t.Fatal("StartSpan with tracing off made a span")
	}
	if n := testing.AllocsPerRun(200, func() {
		_, s := observe.StartSpan(req.Context(), "x", trace.SpanKindServer)
		observe.InjectTrace(req.Context(), observe.HeaderCarrier(nil))
		_ = observe.ExtractTrace(req.Context(), observe.HeaderCarrier(nil))
		observe.EndSpan(s, nil)
	}); n != 0 {
		t.Fatalf("the tracing helpers allocate %.0f times with tracing off", n)
	}
}

// TestTraceServerSpan: with tracing on, each request runs in a server span that continues the caller's
// traceparent, is named after the route pattern, carries the request id and status, and fails on a 5xx.
func TestTraceServerSpan(t *testing.T) {
	rec := observetest.Tracing(t)
	seen := make(chan trace.SpanContext, 1)
	h := tracedRouter(seen)

	req := httptest.NewRequest(http.MethodGet, "/api/demo/things/42", nil)
	req.Header.Set("Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	req.Header.Set(httpx.RequestIDHeader, "req-42")
	h.ServeHTTP(httptest.NewRecorder(), req)
	inHandler := <-seen
	span := observetest.WaitSpan(t, rec, time.Second, "server span",
		observetest.Named("HTTP GET /api/demo/things/{id}", trace.SpanKindServer))
	switch {
	case span.SpanContext().TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736":
		t.Fatalf("trace id %s, want the caller's", span.SpanContext().TraceID())
	case span.Parent().SpanID().String() != "00f067aa0ba902b7" || !span.Parent().IsRemote():
		t.Fatalf("parent %v, want the caller's span", span.Parent())
	case inHandler.SpanID() != span.SpanContext().SpanID():
		t.Fatalf("the handler ran in %v, want the server span", inHandler)
	case observetest.Attr(span, httpx.SpanAttrRequestID) != "req-42" || observetest.Attr(span, "http.route") != "/api/demo/things/{id}" ||
		observetest.Attr(span, "http.response.status_code") != "204":
		t.Fatalf("attributes %v", span.Attributes())
	case span.Status().Code != codes.Unset:
		t.Fatalf("status %v for a 204", span.Status())
	}

	rec.Reset()
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/api/demo/things/broken", nil))
	<-seen
	span = observetest.WaitSpan(t, rec, time.Second, "failed server span",
		observetest.Named("HTTP GET /api/demo/things/{id}", trace.SpanKindServer))
	if span.Status().Code != codes.Error || span.Parent().IsValid() {
		t.Fatalf("a 500 without a traceparent: status %v, parent %v; want Error and a new trace", span.Status(), span.Parent())
	}

	rec.Reset()
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/nowhere", nil))
	observetest.WaitSpan(t, rec, time.Second, "unrouted span", observetest.Named("HTTP GET", trace.SpanKindServer))

	rec.Reset()
	probe := httpx.Trace(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		if observe.Traced(r.Context()) {
			t.Error("a probe is traced")
		}
	}))
	probe.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/readyz", nil))
	if n := len(rec.Ended()); n != 0 {
		t.Fatalf("%d spans for a probe", n)
	}
}

// TestGatewayCarriesTheTrace: a forwarded request is served, in the serving process, in a server span that
// is a child of the gateway's client span, itself a child of the span of the request the gateway received.
func TestGatewayCarriesTheTrace(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a NATS server: skipped with -short")
	}
	rec := observetest.Tracing(t)
	conn := rpctest.Connect(t)
	seen := make(chan trace.SpanContext, 1)
	served := rpctest.Dial(t, conn.ConnectedUrl())
	ns, err := httpx.ServeNATS(served, gatewaySubject, tracedRouter(seen), time.Minute, slog.New(slog.DiscardHandler))
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
	if err := served.Flush(); err != nil {
		t.Fatal(err)
	}
	gw := httpx.NewGateway(func() *nats.Conn { return conn }, gatewaySubject, time.Minute, slog.New(slog.DiscardHandler))
	front := chi.NewRouter()
	front.Use(httpx.RequestID, httpx.Trace)
	front.Handle("/api/demo/*", gw)
	srv := httptest.NewServer(front)
	t.Cleanup(srv.Close)

	resp, err := http.Get(srv.URL + "/api/demo/things/7")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("status %d", resp.StatusCode)
	}
	inHandler := <-seen
	gatewayServer := observetest.WaitSpan(t, rec, 5*time.Second, "gateway's server span",
		observetest.Named("HTTP GET /api/demo/*", trace.SpanKindServer))
	client := observetest.WaitSpan(t, rec, 5*time.Second, "gateway's client span",
		observetest.Named("forward GET "+gatewaySubject, trace.SpanKindClient))
	serving := observetest.WaitSpan(t, rec, 5*time.Second, "serving side's server span",
		observetest.Named("HTTP GET /api/demo/things/{id}", trace.SpanKindServer))
	chain := []sdktrace.ReadOnlySpan{gatewayServer, client, serving}
	for i, s := range chain {
		if s.SpanContext().TraceID() != gatewayServer.SpanContext().TraceID() {
			t.Fatalf("span %q is in trace %s, want %s", s.Name(), s.SpanContext().TraceID(), gatewayServer.SpanContext().TraceID())
		}
		if i > 0 && s.Parent().SpanID() != chain[i-1].SpanContext().SpanID() {
			t.Fatalf("span %q has parent %s, want %q (%s)", s.Name(), s.Parent().SpanID(), chain[i-1].Name(), chain[i-1].SpanContext().SpanID())
		}
	}
	if inHandler.SpanID() != serving.SpanContext().SpanID() {
		t.Fatalf("the forwarded request's handler ran in %v, want the serving side's server span", inHandler)
	}
	if got := observetest.Attr(client, "http.response.status_code"); got != "204" {
		t.Fatalf("client span status code %q", got)
	}
}
