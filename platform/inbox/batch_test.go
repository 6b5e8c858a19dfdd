package inbox_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/seamkit/seam/platform/inbox"
)

// recordTx is a handler that writes one row per application, noting the transaction it ran in.
func recordTx(ctx context.Context, tx pgx.Tx, m inbox.Message) error {
	_, err := tx.Exec(ctx, `INSERT INTO notifications.effects (event_id, note) VALUES ($1, txid_current()::text)`, m.ID)
	return err
}

// TestWaitingEventsShareATransaction: events already waiting are applied several to a transaction (each
// once), unless the batch size is 1.
func TestWaitingEventsShareATransaction(t *testing.T) {
	const events = 40
	for _, tt := range []struct {
		name      string
		batchSize int
		maxTx     int
	}{
		{"default", 0, events / 4},
		{"one per transaction", 1, events},
	} {
		t.Run(tt.name, func(t *testing.T) {
			pool, b := setup(t, time.Minute)
			for range events {
				publish(t, b.JetStream(), uuid.NewString(), "k")
			}
			sub := subscription("notifications-billing", recordTx)
			sub.BatchSize = tt.batchSize
			startConsumer(t, pool, b.JetStream(), sub)
			eventually(t, 20*time.Second, "every event acknowledged", func() bool { return settled(t, b.JetStream(), "notifications-billing") })
			if n := count(t, pool, `SELECT count(*) FROM notifications.effects`); n != events {
				t.Fatalf("%d effects, want %d", n, events)
			}
			if n := count(t, pool, `SELECT count(DISTINCT event_id) FROM notifications.inbox`); n != events {
				t.Fatalf("%d inbox records, want %d", n, events)
			}
			txs := count(t, pool, `SELECT count(DISTINCT note) FROM notifications.effects`)
			t.Logf("%d events applied in %d transactions", events, txs)
			if txs > tt.maxTx || (tt.batchSize == 1 && txs != events) {
				t.Fatalf("%d events applied in %d transactions, want at most %d", events, txs, tt.maxTx)
			}
		})
	}
}

// TestFailingEventInABatch: in a batch of waiting events, one handler fails (after writing its effect) and
// another kills its own database connection, which takes the batch's transaction with it. Both are retried
// later and applied once; every other event is applied once, most of them in shared transactions.
func TestFailingEventInABatch(t *testing.T) {
	pool, b := setup(t, time.Minute)
	const events = 30
	keys := make([]string, events)
	for i := range keys {
		keys[i] = "good"
	}
	keys[3], keys[17] = "fails once", "kills its connection once"
	var mu sync.Mutex
	attempts := map[string]int{}
	sub := subscription("notifications-billing", func(ctx context.Context, tx pgx.Tx, m inbox.Message) error {
		mu.Lock()
		attempts[m.ID]++
		first := attempts[m.ID] == 1
		mu.Unlock()
		if err := recordTx(ctx, tx, m); err != nil {
			return err
		}
		switch {
		case !first:
		case m.Key == "fails once":
			return errors.New("mail server down")
		case m.Key == "kills its connection once":
			_, err := tx.Exec(ctx, `SELECT pg_terminate_backend(pg_backend_pid())`)
			if err == nil {
				err = errors.New("connection survived")
			}
			return err
		}
		return nil
	})
	ids := make([]string, events)
	for i, key := range keys {
		ids[i] = uuid.NewString()
		publish(t, b.JetStream(), ids[i], key)
	}
	startConsumer(t, pool, b.JetStream(), sub)
	eventually(t, 20*time.Second, "every event applied", func() bool {
		return count(t, pool, `SELECT count(DISTINCT event_id) FROM notifications.effects`) == events
	})
	eventually(t, 10*time.Second, "every event acknowledged", func() bool { return settled(t, b.JetStream(), "notifications-billing") })
	for i, id := range ids {
		if n := count(t, pool, `SELECT count(*) FROM notifications.effects WHERE event_id = $1`, id); n != 1 {
			t.Errorf("event %d (%s): %d effects, want 1", i, keys[i], n)
		}
	}
	if n := count(t, pool, `SELECT count(*) FROM notifications.inbox`); n != events {
		t.Fatalf("%d inbox records, want %d", n, events)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, i := range []int{3, 17} {
		if attempts[ids[i]] != 2 {
			t.Errorf("event %d (%s) handled %d times, want 2", i, keys[i], attempts[ids[i]])
		}
	}
	txs := count(t, pool, `SELECT count(DISTINCT note) FROM notifications.effects`)
	t.Logf("%d events applied in %d transactions", events, txs)
	if txs > events/3 {
		t.Fatalf("%d events applied in %d transactions, want at most %d", events, txs, events/3)
	}
}

// TestLongBatchIsCommittedInParts: a batch whose handlers are slow takes no more events into its
// transaction once it has run for half the ack wait; the rest follow in further transactions, each event
// applied once.
func TestLongBatchIsCommittedInParts(t *testing.T) {
	pool, b := setup(t, time.Minute)
	const events = 6
	for range events {
		publish(t, b.JetStream(), uuid.NewString(), "slow")
	}
	sub := subscription("notifications-billing", func(ctx context.Context, tx pgx.Tx, m inbox.Message) error {
		time.Sleep(250 * time.Millisecond) // a slow handler: six of them outlast half the ack wait
		return recordTx(ctx, tx, m)
	})
	sub.AckWait = 2 * time.Second
	startConsumer(t, pool, b.JetStream(), sub)
	eventually(t, 20*time.Second, "every event acknowledged", func() bool { return settled(t, b.JetStream(), "notifications-billing") })
	if n := count(t, pool, `SELECT count(DISTINCT event_id) FROM notifications.effects`); n != events {
		t.Fatalf("%d events applied, want %d", n, events)
	}
	if n := count(t, pool, `SELECT count(*) FROM notifications.effects`); n != events {
		t.Fatalf("%d effects, want %d", n, events)
	}
	if txs := count(t, pool, `SELECT count(DISTINCT note) FROM notifications.effects`); txs < 2 {
		t.Fatalf("%d slow events applied in %d transaction, want several", events, txs)
	}
}
