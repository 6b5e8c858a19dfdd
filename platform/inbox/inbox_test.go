package inbox_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/seamkit/seam/platform/bus"
	"github.com/seamkit/seam/platform/inbox"
	"github.com/seamkit/seam/platform/outbox"
)

const schema = "notifications"

// setup returns a database with the notifications schema and an effects table, and a bus with the billing
// stream.
func setup(t *testing.T, dedup time.Duration) (*pgxpool.Pool, *bus.Bus) {
	t.Helper()
	pool := newPool(t, schema, "billing")
	if _, err := pool.Exec(t.Context(), `CREATE TABLE notifications.effects (event_id uuid NOT NULL, note text NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	b := newBus(t, dedup)
	if _, err := b.EnsureStream(t.Context(), "billing"); err != nil {
		t.Fatal(err)
	}
	return pool, b
}

// recordEffect is a handler that writes one row per application.
func recordEffect(ctx context.Context, tx pgx.Tx, m inbox.Message) error {
	_, err := tx.Exec(ctx, `INSERT INTO notifications.effects (event_id, note) VALUES ($1, $2)`, m.ID, m.Key)
	return err
}

func publish(t *testing.T, js jetstream.JetStream, id, key string) *jetstream.PubAck {
	t.Helper()
	msg := nats.NewMsg(bus.EventSubject("billing", "payment_completed"))
	msg.Data = []byte(`{"amount":1}`)
	if id != "" {
		msg.Header.Set(bus.HeaderMsgID, id)
	}
	msg.Header.Set(bus.HeaderEventType, "payment_completed")
	msg.Header.Set(bus.HeaderEventKey, key)
	msg.Header.Set(bus.HeaderOccurredAt, "2026-01-02T03:04:05.123456789Z")
	ack, err := js.PublishMsg(t.Context(), msg)
	if err != nil {
		t.Fatal(err)
	}
	return ack
}

func subscription(name string, h inbox.Handler) inbox.Subscription {
	return inbox.Subscription{Name: name, Stream: bus.StreamName("billing"),
		Subjects: []string{"billing.events.payment_completed"}, Handler: h, Backoff: []time.Duration{10 * time.Millisecond}}
}

func startConsumer(t *testing.T, pool *pgxpool.Pool, js jetstream.JetStream, sub inbox.Subscription) *inbox.Consumer {
	t.Helper()
	c := inbox.NewConsumer(pool, js, schema, sub, testLogger(t))
	if err := c.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Stop(context.Background()); err != nil {
			t.Errorf("stop consumer: %v", err)
		}
	})
	return c
}

func count(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// settled reports whether the consumer has acknowledged or given up on every message in its stream.
func settled(t *testing.T, js jetstream.JetStream, name string) bool {
	t.Helper()
	cons, err := js.Consumer(t.Context(), bus.StreamName("billing"), name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := cons.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return info.NumPending == 0 && info.NumAckPending == 0 && info.NumRedelivered == 0
}

func TestHandlerSeesTheEvent(t *testing.T) {
	pool, b := setup(t, time.Minute)
	got := make(chan inbox.Message, 1)
	startConsumer(t, pool, b.JetStream(), subscription("notifications-billing", func(_ context.Context, _ pgx.Tx, m inbox.Message) error {
		got <- m
		return nil
	}))
	id := uuid.NewString()
	publish(t, b.JetStream(), id, "inv-1")
	var m inbox.Message
	select {
	case m = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("no event handled")
	}
	want := inbox.Message{ID: id, Subject: "billing.events.payment_completed", Type: "payment_completed", Key: "inv-1",
		OccurredAt: time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC), Data: []byte(`{"amount":1}`)}
	if diff := cmp.Diff(want, m, cmp.FilterPath(func(p cmp.Path) bool { return p.String() == "Headers" }, cmp.Ignore())); diff != "" {
		t.Fatalf("message (-want +got):\n%s", diff)
	}
	if m.Headers.Get(bus.HeaderMsgID) != id {
		t.Fatalf("headers = %v", m.Headers)
	}
	eventually(t, 10*time.Second, "the inbox record", func() bool {
		return count(t, pool, `SELECT count(*) FROM notifications.inbox WHERE consumer = 'notifications-billing' AND event_id = $1
AND subject = 'billing.events.payment_completed'`, id) == 1
	})
}

func TestRedeliveredEventIsAppliedOnce(t *testing.T) {
	// A short duplicate window lets the same event into the stream twice, as when a relay re-publishes it
	// late: the consumer then gets it twice, like a redelivery after a lost acknowledgement.
	pool, b := setup(t, 100*time.Millisecond)
	var calls atomic.Int32
	startConsumer(t, pool, b.JetStream(), subscription("notifications-billing", func(ctx context.Context, tx pgx.Tx, m inbox.Message) error {
		calls.Add(1)
		return recordEffect(ctx, tx, m)
	}))
	id := uuid.NewString()
	publish(t, b.JetStream(), id, "first copy")
	eventually(t, 10*time.Second, "the first copy applied", func() bool { return calls.Load() == 1 })
	eventually(t, 10*time.Second, "the stream to accept a second copy", func() bool {
		return !publish(t, b.JetStream(), id, "second copy").Duplicate
	})
	eventually(t, 10*time.Second, "both copies consumed", func() bool { return settled(t, b.JetStream(), "notifications-billing") })
	if n := count(t, pool, `SELECT count(*) FROM notifications.effects`); n != 1 {
		t.Fatalf("%d effects, want 1", n)
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("handler ran %d times, want 1", n)
	}
}

func TestFailingHandlerIsRetriedUntilItSucceeds(t *testing.T) {
	pool, b := setup(t, time.Minute)
	var attempts atomic.Int32
	var broken atomic.Bool
	broken.Store(true)
	startConsumer(t, pool, b.JetStream(), subscription("notifications-billing", func(ctx context.Context, tx pgx.Tx, m inbox.Message) error {
		attempts.Add(1)
		// The effect is written before the failure: the rollback must undo it.
		if err := recordEffect(ctx, tx, m); err != nil {
			return err
		}
		if broken.Load() {
			return errors.New("mail server down")
		}
		return nil
	}))
	id := uuid.NewString()
	publish(t, b.JetStream(), id, "inv-1")
	eventually(t, 10*time.Second, "three failed attempts", func() bool { return attempts.Load() >= 3 })
	if n := count(t, pool, `SELECT count(*) FROM notifications.effects`); n != 0 {
		t.Fatalf("%d effects committed by failed attempts", n)
	}
	if n := count(t, pool, `SELECT count(*) FROM notifications.inbox`); n != 0 {
		t.Fatalf("%d inbox records committed by failed attempts", n)
	}
	broken.Store(false)
	eventually(t, 10*time.Second, "the event applied", func() bool {
		return count(t, pool, `SELECT count(*) FROM notifications.effects WHERE event_id = $1`, id) == 1
	})
	eventually(t, 10*time.Second, "the event acknowledged", func() bool {
		cons, err := b.JetStream().Consumer(t.Context(), bus.StreamName("billing"), "notifications-billing")
		if err != nil {
			t.Fatal(err)
		}
		info, err := cons.Info(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return info.NumAckPending == 0 && info.AckFloor.Stream == 1
	})
	if n := count(t, pool, `SELECT count(*) FROM notifications.effects`); n != 1 {
		t.Fatalf("%d effects, want 1", n)
	}
}

func TestConsumerGivesUp(t *testing.T) {
	pool, b := setup(t, time.Minute)
	var mu sync.Mutex
	attempts := map[string]int{}
	sub := subscription("notifications-billing", func(ctx context.Context, tx pgx.Tx, m inbox.Message) error {
		mu.Lock()
		attempts[m.Key]++
		mu.Unlock()
		switch m.Key {
		case "poison":
			return inbox.Permanent(errors.New("cannot decode"))
		case "failing":
			return errors.New("always fails")
		case "panics":
			panic("handler bug")
		}
		return recordEffect(ctx, tx, m)
	})
	sub.MaxDeliver = 3
	startConsumer(t, pool, b.JetStream(), sub)
	publish(t, b.JetStream(), uuid.NewString(), "poison")
	publish(t, b.JetStream(), "", "no id")
	publish(t, b.JetStream(), "not-a-uuid", "bad id")
	publish(t, b.JetStream(), uuid.NewString(), "failing")
	publish(t, b.JetStream(), uuid.NewString(), "panics")
	good := uuid.NewString()
	publish(t, b.JetStream(), good, "good")

	eventually(t, 10*time.Second, "the good event applied", func() bool {
		return count(t, pool, `SELECT count(*) FROM notifications.effects WHERE event_id = $1`, good) == 1
	})
	eventually(t, 10*time.Second, "every message settled", func() bool {
		cons, err := b.JetStream().Consumer(t.Context(), bus.StreamName("billing"), "notifications-billing")
		if err != nil {
			t.Fatal(err)
		}
		info, err := cons.Info(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return info.NumPending == 0 && info.NumAckPending == 0
	})
	mu.Lock()
	defer mu.Unlock()
	if diff := cmp.Diff(map[string]int{"poison": 1, "failing": 3, "panics": 3, "good": 1}, attempts); diff != "" {
		t.Fatalf("handler calls per event (-want +got):\n%s", diff)
	}
	if n := count(t, pool, `SELECT count(*) FROM notifications.inbox`); n != 1 {
		t.Fatalf("%d inbox records, want 1 (only the good event)", n)
	}
}

func TestConsumersWithOneNameShareTheWork(t *testing.T) {
	pool, b := setup(t, time.Minute)
	var mu sync.Mutex
	byInstance := map[int]int{}
	for i := range 2 {
		startConsumer(t, pool, b.JetStream(), subscription("notifications-billing", func(ctx context.Context, tx pgx.Tx, m inbox.Message) error {
			mu.Lock()
			byInstance[i]++
			mu.Unlock()
			return recordEffect(ctx, tx, m)
		}))
	}
	const events = 100
	for range events {
		publish(t, b.JetStream(), uuid.NewString(), "k")
	}
	eventually(t, 20*time.Second, "every event applied", func() bool {
		return count(t, pool, `SELECT count(*) FROM notifications.effects`) >= events
	})
	eventually(t, 10*time.Second, "every event acknowledged", func() bool { return settled(t, b.JetStream(), "notifications-billing") })
	if n := count(t, pool, `SELECT count(DISTINCT event_id) FROM notifications.effects`); n != events {
		t.Fatalf("%d distinct events applied, want %d", n, events)
	}
	if n := count(t, pool, `SELECT count(*) FROM notifications.effects`); n != events {
		t.Fatalf("%d effects, want %d", n, events)
	}
	t.Logf("events per consumer instance: %v", byInstance)
}

func TestStopWaitsForTheEventInFlight(t *testing.T) {
	pool, b := setup(t, time.Minute)
	entered := make(chan struct{})
	release := make(chan struct{})
	c := inbox.NewConsumer(pool, b.JetStream(), schema, subscription("notifications-billing", func(ctx context.Context, tx pgx.Tx, m inbox.Message) error {
		close(entered)
		<-release
		return recordEffect(ctx, tx, m)
	}), testLogger(t))
	if err := c.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	publish(t, b.JetStream(), uuid.NewString(), "slow")
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("handler not called")
	}
	stopped := make(chan error, 1)
	go func() { stopped <- c.Stop(context.Background()) }()
	select {
	case err := <-stopped:
		t.Fatalf("Stop returned (%v) while an event was in flight", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Stop did not return")
	}
	if n := count(t, pool, `SELECT count(*) FROM notifications.effects`); n != 1 {
		t.Fatalf("%d effects after Stop, want 1", n)
	}
	if !settled(t, b.JetStream(), "notifications-billing") {
		t.Fatal("the event in flight was not acknowledged")
	}
	if err := c.Stop(context.Background()); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
}

func TestStopGivesUpWhenItsContextEnds(t *testing.T) {
	pool, b := setup(t, time.Minute)
	entered := make(chan struct{})
	c := inbox.NewConsumer(pool, b.JetStream(), schema, subscription("notifications-billing", func(ctx context.Context, tx pgx.Tx, m inbox.Message) error {
		close(entered)
		<-ctx.Done()
		return ctx.Err()
	}), testLogger(t))
	if err := c.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	publish(t, b.JetStream(), uuid.NewString(), "stuck")
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("handler not called")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if err := c.Stop(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Stop = %v, want DeadlineExceeded", err)
	}
	if n := count(t, pool, `SELECT count(*) FROM notifications.inbox`); n != 0 {
		t.Fatalf("%d inbox records for an abandoned event", n)
	}
}

func TestOutboxToInbox(t *testing.T) {
	pool, b := setup(t, time.Minute)
	relay := outbox.NewRelay(pool, b.JetStream(), "billing", testLogger(t), outbox.RelayOptions{PollInterval: time.Minute})
	if err := relay.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := relay.Stop(context.Background()); err != nil {
			t.Error(err)
		}
	})
	startConsumer(t, pool, b.JetStream(), subscription("notifications-billing", recordEffect))
	var id string
	err := pgx.BeginFunc(t.Context(), pool, func(tx pgx.Tx) error {
		var err error
		id, err = outbox.Enqueue(t.Context(), tx, "billing", outbox.Event{Type: "payment_completed", Key: "inv-7",
			Payload: map[string]int{"amount": 5}})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	outbox.WakeRelays("billing")
	eventually(t, 10*time.Second, "the effect of the committed event", func() bool {
		return count(t, pool, `SELECT count(*) FROM notifications.effects WHERE event_id = $1 AND note = 'inv-7'`, id) == 1
	})
}

func TestStartRejectsBadSubscriptions(t *testing.T) {
	ok := subscription("notifications-billing", recordEffect)
	tests := []struct {
		name   string
		change func(*inbox.Subscription)
	}{
		{"no name", func(s *inbox.Subscription) { s.Name = "" }},
		{"dotted name", func(s *inbox.Subscription) { s.Name = "a.b" }},
		{"no stream", func(s *inbox.Subscription) { s.Stream = "" }},
		{"no subjects", func(s *inbox.Subscription) { s.Subjects = nil }},
		{"no handler", func(s *inbox.Subscription) { s.Handler = nil }},
		{"bad max deliver", func(s *inbox.Subscription) { s.MaxDeliver = -2 }},
		{"bad backoff", func(s *inbox.Subscription) { s.Backoff = []time.Duration{time.Second, 0} }},
		{"bad batch size", func(s *inbox.Subscription) { s.BatchSize = -1 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sub := ok
			tt.change(&sub)
			// Validation happens before the bus or the database is used.
			c := inbox.NewConsumer(nil, nil, schema, sub, testLogger(t))
			if err := c.Start(t.Context()); err == nil {
				t.Fatal("Start accepted a bad subscription")
			}
		})
	}
}

// flakyPool returns a pool on the same database whose connections fail while down is set.
func flakyPool(t *testing.T, pool *pgxpool.Pool, down *atomic.Bool, failures *atomic.Int32) *pgxpool.Pool {
	t.Helper()
	cfg := pool.Config()
	cfg.PrepareConn = func(context.Context, *pgx.Conn) (bool, error) {
		if down.Load() {
			failures.Add(1)
			return true, errors.New("database unreachable (injected)")
		}
		return true, nil
	}
	flaky, err := pgxpool.NewWithConfig(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(flaky.Close)
	return flaky
}

func TestDatabaseOutageDoesNotUseUpDeliveries(t *testing.T) {
	pool, b := setup(t, time.Minute)
	var down atomic.Bool
	var failures atomic.Int32
	down.Store(true)
	flaky := flakyPool(t, pool, &down, &failures)
	sub := subscription("notifications-billing", recordEffect)
	sub.MaxDeliver = 1
	startConsumer(t, flaky, b.JetStream(), sub)
	id := uuid.NewString()
	publish(t, b.JetStream(), id, "during outage")
	eventually(t, 10*time.Second, "several failed attempts", func() bool { return failures.Load() >= 3 })
	down.Store(false)
	eventually(t, 10*time.Second, "the event applied after the outage", func() bool {
		return count(t, pool, `SELECT count(*) FROM notifications.effects WHERE event_id = $1`, id) == 1
	})
	eventually(t, 10*time.Second, "the event acknowledged", func() bool { return settled(t, b.JetStream(), "notifications-billing") })
	cons, err := b.JetStream().Consumer(t.Context(), bus.StreamName("billing"), "notifications-billing")
	if err != nil {
		t.Fatal(err)
	}
	info, err := cons.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if info.Delivered.Consumer != 1 {
		t.Fatalf("event delivered %d times, want 1", info.Delivered.Consumer)
	}
}
