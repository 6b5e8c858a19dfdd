package inbox_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/seamkit/seam/platform/bus"
	"github.com/seamkit/seam/platform/inbox"
	"github.com/seamkit/seam/platform/observe"
	"github.com/seamkit/seam/platform/observe/observetest"
)

// TestConsumerSpanContinuesTheTrace: an event whose message carries a trace context (as the relay
// publishes it) is handled in a consumer span that is a child of it, and the handler's context carries that
// span; a failed attempt is recorded as an error on its own span.
func TestConsumerSpanContinuesTheTrace(t *testing.T) {
	rec := observetest.Tracing(t)
	pool, b := setup(t, time.Minute)
	js := b.JetStream()
	handled := make(chan trace.SpanContext, 2)
	var attempts atomic.Int32
	startConsumer(t, pool, js, subscription("notifications-billing", func(ctx context.Context, tx pgx.Tx, m inbox.Message) error {
		handled <- trace.SpanContextFromContext(ctx)
		if attempts.Add(1) == 1 {
			return errors.New("first attempt fails")
		}
		return recordEffect(ctx, tx, m)
	}))

	pubCtx, producer := observe.StartSpan(context.Background(), "publish billing.events.payment_completed", trace.SpanKindProducer)
	msg := nats.NewMsg(bus.EventSubject("billing", "payment_completed"))
	msg.Data = []byte(`{"amount":1}`)
	id := uuid.NewString()
	msg.Header.Set(bus.HeaderMsgID, id)
	msg.Header.Set(bus.HeaderEventType, "payment_completed")
	observe.InjectTrace(pubCtx, observe.HeaderCarrier(msg.Header))
	producer.End()
	if _, err := js.PublishMsg(t.Context(), msg); err != nil {
		t.Fatal(err)
	}

	first, second := <-handled, <-handled
	name := "process billing.events.payment_completed (notifications-billing)"
	var spans []trace.SpanContext
	eventually(t, 10*time.Second, "two consumer spans", func() bool {
		spans = spans[:0]
		for _, s := range rec.Ended() {
			if s.Name() == name && s.SpanKind() == trace.SpanKindConsumer {
				spans = append(spans, s.SpanContext())
			}
		}
		return len(spans) == 2
	})
	for _, s := range rec.Ended() {
		if s.Name() != name {
			continue
		}
		if s.Parent().SpanID() != producer.SpanContext().SpanID() || s.SpanContext().TraceID() != producer.SpanContext().TraceID() {
			t.Fatalf("consumer span parent %v, want the producer span %v", s.Parent(), producer.SpanContext())
		}
		if observetest.Attr(s, "messaging.message.id") != id || observetest.Attr(s, "messaging.consumer.group.name") != "notifications-billing" {
			t.Fatalf("consumer span attributes %v", s.Attributes())
		}
		switch s.SpanContext().SpanID() {
		case first.SpanID():
			if s.Status().Code != codes.Error || observetest.Attr(s, "seam.inbox.outcome") != "failed" {
				t.Fatalf("failed attempt: status %v, attributes %v", s.Status(), s.Attributes())
			}
		case second.SpanID():
			if s.Status().Code != codes.Unset || observetest.Attr(s, "seam.inbox.outcome") != "applied" || observetest.Attr(s, "seam.deliveries") != "2" {
				t.Fatalf("applied attempt: status %v, attributes %v", s.Status(), s.Attributes())
			}
		default:
			t.Fatalf("consumer span %v is not one the handler ran in (%v, %v)", s.SpanContext(), first, second)
		}
	}
}
