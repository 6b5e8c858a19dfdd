package observe_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/seamkit/seam/platform/observe"
	"github.com/seamkit/seam/platform/observe/observetest"
)

func TestTracingConfigDefaultsAndValidation(t *testing.T) {
	var c observe.TracingConfig
	c.SetDefaults()
	if c.Exporter != observe.ExporterNone || c.SampleRatio != 1 {
		t.Fatalf("defaults = %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	for _, tc := range []struct {
		cfg  observe.TracingConfig
		want string
	}{
		{observe.TracingConfig{Exporter: "jaeger", SampleRatio: 1}, `tracing.exporter: must be none, otlp-http or otlp-grpc, got "jaeger"`},
		{observe.TracingConfig{Exporter: "otlp-http", SampleRatio: 1.5}, "tracing.sample_ratio: must be between 0 and 1, got 1.5"},
		{observe.TracingConfig{Exporter: "otlp-http", SampleRatio: -0.1}, "tracing.sample_ratio: must be between 0 and 1"},
		{observe.TracingConfig{Exporter: "otlp-http", SampleRatio: 1, Endpoint: "collector"}, `tracing.endpoint: want host:port or an http(s) URL, got "collector"`},
		{observe.TracingConfig{Exporter: "otlp-grpc", SampleRatio: 1, Endpoint: "ftp://collector:21"}, "tracing.endpoint: want host:port or an http(s) URL"},
		{observe.TracingConfig{Exporter: "otlp-grpc", SampleRatio: 1, ServiceName: "a\nb"}, "tracing.service_name: must be one line"},
	} {
		err := tc.cfg.Validate()
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("Validate(%+v) = %v, want %q", tc.cfg, err, tc.want)
		}
	}
	for _, ok := range []observe.TracingConfig{
		{Exporter: "otlp-http", SampleRatio: 0, Endpoint: "collector:4318", Insecure: true},
		{Exporter: "otlp-http", SampleRatio: 0.5, Endpoint: "https://collector.example/otlp/v1/traces"},
		{Exporter: "otlp-grpc", SampleRatio: 1, Endpoint: "http://127.0.0.1:4317"},
	} {
		if err := ok.Validate(); err != nil {
			t.Errorf("Validate(%+v) = %v", ok, err)
		}
	}
}

func TestLoggerCarriesTrace(t *testing.T) {
	var buf bytes.Buffer
	l, err := observe.NewLogger(observe.LogConfig{}, &buf)
	if err != nil {
		t.Fatal(err)
	}
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{0xab, 1}, SpanID: trace.SpanID{0xcd, 2}})
	l.InfoContext(trace.ContextWithSpanContext(context.Background(), sc), "traced")
	l.Info("not traced")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	var traced, plain map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &traced); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(lines[1]), &plain); err != nil {
		t.Fatal(err)
	}
	if traced["trace_id"] != sc.TraceID().String() || traced["span_id"] != sc.SpanID().String() {
		t.Fatalf("traced record = %v", traced)
	}
	if _, ok := plain["trace_id"]; ok {
		t.Fatalf("record without a span = %v", plain)
	}
}

func TestHeaderCarrierIgnoresCase(t *testing.T) {
	h := observe.HeaderCarrier{"Traceparent": {"from-http"}, "Other": {"x"}}
	if got := h.Get("traceparent"); got != "from-http" {
		t.Fatalf("Get = %q", got)
	}
	h.Set("traceparent", "ours")
	if len(h) != 2 || h["traceparent"][0] != "ours" || h.Get("TRACEPARENT") != "ours" {
		t.Fatalf("after Set: %v", h)
	}
	if h.Get("missing") != "" || len(h.Keys()) != 2 {
		t.Fatalf("Get(missing) or Keys wrong: %v", h)
	}
}

// TestTracingPropagatesAndStops: Start installs the provider and the W3C propagators; the trace context
// survives an inject/extract round trip as a remote parent; after Stop, spans are no-ops again.
func TestTracingPropagatesAndStops(t *testing.T) {
	rec := observetest.Tracing(t)
	if !observe.TracingEnabled() {
		t.Fatal("TracingEnabled is false after Start")
	}
	ctx, parent := observe.StartSpan(context.Background(), "parent", trace.SpanKindServer)
	if !observe.Traced(ctx) || observe.Traced(context.Background()) {
		t.Fatal("Traced does not tell a recording span from none")
	}
	headers := observe.HeaderCarrier{}
	observe.InjectTrace(ctx, headers)
	if !strings.HasPrefix(headers.Get("traceparent"), "00-"+parent.SpanContext().TraceID().String()) {
		t.Fatalf("injected %v", headers)
	}
	remote := observe.ExtractTrace(context.Background(), propagation.HeaderCarrier(http.Header{"Traceparent": headers["traceparent"]}))
	_, child := observe.StartSpan(remote, "child", trace.SpanKindConsumer)
	observe.EndSpan(child, nil)
	observe.EndSpan(parent, nil)
	spans := rec.Ended()
	if len(spans) != 2 || spans[0].Parent().SpanID() != parent.SpanContext().SpanID() || !spans[0].Parent().IsRemote() {
		t.Fatalf("spans %v", observetest.Names(spans))
	}
	if got := observetest.Attr(spans[0], "service.name"); got != "" {
		t.Fatalf("service.name is a resource attribute, found on the span: %q", got)
	}
	if got, _ := spans[0].Resource().Set().Value("service.name"); got.AsString() != observetest.ServiceName {
		t.Fatalf("resource service.name = %q", got.AsString())
	}
}

// receiver collects the spans an OTLP exporter sends.
type receiver struct {
	mu    sync.Mutex
	names []string
	svc   []string
	paths []string
}

func (r *receiver) add(path string, req *coltracepb.ExportTraceServiceRequest) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.paths = append(r.paths, path)
	for _, rs := range req.GetResourceSpans() {
		for _, kv := range rs.GetResource().GetAttributes() {
			if kv.GetKey() == "service.name" {
				r.svc = append(r.svc, kv.GetValue().GetStringValue())
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				r.names = append(r.names, s.GetName())
			}
		}
	}
}

func (r *receiver) check(t *testing.T, wantPath, wantSpan, wantService string) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.paths) == 0 || r.paths[0] != wantPath || len(r.names) != 1 || r.names[0] != wantSpan ||
		len(r.svc) != 1 || r.svc[0] != wantService {
		t.Fatalf("received paths %v, spans %v, services %v; want %s, %s, %s", r.paths, r.names, r.svc, wantPath, wantSpan, wantService)
	}
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	var msg coltracepb.ExportTraceServiceRequest
	if err != nil || proto.Unmarshal(body, &msg) != nil {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	r.add(req.URL.Path, &msg)
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

type grpcReceiver struct {
	coltracepb.UnimplementedTraceServiceServer
	r *receiver
}

func (g grpcReceiver) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	g.r.add("grpc", req)
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

// exportOne starts tracing as cfg says, records one span and stops, which flushes it to the collector.
func exportOne(t *testing.T, cfg observe.TracingConfig, name string) {
	t.Helper()
	cfg.SampleRatio = 1
	tr := observe.NewTracing(cfg, slog.New(slog.DiscardHandler))
	if err := tr.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	_, span := observe.StartSpan(context.Background(), name, trace.SpanKindInternal)
	if !span.IsRecording() {
		t.Fatal("span not recording with tracing on")
	}
	observe.EndSpan(span, nil)
	if err := tr.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if observe.TracingEnabled() {
		t.Fatal("TracingEnabled after Stop")
	}
}

// TestOTLPExporters sends a span through each exporter to a collector the test runs: OTLP/HTTP at a URL
// (default path /v1/traces) and at host:port without TLS, and OTLP/gRPC without TLS.
func TestOTLPExporters(t *testing.T) {
	r := &receiver{}
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	exportOne(t, observe.TracingConfig{Exporter: observe.ExporterOTLPHTTP, Endpoint: srv.URL, ServiceName: "svc-url"}, "over-http-url")
	r.check(t, "/v1/traces", "over-http-url", "svc-url")

	r2 := &receiver{}
	srv2 := httptest.NewServer(r2)
	t.Cleanup(srv2.Close)
	exportOne(t, observe.TracingConfig{Exporter: observe.ExporterOTLPHTTP, Endpoint: srv2.Listener.Addr().String(), Insecure: true,
		ServiceName: "svc-hostport"}, "over-http-hostport")
	r2.check(t, "/v1/traces", "over-http-hostport", "svc-hostport")

	r3 := &receiver{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	coltracepb.RegisterTraceServiceServer(gs, grpcReceiver{r: r3})
	go func() { _ = gs.Serve(ln) }()
	t.Cleanup(gs.Stop)
	exportOne(t, observe.TracingConfig{Exporter: observe.ExporterOTLPGRPC, Endpoint: ln.Addr().String(), Insecure: true,
		ServiceName: "svc-grpc"}, "over-grpc")
	r3.check(t, "grpc", "over-grpc", "svc-grpc")
}

// TestTracingOffInstallsNothing: with exporter none, Start installs no provider.
func TestTracingOffInstallsNothing(t *testing.T) {
	var cfg observe.TracingConfig
	cfg.SetDefaults()
	tr := observe.NewTracing(cfg, slog.New(slog.DiscardHandler))
	if err := tr.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tr.Stop(context.Background()) }()
	if observe.TracingEnabled() {
		t.Fatal("tracing on with exporter none")
	}
	if _, span := observe.StartSpan(context.Background(), "x", trace.SpanKindServer); span.IsRecording() {
		t.Fatal("a recording span with tracing off")
	}
}
