package outbox_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/seamkit/seam/platform/bus"
	"github.com/seamkit/seam/platform/observe"
	"github.com/seamkit/seam/platform/observe/observetest"
	"github.com/seamkit/seam/platform/outbox"
)

// TestEventsCarryTheTrace: an event enqueued in a traced request keeps the request's trace context in its
// row; the relay publishes it in a producer span that is a child of that context, and the message carries
// the producer span's context, so a consumer becomes its child. The caller's header map is not touched.
func TestEventsCarryTheTrace(t *testing.T) {
	rec := observetest.Tracing(t)
	pool := newPool(t, schema)
	b := newBus(t)
	ctx := t.Context()
	if _, err := b.EnsureStream(ctx, schema); err != nil {
		t.Fatal(err)
	}

	reqCtx, request := observe.StartSpan(ctx, "HTTP POST /api/billing/invoices/{id}/pay", trace.SpanKindServer)
	callerHeaders := map[string]string{"X-Custom": "kept"}
	var id string
	err := pgx.BeginFunc(reqCtx, pool, func(tx pgx.Tx) error {
		var err error
		id, err = outbox.Enqueue(reqCtx, tx, schema, outbox.Event{Type: "payment_completed", Key: "inv-1",
			Payload: payment{"inv-1", 1250}, Headers: callerHeaders})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	request.End()
	if len(callerHeaders) != 1 {
		t.Fatalf("Enqueue changed the caller's headers: %v", callerHeaders)
	}
	var stored map[string]string
	if err := pool.QueryRow(ctx, `SELECT headers FROM billing.outbox WHERE id = $1`, id).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	wantParent := "00-" + request.SpanContext().TraceID().String() + "-" + request.SpanContext().SpanID().String() + "-01"
	if stored["traceparent"] != wantParent || stored["X-Custom"] != "kept" {
		t.Fatalf("stored headers %v, want traceparent %s", stored, wantParent)
	}
	if ev := rec.Ended()[0].Events(); len(ev) != 1 || ev[0].Name != "outbox enqueue" {
		t.Fatalf("request span events %v, want the enqueued event", ev)
	}

	startRelay(t, pool, b.JetStream(), outbox.RelayOptions{PollInterval: 50 * time.Millisecond})
	producer := observetest.WaitSpan(t, rec, 10*time.Second, "producer span",
		observetest.Named("publish billing.events.payment_completed", trace.SpanKindProducer))
	if producer.SpanContext().TraceID() != request.SpanContext().TraceID() || producer.Parent().SpanID() != request.SpanContext().SpanID() {
		t.Fatalf("producer span parent %v, want the request span %v", producer.Parent(), request.SpanContext())
	}
	if observetest.Attr(producer, "messaging.message.id") != id || producer.Status().Code != 0 {
		t.Fatalf("producer span attributes %v, status %v", producer.Attributes(), producer.Status())
	}

	stream, err := b.JetStream().Stream(ctx, bus.StreamName(schema))
	if err != nil {
		t.Fatal(err)
	}
	msg, err := stream.GetMsg(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	got := observe.ExtractTrace(context.Background(), observe.HeaderCarrier(msg.Header))
	if sc := trace.SpanContextFromContext(got); sc.SpanID() != producer.SpanContext().SpanID() || sc.TraceID() != producer.SpanContext().TraceID() {
		t.Fatalf("message trace context %v, want the producer span %v (headers %v)", sc, producer.SpanContext(), msg.Header)
	}
	if n := strings.Count(strings.ToLower(strings.Join(propagation.HeaderCarrier(msg.Header).Keys(), ",")), "traceparent"); n != 1 {
		t.Fatalf("the message has %d traceparent headers: %v", n, msg.Header)
	}
}

// TestEnqueueWithoutSpanStoresNoTrace: outside a span (or with tracing off) no trace header is stored.
func TestEnqueueWithoutSpanStoresNoTrace(t *testing.T) {
	observetest.Tracing(t)
	pool := newPool(t, schema)
	id := enqueue(t, pool, outbox.Event{Type: "invoice_created", Payload: map[string]int{"n": 1}})
	var stored map[string]string
	if err := pool.QueryRow(t.Context(), `SELECT headers FROM billing.outbox WHERE id = $1`, id).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if len(stored) != 0 {
		t.Fatalf("stored headers %v for an event enqueued outside a span", stored)
	}
}
