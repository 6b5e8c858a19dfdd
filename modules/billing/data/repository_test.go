package billingdata_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5/pgxpool"

	billingapi "github.com/seamkit/seam/modules/billing/api"
	billingdata "github.com/seamkit/seam/modules/billing/data"
	billingdomain "github.com/seamkit/seam/modules/billing/domain"
)

func TestInvoicesAreVisibleOnlyToTheirUser(t *testing.T) {
	repo, pool := newRepo(t)
	ctx := t.Context()
	invs := []billingapi.Invoice{
		newInvoice("0190a000-0000-7000-8000-000000000001", alice, 100, at(1)),
		newInvoice("0190a000-0000-7000-8000-000000000002", alice, 200, at(2)),
		newInvoice("0190a000-0000-7000-8000-000000000003", bob, 300, at(3)),
		newInvoice("0190a000-0000-7000-8000-000000000004", alice, 400, at(2)),
	}
	for _, inv := range invs {
		if err := repo.CreateInvoice(ctx, inv, billingdomain.Event{Subject: billingapi.SubjectInvoiceCreated,
			Type: billingapi.EventInvoiceCreated, Key: inv.ID, Payload: billingapi.InvoiceCreated{InvoiceID: inv.ID}}); err != nil {
			t.Fatalf("CreateInvoice: %v", err)
		}
	}

	got, err := repo.GetInvoice(ctx, alice, invs[0].ID)
	if err != nil {
		t.Fatalf("GetInvoice: %v", err)
	}
	if diff := cmp.Diff(invs[0], got); diff != "" {
		t.Errorf("GetInvoice (-want +got):\n%s", diff)
	}
	for _, tc := range []struct{ user, id string }{
		{bob, invs[0].ID},   // another user's
		{alice, invs[2].ID}, // another user's
		{alice, "00000000-0000-4000-8000-000000000000"}, // unknown
		{alice, "' OR 1=1"},                             // not a UUID
		{"not-a-user", invs[0].ID},                      // not a UUID
	} {
		if _, err := repo.GetInvoice(ctx, tc.user, tc.id); !errors.Is(err, billingapi.ErrInvoiceNotFound) {
			t.Errorf("GetInvoice(%s, %s) error = %v, want ErrInvoiceNotFound", tc.user, tc.id, err)
		}
	}

	list, err := repo.ListInvoices(ctx, alice, 10)
	if err != nil {
		t.Fatalf("ListInvoices: %v", err)
	}
	var ids []string
	for _, inv := range list {
		ids = append(ids, inv.ID)
	}
	want := []string{invs[3].ID, invs[1].ID, invs[0].ID} // newest first; equal times by id, descending
	if diff := cmp.Diff(want, ids); diff != "" {
		t.Errorf("ListInvoices(alice) (-want +got):\n%s", diff)
	}
	if list, _ := repo.ListInvoices(ctx, alice, 1); len(list) != 1 || list[0].ID != invs[3].ID {
		t.Errorf("ListInvoices(limit 1) = %+v", list)
	}
	if list, _ := repo.ListInvoices(ctx, "0190a000-0000-7000-8000-0000000000ff", 10); len(list) != 0 {
		t.Errorf("a user without invoices sees %+v", list)
	}
	if n := len(outboxRows(t, pool)); n != len(invs) {
		t.Errorf("outbox has %d rows, want one per invoice (%d)", n, len(invs))
	}
}

func TestCreateInvoiceWritesItsEventInTheSameTransaction(t *testing.T) {
	repo, pool := newRepo(t)
	ctx := t.Context()
	inv := newInvoice("0190a000-0000-7000-8000-000000000001", alice, 1250, at(1))
	payload := billingapi.InvoiceCreated{InvoiceID: inv.ID, UserID: alice, Email: "alice@example.com",
		AmountMinor: 1250, Currency: "EUR", Description: "consulting", CreatedAt: inv.CreatedAt}
	err := repo.CreateInvoice(ctx, inv, billingdomain.Event{Subject: billingapi.SubjectInvoiceCreated,
		Type: billingapi.EventInvoiceCreated, Key: inv.ID, Payload: payload})
	if err != nil {
		t.Fatalf("CreateInvoice: %v", err)
	}
	rows := outboxRows(t, pool)
	if len(rows) != 1 || rows[0].Subject != billingapi.SubjectInvoiceCreated || rows[0].Type != billingapi.EventInvoiceCreated || rows[0].Key != inv.ID {
		t.Fatalf("outbox = %+v", rows)
	}
	var got billingapi.InvoiceCreated
	if err := json.Unmarshal(rows[0].Payload, &got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(payload, got); diff != "" {
		t.Errorf("event payload (-want +got):\n%s", diff)
	}

	// An event the outbox refuses (another module's subject) rolls the invoice back with it.
	bad := newInvoice("0190a000-0000-7000-8000-000000000002", alice, 1250, at(2))
	if err := repo.CreateInvoice(ctx, bad, billingdomain.Event{Subject: "auth.events.user_registered", Type: "user_registered", Key: bad.ID}); err == nil {
		t.Fatal("CreateInvoice with another module's subject succeeded")
	}
	// An invoice the database refuses writes no event.
	refused := newInvoice("0190a000-0000-7000-8000-000000000003", alice, 0, at(3))
	if err := repo.CreateInvoice(ctx, refused, billingdomain.Event{Subject: billingapi.SubjectInvoiceCreated, Type: billingapi.EventInvoiceCreated, Key: refused.ID}); err == nil {
		t.Fatal("CreateInvoice with amount 0 succeeded; the CHECK constraint is missing")
	}
	if n := count(t, pool, `SELECT count(*) FROM billing.invoices`); n != 1 {
		t.Errorf("invoices = %d, want 1", n)
	}
	if n := len(outboxRows(t, pool)); n != 1 {
		t.Errorf("outbox rows = %d, want 1", n)
	}
}

func TestSchemaConstraints(t *testing.T) {
	_, pool := newRepo(t)
	insert := `INSERT INTO billing.invoices (id, user_id, amount_minor, currency, description, status, created_at, paid_at)
		VALUES (gen_random_uuid(), gen_random_uuid(), $1, $2, $3, $4, now(), $5)`
	var noPaidAt *time.Time
	paidAt := at(0)
	tests := []struct {
		name string
		args []any
		ok   bool
	}{
		{"valid", []any{100, "EUR", "x", "open", noPaidAt}, true},
		{"valid paid", []any{100, "EUR", "x", "paid", &paidAt}, true},
		{"zero amount", []any{0, "EUR", "x", "open", noPaidAt}, false},
		{"negative amount", []any{-1, "EUR", "x", "open", noPaidAt}, false},
		{"lower-case currency", []any{100, "eur", "x", "open", noPaidAt}, false},
		{"short currency", []any{100, "EU", "x", "open", noPaidAt}, false},
		{"empty description", []any{100, "EUR", "", "open", noPaidAt}, false},
		{"unknown status", []any{100, "EUR", "x", "void", noPaidAt}, false},
		{"paid without paid_at", []any{100, "EUR", "x", "paid", noPaidAt}, false},
		{"open with paid_at", []any{100, "EUR", "x", "open", &paidAt}, false},
	}
	for _, tt := range tests {
		_, err := pool.Exec(t.Context(), insert, tt.args...)
		if (err == nil) != tt.ok {
			t.Errorf("%s: insert error = %v, want ok %v", tt.name, err, tt.ok)
		}
	}
}

// hold holds userID's key for the rest of the test.
func hold(t *testing.T, repo *billingdata.Repository, userID, key string) billingdomain.KeyHold {
	t.Helper()
	h, err := repo.HoldIdempotencyKey(t.Context(), userID, key)
	if err != nil {
		t.Fatalf("HoldIdempotencyKey(%s, %s): %v", userID, key, err)
	}
	t.Cleanup(h.Release)
	return h
}

func TestIdempotencyKeyLifecycle(t *testing.T) {
	repo, pool := newRepo(t)
	ctx := t.Context()
	hash := bytes.Repeat([]byte{0xab}, 32)
	rec := billingdomain.IdempotencyRecord{
		UserID: alice, Key: "k1", RequestHash: hash, PaymentID: "0190a000-0000-7000-8000-0000000000a1",
		State: billingdomain.KeyStateInProgress, CreatedAt: at(0), UpdatedAt: at(0),
	}
	alices := hold(t, repo, alice, "k1")
	if err := alices.CreateIdempotencyKey(ctx, rec); err != nil {
		t.Fatalf("CreateIdempotencyKey: %v", err)
	}
	other := rec
	other.RequestHash = bytes.Repeat([]byte{0xcd}, 32)
	if err := alices.CreateIdempotencyKey(ctx, other); !errors.Is(err, billingdomain.ErrIdempotencyKeyExists) {
		t.Fatalf("second CreateIdempotencyKey error = %v, want ErrIdempotencyKeyExists", err)
	}
	bobs := rec
	bobs.UserID = bob
	bobsHold := hold(t, repo, bob, "k1")
	if err := bobsHold.CreateIdempotencyKey(ctx, bobs); err != nil {
		t.Fatalf("the same key for another user: %v", err)
	}
	// A hold changes its own key only.
	if err := alices.CreateIdempotencyKey(ctx, billingdomain.IdempotencyRecord{UserID: alice, Key: "k2", RequestHash: hash,
		PaymentID: rec.PaymentID, CreatedAt: at(0), UpdatedAt: at(0)}); err == nil {
		t.Error("a hold of k1 created k2")
	}
	if _, err := repo.GetIdempotencyKey(ctx, alice, "k2"); !errors.Is(err, billingdomain.ErrIdempotencyKeyNotFound) {
		t.Errorf("GetIdempotencyKey(k2) error = %v, want ErrIdempotencyKeyNotFound", err)
	}
	for name, get := range map[string]func() (billingdomain.IdempotencyRecord, error){
		"through the pool": func() (billingdomain.IdempotencyRecord, error) { return repo.GetIdempotencyKey(ctx, alice, "k1") },
		"through the hold": func() (billingdomain.IdempotencyRecord, error) { return alices.GetIdempotencyKey(ctx) },
	} {
		got, err := get()
		if err != nil {
			t.Fatalf("GetIdempotencyKey %s: %v", name, err)
		}
		if diff := cmp.Diff(rec, got); diff != "" {
			t.Errorf("GetIdempotencyKey %s (-want +got):\n%s", name, diff)
		}
	}

	// The holder takes an in-progress row over at once, keeping its payment id; the new claim's fencing token
	// moves past the old one even when the taker's clock is behind.
	taken, err := alices.TakeOverIdempotencyKey(ctx, at(10))
	if err != nil {
		t.Fatalf("TakeOver: %v", err)
	}
	if !taken.UpdatedAt.Equal(at(10)) || taken.PaymentID != rec.PaymentID || !taken.CreatedAt.Equal(rec.CreatedAt) {
		t.Errorf("taken = %+v, want updated_at %v and the claim's payment id", taken, at(10))
	}
	retaken, err := alices.TakeOverIdempotencyKey(ctx, at(5))
	if err != nil {
		t.Fatalf("TakeOver with a clock behind: %v", err)
	}
	if want := at(10).Add(time.Microsecond); !retaken.UpdatedAt.Equal(want) {
		t.Errorf("taken over with a clock behind: updated_at = %v, want %v", retaken.UpdatedAt, want)
	}
	// The earlier claims are gone: they can neither delete nor complete the key.
	for _, lost := range []billingdomain.IdempotencyRecord{rec, taken} {
		if err := alices.DeleteIdempotencyKey(ctx, lost); !errors.Is(err, billingdomain.ErrIdempotencyKeyLost) {
			t.Errorf("Delete with a lost claim error = %v, want ErrIdempotencyKeyLost", err)
		}
		err = alices.InPaymentTx(ctx, func(ctx context.Context, tx billingdomain.PaymentTx) error {
			return tx.CompleteIdempotencyKey(ctx, lost, billingdomain.Response{Status: 200, Body: []byte("{}")}, at(12))
		})
		if !errors.Is(err, billingdomain.ErrIdempotencyKeyLost) {
			t.Errorf("Complete with a lost claim error = %v, want ErrIdempotencyKeyLost", err)
		}
	}

	// The current claim completes it; the exact bytes come back, whatever they are.
	body := []byte("{\"detail\":\"d\\u00e9clin\u00e9\"}\n\x00\xff")
	err = alices.InPaymentTx(ctx, func(ctx context.Context, tx billingdomain.PaymentTx) error {
		return tx.CompleteIdempotencyKey(ctx, retaken, billingdomain.Response{Status: 402, Body: body}, at(12))
	})
	if err != nil {
		t.Fatalf("Complete: %v", err)
	}
	done, err := repo.GetIdempotencyKey(ctx, alice, "k1")
	if err != nil {
		t.Fatal(err)
	}
	if done.State != billingdomain.KeyStateDone || done.Response.Status != 402 || !bytes.Equal(done.Response.Body, body) {
		t.Errorf("completed key = %+v, want done with 402 and the exact body", done)
	}
	if _, err := alices.TakeOverIdempotencyKey(ctx, at(59)); !errors.Is(err, billingdomain.ErrIdempotencyKeyNotFound) {
		t.Errorf("TakeOver of a done key error = %v, want ErrIdempotencyKeyNotFound", err)
	}
	if err := alices.DeleteIdempotencyKey(ctx, done); !errors.Is(err, billingdomain.ErrIdempotencyKeyLost) {
		t.Errorf("Delete of a done key error = %v, want ErrIdempotencyKeyLost", err)
	}

	// Delete removes the row of the current claim, so the key can be used afresh.
	if err := bobsHold.DeleteIdempotencyKey(ctx, bobs); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if n := count(t, pool, `SELECT count(*) FROM billing.idempotency_keys WHERE user_id = $1`, bob); n != 0 {
		t.Errorf("bob's key still there after Delete")
	}
	if _, err := bobsHold.TakeOverIdempotencyKey(ctx, at(13)); !errors.Is(err, billingdomain.ErrIdempotencyKeyNotFound) {
		t.Errorf("TakeOver of a deleted key error = %v, want ErrIdempotencyKeyNotFound", err)
	}
}

func TestIdempotencyKeyHoldIsExclusive(t *testing.T) {
	repo, pool := newRepo(t)
	ctx := t.Context()
	first, err := repo.HoldIdempotencyKey(ctx, alice, "k1")
	if err != nil {
		t.Fatalf("HoldIdempotencyKey: %v", err)
	}
	if _, err := repo.HoldIdempotencyKey(ctx, alice, "k1"); !errors.Is(err, billingdomain.ErrIdempotencyKeyHeld) {
		t.Fatalf("a second hold of the same key: error = %v, want ErrIdempotencyKeyHeld", err)
	}
	// Other pairs have locks of their own.
	hold(t, repo, bob, "k1")
	hold(t, repo, alice, "k2")
	// The lock is a session-level advisory lock of the hold's own session, and a refused hold keeps no
	// connection.
	firstPID := billingdata.HoldPID(first)
	if n := count(t, pool, `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid = $1`, firstPID); n != 1 {
		t.Errorf("the hold's session has %d advisory locks, want 1", n)
	}
	if n := pool.Stat().AcquiredConns(); n != 3 {
		t.Errorf("%d connections acquired for three holds, want 3", n)
	}

	first.Release()
	if n := count(t, pool, `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = $1`, firstPID); n != 0 {
		t.Errorf("the released hold's session still has %d advisory locks", n)
	}
	again, err := repo.HoldIdempotencyKey(ctx, alice, "k1")
	if err != nil {
		t.Fatalf("holding a released key: %v", err)
	}
	again.Release()
}

func TestAnIdempotencyKeyHoldDiesWithItsConnection(t *testing.T) {
	repo, pool := newRepo(t)
	ctx := t.Context()
	rec := billingdomain.IdempotencyRecord{UserID: alice, Key: "k1", RequestHash: make([]byte, 32),
		PaymentID: "0190a000-0000-7000-8000-0000000000a1", State: billingdomain.KeyStateInProgress, CreatedAt: at(0), UpdatedAt: at(0)}
	dead, err := repo.HoldIdempotencyKey(ctx, alice, "k1")
	if err != nil {
		t.Fatal(err)
	}
	if err := dead.CreateIdempotencyKey(ctx, rec); err != nil {
		t.Fatal(err)
	}
	// The holder crashes: its socket closes without a word to the server.
	start := time.Now()
	if err := billingdata.SeverHold(dead); err != nil {
		t.Fatal(err)
	}
	var next billingdomain.KeyHold
	waitFor(t, "another session to hold the dead session's key", func(ctx context.Context) (bool, error) {
		h, err := repo.HoldIdempotencyKey(ctx, alice, "k1")
		if errors.Is(err, billingdomain.ErrIdempotencyKeyHeld) {
			return false, nil
		}
		next = h
		return err == nil, err
	})
	defer next.Release()
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the lock was freed %v after the crash, want it within seconds", took)
	}
	taken, err := next.TakeOverIdempotencyKey(ctx, at(1))
	if err != nil || taken.PaymentID != rec.PaymentID {
		t.Fatalf("TakeOver after the crash = %+v, %v; want the dead claim's payment id", taken, err)
	}
	// The dead hold does nothing more, and releasing it closes its connection instead of pooling it.
	if err := dead.DeleteIdempotencyKey(ctx, taken); err == nil {
		t.Error("the dead hold deleted the key")
	}
	dead.Release()
	if n := pool.Stat().AcquiredConns(); n != 1 {
		t.Errorf("%d connections acquired, want only the live hold's", n)
	}
	if k, err := repo.GetIdempotencyKey(ctx, alice, "k1"); err != nil || !k.UpdatedAt.Equal(taken.UpdatedAt) {
		t.Errorf("key = %+v, %v; want it as the takeover left it", k, err)
	}
	if n := count(t, pool, `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'`); n != 1 {
		t.Errorf("%d advisory locks held, want the live hold's only", n)
	}
}

func TestAnIdempotencyKeyHoldRunsEverythingOnItsConnection(t *testing.T) {
	setup, pool := newRepo(t)
	inv := newInvoice("0190a000-0000-7000-8000-000000000001", alice, 1250, at(1))
	if err := setup.CreateInvoice(t.Context(), inv, billingdomain.Event{Subject: billingapi.SubjectInvoiceCreated, Type: billingapi.EventInvoiceCreated, Key: inv.ID}); err != nil {
		t.Fatal(err)
	}
	// On a pool of one connection, an operation that wanted a second one would wait until ctx ends.
	cfg := pool.Config()
	cfg.MaxConns = 1
	one, err := pgxpool.NewWithConfig(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer one.Close()
	repo := billingdata.NewRepository(one)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()

	h, err := repo.HoldIdempotencyKey(ctx, alice, "k1")
	if err != nil {
		t.Fatal(err)
	}
	defer h.Release()
	pid := billingdata.HoldPID(h)
	claim := billingdomain.IdempotencyRecord{UserID: alice, Key: "k1", RequestHash: make([]byte, 32),
		PaymentID: "0190a000-0000-7000-8000-0000000000a1", State: billingdomain.KeyStateInProgress, CreatedAt: at(2), UpdatedAt: at(2)}
	if err := h.CreateIdempotencyKey(ctx, claim); err != nil {
		t.Fatalf("Create: %v", err)
	}
	if _, err := h.GetIdempotencyKey(ctx); err != nil {
		t.Fatalf("Get: %v", err)
	}
	if claim, err = h.TakeOverIdempotencyKey(ctx, at(3)); err != nil {
		t.Fatalf("TakeOver: %v", err)
	}
	if err := h.DeleteIdempotencyKey(ctx, claim); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	claim.UpdatedAt = claim.CreatedAt // a new claim's token is its creation time
	if err := h.CreateIdempotencyKey(ctx, claim); err != nil {
		t.Fatalf("Create after Delete: %v", err)
	}
	err = h.InPaymentTx(ctx, func(ctx context.Context, tx billingdomain.PaymentTx) error {
		if _, err := tx.LockInvoice(ctx, alice, inv.ID); err != nil {
			return err
		}
		// Mid-transaction: the session in a transaction is the one holding the key's lock.
		var inTx, advisory int
		err := pool.QueryRow(ctx, `SELECT
			(SELECT count(*) FROM pg_stat_activity WHERE pid = $1 AND xact_start IS NOT NULL),
			(SELECT count(*) FROM pg_locks WHERE pid = $1 AND locktype = 'advisory' AND granted)`, pid).Scan(&inTx, &advisory)
		if err != nil {
			return err
		}
		if inTx != 1 || advisory != 1 {
			t.Errorf("the hold's session: %d in a transaction, %d advisory locks; want the payment to run in it", inTx, advisory)
		}
		if _, err := tx.MarkInvoicePaid(ctx, inv.ID, at(4)); err != nil {
			return err
		}
		return tx.CompleteIdempotencyKey(ctx, claim, billingdomain.Response{Status: 200, Body: []byte(`{}`)}, at(4))
	})
	if err != nil {
		t.Fatalf("payment on the held connection: %v", err)
	}
	if got, _ := setup.GetInvoice(ctx, alice, inv.ID); got.Status != billingapi.StatusPaid {
		t.Errorf("invoice = %+v, want paid", got)
	}
	if k, _ := setup.GetIdempotencyKey(ctx, alice, "k1"); k.State != billingdomain.KeyStateDone {
		t.Errorf("key = %+v, want done", k)
	}
}

// payInTx runs the writes of a successful payment of inv in one transaction, returning fail's error at the
// end (so the transaction rolls back when fail is not nil).
func payInTx(ctx context.Context, t *testing.T, h billingdomain.KeyHold, inv billingapi.Invoice,
	claim billingdomain.IdempotencyRecord, fail error) error {
	t.Helper()
	return h.InPaymentTx(ctx, func(ctx context.Context, tx billingdomain.PaymentTx) error {
		locked, err := tx.LockInvoice(ctx, inv.UserID, inv.ID)
		if err != nil {
			return err
		}
		p := billingapi.Payment{ID: claim.PaymentID, InvoiceID: locked.ID, UserID: locked.UserID, Status: billingapi.PaymentStatusSucceeded,
			AmountMinor: locked.AmountMinor, Currency: locked.Currency, ProviderRef: "sim_" + claim.PaymentID, CreatedAt: at(30)}
		if err := tx.InsertPayment(ctx, p); err != nil {
			return err
		}
		if _, err := tx.MarkInvoicePaid(ctx, locked.ID, at(30)); err != nil {
			return err
		}
		if err := tx.Publish(ctx, billingdomain.Event{Subject: billingapi.SubjectPaymentCompleted, Type: billingapi.EventPaymentCompleted,
			Key: locked.ID, Payload: billingapi.PaymentCompleted{PaymentID: p.ID, InvoiceID: locked.ID}}); err != nil {
			return err
		}
		if err := tx.CompleteIdempotencyKey(ctx, claim, billingdomain.Response{Status: 200, Body: []byte(`{"ok":true}`)}, at(30)); err != nil {
			return err
		}
		return fail
	})
}

func TestPaymentStateAndEventsCommitTogether(t *testing.T) {
	repo, pool := newRepo(t)
	ctx := t.Context()
	inv := newInvoice("0190a000-0000-7000-8000-000000000001", alice, 1250, at(1))
	if err := repo.CreateInvoice(ctx, inv, billingdomain.Event{Subject: billingapi.SubjectInvoiceCreated, Type: billingapi.EventInvoiceCreated, Key: inv.ID}); err != nil {
		t.Fatal(err)
	}
	claim := billingdomain.IdempotencyRecord{UserID: alice, Key: "k1", RequestHash: make([]byte, 32),
		PaymentID: "0190a000-0000-7000-8000-0000000000a1", State: billingdomain.KeyStateInProgress, CreatedAt: at(2), UpdatedAt: at(2)}
	h := hold(t, repo, alice, "k1")
	if err := h.CreateIdempotencyKey(ctx, claim); err != nil {
		t.Fatal(err)
	}

	boom := errors.New("boom")
	if err := payInTx(ctx, t, h, inv, claim, boom); !errors.Is(err, boom) {
		t.Fatalf("rolled-back payment error = %v, want boom", err)
	}
	if got, _ := repo.GetInvoice(ctx, alice, inv.ID); got.Status != billingapi.StatusOpen || got.PaidAt != nil {
		t.Errorf("after rollback the invoice is %+v, want open", got)
	}
	if n := count(t, pool, `SELECT count(*) FROM billing.payments`); n != 0 {
		t.Errorf("after rollback payments = %d, want 0", n)
	}
	if rows := outboxRows(t, pool); len(rows) != 1 {
		t.Errorf("after rollback outbox = %+v, want only InvoiceCreated", rows)
	}
	if k, _ := repo.GetIdempotencyKey(ctx, alice, "k1"); k.State != billingdomain.KeyStateInProgress {
		t.Errorf("after rollback the key is %s, want in_progress", k.State)
	}

	if err := payInTx(ctx, t, h, inv, claim, nil); err != nil {
		t.Fatalf("payment: %v", err)
	}
	got, _ := repo.GetInvoice(ctx, alice, inv.ID)
	if got.Status != billingapi.StatusPaid || got.PaidAt == nil || !got.PaidAt.Equal(at(30)) {
		t.Errorf("after commit the invoice is %+v, want paid at %v", got, at(30))
	}
	if n := count(t, pool, `SELECT count(*) FROM billing.payments WHERE invoice_id = $1 AND status = 'succeeded'`, inv.ID); n != 1 {
		t.Errorf("after commit succeeded payments = %d, want 1", n)
	}
	rows := outboxRows(t, pool)
	if len(rows) != 2 || rows[1].Subject != billingapi.SubjectPaymentCompleted || rows[1].Key != inv.ID {
		t.Errorf("after commit outbox = %+v, want InvoiceCreated then PaymentCompleted", rows)
	}
	if k, _ := repo.GetIdempotencyKey(ctx, alice, "k1"); k.State != billingdomain.KeyStateDone || string(k.Response.Body) != `{"ok":true}` {
		t.Errorf("after commit the key is %+v, want done with the response", k)
	}
}

func TestAnInvoiceHasAtMostOneSucceededPayment(t *testing.T) {
	repo, pool := newRepo(t)
	ctx := t.Context()
	inv := newInvoice("0190a000-0000-7000-8000-000000000001", alice, 1250, at(1))
	if err := repo.CreateInvoice(ctx, inv, billingdomain.Event{Subject: billingapi.SubjectInvoiceCreated, Type: billingapi.EventInvoiceCreated, Key: inv.ID}); err != nil {
		t.Fatal(err)
	}
	payment := func(id, status, decline string) billingapi.Payment {
		return billingapi.Payment{ID: id, InvoiceID: inv.ID, UserID: alice, Status: status, AmountMinor: 1250,
			Currency: "EUR", ProviderRef: "sim_" + id, DeclineCode: decline, CreatedAt: at(2)}
	}
	h := hold(t, repo, alice, "k1")
	insert := func(p billingapi.Payment) error {
		return h.InPaymentTx(ctx, func(ctx context.Context, tx billingdomain.PaymentTx) error {
			return tx.InsertPayment(ctx, p)
		})
	}
	for _, p := range []billingapi.Payment{
		payment("0190a000-0000-7000-8000-0000000000a1", billingapi.PaymentStatusFailed, "card_declined"),
		payment("0190a000-0000-7000-8000-0000000000a2", billingapi.PaymentStatusFailed, "expired_card"),
		payment("0190a000-0000-7000-8000-0000000000a3", billingapi.PaymentStatusSucceeded, ""),
	} {
		if err := insert(p); err != nil {
			t.Fatalf("insert %s payment: %v", p.Status, err)
		}
	}
	err := insert(payment("0190a000-0000-7000-8000-0000000000a4", billingapi.PaymentStatusSucceeded, ""))
	if !errors.Is(err, billingapi.ErrInvoiceAlreadyPaid) {
		t.Errorf("second succeeded payment error = %v, want ErrInvoiceAlreadyPaid", err)
	}
	// The index holds against any writer, not only the adapter.
	_, err = pool.Exec(ctx, `INSERT INTO billing.payments (id, invoice_id, user_id, amount_minor, currency, status, provider_ref, created_at)
		VALUES (gen_random_uuid(), $1, $2, 1250, 'EUR', 'succeeded', 'raw', now())`, inv.ID, alice)
	if err == nil {
		t.Error("a raw insert of a second succeeded payment was accepted")
	}
	// A payment must match its status: a failure names its decline code, a success has none.
	if err := insert(payment("0190a000-0000-7000-8000-0000000000a5", billingapi.PaymentStatusFailed, "")); err == nil {
		t.Error("a failed payment without a decline code was accepted")
	}
	// A payment for an invoice that does not exist is refused.
	orphan := payment("0190a000-0000-7000-8000-0000000000a6", billingapi.PaymentStatusFailed, "card_declined")
	orphan.InvoiceID = "0190a000-0000-7000-8000-0000000000ff"
	if err := insert(orphan); !errors.Is(err, billingapi.ErrInvoiceNotFound) {
		t.Errorf("orphan payment error = %v, want ErrInvoiceNotFound", err)
	}

	// Marking paid is a compare-and-set from open.
	err = h.InPaymentTx(ctx, func(ctx context.Context, tx billingdomain.PaymentTx) error {
		if _, err := tx.MarkInvoicePaid(ctx, inv.ID, at(3)); err != nil {
			return err
		}
		_, err := tx.MarkInvoicePaid(ctx, inv.ID, at(4))
		return err
	})
	if !errors.Is(err, billingapi.ErrInvoiceAlreadyPaid) {
		t.Errorf("marking a paid invoice paid error = %v, want ErrInvoiceAlreadyPaid", err)
	}
}

func TestLockInvoiceSerialisesPayers(t *testing.T) {
	repo, pool := newRepo(t)
	ctx := t.Context()
	inv := newInvoice("0190a000-0000-7000-8000-000000000001", alice, 1250, at(1))
	if err := repo.CreateInvoice(ctx, inv, billingdomain.Event{Subject: billingapi.SubjectInvoiceCreated, Type: billingapi.EventInvoiceCreated, Key: inv.ID}); err != nil {
		t.Fatal(err)
	}
	firstHold, secondHold := hold(t, repo, alice, "k1"), hold(t, repo, alice, "k2")
	locked := make(chan struct{})
	proceed := make(chan struct{})
	first := make(chan error, 1)
	go func() {
		first <- firstHold.InPaymentTx(ctx, func(ctx context.Context, tx billingdomain.PaymentTx) error {
			if _, err := tx.LockInvoice(ctx, alice, inv.ID); err != nil {
				return err
			}
			close(locked)
			<-proceed
			_, err := tx.MarkInvoicePaid(ctx, inv.ID, at(2))
			return err
		})
	}()
	<-locked
	second := make(chan billingapi.Invoice, 1)
	secondErr := make(chan error, 1)
	go func() {
		secondErr <- secondHold.InPaymentTx(ctx, func(ctx context.Context, tx billingdomain.PaymentTx) error {
			got, err := tx.LockInvoice(ctx, alice, inv.ID)
			second <- got
			return err
		})
	}()
	waitFor(t, "the second payer to wait for the invoice lock", func(ctx context.Context) (bool, error) {
		var n int
		err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%FOR UPDATE%'`).Scan(&n)
		return n == 1, err
	})
	select {
	case got := <-second:
		t.Fatalf("the second payer got the invoice (%+v) while the first held the lock", got)
	default:
	}
	close(proceed)
	if err := <-first; err != nil {
		t.Fatalf("first payer: %v", err)
	}
	if err := <-secondErr; err != nil {
		t.Fatalf("second payer: %v", err)
	}
	if got := <-second; got.Status != billingapi.StatusPaid {
		t.Errorf("the second payer saw status %s, want paid (it must see the first payer's commit)", got.Status)
	}
}
