// Package inbox consumes events from JetStream through durable consumers and applies each one exactly once,
// recording its id in the module's inbox table in the same transaction as the handler's effect. The events
// already waiting when a consumer is free are applied together, up to Subscription.BatchSize of them in one
// transaction, each under its own savepoint, and acknowledged once it commits.
//
// A handler error rolls back its event's savepoint (its effect and inbox record, not the other events') and
// the event is redelivered after Subscription.Backoff, up to Subscription.MaxDeliver times; after that, or
// at once for an error wrapped with Permanent, the event is stored in the module's dead-letter table
// (<schema>.dead_letters) with its error and then terminated, while later events keep flowing. An operator
// retries (Consumer.Retry) or discards (DiscardDeadLetter) it. While the database is unreachable the events
// are retried in place, keeping their deliveries alive, so an outage does not use up deliveries. A message
// without a UUID in its Nats-Msg-Id header is terminated and logged. With tracing on, each delivery is
// handled in a consumer span, a child of the trace context the message carries.
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
	"github.com/jackc/pgx/v5/pgconn"
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
	// BatchSize is the most events applied in one transaction (default DefaultBatchSize); a consumer takes
	// only the events already waiting, never waiting for more, and 1 gives each event a transaction of its own.
	BatchSize int
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
	if s.BatchSize == 0 {
		s.BatchSize = DefaultBatchSize
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
	if s.BatchSize < 0 {
		return fmt.Errorf("inbox: consumer %s: batch size must be positive (or 0 for the default), got %d", s.Name, s.BatchSize)
	}
	for _, d := range s.Backoff {
		if d <= 0 {
			return fmt.Errorf("inbox: consumer %s: backoff delays must be positive, got %s", s.Name, d)
		}
	}
	return nil
}

// DefaultBatchSize is how many waiting events a consumer applies in one transaction unless
// Subscription.BatchSize says otherwise.
const DefaultBatchSize = 32

const (
	// prefetch is how many messages the client buffers beyond the queue of a batch; small, so buffered
	// messages do not outlive AckWait.
	prefetch      = 10
	ackTimeout    = 10 * time.Second
	minRetryDelay = 100 * time.Millisecond
	maxRetryDelay = 10 * time.Second
)

// errTxBroken reports that a failed handler left the batch's transaction unusable: the handler's event has
// its outcome, the batch's other events are applied again in a new transaction.
var errTxBroken = errors.New("inbox: a failed handler left the transaction unusable")

// Consumer runs one durable consumer for a module, handling its events in order, those already waiting
// together in one transaction. Consumers with the same name in several processes share the events; each is
// applied once.
type Consumer struct {
	pool   *pgxpool.Pool
	js     jetstream.JetStream
	schema string
	table  string
	sub    Subscription
	logger *slog.Logger

	mu      sync.Mutex
	started bool
	stopped bool
	cc      jetstream.ConsumeContext
	cancel  context.CancelFunc
	ctx     context.Context
	// queue holds the messages received and not yet taken by the worker, at most a batch.
	queue chan jetstream.Msg
	// drained is closed by Stop once every message received is in the queue; done when the worker returns.
	drained chan struct{}
	done    chan struct{}
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
	c.queue = make(chan jetstream.Msg, c.sub.BatchSize)
	c.drained, c.done = make(chan struct{}), make(chan struct{})
	cc, err := cons.Consume(c.enqueue,
		jetstream.PullMaxMessages(prefetch),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			c.logger.Warn("consumer error", slog.Any("error", err))
		}))
	if err != nil {
		c.cancel()
		return fmt.Errorf("inbox: consume %s: %w", c.sub.Name, err)
	}
	go c.run()
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
	err := c.await(ctx, cc.Closed())
	cc.Stop()
	if err == nil {
		// Every message received is queued now: the worker handles them, then returns.
		close(c.drained)
		err = c.await(ctx, c.done)
	}
	c.cancel()
	<-c.done
	c.logger.Info("consumer stopped")
	return err
}

// await waits for ch to close, or for ctx to end.
func (c *Consumer) await(ctx context.Context, ch <-chan struct{}) error {
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("inbox: stop consumer %s: %w", c.sub.Name, ctx.Err())
	}
}

// enqueue hands a received message to the worker; once the consumer is abandoning its events, it drops the
// message instead, which the bus delivers again later.
func (c *Consumer) enqueue(msg jetstream.Msg) {
	select {
	case c.queue <- msg:
	case <-c.ctx.Done():
	}
}

// run is the consumer's worker: it takes the messages waiting in the queue, as many as a batch holds and
// without waiting for more, and handles them together, until Stop.
func (c *Consumer) run() {
	defer close(c.done)
	batch := make([]jetstream.Msg, 0, c.sub.BatchSize)
	for c.ctx.Err() == nil {
		select {
		case msg := <-c.queue:
			batch = append(batch[:0], msg)
		case <-c.drained:
			select {
			case msg := <-c.queue:
				batch = append(batch[:0], msg)
			default:
				return
			}
		case <-c.ctx.Done():
			return
		}
		c.handle(c.fill(batch))
	}
}

// fill appends to batch the messages already waiting, up to the batch size.
func (c *Consumer) fill(batch []jetstream.Msg) []jetstream.Msg {
	for len(batch) < c.sub.BatchSize {
		select {
		case msg := <-c.queue:
			batch = append(batch, msg)
		default:
			return batch
		}
	}
	return batch
}

// event is a received message on its way through a batch.
type event struct {
	msg    jetstream.Msg
	meta   *jetstream.MsgMetadata
	m      Message
	logger *slog.Logger
	// ctx carries the event's consumer span.
	ctx  context.Context
	span trace.Span
	// applied is whether the handler ran in the transaction (false for a duplicate); err is the handler's
	// error, which rolled back this event's savepoint only.
	applied bool
	err     error
}

// handle applies msgs in order and settles each once its transaction has committed: acknowledged, or, if
// its handler failed, retried later or dead-lettered. If the consumer stops first, they are left for
// redelivery.
func (c *Consumer) handle(msgs []jetstream.Msg) {
	evs := make([]*event, 0, len(msgs))
	for _, msg := range msgs {
		if e := c.receive(msg); e != nil {
			evs = append(evs, e)
		}
	}
	for len(evs) > 0 {
		n, err := c.apply(evs)
		if err != nil {
			for _, e := range evs {
				e.logger.InfoContext(e.ctx, "consumer stopping; event left for redelivery")
				cause := e.err
				if cause == nil {
					cause = err
				}
				endSpan(e.span, false, cause)
			}
			return
		}
		c.settle(evs[:n])
		evs = evs[n:]
	}
}

// receive checks msg and starts its consumer span; a message without a valid event id or JetStream
// metadata is dropped (nil).
func (c *Consumer) receive(msg jetstream.Msg) *event {
	id := msg.Headers().Get(bus.HeaderMsgID)
	logger := c.logger.With(slog.String("subject", msg.Subject()), slog.String("event_id", id))
	if _, err := uuid.Parse(id); err != nil {
		logger.Error("message without a valid event id in its Nats-Msg-Id header; dropping it")
		if err := msg.TermWithReason("no valid event id"); err != nil {
			logger.Warn("terminate message", slog.Any("error", err))
		}
		return nil
	}
	meta, err := msg.Metadata()
	if err != nil {
		logger.Error("message without JetStream metadata; dropping it", slog.Any("error", err))
		return nil
	}
	m := message(id, msg, meta)
	ctx, span := c.startSpan(m, meta.NumDelivered)
	return &event{msg: msg, meta: meta, m: m, logger: logger, ctx: ctx, span: span}
}

// settle tells the bus what became of the events of a committed transaction: the applied ones are
// acknowledged (every acknowledgement sent before waiting for the confirmations), the failed ones retried
// or dead-lettered.
func (c *Consumer) settle(evs []*event) {
	var ok []*event
	for _, e := range evs {
		if e.err == nil {
			ok = append(ok, e)
		}
	}
	if len(ok) > 0 {
		// Fault tests crash here: the effects are committed, the events not yet acknowledged.
		if err := failpoint.Inject("inbox.after_commit"); err != nil {
			for _, e := range ok {
				e.logger.WarnContext(e.ctx, "event left unacknowledged", slog.Any("error", err))
			}
			ok = nil
		}
	}
	var wg sync.WaitGroup
	for _, e := range ok {
		wg.Go(func() { c.ack(e) })
	}
	wg.Wait()
	for _, e := range evs {
		if e.err != nil {
			c.fail(e)
		}
		endSpan(e.span, e.applied, e.err)
	}
}

// ack acknowledges an event whose effect is committed, waiting for the bus to confirm it.
func (c *Consumer) ack(e *event) {
	ctx, cancel := context.WithTimeout(e.ctx, ackTimeout)
	defer cancel()
	if err := e.msg.DoubleAck(ctx); err != nil {
		e.logger.WarnContext(e.ctx, "acknowledge event (it will be redelivered and skipped)", slog.Any("error", err))
	}
	if e.applied {
		e.logger.DebugContext(e.ctx, "event handled")
	} else {
		e.logger.DebugContext(e.ctx, "duplicate event skipped")
	}
}

// fail has an event whose handler failed delivered again after its backoff, or moves it to the dead-letter
// store if the error is permanent or the event has used up its deliveries.
func (c *Consumer) fail(e *event) {
	deliveries := e.meta.NumDelivered
	if errors.Is(e.err, ErrPermanent) || c.sub.MaxDeliver > 0 && deliveries >= uint64(c.sub.MaxDeliver) {
		c.giveUp(e.ctx, e.m, e.msg, int(deliveries), e.err, e.logger)
		return
	}
	delay := c.sub.Backoff[min(int(deliveries), len(c.sub.Backoff))-1]
	e.logger.WarnContext(e.ctx, "event handler failed; will retry", slog.Any("error", e.err),
		slog.Uint64("deliveries", deliveries), slog.Duration("retry_in", delay))
	if err := e.msg.NakWithDelay(delay); err != nil {
		e.logger.WarnContext(e.ctx, "negative acknowledge (the event will be redelivered after the ack wait)", slog.Any("error", err))
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

// apply applies evs in one transaction, or as many of them as fit in half the ack wait (n), retrying in
// place (keeping the messages' deliveries alive) while the database is unreachable, so an outage does not
// use up deliveries. It fails only when the consumer stops first.
func (c *Consumer) apply(evs []*event) (int, error) {
	delay := time.Duration(0)
	for {
		n, err := c.applyOnce(evs)
		switch {
		case err == nil:
			return n, nil
		case c.ctx.Err() != nil:
			return 0, err
		case errors.Is(err, errTxBroken):
			continue
		}
		delay = min(max(2*delay, minRetryDelay), maxRetryDelay)
		c.logger.Warn("database unavailable; retrying events", slog.Int("events", len(evs)), slog.Any("error", err),
			slog.Duration("retry_in", delay))
		for _, e := range evs {
			if err := e.msg.InProgress(); err != nil {
				e.logger.Warn("extend ack deadline", slog.Any("error", err))
			}
		}
		select {
		case <-c.ctx.Done():
			return 0, c.ctx.Err()
		case <-time.After(delay):
		}
	}
}

// applyOnce runs one transaction over evs, leaving out those whose handler has already failed, each event
// under a savepoint so that a failing handler rolls back its own event only. It takes no more events once
// the transaction has run for half the ack wait, and returns how many of evs it got through.
func (c *Consumer) applyOnce(evs []*event) (int, error) {
	ctx, cancel := context.WithTimeout(c.ctx, c.sub.AckWait)
	defer cancel()
	tx, err := c.pool.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // a no-op after Commit
	began, n := time.Now(), len(evs)
	for i, e := range evs {
		if i > 0 && time.Since(began) >= c.sub.AckWait/2 {
			n = i
			break
		}
		if e.err != nil {
			continue
		}
		if err := c.applyEvent(tx, e); err != nil {
			return 0, err
		}
	}
	ctx, cancel = context.WithTimeout(c.ctx, c.sub.AckWait)
	defer cancel()
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("commit: %w", err)
	}
	return n, nil
}

// applyEvent records e in the inbox and runs its handler in tx, under a savepoint: a handler error is kept
// in e.err after rolling back to the savepoint, an error returned means the transaction cannot go on.
// Savepoints are not released: each event's nests in the previous one's, and rolling back to the latest
// undoes only the current event's work. Each is a subtransaction: DefaultBatchSize keeps a transaction's
// under the 64 PostgreSQL caches per backend (beyond which other sessions' snapshots get slower), with room
// for a handler's own savepoint.
func (c *Consumer) applyEvent(tx pgx.Tx, e *event) error {
	ctx, cancel := context.WithTimeout(e.ctx, c.sub.AckWait)
	defer cancel()
	e.applied = false
	var tag pgconn.CommandTag
	b := &pgx.Batch{}
	b.Queue(`SAVEPOINT inbox_event`)
	b.Queue(`INSERT INTO `+c.table+` (consumer, event_id, subject) VALUES ($1, $2, $3)
ON CONFLICT DO NOTHING`, c.sub.Name, e.m.ID, e.m.Subject).Exec(func(ct pgconn.CommandTag) error {
		tag = ct
		return nil
	})
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("record event %s in inbox: %w", e.m.ID, err)
	}
	if tag.RowsAffected() == 0 {
		return nil
	}
	herr := c.runHandler(ctx, tx, e.m, e.logger)
	if herr == nil {
		e.applied = true
		return nil
	}
	if err := c.ping(ctx); err != nil {
		return fmt.Errorf("%w (database: %w)", herr, err)
	}
	e.err = herr
	ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), ackTimeout)
	defer cancel()
	if _, err := tx.Exec(ctx, `ROLLBACK TO SAVEPOINT inbox_event`); err != nil {
		return fmt.Errorf("%w: %w", errTxBroken, err)
	}
	return nil
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
