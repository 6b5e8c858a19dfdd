package observe

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/seamkit/seam/platform/errs"
)

// Values of TracingConfig.Exporter.
const (
	// ExporterNone turns tracing off (the default): no exporter, no spans, no trace headers.
	ExporterNone = "none"
	// ExporterOTLPHTTP sends spans to an OTLP collector over HTTP (protobuf), port 4318 by convention.
	ExporterOTLPHTTP = "otlp-http"
	// ExporterOTLPGRPC sends spans to an OTLP collector over gRPC, port 4317 by convention.
	ExporterOTLPGRPC = "otlp-grpc"
)

// TracingConfig is the tracing section of the configuration.
type TracingConfig struct {
	// Exporter is where spans go: none (default, tracing off), otlp-http or otlp-grpc.
	Exporter string `yaml:"exporter"`
	// Endpoint is the collector: host:port, or an http:// or https:// URL (whose scheme then decides TLS and,
	// for otlp-http, whose path is where spans are posted, default /v1/traces). Empty leaves it to the
	// exporter: OTEL_EXPORTER_OTLP_ENDPOINT, else localhost:4318 (otlp-http) or localhost:4317 (otlp-grpc).
	Endpoint string `yaml:"endpoint"`
	// Insecure sends spans to a host:port endpoint without TLS.
	Insecure bool `yaml:"insecure"`
	// SampleRatio is the share of new traces that are recorded, from 0 to 1 (default 1); a request that
	// arrives with a trace context follows its caller's decision.
	SampleRatio float64 `yaml:"sample_ratio"`
	// ServiceName names this process in traces (the service.name resource attribute); empty lets the
	// application choose (seam-monolith, or seam-<module> for an extracted module).
	ServiceName string `yaml:"service_name"`
}

// SetDefaults fills unset fields; it runs before the configuration is read, so an explicit sample_ratio of 0
// stays 0.
func (c *TracingConfig) SetDefaults() {
	if c.Exporter == "" {
		c.Exporter = ExporterNone
	}
	if c.SampleRatio == 0 {
		c.SampleRatio = 1
	}
}

// Validate reports a bad exporter, endpoint or sample ratio; errors name the key.
func (c TracingConfig) Validate() error {
	switch c.Exporter {
	case ExporterNone, ExporterOTLPHTTP, ExporterOTLPGRPC:
	default:
		return fmt.Errorf("tracing.exporter: must be %s, %s or %s, got %q", ExporterNone, ExporterOTLPHTTP, ExporterOTLPGRPC, c.Exporter)
	}
	if c.Endpoint != "" {
		if _, _, err := parseEndpoint(c.Endpoint); err != nil {
			return fmt.Errorf("tracing.endpoint: %w", err)
		}
	}
	if c.SampleRatio < 0 || c.SampleRatio > 1 {
		return fmt.Errorf("tracing.sample_ratio: must be between 0 and 1, got %g", c.SampleRatio)
	}
	if strings.ContainsAny(c.ServiceName, "\r\n") {
		return fmt.Errorf("tracing.service_name: must be one line, got %q", c.ServiceName)
	}
	return nil
}

// parseEndpoint splits an endpoint into a URL (nil for host:port) and its host:port.
func parseEndpoint(endpoint string) (*url.URL, string, error) {
	if strings.Contains(endpoint, "://") {
		u, err := url.Parse(endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, "", fmt.Errorf("want host:port or an http(s) URL, got %q", endpoint)
		}
		return u, u.Host, nil
	}
	if _, _, err := net.SplitHostPort(endpoint); err != nil {
		return nil, "", fmt.Errorf("want host:port or an http(s) URL, got %q", endpoint)
	}
	return nil, endpoint, nil
}

// instrumentationScope names the tracer every Seam span comes from.
const instrumentationScope = "github.com/seamkit/seam/platform"

// flushTimeout bounds how long Stop waits for the last spans to reach the collector, so that an unreachable
// collector cannot use up the process's stop_timeout.
const flushTimeout = 5 * time.Second

// activeTracer is the tracer of the started Tracing; nil while tracing is off, which is what keeps every
// helper below free of work (and allocations) then.
var activeTracer atomic.Pointer[tracerHandle]

type tracerHandle struct{ tracer trace.Tracer }

// propagator reads and writes W3C trace context and baggage; Start also installs it globally.
var propagator = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})

// Tracing is the process's OpenTelemetry tracer provider: Start installs it (with the W3C propagators)
// globally, Stop flushes and shuts it down. With exporter none it installs nothing.
type Tracing struct {
	cfg       TracingConfig
	logger    *slog.Logger
	processor sdktrace.SpanProcessor
	handle    *tracerHandle
	provider  *sdktrace.TracerProvider
}

// NewTracing prepares tracing as cfg says (cfg.ServiceName filled in); nothing is installed before Start.
func NewTracing(cfg TracingConfig, logger *slog.Logger) *Tracing {
	return &Tracing{cfg: cfg, logger: logger}
}

// NewTracingTo prepares tracing that hands spans to processor instead of the configured exporter, whatever
// cfg.Exporter says: for tests, or for a program that handles spans itself.
func NewTracingTo(processor sdktrace.SpanProcessor, cfg TracingConfig, logger *slog.Logger) *Tracing {
	return &Tracing{cfg: cfg, logger: logger, processor: processor}
}

// Start builds the exporter and the tracer provider (parent-based ratio sampler, batched export) and
// installs it and the W3C tracecontext and baggage propagators globally; with exporter none it does nothing.
func (t *Tracing) Start(ctx context.Context) error {
	processor := t.processor
	if processor == nil {
		if t.cfg.Exporter == ExporterNone || t.cfg.Exporter == "" {
			return nil
		}
		exp, err := newExporter(ctx, t.cfg)
		if err != nil {
			return fmt.Errorf("tracing: %s exporter: %w", t.cfg.Exporter, err)
		}
		processor = sdktrace.NewBatchSpanProcessor(exp)
	}
	res, err := resource.New(ctx,
		resource.WithTelemetrySDK(),
		resource.WithHost(),
		resource.WithProcessPID(),
		resource.WithAttributes(semconv.ServiceName(t.cfg.ServiceName), semconv.ServiceInstanceID(uuid.NewString())),
	)
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return fmt.Errorf("tracing: resource: %w", err)
	}
	t.provider = sdktrace.NewTracerProvider(
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(t.cfg.SampleRatio))),
		sdktrace.WithSpanProcessor(processor),
		sdktrace.WithResource(res),
	)
	logger := t.logger
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		logger.Warn("tracing error", slog.Any("error", err))
	}))
	otel.SetTracerProvider(t.provider)
	otel.SetTextMapPropagator(propagator)
	t.handle = &tracerHandle{tracer: t.provider.Tracer(instrumentationScope)}
	activeTracer.Store(t.handle)
	t.logger.Info("tracing on", slog.String("exporter", t.cfg.Exporter), slog.String("endpoint", t.cfg.Endpoint),
		slog.Float64("sample_ratio", t.cfg.SampleRatio), slog.String("service_name", t.cfg.ServiceName))
	return nil
}

// Stop stops starting spans, then exports those still buffered (for at most a few seconds) and shuts the
// provider down. A collector that cannot be reached is logged, not returned: it must not fail the shutdown.
func (t *Tracing) Stop(ctx context.Context) error {
	if t.provider == nil {
		return nil
	}
	activeTracer.CompareAndSwap(t.handle, nil)
	ctx, cancel := context.WithTimeout(ctx, flushTimeout)
	defer cancel()
	if err := t.provider.Shutdown(ctx); err != nil {
		t.logger.Warn("tracing: spans not flushed at stop", slog.Any("error", err))
	}
	t.provider = nil
	return nil
}

// newExporter builds the OTLP exporter cfg names.
func newExporter(ctx context.Context, cfg TracingConfig) (sdktrace.SpanExporter, error) {
	var u *url.URL
	hostPort := ""
	if cfg.Endpoint != "" {
		var err error
		if u, hostPort, err = parseEndpoint(cfg.Endpoint); err != nil {
			return nil, err
		}
	}
	switch cfg.Exporter {
	case ExporterOTLPHTTP:
		var opts []otlptracehttp.Option
		switch {
		case u != nil:
			if u.Path == "" || u.Path == "/" {
				u = u.JoinPath("/v1/traces")
			}
			opts = append(opts, otlptracehttp.WithEndpointURL(u.String()))
		case hostPort != "":
			opts = append(opts, otlptracehttp.WithEndpoint(hostPort))
		}
		if cfg.Insecure && u == nil {
			opts = append(opts, otlptracehttp.WithInsecure())
		}
		return otlptracehttp.New(ctx, opts...)
	case ExporterOTLPGRPC:
		var opts []otlptracegrpc.Option
		switch {
		case u != nil:
			opts = append(opts, otlptracegrpc.WithEndpointURL(u.String()))
		case hostPort != "":
			opts = append(opts, otlptracegrpc.WithEndpoint(hostPort))
		}
		if cfg.Insecure && u == nil {
			opts = append(opts, otlptracegrpc.WithInsecure())
		}
		return otlptracegrpc.New(ctx, opts...)
	}
	return nil, fmt.Errorf("unknown exporter %q", cfg.Exporter)
}

// TracingEnabled reports whether a tracer provider is installed (tracing.exporter is not none and the
// process has started); while it is false, the helpers below do nothing.
func TracingEnabled() bool { return activeTracer.Load() != nil }

// Traced reports whether ctx carries a span that records: a cheap test before doing work (building a span
// name, attributes) that only a recorded trace needs.
func Traced(ctx context.Context) bool { return trace.SpanFromContext(ctx).IsRecording() }

// StartSpan starts a span of the given kind as a child of the span (or remote span context) in ctx and
// returns a context carrying it. With tracing off it returns ctx and a span that does nothing, without
// allocating. Add attributes only when span.IsRecording(); end it with EndSpan.
func StartSpan(ctx context.Context, name string, kind trace.SpanKind) (context.Context, trace.Span) {
	h := activeTracer.Load()
	if h == nil {
		return ctx, noop.Span{}
	}
	return h.tracer.Start(ctx, name, trace.WithSpanKind(kind))
}

// EndSpan records err (when not nil) on span and ends it. The span's status becomes Error for failures of
// the system (an internal or unavailable *errs.Error, a deadline, anything that is not an *errs.Error), not
// for errors the caller caused (not found, invalid, conflict, ...), which are recorded as events only.
func EndSpan(span trace.Span, err error) {
	if err != nil && span.IsRecording() {
		RecordError(span, err)
	}
	span.End()
}

// RecordError records err on span as EndSpan does, without ending it.
func RecordError(span trace.Span, err error) {
	span.RecordError(err)
	errorType, fault := classify(err)
	span.SetAttributes(semconv.ErrorTypeKey.String(errorType))
	if fault {
		span.SetStatus(codes.Error, errorType)
	}
}

// classify returns the error.type of err (an *errs.Error's code, a context error's name, or _OTHER) and
// whether it is a failure of the system rather than of the caller.
func classify(err error) (string, bool) {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "deadline_exceeded", true
	case errors.Is(err, context.Canceled):
		return "canceled", true
	}
	e, ok := errs.As(err)
	if !ok {
		return semconv.ErrorTypeOther.Value.AsString(), true
	}
	return e.Code, e.Kind == errs.Internal || e.Kind == errs.Unavailable
}

// InjectTrace writes the trace context of ctx (traceparent, tracestate, baggage) into carrier; with tracing
// off it writes nothing.
func InjectTrace(ctx context.Context, carrier propagation.TextMapCarrier) {
	if activeTracer.Load() == nil {
		return
	}
	propagator.Inject(ctx, carrier)
}

// ExtractTrace returns ctx carrying the trace context read from carrier, so the spans started from it are
// children of the caller's; with tracing off it returns ctx.
func ExtractTrace(ctx context.Context, carrier propagation.TextMapCarrier) context.Context {
	if activeTracer.Load() == nil {
		return ctx
	}
	return propagator.Extract(ctx, carrier)
}

// HeaderCarrier adapts message headers (nats.Header, micro.Headers, any map[string][]string) to
// propagation.TextMapCarrier. Unlike propagation.HeaderCarrier it matches names regardless of case, because
// NATS header names are case-sensitive and a header may arrive as "traceparent" or, from HTTP, "Traceparent".
type HeaderCarrier map[string][]string

// Get returns the first value of the header key, whatever its case.
func (h HeaderCarrier) Get(key string) string {
	if vs := h[key]; len(vs) > 0 {
		return vs[0]
	}
	for k, vs := range h {
		if len(vs) > 0 && strings.EqualFold(k, key) {
			return vs[0]
		}
	}
	return ""
}

// Set replaces the header key (in any case) with value, under the name key.
func (h HeaderCarrier) Set(key, value string) {
	for k := range h {
		if k != key && strings.EqualFold(k, key) {
			delete(h, k)
		}
	}
	h[key] = []string{value}
}

// Keys lists the header names.
func (h HeaderCarrier) Keys() []string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	return keys
}
