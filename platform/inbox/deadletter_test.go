package inbox_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/seamkit/seam/platform/inbox"
)

func TestPoisonEventIsDeadLetteredWhileLaterEventsFlow(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	pool, b := setup(t, time.Minute)
	var broken atomic.Bool
	broken.Store(true)
	var poisonCalls atomic.Int32
	sub := subscription("notifications-billing", func(ctx context.Context, tx pgx.Tx, m inbox.Message) error {
		if m.Key == "poison" {
			poisonCalls.Add(1)
			if broken.Load() {
				return errors.New("downstream bug")
			}
		}
		return recordEffect(ctx, tx, m)
	})
	sub.MaxDeliver = 3
	c := startConsumer(t, pool, b.JetStream(), sub)
	poison := uuid.NewString()
	publish(t, b.JetStream(), poison, "poison")
	later := uuid.NewString()
	publish(t, b.JetStream(), later, "later")

	eventually(t, 10*time.Second, "the later event applied", func() bool {
		return count(t, pool, `SELECT count(*) FROM notifications.effects WHERE event_id = $1`, later) == 1
	})
	eventually(t, 10*time.Second, "the poison event dead-lettered", func() bool {
		return count(t, pool, `SELECT count(*) FROM notifications.dead_letters WHERE event_id = $1`, poison) == 1
	})
	eventually(t, 10*time.Second, "every message settled", func() bool { return settled(t, b.JetStream(), sub.Name) })
	if n := poisonCalls.Load(); n != 3 {
		t.Fatalf("poison handled %d times, want 3 (max deliver)", n)
	}
	dls, err := inbox.ListDeadLetters(t.Context(), pool, schema, inbox.StatusPending)
	if err != nil {
		t.Fatal(err)
	}
	if len(dls) != 1 {
		t.Fatalf("%d pending dead letters, want 1", len(dls))
	}
	d := dls[0]
	if d.EventID.String() != poison || d.Consumer != sub.Name || d.Attempts != 3 || d.Error != "downstream bug" ||
		d.Subject != "billing.events.payment_completed" || d.EventType != "payment_completed" ||
		string(d.Data) != `{"amount":1}` || d.Headers.Get("Seam-Event-Key") != "poison" {
		t.Fatalf("dead letter = %+v", d)
	}

	// Still broken: the retry fails and the dead letter stays pending with one more attempt.
	if _, err := c.Retry(t.Context(), d.ID); !errors.Is(err, inbox.ErrRetryFailed) {
		t.Fatalf("retry while broken: err = %v, want ErrRetryFailed", err)
	}
	if got, err := inbox.GetDeadLetter(t.Context(), pool, schema, d.ID); err != nil || got.Status != inbox.StatusPending || got.Attempts != 4 {
		t.Fatalf("after a failed retry: %+v, %v", got, err)
	}

	broken.Store(false)
	applied, err := c.Retry(t.Context(), d.ID)
	if err != nil || !applied {
		t.Fatalf("retry = %v, %v; want applied", applied, err)
	}
	if n := count(t, pool, `SELECT count(*) FROM notifications.effects WHERE event_id = $1`, poison); n != 1 {
		t.Fatalf("poison applied %d times, want 1", n)
	}
	if _, err := c.Retry(t.Context(), d.ID); !errors.Is(err, inbox.ErrAlreadyResolved) {
		t.Fatalf("second retry: err = %v, want ErrAlreadyResolved", err)
	}
	got, err := inbox.GetDeadLetter(t.Context(), pool, schema, d.ID)
	if err != nil || got.Status != inbox.StatusRetried || got.ResolvedAt == nil {
		t.Fatalf("after retry: %+v, %v", got, err)
	}

	// The bus delivering the event again (e.g. a republish) does not apply it twice.
	publish(t, b.JetStream(), poison, "poison")
	marker := uuid.NewString()
	publish(t, b.JetStream(), marker, "marker")
	eventually(t, 10*time.Second, "the marker applied", func() bool {
		return count(t, pool, `SELECT count(*) FROM notifications.effects WHERE event_id = $1`, marker) == 1
	})
	if n := count(t, pool, `SELECT count(*) FROM notifications.effects WHERE event_id = $1`, poison); n != 1 {
		t.Fatalf("poison applied %d times after a redelivery, want 1", n)
	}
	if _, err := inbox.GetDeadLetter(t.Context(), pool, schema, uuid.New()); !errors.Is(err, inbox.ErrDeadLetterNotFound) {
		t.Fatalf("unknown id: err = %v, want ErrDeadLetterNotFound", err)
	}
}

func TestPermanentFailureIsDeadLetteredAtOnceAndCanBeDiscarded(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	pool, b := setup(t, time.Minute)
	var calls atomic.Int32
	sub := subscription("notifications-billing", func(context.Context, pgx.Tx, inbox.Message) error {
		calls.Add(1)
		return inbox.Permanent(errors.New("cannot decode"))
	})
	startConsumer(t, pool, b.JetStream(), sub)
	publish(t, b.JetStream(), uuid.NewString(), "poison")
	var d inbox.DeadLetter
	eventually(t, 10*time.Second, "the event dead-lettered", func() bool {
		dls, err := inbox.ListDeadLetters(t.Context(), pool, schema, "")
		if err != nil {
			t.Fatal(err)
		}
		if len(dls) == 1 {
			d = dls[0]
		}
		return len(dls) == 1
	})
	if calls.Load() != 1 || d.Attempts != 1 {
		t.Fatalf("handler calls %d, attempts %d; want 1 and 1", calls.Load(), d.Attempts)
	}
	if err := inbox.DiscardDeadLetter(t.Context(), pool, schema, d.ID); err != nil {
		t.Fatal(err)
	}
	if err := inbox.DiscardDeadLetter(t.Context(), pool, schema, d.ID); !errors.Is(err, inbox.ErrAlreadyResolved) {
		t.Fatalf("second discard: err = %v, want ErrAlreadyResolved", err)
	}
	if err := inbox.DiscardDeadLetter(t.Context(), pool, schema, uuid.New()); !errors.Is(err, inbox.ErrDeadLetterNotFound) {
		t.Fatalf("unknown id: err = %v, want ErrDeadLetterNotFound", err)
	}
	dls, err := inbox.ListDeadLetters(t.Context(), pool, schema, inbox.StatusDiscarded)
	if err != nil || len(dls) != 1 || dls[0].ResolvedAt == nil {
		t.Fatalf("discarded dead letters = %+v, %v", dls, err)
	}
}
