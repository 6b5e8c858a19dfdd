package inbox_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/seamkit/seam/platform/bus"
	"github.com/seamkit/seam/platform/inbox"
	"github.com/seamkit/seam/platform/outbox"
)

// TestOutboxToInboxOnModuleConnections runs billing's relay and notifications' consumer each on its module's
// own, permission-restricted connection: publishing, creating the declared consumer (with several filter
// subjects), pulling, acknowledging, retrying (nak) and giving up (term) must all be allowed.
func TestOutboxToInboxOnModuleConnections(t *testing.T) {
	subjects := []string{"billing.events.payment_completed", "billing.events.invoice_created"}
	pool := newPool(t, schema, "billing")
	if _, err := pool.Exec(t.Context(), `CREATE TABLE notifications.effects (event_id uuid NOT NULL, note text NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	b := newBus(t, time.Minute,
		bus.Declaration{Module: "billing"},
		bus.Declaration{Module: schema, Consumes: []bus.Consumption{
			{Stream: bus.StreamName("billing"), Durable: "notifications-billing", Subjects: subjects},
		}})
	if _, err := b.EnsureStream(t.Context(), "billing"); err != nil {
		t.Fatal(err)
	}
	billing, err := b.ModuleJetStream("billing")
	if err != nil {
		t.Fatal(err)
	}
	notifications, err := b.ModuleJetStream(schema)
	if err != nil {
		t.Fatal(err)
	}

	relay := outbox.NewRelay(pool, billing, "billing", testLogger(t), outbox.RelayOptions{PollInterval: time.Minute})
	if err := relay.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := relay.Stop(context.Background()); err != nil {
			t.Error(err)
		}
	})
	var failures atomic.Int32
	sub := subscription("notifications-billing", func(ctx context.Context, tx pgx.Tx, m inbox.Message) error {
		switch {
		case m.Key == "poison":
			return inbox.Permanent(errors.New("cannot use this event"))
		case m.Key == "flaky" && failures.Add(1) == 1:
			return errors.New("try again")
		}
		return recordEffect(ctx, tx, m)
	})
	sub.Subjects = subjects
	startConsumer(t, pool, notifications, sub)

	ids := map[string]string{}
	for _, ev := range []outbox.Event{{Type: "invoice_created", Key: "flaky"}, {Type: "payment_completed", Key: "poison"},
		{Type: "payment_completed", Key: "paid"}} {
		err := pgx.BeginFunc(t.Context(), pool, func(tx pgx.Tx) error {
			id, err := outbox.Enqueue(t.Context(), tx, "billing", ev)
			ids[ev.Key] = id
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		outbox.WakeRelays("billing")
	}
	stream, err := b.JetStream().Stream(t.Context(), bus.StreamName("billing"))
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "every event relayed", func() bool {
		info, err := stream.Info(t.Context())
		return err == nil && info.State.Msgs == 3
	})
	eventually(t, 10*time.Second, "every event settled", func() bool { return settled(t, b.JetStream(), "notifications-billing") })
	for key, want := range map[string]int{"flaky": 1, "paid": 1, "poison": 0} {
		if n := count(t, pool, `SELECT count(*) FROM notifications.effects WHERE event_id = $1`, ids[key]); n != want {
			t.Errorf("event %s took effect %d times, want %d", key, n, want)
		}
	}
	if failures.Load() != 2 {
		t.Errorf("the flaky event was handled %d times, want 2 (one failure, one retry)", failures.Load())
	}
}
