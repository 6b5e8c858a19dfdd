package outbox

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/seamkit/seam/platform/bus"
	"github.com/seamkit/seam/platform/failpoint"
	"github.com/seamkit/seam/platform/observe"
)

// RelayOptions tune a Relay; zero values take the defaults.
type RelayOptions struct {
	// BatchSize is how many events one transaction publishes (default 100).
	BatchSize int
	// PollInterval is how often the relay looks for events when no notification arrives (default 1s).
	PollInterval time.Duration
	// PublishTimeout bounds how long a batch waits for the stream's acknowledgements (default 5s).
	PublishTimeout time.Duration
	// Retention is how long published events stay in the outbox table before they are deleted (default
	// 7 days); negative keeps them forever.
	Retention time.Duration
	// Backlog, when set, is told the outbox's backlog (unsent events, age of the oldest) about every
	// PollInterval, for metrics.
	Backlog BacklogObserver
}

// BacklogObserver receives a relay's backlog measurements (observe.Metrics is one).
type BacklogObserver interface {
	// ObserveOutbox records that schema's outbox holds pending unsent events, the oldest committed oldest ago.
	ObserveOutbox(schema string, pending int64, oldest time.Duration)
}

func (o *RelayOptions) setDefaults() {
	if o.BatchSize <= 0 {
		o.BatchSize = 100
	}
	if o.PollInterval <= 0 {
		o.PollInterval = time.Second
	}
	if o.PublishTimeout <= 0 {
		o.PublishTimeout = 5 * time.Second
	}
	if o.Retention == 0 {
		o.Retention = 7 * 24 * time.Hour
	}
}

const (
	minBackoff   = 100 * time.Millisecond
	maxBackoff   = 30 * time.Second
	cleanupEvery = time.Hour
	cleanupBatch = 1000
)

// Relay publishes the events committed to one schema's outbox to JetStream, oldest first, each exactly once
// into the stream (JetStream drops re-publishes by event id). Several relays on one schema, in one process or
// many, are safe together: they take turns on an advisory lock, so one publishes at a time, in outbox order,
// while the others stand by.
type Relay struct {
	pool    *pgxpool.Pool
	js      jetstream.JetStream
	schema  string
	logger  *slog.Logger
	opts    RelayOptions
	table   string
	channel string
	lockKey int64

	mu      sync.Mutex
	started bool
	stopped bool
	cancel  context.CancelFunc
	stop    chan struct{}
	done    chan struct{}
}

// NewRelay prepares a relay for the outbox in schema, publishing through js.
func NewRelay(pool *pgxpool.Pool, js jetstream.JetStream, schema string, logger *slog.Logger, o RelayOptions) *Relay {
	o.setDefaults()
	return &Relay{
		pool:    pool,
		js:      js,
		schema:  schema,
		logger:  logger.With(slog.String("outbox", schema)),
		opts:    o,
		table:   pgx.Identifier{schema, "outbox"}.Sanitize(),
		channel: Channel(schema),
		lockKey: lockKey(schema),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
}

// lockKey is the advisory lock the relays of schema's outbox take turns on.
func lockKey(schema string) int64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte("seam.outbox.relay:" + schema))
	return int64(h.Sum64()) //nolint:gosec // any 64 bits will do for a lock key
}

// Start checks the outbox table is reachable, then relays in the background until Stop: on every
// notification from Enqueue, and every PollInterval in case one was missed.
func (r *Relay) Start(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.started || r.stopped {
		return errors.New("outbox: relay already started or stopped")
	}
	var pending int64
	if err := r.pool.QueryRow(ctx, `SELECT count(*) FROM `+r.table+` WHERE sent_at IS NULL`).Scan(&pending); err != nil {
		return fmt.Errorf("outbox: relay for %s: %w", r.schema, err)
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	r.started, r.cancel = true, cancel
	wake := make(chan struct{}, 1)
	var listening sync.WaitGroup
	listening.Go(func() { r.listen(runCtx, wake) })
	go func() {
		defer close(r.done)
		r.run(runCtx, wake)
		cancel()
		listening.Wait()
	}()
	r.logger.Info("outbox relay started", slog.Int64("pending", pending))
	return nil
}

// Stop relays what is pending in one final pass, then stops the relay and waits for it. If ctx ends first,
// the pass is abandoned (the events stay in the outbox for the next relay) and ctx's error returned.
func (r *Relay) Stop(ctx context.Context) error {
	r.mu.Lock()
	if !r.started || r.stopped {
		r.stopped = true
		r.mu.Unlock()
		return nil
	}
	r.stopped = true
	close(r.stop)
	r.mu.Unlock()
	select {
	case <-r.done:
		r.logger.Info("outbox relay stopped")
		return nil
	case <-ctx.Done():
		r.cancel()
		<-r.done
		return fmt.Errorf("outbox: stop relay for %s: %w", r.schema, ctx.Err())
	}
}

// run is the relay loop: relay everything pending, then wait for a notification, the poll interval or Stop.
func (r *Relay) run(ctx context.Context, wake <-chan struct{}) {
	backoff := time.Duration(0)
	var lastCleanup, lastObserved time.Time
	for {
		err := r.relayPending(ctx)
		if err == nil && r.opts.Retention > 0 && time.Since(lastCleanup) >= cleanupEvery {
			err = r.cleanup(ctx)
			if err == nil {
				lastCleanup = time.Now()
			}
		}
		if r.opts.Backlog != nil && time.Since(lastObserved) >= r.opts.PollInterval {
			lastObserved = time.Now()
			r.observeBacklog(ctx)
		}
		wait, woken := r.opts.PollInterval, wake
		if err != nil {
			// Back off fully: notifications do not cut the wait short while the bus or database is failing.
			backoff = min(max(2*backoff, minBackoff), maxBackoff)
			wait, woken = backoff, nil
			if ctx.Err() == nil {
				r.logger.Warn("outbox relay failed; retrying", slog.Any("error", err), slog.Duration("retry_in", wait))
			}
		} else {
			backoff = 0
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-r.stop:
			timer.Stop()
			if err := r.relayPending(ctx); err != nil {
				r.logger.Warn("outbox relay: final pass failed; events stay in the outbox", slog.Any("error", err))
			}
			return
		case <-woken:
			timer.Stop()
		case <-timer.C:
		}
	}
}

// observeBacklog measures the unsent events and reports them to the BacklogObserver; a failed measurement
// leaves the last one standing.
func (r *Relay) observeBacklog(ctx context.Context) {
	var pending int64
	var oldest float64
	err := r.pool.QueryRow(ctx, `SELECT count(*), coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8
FROM `+r.table+` WHERE sent_at IS NULL`).Scan(&pending, &oldest)
	if err != nil {
		r.logger.Debug("outbox relay: measure backlog", slog.Any("error", err))
		return
	}
	r.opts.Backlog.ObserveOutbox(r.schema, pending, time.Duration(max(oldest, 0)*float64(time.Second)))
}

// relayPending relays batches until one comes back short.
func (r *Relay) relayPending(ctx context.Context) error {
	for {
		n, err := r.relayBatch(ctx)
		if err != nil {
			return err
		}
		if n < r.opts.BatchSize {
			return nil
		}
	}
}

type row struct {
	seq        int64
	id         string
	subject    string
	eventType  string
	key        string
	payload    []byte
	headers    map[string]string
	occurredAt time.Time
}

// relayBatch locks up to BatchSize unsent events (skipping those another relay holds), publishes them,
// marks the acknowledged ones sent and commits. It returns how many events it found.
func (r *Relay) relayBatch(ctx context.Context) (int, error) {
	tx, err := r.pool.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // a no-op after Commit
	// One relay per outbox publishes at a time, so events go out in outbox order whatever the number of
	// relays; the others stand by until the lock is free (it ends with the transaction).
	var active bool
	if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock($1)`, r.lockKey).Scan(&active); err != nil {
		return 0, fmt.Errorf("take the relay lock: %w", err)
	}
	if !active {
		return 0, tx.Commit(ctx)
	}
	rows, err := tx.Query(ctx, `SELECT seq, id::text, subject, event_type, aggregate_key, payload, headers, created_at
FROM `+r.table+` WHERE sent_at IS NULL ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED`, r.opts.BatchSize)
	if err != nil {
		return 0, fmt.Errorf("select pending events: %w", err)
	}
	batch, err := pgx.CollectRows(rows, func(rows pgx.CollectableRow) (row, error) {
		var e row
		err := rows.Scan(&e.seq, &e.id, &e.subject, &e.eventType, &e.key, &e.payload, &e.headers, &e.occurredAt)
		return e, err
	})
	if err != nil {
		return 0, fmt.Errorf("select pending events: %w", err)
	}
	if len(batch) == 0 {
		return 0, tx.Commit(ctx)
	}
	sent, pubErr := r.publish(ctx, batch)
	if len(sent) > 0 {
		// Fault tests crash here: the stream holds the events, the outbox still has them unsent.
		if err := failpoint.Inject("outbox.after_publish"); err != nil {
			return 0, err
		}
		if _, err := tx.Exec(ctx, `UPDATE `+r.table+` SET sent_at = now() WHERE seq = ANY($1)`, sent); err != nil {
			return 0, fmt.Errorf("mark events sent: %w", err)
		}
		if err := tx.Commit(ctx); err != nil {
			return 0, fmt.Errorf("commit: %w", err)
		}
		r.logger.Debug("events relayed", slog.Int("count", len(sent)))
	}
	if pubErr != nil {
		return 0, pubErr
	}
	return len(batch), nil
}

// publish sends batch asynchronously and waits up to PublishTimeout for the acknowledgements; it returns the
// seqs of the events the stream stored and the first error, if any. With tracing on, each event is published
// in a producer span that ends with its acknowledgement.
func (r *Relay) publish(ctx context.Context, batch []row) ([]int64, error) {
	futures := make([]jetstream.PubAckFuture, 0, len(batch))
	spans := newPublishSpans(len(batch))
	var firstErr error
	for _, e := range batch {
		msg := message(e)
		spans.start(ctx, r.schema, e, msg)
		f, err := r.js.PublishMsgAsync(msg)
		if err != nil {
			firstErr = fmt.Errorf("publish event %s on %s: %w", e.id, e.subject, err)
			spans.endFrom(len(futures), firstErr)
			break
		}
		futures = append(futures, f)
	}
	timer := time.NewTimer(r.opts.PublishTimeout)
	defer timer.Stop()
	sent := make([]int64, 0, len(futures))
	for i, f := range futures {
		select {
		case <-f.Ok():
			spans.end(i, nil)
			// Only the events before the first failure count as sent: a later one is published again
			// (and dropped by the stream as a duplicate) rather than marked sent ahead of an earlier one.
			if firstErr == nil {
				sent = append(sent, batch[i].seq)
			}
		case err := <-f.Err():
			spans.end(i, err)
			if firstErr == nil {
				firstErr = fmt.Errorf("publish event %s on %s: %w", batch[i].id, batch[i].subject, err)
			}
		case <-timer.C:
			err := fmt.Errorf("publish: no acknowledgement within %s", r.opts.PublishTimeout)
			spans.endFrom(i, err)
			return sent, errors.Join(firstErr, err)
		case <-ctx.Done():
			spans.endFrom(i, ctx.Err())
			return sent, errors.Join(firstErr, ctx.Err())
		}
	}
	return sent, firstErr
}

func message(e row) *nats.Msg {
	msg := nats.NewMsg(e.subject)
	msg.Data = e.payload
	for k, v := range e.headers {
		msg.Header.Set(k, v)
	}
	msg.Header.Set(bus.HeaderMsgID, e.id)
	msg.Header.Set(bus.HeaderEventType, e.eventType)
	msg.Header.Set(bus.HeaderEventKey, e.key)
	msg.Header.Set(bus.HeaderOccurredAt, e.occurredAt.UTC().Format(time.RFC3339Nano))
	return msg
}

// messagingSystem is the messaging.system attribute of the relay's spans.
const messagingSystem = "nats"

// spanAttrOutbox is the span attribute naming the outbox (schema) an event was relayed from.
const spanAttrOutbox = "seam.outbox"

// publishSpans holds the producer spans of a batch's events, in publication order; with tracing off (when
// the batch began) it holds nothing and costs nothing.
type publishSpans struct {
	on    bool
	spans []trace.Span
}

func newPublishSpans(n int) publishSpans {
	if !observe.TracingEnabled() {
		return publishSpans{}
	}
	return publishSpans{on: true, spans: make([]trace.Span, 0, n)}
}

// start starts the producer span of e, a child of the trace context stored with the event (a new trace when
// there is none), and puts the span's context in msg in place of the stored one, so consumers are children
// of the publication.
func (p *publishSpans) start(ctx context.Context, schema string, e row, msg *nats.Msg) {
	if !p.on {
		return
	}
	ctx = observe.ExtractTrace(ctx, propagation.MapCarrier(e.headers))
	ctx, span := observe.StartSpan(ctx, "publish "+e.subject, trace.SpanKindProducer)
	if span.IsRecording() {
		span.SetAttributes(
			semconv.MessagingSystemKey.String(messagingSystem),
			semconv.MessagingOperationTypeSend,
			semconv.MessagingDestinationName(e.subject),
			semconv.MessagingMessageID(e.id),
			attribute.String(spanAttrEventType, e.eventType),
			attribute.String(spanAttrOutbox, schema),
		)
	}
	observe.InjectTrace(ctx, observe.HeaderCarrier(msg.Header))
	p.spans = append(p.spans, span)
}

// end ends the i-th span with the outcome of its publication.
func (p *publishSpans) end(i int, err error) {
	if i < len(p.spans) {
		observe.EndSpan(p.spans[i], err)
	}
}

// endFrom ends the spans from the i-th on with err, and forgets them.
func (p *publishSpans) endFrom(i int, err error) {
	for _, span := range p.spans[min(i, len(p.spans)):] {
		observe.EndSpan(span, err)
	}
	p.spans = p.spans[:min(i, len(p.spans))]
}

// listen keeps a dedicated connection LISTENing on the schema's channel and signals wake on every
// notification (and after every reconnect, in case one was missed), until ctx ends.
func (r *Relay) listen(ctx context.Context, wake chan<- struct{}) {
	backoff := time.Duration(0)
	for {
		err := r.listenOnce(ctx, wake)
		if ctx.Err() != nil {
			return
		}
		backoff = min(max(2*backoff, minBackoff), maxBackoff)
		r.logger.Warn("outbox relay: listening for notifications failed; polling meanwhile",
			slog.Any("error", err), slog.Duration("retry_in", backoff))
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
	}
}

func (r *Relay) listenOnce(ctx context.Context, wake chan<- struct{}) error {
	pooled, err := r.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("acquire: %w", err)
	}
	conn := pooled.Hijack()
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		_ = conn.Close(closeCtx) // the connection is discarded either way
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{r.channel}.Sanitize()); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	for {
		signal(wake)
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return fmt.Errorf("wait for notification: %w", err)
		}
	}
}

func signal(wake chan<- struct{}) {
	select {
	case wake <- struct{}{}:
	default:
	}
}

// cleanup deletes events published longer than Retention ago, a bounded batch at a time.
func (r *Relay) cleanup(ctx context.Context) error {
	for {
		tag, err := r.pool.Exec(ctx, `DELETE FROM `+r.table+` WHERE seq IN (SELECT seq FROM `+r.table+`
WHERE sent_at < now() - $1::interval ORDER BY seq LIMIT $2)`, r.opts.Retention, cleanupBatch)
		if err != nil {
			return fmt.Errorf("delete published events: %w", err)
		}
		if tag.RowsAffected() > 0 {
			r.logger.Debug("published events deleted", slog.Int64("count", tag.RowsAffected()))
		}
		if tag.RowsAffected() < cleanupBatch {
			return nil
		}
	}
}
