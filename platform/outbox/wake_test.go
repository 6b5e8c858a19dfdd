package outbox_test

import (
	"context"
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

// relayed waits until the relay has published the event enqueued before it started, so that its first pass
// is over and only a wake-up (or a poll) can bring the next one.
func relayed(t *testing.T, js jetstream.JetStream, n int) {
	t.Helper()
	eventually(t, 10*time.Second, "the relay's first pass", func() bool { return len(streamIDs(t, js)) == n })
}

func TestWakeRelaysPublishesAtOnce(t *testing.T) {
	pool := newPool(t, schema)
	b := newBus(t)
	ctx := t.Context()
	if _, err := b.EnsureStream(ctx, schema); err != nil {
		t.Fatal(err)
	}
	first := enqueue(t, pool, outbox.Event{Type: "invoice_created", Key: "first"})
	startRelay(t, pool, b.JetStream(), outbox.RelayOptions{PollInterval: time.Hour})
	relayed(t, b.JetStream(), 1)

	var second string
	if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		var err error
		second, err = outbox.Enqueue(ctx, tx, schema, outbox.Event{Type: "invoice_created", Key: "second"})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	outbox.WakeRelays("auth") // another schema's relays: none here, and not this one
	start := time.Now()
	outbox.WakeRelays(schema)
	// The poll is an hour away: only the wake-up brings the event.
	eventually(t, 5*time.Second, "the event after WakeRelays", func() bool { return len(streamIDs(t, b.JetStream())) == 2 })
	t.Logf("relayed %s after WakeRelays", time.Since(start))
	if diff := cmp.Diff([]string{first, second}, streamIDs(t, b.JetStream())); diff != "" {
		t.Fatalf("stream ids (-want +got):\n%s", diff)
	}
}

// TestWokenRelayWaitsForTheLock: a relay woken while another relay (here, a transaction holding the relay
// lock) is in the middle of a batch waits for the lock, rather than leaving the new event to the poll.
func TestWokenRelayWaitsForTheLock(t *testing.T) {
	pool := newPool(t, schema)
	b := newBus(t)
	ctx := t.Context()
	if _, err := b.EnsureStream(ctx, schema); err != nil {
		t.Fatal(err)
	}
	enqueue(t, pool, outbox.Event{Type: "invoice_created", Key: "first"})
	startRelay(t, pool, b.JetStream(), outbox.RelayOptions{PollInterval: time.Hour})
	relayed(t, b.JetStream(), 1)

	holder, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = holder.Rollback(context.WithoutCancel(ctx)) }()
	if _, err := holder.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, outbox.LockKey(schema)); err != nil {
		t.Fatal(err)
	}
	id := enqueue(t, pool, outbox.Event{Type: "invoice_created", Key: "second"}) // and WakeRelays
	// A window in which nothing may be published: the woken relay must be waiting for the lock.
	time.Sleep(300 * time.Millisecond)
	if n := len(streamIDs(t, b.JetStream())); n != 1 {
		t.Fatalf("stream holds %d events while another relay holds the lock, want 1", n)
	}
	if err := holder.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the event once the lock is free", func() bool {
		ids := streamIDs(t, b.JetStream())
		return len(ids) == 2 && ids[1] == id
	})
}

// enqueueMany commits n events in one transaction and returns their ids in outbox order.
func enqueueMany(t *testing.T, pool *pgxpool.Pool, n int) []string {
	t.Helper()
	ctx := t.Context()
	ids := make([]string, 0, n)
	if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		for i := range n {
			id, err := outbox.Enqueue(ctx, tx, schema, outbox.Event{Type: "invoice_created", Payload: i})
			if err != nil {
				return err
			}
			ids = append(ids, id)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return ids
}

// batchPublishes counts, by event id, the messages a plain subscription sees on the schema's subjects, and
// how many of them were part of an atomic batch.
type batchPublishes struct {
	seen    map[string]int
	batched int
}

func watchPublishes(t *testing.T, b *bus.Bus) func() batchPublishes {
	t.Helper()
	got := make(chan *nats.Msg, 10000)
	sub, err := b.Conn().ChanSubscribe("billing.events.>", got)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	return func() batchPublishes {
		if err := b.Conn().Flush(); err != nil {
			t.Fatal(err)
		}
		p := batchPublishes{seen: map[string]int{}}
		for {
			select {
			case m := <-got:
				p.seen[m.Header.Get(bus.HeaderMsgID)]++
				if m.Header.Get("Nats-Batch-Id") != "" {
					p.batched++
				}
			default:
				return p
			}
		}
	}
}

func TestRelayPublishesLargeBatchesAtomically(t *testing.T) {
	pool := newPool(t, schema)
	b := newBus(t)
	ctx := t.Context()
	if _, err := b.EnsureStream(ctx, schema); err != nil {
		t.Fatal(err)
	}
	publishes := watchPublishes(t, b)
	want := enqueueMany(t, pool, 250)
	startRelay(t, pool, b.JetStream(), outbox.RelayOptions{PollInterval: time.Minute, BatchSize: 100})
	eventually(t, 20*time.Second, "every event on the stream", func() bool { return len(streamIDs(t, b.JetStream())) == len(want) })
	if diff := cmp.Diff(want, streamIDs(t, b.JetStream())); diff != "" {
		t.Fatalf("stream ids (-want +got):\n%s", diff)
	}
	p := publishes()
	if p.batched != len(want) {
		t.Errorf("%d of %d publishes were in an atomic batch", p.batched, len(want))
	}
	for id, n := range p.seen {
		if n != 1 {
			t.Errorf("event %s published %d times", id, n)
		}
	}
	eventuallyAllSent(t, pool)
	stream, err := b.JetStream().Stream(ctx, bus.StreamName(schema))
	if err != nil {
		t.Fatal(err)
	}
	msg, err := stream.GetMsg(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	// The stored message keeps its event id (the stream's de-duplication key) and the batch it came in.
	if got := msg.Header.Get(bus.HeaderMsgID); got != want[0] {
		t.Errorf("first stored message has %s %q, want %q", bus.HeaderMsgID, got, want[0])
	}
	if msg.Header.Get("Nats-Batch-Id") == "" || msg.Header.Get("Nats-Batch-Sequence") != "1" {
		t.Errorf("first stored message's headers %v lack its atomic batch", msg.Header)
	}
}

// TestRelayRepublishesARefusedBatchOneByOne: after a relay crashed between publishing events and marking them
// sent, the stream refuses the atomic batch that holds them again; the relay then publishes the batch one
// event at a time, and the stream stores each event once, in outbox order.
func TestRelayRepublishesARefusedBatchOneByOne(t *testing.T) {
	pool := newPool(t, schema)
	b := newBus(t)
	ctx := t.Context()
	if _, err := b.EnsureStream(ctx, schema); err != nil {
		t.Fatal(err)
	}
	want := enqueueMany(t, pool, 50)
	// What the crashed relay got into the stream: the first 20 events.
	for _, id := range want[:20] {
		msg := nats.NewMsg("billing.events.invoice_created")
		msg.Header.Set(bus.HeaderMsgID, id)
		if _, err := b.JetStream().PublishMsg(ctx, msg); err != nil {
			t.Fatal(err)
		}
	}
	startRelay(t, pool, b.JetStream(), outbox.RelayOptions{PollInterval: time.Minute})
	eventually(t, 20*time.Second, "every event sent", func() bool {
		var unsent int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM billing.outbox WHERE sent_at IS NULL`).Scan(&unsent); err != nil {
			t.Fatal(err)
		}
		return unsent == 0
	})
	if diff := cmp.Diff(want, streamIDs(t, b.JetStream())); diff != "" {
		t.Fatalf("stream ids (-want +got):\n%s", diff)
	}
}

// TestRelayPublishesToAStreamWithoutAtomicBatches: a stream that does not allow atomic batches (made by an
// older version, or on a server without them) still gets every event, once and in order.
func TestRelayPublishesToAStreamWithoutAtomicBatches(t *testing.T) {
	pool := newPool(t, schema)
	b := newBus(t)
	ctx := t.Context()
	if _, err := b.JetStream().CreateStream(ctx, jetstream.StreamConfig{Name: bus.StreamName(schema),
		Subjects: []string{"billing.events.>"}, Storage: jetstream.FileStorage, Duplicates: time.Minute}); err != nil {
		t.Fatal(err)
	}
	want := enqueueMany(t, pool, 40)
	startRelay(t, pool, b.JetStream(), outbox.RelayOptions{PollInterval: time.Minute, BatchSize: 20})
	eventually(t, 20*time.Second, "every event on the stream", func() bool { return len(streamIDs(t, b.JetStream())) == len(want) })
	if diff := cmp.Diff(want, streamIDs(t, b.JetStream())); diff != "" {
		t.Fatalf("stream ids (-want +got):\n%s", diff)
	}
}
