package outbox_test

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/seamkit/seam/platform/outbox"
)

// TestOutOfOrderCommits is fault test 8 (docs/reliability.md): four transactions enqueue an event each, in
// order, then end in reverse order, one of them rolling back, while two relays run. Each committed event
// reaches the stream as soon as its transaction commits, even with earlier transactions still open (no
// high-water mark skips them), exactly once; the rolled-back one never does.
func TestOutOfOrderCommits(t *testing.T) {
	pool := newPool(t, schema)
	b := newBus(t)
	ctx := t.Context()
	if _, err := b.EnsureStream(ctx, schema); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		startRelay(t, pool, b.JetStream(), outbox.RelayOptions{BatchSize: 1, PollInterval: 50 * time.Millisecond})
	}

	type pending struct {
		id       string
		rollback bool
		end      func() error
	}
	txs := make([]pending, 4)
	for i := range txs {
		tx, err := pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = tx.Rollback(ctx) })
		id, err := outbox.Enqueue(ctx, tx, schema, outbox.Event{Type: "invoice_created", Key: "inv", Payload: i})
		if err != nil {
			t.Fatal(err)
		}
		txs[i] = pending{id: id, rollback: i == 1, end: func() error { return tx.Commit(ctx) }}
		if i == 1 {
			txs[i].end = func() error { return tx.Rollback(ctx) }
		}
	}
	var committed []string
	for i := len(txs) - 1; i >= 0; i-- {
		if err := txs[i].end(); err != nil {
			t.Fatal(err)
		}
		if txs[i].rollback {
			continue
		}
		committed = append(committed, txs[i].id)
		eventually(t, 10*time.Second, "the event of transaction "+string(rune('1'+i)), func() bool {
			return len(streamIDs(t, b.JetStream())) == len(committed)
		})
	}
	got := streamIDs(t, b.JetStream())
	if diff := cmp.Diff(committed, got, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
		t.Fatalf("stream ids (-want +got):\n%s", diff)
	}
	if slices.Contains(got, txs[1].id) {
		t.Fatal("the rolled-back event was published")
	}
	eventuallyAllSent(t, pool)
}

type backlogRecorder struct {
	mu      sync.Mutex
	pending int64
	oldest  time.Duration
}

func (r *backlogRecorder) ObserveOutbox(schema string, pending int64, oldest time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if schema != "billing" {
		return
	}
	r.pending, r.oldest = pending, oldest
}

func (r *backlogRecorder) get() (int64, time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pending, r.oldest
}

// TestRelayReportsItsBacklog checks the backlog measurements: events the relay cannot publish (no stream
// yet) show as a backlog with a growing age, which drops to zero once they are published.
func TestRelayReportsItsBacklog(t *testing.T) {
	pool := newPool(t, schema)
	b := newBus(t)
	for range 3 {
		enqueue(t, pool, outbox.Event{Type: "invoice_created"})
	}
	rec := &backlogRecorder{}
	startRelay(t, pool, b.JetStream(), outbox.RelayOptions{PollInterval: 50 * time.Millisecond,
		PublishTimeout: 100 * time.Millisecond, Backlog: rec})
	eventually(t, 20*time.Second, "a backlog of 3 events, the oldest aged", func() bool {
		pending, oldest := rec.get()
		return pending == 3 && oldest > 0
	})
	if _, err := b.EnsureStream(t.Context(), schema); err != nil {
		t.Fatal(err)
	}
	eventually(t, 40*time.Second, "the backlog to drain", func() bool {
		pending, oldest := rec.get()
		return pending == 0 && oldest == 0
	})
}

// TestRelaysKeepOutboxOrder runs three relays on one outbox while events for a few aggregates are committed:
// the stream holds every event once, in outbox order, so each aggregate's events keep their order.
func TestRelaysKeepOutboxOrder(t *testing.T) {
	pool := newPool(t, schema)
	b := newBus(t)
	ctx := t.Context()
	if _, err := b.EnsureStream(ctx, schema); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		startRelay(t, pool, b.JetStream(), outbox.RelayOptions{BatchSize: 5, PollInterval: 20 * time.Millisecond})
	}
	const events = 200
	var want []string
	for i := range events {
		want = append(want, enqueue(t, pool, outbox.Event{Type: "invoice_created", Key: string(rune('a' + i%4)), Payload: i}))
	}
	eventually(t, 20*time.Second, "every event on the stream", func() bool { return len(streamIDs(t, b.JetStream())) >= events })
	if diff := cmp.Diff(want, streamIDs(t, b.JetStream())); diff != "" {
		t.Fatalf("stream order (-outbox order +stream order):\n%s", diff)
	}
}
