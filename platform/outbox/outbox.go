// Package outbox records a module's events in its own database transaction and relays them to the module's
// JetStream stream after commit, so an event is published if and only if its state change committed.
//
// Delivery is at least once into the stream and exactly once within the stream's duplicate window (the
// event id is the Nats-Msg-Id). The relay selects unsent rows (sent_at IS NULL) rather than rows after a
// high-water mark, so a transaction that commits after a later one is still relayed (after the events that
// committed before it). Several relays on one outbox take turns on an advisory lock, so the events of
// committed transactions reach the stream in outbox (seq) order and an aggregate's events keep their order,
// with one exception: when a publish fails in the middle of a batch while later ones in it succeed, the
// failed event is stored after them on retry. Published rows are deleted after RelayOptions.Retention.
//
// Nothing in the commit path signals the relay (a PostgreSQL NOTIFY would serialise the database's commits):
// a producer calls WakeRelays after its commit, which wakes the relays running in its process within
// microseconds, and every relay also polls (RelayOptions.PollInterval), which finds the events of producers in
// other processes, or of one that crashed or did not call WakeRelays, a little later. A relay woken while
// another holds the lock waits for it, so freshly committed events never wait for the poll behind a batch
// that began before they committed. The relay sends a batch of events as one JetStream atomic batch (stored
// all or none, with one disk sync under SyncAlways where single messages take one each) when it is large
// enough to pay for it, and one event at a time otherwise.
//
// With tracing on, an event keeps the trace context it was enqueued in and is published in a producer span
// of that trace, whose context the message carries to the consumers.
package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/seamkit/seam/platform/bus"
	"github.com/seamkit/seam/platform/observe"
)

// Event is one event a module publishes.
type Event struct {
	// ID identifies the event (a UUID) for deduplication on the bus and in consumers' inboxes; Enqueue
	// generates one when it is empty.
	ID string
	// Subject is where the event is published; it must be one of the module's own subjects
	// ("<schema>.events.<...>", see bus.EventSubject), which is all the module's NATS user may publish
	// anyway. Empty means "<schema>.events.<Type>".
	Subject string
	// Type names the kind of event, e.g. "payment_completed".
	Type string
	// Key is the aggregate the event is about, e.g. an invoice id.
	Key string
	// Payload is marshalled to JSON and becomes the message body.
	Payload any
	// Headers are extra message headers; names starting "Nats-" or "Seam-" are reserved. With tracing on,
	// Enqueue adds the trace context of its ctx (traceparent, tracestate) unless they hold a traceparent.
	Headers map[string]string
}

// ErrInvalidEvent is returned (wrapped) by Enqueue for an event that cannot be published.
var ErrInvalidEvent = errors.New("outbox: invalid event")

// Enqueue records ev in <schema>.outbox inside the caller's transaction tx and returns the event id; the
// relay publishes it once tx commits. The caller should call WakeRelays(schema) after the commit, so the
// relay publishes it at once rather than at its next poll. With tracing on, the event keeps the trace context
// of ctx in its headers, so its publication and its consumers join the trace of the work that caused it.
func Enqueue(ctx context.Context, tx pgx.Tx, schema string, ev Event) (string, error) {
	if err := prepare(schema, &ev); err != nil {
		return "", err
	}
	withTrace(ctx, &ev)
	payload, err := json.Marshal(ev.Payload)
	if err != nil {
		return "", fmt.Errorf("%w: payload of %s: %w", ErrInvalidEvent, ev.Type, err)
	}
	sql := `INSERT INTO ` + pgx.Identifier{schema, "outbox"}.Sanitize() + ` (id, subject, event_type, aggregate_key, payload, headers)
VALUES ($1, $2, $3, $4, $5, $6)`
	if _, err := tx.Exec(ctx, sql, ev.ID, ev.Subject, ev.Type, ev.Key, payload, ev.Headers); err != nil {
		return "", fmt.Errorf("outbox: enqueue %s: %w", ev.Type, err)
	}
	return ev.ID, nil
}

func prepare(schema string, ev *Event) error {
	if strings.TrimSpace(ev.Type) == "" {
		return fmt.Errorf("%w: empty type", ErrInvalidEvent)
	}
	if ev.Subject == "" {
		ev.Subject = bus.EventSubject(schema, ev.Type)
	}
	if !validSubject(ev.Subject) {
		return fmt.Errorf("%w: subject %q is not a valid NATS subject", ErrInvalidEvent, ev.Subject)
	}
	if own := bus.EventSubject(schema, ""); !strings.HasPrefix(ev.Subject, own) {
		return fmt.Errorf("%w: subject %q is not one of the module's own subjects (%s*)", ErrInvalidEvent, ev.Subject, own)
	}
	if ev.ID == "" {
		id, err := uuid.NewV7()
		if err != nil {
			return fmt.Errorf("outbox: event id: %w", err)
		}
		ev.ID = id.String()
	} else if _, err := uuid.Parse(ev.ID); err != nil {
		return fmt.Errorf("%w: id %q is not a UUID", ErrInvalidEvent, ev.ID)
	}
	for name := range ev.Headers {
		if reservedHeader(name) {
			return fmt.Errorf("%w: header %q is reserved", ErrInvalidEvent, name)
		}
	}
	if ev.Headers == nil {
		ev.Headers = map[string]string{}
	}
	return nil
}

// withTrace stores the trace context of ctx in a copy of ev's headers (the caller's map stays untouched),
// unless tracing is off, ctx carries no span, or the headers already hold a traceparent; and notes the event
// on the span.
func withTrace(ctx context.Context, ev *Event) {
	if !observe.TracingEnabled() {
		return
	}
	span := trace.SpanFromContext(ctx)
	if !span.SpanContext().IsValid() {
		return
	}
	for name := range ev.Headers {
		if strings.EqualFold(name, traceparentHeader) {
			return
		}
	}
	headers := make(map[string]string, len(ev.Headers)+2)
	maps.Copy(headers, ev.Headers)
	observe.InjectTrace(ctx, propagation.MapCarrier(headers))
	ev.Headers = headers
	if span.IsRecording() {
		span.AddEvent("outbox enqueue", trace.WithAttributes(
			semconv.MessagingDestinationName(ev.Subject),
			semconv.MessagingMessageID(ev.ID),
			attribute.String(spanAttrEventType, ev.Type),
		))
	}
}

// traceparentHeader is the W3C trace context header.
const traceparentHeader = "traceparent"

// spanAttrEventType is the span attribute naming an event's type.
const spanAttrEventType = "seam.event.type"

func validSubject(s string) bool {
	for tok := range strings.SplitSeq(s, ".") {
		if tok == "" || tok == "*" || tok == ">" || strings.ContainsAny(tok, " \t\r\n") {
			return false
		}
	}
	return true
}

func reservedHeader(name string) bool {
	n := strings.ToLower(name)
	return name == "" || strings.HasPrefix(n, "nats-") || strings.HasPrefix(n, "seam-")
}
