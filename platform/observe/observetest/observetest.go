// Package observetest turns OpenTelemetry tracing on for a test, with the spans recorded in memory.
package observetest

import (
	"context"
	"log/slog"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/seamkit/seam/platform/observe"
)

// ServiceName is the service.name of the spans a test records.
const ServiceName = "seam-test"

// Tracing starts tracing (every trace sampled) for the rest of the test, recording spans in the returned
// recorder, and stops it when the test ends. Tracing is process-wide: a test using it must not run in
// parallel with others that look at spans.
func Tracing(t testing.TB) *tracetest.SpanRecorder {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tr := observe.NewTracingTo(rec, observe.TracingConfig{SampleRatio: 1, ServiceName: ServiceName}, slog.New(slog.DiscardHandler))
	if err := tr.Start(context.Background()); err != nil {
		t.Fatalf("observetest: start tracing: %v", err)
	}
	t.Cleanup(func() {
		if err := tr.Stop(context.Background()); err != nil {
			t.Errorf("observetest: stop tracing: %v", err)
		}
	})
	return rec
}

// WaitSpan returns the first ended span of rec that match accepts, waiting up to timeout for it (a server
// or consumer span may end after the caller has its answer); it fails the test at the deadline.
func WaitSpan(t testing.TB, rec *tracetest.SpanRecorder, timeout time.Duration, what string, match func(sdktrace.ReadOnlySpan) bool) sdktrace.ReadOnlySpan {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		for _, s := range rec.Ended() {
			if match(s) {
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("observetest: no %s among %d ended spans after %s: %s", what, len(rec.Ended()), timeout, Names(rec.Ended()))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Named matches spans called name of the given kind.
func Named(name string, kind trace.SpanKind) func(sdktrace.ReadOnlySpan) bool {
	return func(s sdktrace.ReadOnlySpan) bool { return s.Name() == name && s.SpanKind() == kind }
}

// Names lists spans as "name (kind)", for failure messages.
func Names(spans []sdktrace.ReadOnlySpan) []string {
	out := make([]string, len(spans))
	for i, s := range spans {
		out[i] = s.Name() + " (" + s.SpanKind().String() + ")"
	}
	return out
}

// Attr returns the value of span's attribute key as a string, or "".
func Attr(s sdktrace.ReadOnlySpan, key string) string {
	for _, kv := range s.Attributes() {
		if string(kv.Key) == key {
			return kv.Value.String()
		}
	}
	return ""
}
