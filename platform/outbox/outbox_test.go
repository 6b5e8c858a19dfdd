package outbox_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/seamkit/seam/platform/bus"
	"github.com/seamkit/seam/platform/outbox"
)

const schema = "billing"

func TestEnqueueRejectsInvalidEvents(t *testing.T) {
	tests := []struct {
		name string
		ev   outbox.Event
	}{
		{"no type", outbox.Event{Subject: "billing.events.x"}},
		{"another module's subject", outbox.Event{Subject: "auth.events.user_registered", Type: "user_registered"}},
		{"prefix without separator", outbox.Event{Subject: "billingx.events.a", Type: "a"}},
		{"wildcard", outbox.Event{Subject: "billing.events.*", Type: "a"}},
		{"empty token", outbox.Event{Subject: "billing.events..a", Type: "a"}},
		{"space", outbox.Event{Subject: "billing.events.a b", Type: "a"}},
		{"id not a uuid", outbox.Event{ID: "42", Type: "a"}},
		{"reserved header", outbox.Event{Type: "a", Headers: map[string]string{"Nats-Msg-Id": "x"}}},
		{"seam header", outbox.Event{Type: "a", Headers: map[string]string{"seam-event-type": "x"}}},
		{"unmarshalable payload", outbox.Event{Type: "a", Payload: func() {}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Validation happens before the transaction is used, so none is needed.
			_, err := outbox.Enqueue(t.Context(), nil, schema, tt.ev)
			if !errors.Is(err, outbox.ErrInvalidEvent) {
				t.Fatalf("Enqueue = %v, want ErrInvalidEvent", err)
			}
		})
	}
}

type payment struct {
	InvoiceID string `json:"invoice_id"`
	Amount    int64  `json:"amount"`
}

func enqueue(t *testing.T, pool *pgxpool.Pool, ev outbox.Event) string {
	t.Helper()
	var id string
	err := pgx.BeginFunc(t.Context(), pool, func(tx pgx.Tx) error {
		var err error
		id, err = outbox.Enqueue(t.Context(), tx, schema, ev)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	outbox.WakeRelays(schema)
	return id
}

func startRelay(t *testing.T, pool *pgxpool.Pool, js jetstream.JetStream, o outbox.RelayOptions) *outbox.Relay {
	t.Helper()
	r := outbox.NewRelay(pool, js, schema, testLogger(t), o)
	if err := r.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.Stop(context.Background()); err != nil {
			t.Errorf("stop relay: %v", err)
		}
	})
	return r
}

// streamIDs returns the event ids in the stream, in stream order.
func streamIDs(t *testing.T, js jetstream.JetStream) []string {
	t.Helper()
	ctx := t.Context()
	stream, err := js.Stream(ctx, bus.StreamName(schema))
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, 0, info.State.Msgs)
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		msg, err := stream.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, msg.Header.Get(bus.HeaderMsgID))
	}
	return ids
}

func TestRelayPublishesCommittedEvents(t *testing.T) {
	pool := newPool(t, schema)
	b := newBus(t)
	ctx := t.Context()
	if _, err := b.EnsureStream(ctx, schema); err != nil {
		t.Fatal(err)
	}
	startRelay(t, pool, b.JetStream(), outbox.RelayOptions{PollInterval: time.Minute})

	// A rolled-back transaction leaves nothing to relay.
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rolledBack, err := outbox.Enqueue(ctx, tx, schema, outbox.Event{Type: "payment_completed", Payload: payment{"inv-0", 1}})
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}

	first := enqueue(t, pool, outbox.Event{Subject: "billing.events.payment_completed", Type: "payment_completed",
		Key: "inv-1", Payload: payment{"inv-1", 1250}, Headers: map[string]string{"Traceparent": "00-abc-def-01"}})
	eventually(t, 10*time.Second, "the first event on the stream", func() bool { return len(streamIDs(t, b.JetStream())) == 1 })

	// With a one-minute poll interval, only the wake-up can bring the second event this fast.
	start := time.Now()
	second := enqueue(t, pool, outbox.Event{Type: "invoice_created", Key: "inv-2", Payload: map[string]int{"n": 2}})
	eventually(t, 10*time.Second, "the second event on the stream", func() bool { return len(streamIDs(t, b.JetStream())) == 2 })
	t.Logf("second event relayed %s after commit", time.Since(start))

	if diff := cmp.Diff([]string{first, second}, streamIDs(t, b.JetStream())); diff != "" {
		t.Fatalf("stream ids (-want +got):\n%s", diff)
	}
	for _, id := range []string{first, second} {
		if id == rolledBack {
			t.Fatal("a new event reused the rolled-back event's id")
		}
	}

	stream, err := b.JetStream().Stream(ctx, bus.StreamName(schema))
	if err != nil {
		t.Fatal(err)
	}
	msg, err := stream.GetMsg(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if msg.Subject != "billing.events.payment_completed" {
		t.Errorf("subject = %q", msg.Subject)
	}
	var got payment
	if err := json.Unmarshal(msg.Data, &got); err != nil || got != (payment{"inv-1", 1250}) {
		t.Errorf("payload = %s (%v)", msg.Data, err)
	}
	var createdAt time.Time
	if err := pool.QueryRow(ctx, `SELECT created_at FROM billing.outbox WHERE id = $1`, first).Scan(&createdAt); err != nil {
		t.Fatal(err)
	}
	wantHeaders := map[string]string{
		bus.HeaderMsgID:      first,
		bus.HeaderEventType:  "payment_completed",
		bus.HeaderEventKey:   "inv-1",
		bus.HeaderOccurredAt: createdAt.UTC().Format(time.RFC3339Nano),
		"Traceparent":        "00-abc-def-01",
	}
	for k, want := range wantHeaders {
		if got := msg.Header.Get(k); got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}
	second2, err := stream.GetMsg(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if second2.Subject != "billing.events.invoice_created" {
		t.Errorf("default subject = %q", second2.Subject)
	}

	eventuallyAllSent(t, pool)
}

func TestRelayPublishesLateCommits(t *testing.T) {
	pool := newPool(t, schema)
	b := newBus(t)
	ctx := t.Context()
	if _, err := b.EnsureStream(ctx, schema); err != nil {
		t.Fatal(err)
	}
	startRelay(t, pool, b.JetStream(), outbox.RelayOptions{PollInterval: time.Minute})

	slow, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = slow.Rollback(ctx) }()
	early, err := outbox.Enqueue(ctx, slow, schema, outbox.Event{Type: "invoice_created", Key: "early"})
	if err != nil {
		t.Fatal(err)
	}
	late := enqueue(t, pool, outbox.Event{Type: "invoice_created", Key: "late"})
	eventually(t, 10*time.Second, "the later event", func() bool { return len(streamIDs(t, b.JetStream())) == 1 })
	if err := slow.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	outbox.WakeRelays(schema)
	eventually(t, 10*time.Second, "the earlier event, committed last", func() bool { return len(streamIDs(t, b.JetStream())) == 2 })
	if diff := cmp.Diff([]string{late, early}, streamIDs(t, b.JetStream())); diff != "" {
		t.Fatalf("stream ids (-want +got):\n%s", diff)
	}
}

func TestConcurrentRelaysPublishEachEventOnce(t *testing.T) {
	pool := newPool(t, schema)
	b := newBus(t)
	ctx := t.Context()
	if _, err := b.EnsureStream(ctx, schema); err != nil {
		t.Fatal(err)
	}
	// A plain subscription sees every publish, including those the stream would drop as duplicates.
	var mu sync.Mutex
	seen := map[string]int{}
	sub, err := b.Conn().Subscribe("billing.events.>", func(m *nats.Msg) {
		mu.Lock()
		seen[m.Header.Get(bus.HeaderMsgID)]++
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()

	const events = 300
	want := map[string]int{}
	done := make(chan error, 1)
	go func() {
		for i := range events / 10 {
			err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
				for j := range 10 {
					id, err := outbox.Enqueue(ctx, tx, schema, outbox.Event{Type: "invoice_created", Payload: i*10 + j})
					if err != nil {
						return err
					}
					want[id] = 1
				}
				return nil
			})
			if err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for range 3 {
		startRelay(t, pool, b.JetStream(), outbox.RelayOptions{BatchSize: 7, PollInterval: 50 * time.Millisecond})
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "every event on the stream", func() bool { return len(streamIDs(t, b.JetStream())) >= events })
	if err := b.Conn().Flush(); err != nil {
		t.Fatal(err)
	}
	ids := streamIDs(t, b.JetStream())
	if len(ids) != events {
		t.Fatalf("stream holds %d events, want %d", len(ids), events)
	}
	mu.Lock()
	defer mu.Unlock()
	if diff := cmp.Diff(want, seen); diff != "" {
		t.Fatalf("publishes per event id (-want +got):\n%s", diff)
	}
}

func TestRelayRetriesUntilTheStreamExists(t *testing.T) {
	pool := newPool(t, schema)
	b := newBus(t)
	ctx := t.Context()
	id := enqueue(t, pool, outbox.Event{Type: "invoice_created"})

	// Nothing can take the event yet: the relay must keep it and retry. A plain subscription sees each attempt.
	attempts := make(chan struct{}, 100)
	sub, err := b.Conn().Subscribe("billing.events.>", func(*nats.Msg) { attempts <- struct{}{} })
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	startRelay(t, pool, b.JetStream(), outbox.RelayOptions{PollInterval: time.Minute, PublishTimeout: 200 * time.Millisecond})
	for range 3 {
		select {
		case <-attempts:
		case <-time.After(20 * time.Second):
			t.Fatal("the relay did not retry")
		}
	}
	var unsent bool
	if err := pool.QueryRow(ctx, `SELECT sent_at IS NULL FROM billing.outbox WHERE id = $1`, id).Scan(&unsent); err != nil {
		t.Fatal(err)
	}
	if !unsent {
		t.Fatal("event marked sent with no stream to take it")
	}
	if _, err := b.EnsureStream(ctx, schema); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "the event once the stream exists", func() bool {
		ids := streamIDs(t, b.JetStream())
		return len(ids) == 1 && ids[0] == id
	})
}

func TestStopFlushesPendingEvents(t *testing.T) {
	pool := newPool(t, schema)
	b := newBus(t)
	ctx := t.Context()
	if _, err := b.EnsureStream(ctx, schema); err != nil {
		t.Fatal(err)
	}
	r := outbox.NewRelay(pool, b.JetStream(), schema, testLogger(t), outbox.RelayOptions{PollInterval: time.Hour})
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	// Rows written without a wake-up are only found by a poll, or by the final pass at Stop.
	for i := range 3 {
		if _, err := pool.Exec(ctx, `INSERT INTO billing.outbox (id, subject, event_type, payload)
VALUES (gen_random_uuid(), 'billing.events.x', 'x', $1)`, fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.Stop(ctx); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if n := len(streamIDs(t, b.JetStream())); n != 3 {
		t.Fatalf("stream holds %d events after Stop, want 3", n)
	}
	if err := r.Start(ctx); err == nil {
		t.Fatal("Start after Stop succeeded")
	}
}

func TestRelayDeletesOldPublishedEvents(t *testing.T) {
	pool := newPool(t, schema)
	b := newBus(t)
	ctx := t.Context()
	if _, err := b.EnsureStream(ctx, schema); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO billing.outbox (id, subject, event_type, payload, sent_at) VALUES
(gen_random_uuid(), 'billing.events.x', 'old', '1', now() - interval '8 days'),
(gen_random_uuid(), 'billing.events.x', 'recent', '2', now() - interval '6 days'),
(gen_random_uuid(), 'billing.events.x', 'unsent', '3', NULL)`); err != nil {
		t.Fatal(err)
	}
	startRelay(t, pool, b.JetStream(), outbox.RelayOptions{PollInterval: time.Minute})
	eventually(t, 10*time.Second, "the old event deleted", func() bool {
		var types []string
		rows, err := pool.Query(ctx, `SELECT event_type FROM billing.outbox ORDER BY seq`)
		if err != nil {
			t.Fatal(err)
		}
		types, err = pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		return cmp.Equal(types, []string{"recent", "unsent"})
	})
	eventually(t, 10*time.Second, "the unsent event relayed", func() bool { return len(streamIDs(t, b.JetStream())) == 1 })
}

func TestStartFailsWithoutTheTable(t *testing.T) {
	pool := newPool(t, schema)
	b := newBus(t)
	r := outbox.NewRelay(pool, b.JetStream(), "nosuch", testLogger(t), outbox.RelayOptions{})
	if err := r.Start(t.Context()); err == nil {
		t.Fatal("Start succeeded without an outbox table")
	}
	if err := r.Stop(t.Context()); err != nil {
		t.Fatalf("Stop after a failed Start: %v", err)
	}
}

func TestRelayRetriesThroughADatabaseOutage(t *testing.T) {
	pool := newPool(t, schema)
	b := newBus(t)
	ctx := t.Context()
	if _, err := b.EnsureStream(ctx, schema); err != nil {
		t.Fatal(err)
	}
	var down atomic.Bool
	var failures atomic.Int32
	cfg := pool.Config()
	cfg.PrepareConn = func(context.Context, *pgx.Conn) (bool, error) {
		if down.Load() {
			failures.Add(1)
			return true, errors.New("database unreachable (injected)")
		}
		return true, nil
	}
	flaky, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(flaky.Close)
	enqueue(t, pool, outbox.Event{Type: "invoice_created", Key: "before"})
	startRelay(t, flaky, b.JetStream(), outbox.RelayOptions{PollInterval: time.Minute})
	relayed(t, b.JetStream(), 1) // the first pass is over before the outage begins
	down.Store(true)
	id := enqueue(t, pool, outbox.Event{Type: "invoice_created"})
	eventually(t, 10*time.Second, "several failed attempts", func() bool { return failures.Load() >= 3 })
	if n := len(streamIDs(t, b.JetStream())); n != 1 {
		t.Fatalf("stream holds %d events during the outage, want the 1 from before", n)
	}
	down.Store(false)
	eventually(t, 20*time.Second, "the event after the outage", func() bool {
		ids := streamIDs(t, b.JetStream())
		return len(ids) == 2 && ids[1] == id
	})
}
