// Package inbox consumes events from JetStream through durable consumers and applies each one exactly once,
// recording its id in the module's inbox table in the same transaction as the handler's effect.
//
// A handler error rolls the transaction back and the event is redelivered after Subscription.Backoff, up to
// Subscription.MaxDeliver times; after that, or at once for an error wrapped with Permanent, the event is
// stored in the module's dead-letter table (<schema>.dead_letters) with its error and then terminated, while
// later events keep flowing. An operator retries (Consumer.Retry) or discards (DiscardDeadLetter) it. While the database is unreachable an event is retried in place,
// keeping its delivery alive, so an outage does not use up deliveries. A message without a UUID in its
// Nats-Msg-Id header is terminated and logged. With tracing on, each delivery is handled in a consumer span,
// a child of the trace context the message carries.
package inbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/seamkit/seam/platform/bus"
	"github.com/seamkit/seam/platform/failpoint"
	"github.com/seamkit/seam/platform/observe"
)

// Message is one event as a handler sees it.
type Message struct {
	// ID is the event id (a UUID) the publisher gave it.
	ID string
	// Subject is the subject it was published on, e.g. "billing.events.payment_completed".
	Subject string
	// Type is the event type, e.g. "payment_completed".
	Type string
	// Key is the aggregate the event is about, e.g. an invoice id.
	Key string
	// OccurredAt is when the publisher recorded the event.
	OccurredAt time.Time
	// Data is the JSON payload.
	Data []byte
	// Headers are all the message's headers.
	Headers nats.Header
}

// Handler applies an event's effect inside tx, which also records the event as handled. An error rolls both
// back and the event is delivered again later; wrap it with Permanent when retrying cannot help.
type Handler func(ctx context.Context, tx pgx.Tx, m Message) error

// ErrPermanent marks a handler error that retrying cannot fix (e.g. a payload that does not decode): the
// event is not redelivered.
var ErrPermanent = errors.New("inbox: permanent failure")

// Permanent wraps err so the consumer gives up on the event instead of retrying it.
func Permanent(err error) error { return fmt.Errorf("%w: %w", ErrPermanent, err) }

// Subscription describes a durable consumer and what it does with each event.
type Subscription struct {
	// Name is the durable consumer's name, shared by every process that consumes for it, e.g.
	// "notifications-billing"; it is also the consumer column of the inbox.
	Name string
	// Stream is the stream to consume, e.g. bus.StreamName("billing").
	Stream string
	// Subjects filter the stream, e.g. "billing.events.payment_completed".
	Subjects []string
	// Handler applies each event.
	Handler Handler
	// MaxDeliver is how many deliveries of an event may end in a handler error before the event is moved
	// to the dead-letter store (default 10); -1 retries forever. Only a handler error gives up: an event
	// whose delivery times out (e.g. the process died) is always delivered again, and a database outage is
	// waited out without using up deliveries.
	MaxDeliver int
	// AckWait is how long the bus waits for an event to be acknowledged before delivering it again; it
	// also bounds one handler call (default 30s).
	AckWait time.Duration
	// Backoff is the delay before the n-th retry of a failed handler, the last value repeating
	// (default 1s, 5s, 30s, 1m).
	Backoff []time.Duration
}

func (s *Subscription) setDefaults() {
	if s.MaxDeliver == 0 {
		s.MaxDeliver = 10
	}
	if s.AckWait <= 0 {
		s.AckWait = 30 * time.Second
	}
	if len(s.Backoff) == 0 {
		s.Backoff = []time.Duration{time.Second, 5 * time.Second, 30 * time.Second, time.Minute}
	}
}

func (s Subscription) validate() error {
	if s.Name == "" || strings.ContainsAny(s.Name, " \t\r\n.*>/\\") {
		return fmt.Errorf("inbox: consumer name %q must be non-empty without whitespace, '.', '*', '>' or slashes", s.Name)
	}
	if s.Stream == "" {
		return fmt.Errorf("inbox: consumer %s: no stream", s.Name)
	}
	if len(s.Subjects) == 0 {
		return fmt.Errorf("inbox: consumer %s: no subjects", s.Name)
	}
	if s.Handler == nil {
		return fmt.Errorf("inbox: consumer %s: no handler", s.Name)
	}
	if s.MaxDeliver < -1 {
		return fmt.Errorf("inbox: consumer %s: max deliver must be positive or -1, got %d", s.Name, s.MaxDeliver)
	}
	for _, d := range s.Backoff {
		if d <= 0 {
			return fmt.Errorf("inbox: consumer %s: backoff delays must be positive, got %s", s.Name, d)
		}
	}
	return nil
}

const (
	// prefetch is how many messages the client buffers; small, so buffered messages do not outlive AckWait.
	prefetch      = 10
	ackTimeout    = 10 * time.Second
	minRetryDelay = 100 * time.Millisecond
	maxRetryDelay = 10 * time.Second
)

// Consumer runs one durable consumer for a module, handling its events one at a time in order. Consumers
// with the same name in several processes share the events; each is applied once.
type Consumer struct {
	pool   *pgxpool.Pool
	js     jetstream.JetStream
	schema string
	table  string
	sub    Subscription
	logger *slog.Logger

	mu       sync.Mutex
	started  bool
	stopped  bool
	halted   bool
	cc       jetstream.ConsumeContext
	cancel   context.CancelFunc
	ctx      context.Context
	inflight sync.WaitGroup
}

// NewConsumer prepares a consumer that records handled events in <schema>.inbox.
func NewConsumer(pool *pgxpool.Pool, js jetstream.JetStream, schema string, sub Subscription, logger *slog.Logger) *Consumer {
	sub.setDefaults()
	return &Consumer{
		pool:   pool,
		js:     js,
		schema: schema,
		table:  pgx.Identifier{schema, "inbox"}.Sanitize(),
		sub:    sub,
		logger: logger.With(slog.String("consumer", sub.Name)),
	}
}

// Start creates the durable consumer (or updates it to the subscription: explicit acks, the subscription's
// subjects, every event from the start of the stream) and starts handling events in the background.
func (c *Consumer) Start(ctx context.Context) error {
	if err := c.sub.validate(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.started || c.stopped {
		return fmt.Errorf("inbox: consumer %s already started or stopped", c.sub.Name)
	}
	cfg := jetstream.ConsumerConfig{
		Durable:       c.sub.Name,
		Description:   "seam inbox consumer for " + c.schema,
		AckPolicy:     jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckWait:       c.sub.AckWait,
		// The consumer enforces MaxDeliver itself, counting only handler failures.
		MaxDeliver: -1,
	}
	// With one filter, the client names it in the API subject, where the module's NATS permissions pin it
	// (see bus.Declaration.Permissions).
	if len(c.sub.Subjects) == 1 {
		cfg.FilterSubject = c.sub.Subjects[0]
	} else {
		cfg.FilterSubjects = c.sub.Subjects
	}
	cons, err := c.js.CreateOrUpdateConsumer(ctx, c.sub.Stream, cfg)
	if err != nil {
		return fmt.Errorf("inbox: consumer %s on stream %s: %w", c.sub.Name, c.sub.Stream, err)
	}
	c.ctx, c.cancel = context.WithCancel(context.WithoutCancel(ctx))
	cc, err := cons.Consume(c.handle,
		jetstream.PullMaxMessages(prefetch),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			c.logger.Warn("consumer error", slog.Any("error", err))
		}))
	if err != nil {
		c.cancel()
		return fmt.Errorf("inbox: consume %s: %w", c.sub.Name, err)
	}
	c.started, c.cc = true, cc
	c.logger.Info("consumer started", slog.String("stream", c.sub.Stream), slog.Any("subjects", c.sub.Subjects))
	return nil
}

// Stop stops taking new events and waits for those already received to be handled. If ctx ends first, the
// events in flight are abandoned (rolled back, and delivered again later) and ctx's error returned.
func (c *Consumer) Stop(ctx context.Context) error {
	c.mu.Lock()
	if !c.started || c.stopped {
		c.stopped = true
		c.mu.Unlock()
		return nil
	}
	c.stopped = true
	cc := c.cc
	c.mu.Unlock()
	cc.Drain()
	var err error
	select {
	case <-cc.Closed():
	case <-ctx.Done():
		err = fmt.Errorf("inbox: stop consumer %s: %w", c.sub.Name, ctx.Err())
	}
	c.mu.Lock()
	c.halted = true
	c.mu.Unlock()
	cc.Stop()
	if err != nil {
		c.cancel()
	}
	c.inflight.Wait()
	c.cancel()
	c.logger.Info("consumer stopped")
	return err
}

func (c *Consumer) handle(msg jetstream.Msg) {
	c.mu.Lock()
	if c.halted {
		c.mu.Unlock()
		return
	}
	c.inflight.Add(1)
	c.mu.Unlock()
	defer c.inflight.Done()

	id := msg.Headers().Get(bus.HeaderMsgID)
	logger := c.logger.With(slog.String("subject", msg.Subject()), slog.String("event_id", id))
	if _, err := uuid.Parse(id); err != nil {
		logger.Error("message without a valid event id in its Nats-Msg-Id header; dropping it")
		if err := msg.TermWithReason("no valid event id"); err != nil {
			logger.Warn("terminate message", slog.Any("error", err))
		}
		return
	}
	meta, err := msg.Metadata()
	if err != nil {
		logger.Error("message without JetStream metadata; dropping it", slog.Any("error", err))
		return
	}
	m := message(id, msg, meta)

	ctx, span := c.startSpan(m, meta.NumDelivered)
	applied, err := c.apply(ctx, m, logger, msg)
	defer endSpan(span, applied, err)
	switch {
	case err == nil:
		// Fault tests crash here: the effect is committed, the event not yet acknowledged.
		if err := failpoint.Inject("inbox.after_commit"); err != nil {
			logger.WarnContext(ctx, "event left unacknowledged", slog.Any("error", err))
			return
		}
		ackCtx, cancel := context.WithTimeout(ctx, ackTimeout)
		defer cancel()
		if err := msg.DoubleAck(ackCtx); err != nil {
			logger.WarnContext(ctx, "acknowledge event (it will be redelivered and skipped)", slog.Any("error", err))
		}
		if applied {
			logger.DebugContext(ctx, "event handled")
		} else {
			logger.DebugContext(ctx, "duplicate event skipped")
		}
	case c.ctx.Err() != nil:
		logger.InfoContext(ctx, "consumer stopping; event left for redelivery")
	case errors.Is(err, ErrPermanent), c.sub.MaxDeliver > 0 && meta.NumDelivered >= uint64(c.sub.MaxDeliver):
		c.giveUp(ctx, m, msg, int(meta.NumDelivered), err, logger)
	default:
		delay := c.sub.Backoff[min(int(meta.NumDelivered), len(c.sub.Backoff))-1]
		logger.WarnContext(ctx, "event handler failed; will retry", slog.Any("error", err),
			slog.Uint64("deliveries", meta.NumDelivered), slog.Duration("retry_in", delay))
		if err := msg.NakWithDelay(delay); err != nil {
			logger.WarnContext(ctx, "negative acknowledge (the event will be redelivered after the ack wait)", slog.Any("error", err))
		}
	}
}

// Span attributes of a consumer span beside the OpenTelemetry messaging conventions.
const (
	spanAttrEventType  = "seam.event.type"
	spanAttrDeliveries = "seam.deliveries"
	spanAttrOutcome    = "seam.inbox.outcome"
)

// startSpan starts the consumer span of m: a child of the trace context its message carries (the relay's
// producer span), so the handler's work, its database transaction included, joins the trace of the request
// that caused the event. With tracing off it returns the consumer's context and a no-op span.
func (c *Consumer) startSpan(m Message, deliveries uint64) (context.Context, trace.Span) {
	if !observe.TracingEnabled() {
		return c.ctx, noop.Span{}
	}
	ctx := observe.ExtractTrace(c.ctx, observe.HeaderCarrier(m.Headers))
	ctx, span := observe.StartSpan(ctx, "process "+m.Subject+" ("+c.sub.Name+")", trace.SpanKindConsumer)
	if span.IsRecording() {
		span.SetAttributes(
			semconv.MessagingSystemKey.String("nats"),
			semconv.MessagingOperationTypeProcess,
			semconv.MessagingDestinationName(m.Subject),
			semconv.MessagingConsumerGroupName(c.sub.Name),
			semconv.MessagingMessageID(m.ID),
			attribute.String(spanAttrEventType, m.Type),
			attribute.Int64(spanAttrDeliveries, int64(min(deliveries, math.MaxInt64))),
		)
	}
	return ctx, span
}

// endSpan ends a consumer span with what became of the event: applied, a duplicate skipped, or the error.
func endSpan(span trace.Span, applied bool, err error) {
	if !span.IsRecording() {
		return
	}
	switch {
	case err != nil:
		span.SetAttributes(attribute.String(spanAttrOutcome, "failed"))
	case applied:
		span.SetAttributes(attribute.String(spanAttrOutcome, "applied"))
	default:
		span.SetAttributes(attribute.String(spanAttrOutcome, "duplicate"))
	}
	observe.EndSpan(span, err)
}

func message(id string, msg jetstream.Msg, meta *jetstream.MsgMetadata) Message {
	h := msg.Headers()
	occurred, err := time.Parse(time.RFC3339Nano, h.Get(bus.HeaderOccurredAt))
	if err != nil {
		occurred = meta.Timestamp
	}
	return Message{
		ID:         id,
		Subject:    msg.Subject(),
		Type:       h.Get(bus.HeaderEventType),
		Key:        h.Get(bus.HeaderEventKey),
		OccurredAt: occurred,
		Data:       msg.Data(),
		Headers:    h,
	}
}

// infraError marks a failure of the database rather than of the handler's logic.
type infraError struct{ err error }

func (e infraError) Error() string { return e.err.Error() }
func (e infraError) Unwrap() error { return e.err }

// apply handles m, retrying in place (keeping the message's delivery alive) while the database is
// unreachable, so an outage does not use up the event's deliveries. It reports whether the handler ran
// (false for a duplicate).
func (c *Consumer) apply(ctx context.Context, m Message, logger *slog.Logger, msg jetstream.Msg) (bool, error) {
	delay := time.Duration(0)
	for {
		applied, err := c.applyOnce(ctx, m, logger)
		var infra infraError
		if !errors.As(err, &infra) || ctx.Err() != nil {
			return applied, err
		}
		delay = min(max(2*delay, minRetryDelay), maxRetryDelay)
		logger.WarnContext(ctx, "database unavailable; retrying event", slog.Any("error", err), slog.Duration("retry_in", delay))
		if err := msg.InProgress(); err != nil {
			logger.Warn("extend ack deadline", slog.Any("error", err))
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(delay):
		}
	}
}

func (c *Consumer) applyOnce(ctx context.Context, m Message, logger *slog.Logger) (applied bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, c.sub.AckWait)
	defer cancel()
	tx, err := c.pool.Begin(ctx)
	if err != nil {
		return false, infraError{fmt.Errorf("begin: %w", err)}
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // a no-op after Commit
	tag, err := tx.Exec(ctx, `INSERT INTO `+c.table+` (consumer, event_id, subject) VALUES ($1, $2, $3)
ON CONFLICT DO NOTHING`, c.sub.Name, m.ID, m.Subject)
	if err != nil {
		return false, infraError{fmt.Errorf("record event in inbox: %w", err)}
	}
	if tag.RowsAffected() == 1 {
		if err := c.runHandler(ctx, tx, m, logger); err != nil {
			if pingErr := c.ping(ctx); pingErr != nil {
				return false, infraError{fmt.Errorf("%w (database: %w)", err, pingErr)}
			}
			return false, err
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return false, infraError{fmt.Errorf("commit: %w", err)}
	}
	return tag.RowsAffected() == 1, nil
}

// runHandler calls the handler, turning a panic into an error (and logging where it happened).
func (c *Consumer) runHandler(ctx context.Context, tx pgx.Tx, m Message, logger *slog.Logger) (err error) {
	defer func() {
		if p := recover(); p != nil {
			logger.Error("event handler panicked", slog.Any("panic", p), slog.String("stack", string(debug.Stack())))
			err = fmt.Errorf("handler panicked: %v", p)
		}
	}()
	if err := failpoint.Inject("inbox." + c.sub.Name + ".handle"); err != nil {
		return err
	}
	return c.sub.Handler(ctx, tx, m)
}

// giveUp moves an event whose handler failed for good to the dead-letter store, then terminates it; if the
// dead letter cannot be stored, the event is delivered again later instead, so it is never lost.
func (c *Consumer) giveUp(ctx context.Context, m Message, msg jetstream.Msg, deliveries int, cause error, logger *slog.Logger) {
	if err := c.deadLetter(ctx, m, cause, deliveries); err != nil {
		logger.ErrorContext(ctx, "event handler failed and the dead letter could not be stored; will retry",
			slog.Any("error", cause), slog.Any("store_error", err))
		if err := msg.NakWithDelay(c.sub.Backoff[len(c.sub.Backoff)-1]); err != nil {
			logger.WarnContext(ctx, "negative acknowledge (the event will be redelivered after the ack wait)", slog.Any("error", err))
		}
		return
	}
	logger.ErrorContext(ctx, "event handler failed; event moved to the dead-letter store", slog.Any("error", cause),
		slog.Int("deliveries", deliveries), slog.Bool("permanent", errors.Is(cause, ErrPermanent)))
	if err := msg.TermWithReason(fmt.Sprintf("dead-lettered after %d deliveries", deliveries)); err != nil {
		logger.WarnContext(ctx, "terminate message", slog.Any("error", err))
	}
}

// ping checks the database still answers, to tell a broken connection from a failing handler.
func (c *Consumer) ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	return c.pool.Ping(ctx)
}
