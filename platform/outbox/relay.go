package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
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
	// BatchSize is how many events one transaction publishes (default 1000).
	BatchSize int
	// PollInterval is how often the relay looks for events when WakeRelays does not wake it first (default
	// 1s): the latency of events committed by producers in other processes.
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
		o.BatchSize = 1000
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
	lockKey int64
	// atomicOff is set when the stream refuses atomic batches as disabled or does not know them; only the
	// relay's loop reads and writes it.
	atomicOff bool

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

// Start checks the outbox table is reachable, then relays in the background until Stop: whenever a producer
// in this process calls WakeRelays for the schema, and every PollInterval for the events of other processes
// (or of a producer that did not wake it).
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
	register(r.schema, wake)
	go func() {
		defer close(r.done)
		defer unregister(r.schema, wake)
		defer cancel()
		r.run(runCtx, wake)
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

// run is the relay loop: relay everything pending, then wait for a wake-up, the poll interval or Stop.
func (r *Relay) run(ctx context.Context, wake <-chan struct{}) {
	backoff := time.Duration(0)
	var lastCleanup, lastObserved time.Time
	woken := false
	for {
		err := r.relayPending(ctx, woken)
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
		wait, wakeUp := r.opts.PollInterval, wake
		if err != nil {
			// Back off fully: wake-ups do not cut the wait short while the bus or database is failing.
			backoff = min(max(2*backoff, minBackoff), maxBackoff)
			wait, wakeUp = backoff, nil
			if ctx.Err() == nil {
				r.logger.Warn("outbox relay failed; retrying", slog.Any("error", err), slog.Duration("retry_in", wait))
			}
		} else {
			backoff = 0
		}
		woken = false
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-r.stop:
			timer.Stop()
			if err := r.relayPending(ctx, false); err != nil {
				r.logger.Warn("outbox relay: final pass failed; events stay in the outbox", slog.Any("error", err))
			}
			return
		case <-wakeUp:
			timer.Stop()
			woken = true
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

// relayPending relays batches until one comes back short. When woken is set (a producer has just committed
// events), the first batch waits for the relay lock rather than leaving the events to the relay holding it,
// whose batch may have begun before they committed.
func (r *Relay) relayPending(ctx context.Context, woken bool) error {
	for wait := woken; ; wait = false {
		n, err := r.relayBatch(ctx, wait)
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
// marks the acknowledged ones sent and commits. It returns how many events it found. With wait, it waits for
// a relay holding the lock to finish (see lock).
func (r *Relay) relayBatch(ctx context.Context, wait bool) (int, error) {
	tx, err := r.pool.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // a no-op after Commit
	active, err := r.lock(ctx, tx, wait)
	if err != nil {
		return 0, err
	}
	if !active {
		return 0, tx.Rollback(ctx)
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
		// Not a HOT update: sent_at is in outbox_unsent_idx's predicate. Finding unsent rows through an index
		// that leaves sent_at out (by enqueuing transaction id) made the mark HOT, but every batch then sorted
		// the whole unsent range: a 100,000-event backlog drained 2.5 times slower, for no measurable CPU
		// gain. So the partial index stays.
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

// lock takes the relay lock in tx; one relay per outbox publishes at a time, so events go out in outbox
// order whatever the number of relays, and the lock ends with the transaction. Without wait it gives up at
// once when another relay holds the lock (that relay will find what is pending). With wait, for events a
// producer has just committed and signalled, it waits up to lockWait for the holder's transaction to end: the
// holder may have selected its batch before they committed, and, running in another process, it would leave
// them to its next poll.
func (r *Relay) lock(ctx context.Context, tx pgx.Tx, wait bool) (bool, error) {
	var active bool
	if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock($1)`, r.lockKey).Scan(&active); err != nil {
		return false, fmt.Errorf("take the relay lock: %w", err)
	}
	if active || !wait {
		return active, nil
	}
	timeout := strconv.FormatInt(r.lockWait().Milliseconds(), 10) + "ms"
	if _, err := tx.Exec(ctx, `SELECT set_config('lock_timeout', $1, true)`, timeout); err != nil {
		return false, fmt.Errorf("set the relay lock's timeout: %w", err)
	}
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, r.lockKey); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == sqlstateLockNotAvailable {
			// The holder is stuck; the poll tries again.
			return false, nil
		}
		return false, fmt.Errorf("wait for the relay lock: %w", err)
	}
	return true, nil
}

// sqlstateLockNotAvailable is PostgreSQL's lock_not_available, the error of a lock wait that timed out.
const sqlstateLockNotAvailable = "55P03"

// lockWait bounds the wait for the relay lock: longer than a batch holding it takes unless it is stuck.
func (r *Relay) lockWait() time.Duration { return 2*r.opts.PublishTimeout + time.Second }

// Atomic batches: JetStream (2.12 and later, stream option AllowAtomicPublish) stores a batch of messages
// all or none, and with SyncAlways on a single-server stream it syncs the stream's file once for the whole
// batch where it syncs once per message otherwise; but each batch is staged in a store of its own that is
// created and deleted, a fixed cost of several milliseconds. So the relay publishes a batch atomically from
// atomicMin events on (below that, one by one costs less), at most atomicMax at a time (the server's default
// limit on a batch's size).
const (
	atomicMin = 16
	atomicMax = 1000
)

// JetStream's atomic batch headers.
const (
	headerBatchID     = "Nats-Batch-Id"
	headerBatchSeq    = "Nats-Batch-Sequence"
	headerBatchCommit = "Nats-Batch-Commit"
)

// errCodeAtomicDisabled is JetStream's "atomic publish is disabled" error code (the stream does not allow
// atomic batches).
const errCodeAtomicDisabled = 10174

// publish sends batch to the stream and returns the seqs of the events the stream stored, in outbox order,
// and the first error, if any; the seqs stop at the first event not known to be stored. A batch of
// atomicMin events or more is sent as atomic batches; a batch the stream refuses as a whole (one of its
// events is a duplicate, after a relay crashed between publishing and marking it sent; or the stream does
// not allow atomic batches) is sent again one event at a time, which stores the events the stream lacks and
// acknowledges the others as duplicates, so every event is still stored exactly once. With tracing on, each
// event is published in a producer span that ends with its acknowledgement.
func (r *Relay) publish(ctx context.Context, batch []row) ([]int64, error) {
	msgs := make([]*nats.Msg, len(batch))
	spans := newPublishSpans(len(batch))
	for i, e := range batch {
		msgs[i] = message(e)
		spans.start(ctx, r.schema, e, msgs[i])
	}
	if r.atomicOff || len(batch) < atomicMin {
		return r.publishEach(ctx, batch, msgs, &spans, 0)
	}
	sent := make([]int64, 0, len(batch))
	for from := 0; from < len(batch); from += atomicMax {
		to := min(from+atomicMax, len(batch))
		stored, err := r.publishAtomic(ctx, msgs[from:to])
		if err != nil {
			spans.endFrom(from, err)
			return sent, err
		}
		if !stored {
			each, err := r.publishEach(ctx, batch[from:to], msgs[from:to], &spans, from)
			sent = append(sent, each...)
			if err != nil {
				spans.endFrom(to, err)
				return sent, err
			}
			continue
		}
		for i := from; i < to; i++ {
			spans.end(i, nil)
			sent = append(sent, batch[i].seq)
		}
	}
	return sent, nil
}

// publishAtomic sends msgs to the stream as one atomic batch and waits up to PublishTimeout for its
// acknowledgement. It reports whether the stream stored the batch; false with no error means the stream
// refused it as a whole (and stored none of it as part of the batch), the batch headers are gone from msgs
// again, and they are to be sent one by one. An error leaves the outcome unknown.
func (r *Relay) publishAtomic(ctx context.Context, msgs []*nats.Msg) (bool, error) {
	id, err := uuid.NewRandom()
	if err != nil {
		return false, fmt.Errorf("publish: batch id: %w", err)
	}
	batchID := id.String()
	defer func() {
		for _, msg := range msgs {
			msg.Header.Del(headerBatchID)
			msg.Header.Del(headerBatchSeq)
			msg.Header.Del(headerBatchCommit)
		}
	}()
	nc := r.js.Conn()
	last := len(msgs) - 1
	for i, msg := range msgs {
		msg.Header.Set(headerBatchID, batchID)
		msg.Header.Set(headerBatchSeq, strconv.Itoa(i+1))
		if i == last {
			msg.Header.Set(headerBatchCommit, "1")
			break
		}
		// The staged messages are not acknowledged one by one: a missing one makes the commit fail.
		if err := nc.PublishMsg(msg); err != nil {
			return false, fmt.Errorf("publish batch %s: %w", batchID, err)
		}
	}
	reqCtx, cancel := context.WithTimeout(ctx, r.opts.PublishTimeout)
	defer cancel()
	resp, err := nc.RequestMsgWithContext(reqCtx, msgs[last])
	if err != nil {
		return false, fmt.Errorf("publish batch %s: %w", batchID, err)
	}
	var ack struct {
		Batch string `json:"batch"`
		Count int    `json:"count"`
		Error *struct {
			Code        int    `json:"err_code"`
			Description string `json:"description"`
		} `json:"error"`
	}
	if err := json.Unmarshal(resp.Data, &ack); err != nil {
		return false, fmt.Errorf("publish batch %s: acknowledgement %q: %w", batchID, resp.Data, err)
	}
	switch {
	case ack.Error != nil:
		if ack.Error.Code == errCodeAtomicDisabled {
			r.disableAtomic(ack.Error.Description)
		}
		r.logger.Debug("outbox relay: the stream refused an atomic batch; publishing its events one by one",
			slog.Int("count", len(msgs)), slog.Int("error_code", ack.Error.Code), slog.String("error", ack.Error.Description))
		return false, nil
	case ack.Batch != batchID || ack.Count != len(msgs):
		// A server that does not know atomic batches stored the messages as they came, and did not
		// acknowledge the ones before the last: publishing them again tells which are stored.
		r.disableAtomic(fmt.Sprintf("the acknowledgement %q is not a batch's", resp.Data))
		return false, nil
	}
	return true, nil
}

// disableAtomic makes the relay publish one event at a time from now on.
func (r *Relay) disableAtomic(why string) {
	r.atomicOff = true
	r.logger.Warn("outbox relay: the stream does not take atomic batches; publishing one event at a time",
		slog.String("reason", why))
}

// publishEach sends msgs (the messages of batch) asynchronously and waits up to PublishTimeout for the
// acknowledgements; it returns the seqs of the events stored before the first failure, and that failure.
// The events' spans are those of spans from index first on.
func (r *Relay) publishEach(ctx context.Context, batch []row, msgs []*nats.Msg, spans *publishSpans, first int) ([]int64, error) {
	futures := make([]jetstream.PubAckFuture, 0, len(batch))
	var firstErr error
	for i, msg := range msgs {
		f, err := r.js.PublishMsgAsync(msg)
		if err != nil {
			firstErr = fmt.Errorf("publish event %s on %s: %w", batch[i].id, batch[i].subject, err)
			spans.endFrom(first+i, firstErr)
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
			spans.end(first+i, nil)
			// Only the events before the first failure count as sent: a later one is published again
			// (and dropped by the stream as a duplicate) rather than marked sent ahead of an earlier one.
			if firstErr == nil {
				sent = append(sent, batch[i].seq)
			}
		case err := <-f.Err():
			spans.end(first+i, err)
			if firstErr == nil {
				firstErr = fmt.Errorf("publish event %s on %s: %w", batch[i].id, batch[i].subject, err)
			}
		case <-timer.C:
			err := fmt.Errorf("publish: no acknowledgement within %s", r.opts.PublishTimeout)
			spans.endFrom(first+i, err)
			return sent, errors.Join(firstErr, err)
		case <-ctx.Done():
			spans.endFrom(first+i, ctx.Err())
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
