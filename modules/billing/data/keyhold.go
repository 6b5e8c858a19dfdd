package billingdata

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	billingdomain "github.com/seamkit/seam/modules/billing/domain"
	"github.com/seamkit/seam/platform/outbox"
)

// idempotencyLockSpace is hashed into the advisory lock id of every idempotency key, so the ids are billing's
// own and stay clear of the other advisory locks taken in the database (migrations, outbox relays).
const idempotencyLockSpace = "seam/billing/idempotency-key\x00"

// unlockTimeout bounds freeing a key's lock when its hold is released.
const unlockTimeout = 5 * time.Second

// idempotencyLockID is the advisory lock id of the user's key: 64 bits of a SHA-256 over the namespace, the
// user id and the key. The hash is cryptographic because clients choose keys: none can pick one whose lock
// collides with another user's key.
func idempotencyLockID(uid pgtype.UUID, key string) int64 {
	h := sha256.New()
	h.Write([]byte(idempotencyLockSpace))
	h.Write(uid.Bytes[:])
	h.Write([]byte(key))
	return int64(binary.BigEndian.Uint64(h.Sum(nil)))
}

// HoldIdempotencyKey takes the session-level advisory lock of the user's key on a connection acquired for the
// hold, or returns billingdomain.ErrIdempotencyKeyHeld when another session holds it.
func (r *Repository) HoldIdempotencyKey(ctx context.Context, userID, key string) (billingdomain.KeyHold, error) {
	uid, err := toUUID(userID)
	if err != nil {
		return nil, fmt.Errorf("user id: %w", err)
	}
	conn, err := r.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("acquire a connection for the idempotency key: %w", err)
	}
	h := &keyHold{conn: conn, q: New(conn), uid: uid, key: key, lockID: idempotencyLockID(uid, key)}
	locked, err := h.q.TryLockIdempotencyKey(ctx, h.lockID)
	if err != nil {
		// The lock may have been granted with its answer lost: ending the session frees it in any case.
		h.destroy(ctx)
		return nil, fmt.Errorf("lock idempotency key: %w", err)
	}
	if !locked {
		conn.Release()
		return nil, billingdomain.ErrIdempotencyKeyHeld
	}
	return h, nil
}

// keyHold implements billingdomain.KeyHold: a connection taken from the pool that holds one key's advisory
// lock, and on which every operation on that key runs.
type keyHold struct {
	conn   *pgxpool.Conn
	q      *Queries
	uid    pgtype.UUID
	key    string
	lockID int64
}

var _ billingdomain.KeyHold = (*keyHold)(nil)

// CreateIdempotencyKey stores rec in progress, or returns billingdomain.ErrIdempotencyKeyExists.
func (h *keyHold) CreateIdempotencyKey(ctx context.Context, rec billingdomain.IdempotencyRecord) error {
	if err := h.check(rec); err != nil {
		return err
	}
	paymentID, err := toUUID(rec.PaymentID)
	if err != nil {
		return fmt.Errorf("payment id: %w", err)
	}
	n, err := h.q.InsertIdempotencyKey(ctx, InsertIdempotencyKeyParams{
		UserID:      h.uid,
		Key:         h.key,
		RequestHash: rec.RequestHash,
		PaymentID:   paymentID,
		CreatedAt:   toTimestamptz(rec.CreatedAt),
	})
	if err != nil {
		return fmt.Errorf("insert idempotency key: %w", err)
	}
	if n == 0 {
		return billingdomain.ErrIdempotencyKeyExists
	}
	return nil
}

// GetIdempotencyKey returns the held key's row, or billingdomain.ErrIdempotencyKeyNotFound.
func (h *keyHold) GetIdempotencyKey(ctx context.Context) (billingdomain.IdempotencyRecord, error) {
	return readIdempotencyKey(ctx, h.q, h.uid, h.key)
}

// TakeOverIdempotencyKey claims the held key's in-progress row, or returns
// billingdomain.ErrIdempotencyKeyNotFound.
func (h *keyHold) TakeOverIdempotencyKey(ctx context.Context, now time.Time) (billingdomain.IdempotencyRecord, error) {
	row, err := h.q.TakeOverIdempotencyKey(ctx, TakeOverIdempotencyKeyParams{Now: toTimestamptz(now), UserID: h.uid, Key: h.key})
	if errors.Is(err, pgx.ErrNoRows) {
		return billingdomain.IdempotencyRecord{}, billingdomain.ErrIdempotencyKeyNotFound
	}
	if err != nil {
		return billingdomain.IdempotencyRecord{}, fmt.Errorf("take over idempotency key: %w", err)
	}
	return fromIdempotencyKey(row), nil
}

// DeleteIdempotencyKey removes rec's row, or returns billingdomain.ErrIdempotencyKeyLost.
func (h *keyHold) DeleteIdempotencyKey(ctx context.Context, rec billingdomain.IdempotencyRecord) error {
	if err := h.check(rec); err != nil {
		return err
	}
	n, err := h.q.DeleteIdempotencyKey(ctx, DeleteIdempotencyKeyParams{UserID: h.uid, Key: h.key, ClaimedAt: toTimestamptz(rec.UpdatedAt)})
	return claimResult("delete idempotency key", n, err)
}

// InPaymentTx runs fn in one transaction on the held connection, then wakes the outbox relay for the events
// fn published.
func (h *keyHold) InPaymentTx(ctx context.Context, fn func(ctx context.Context, tx billingdomain.PaymentTx) error) error {
	err := pgx.BeginFunc(ctx, h.conn, func(tx pgx.Tx) error {
		return fn(ctx, &paymentTx{tx: tx, q: h.q.WithTx(tx)})
	})
	if err != nil {
		return err
	}
	outbox.WakeRelays(Schema)
	return nil
}

// Release frees the lock and returns the connection to the pool; when the lock cannot be freed (the
// connection broke, or the session did not hold it), the connection is closed instead, ending the session
// and any lock with it.
func (h *keyHold) Release() {
	ctx, cancel := context.WithTimeout(context.Background(), unlockTimeout)
	defer cancel()
	unlocked, err := h.q.UnlockIdempotencyKey(ctx, h.lockID)
	if err != nil || !unlocked {
		h.destroy(ctx)
		return
	}
	h.conn.Release()
}

// destroy takes the connection out of the pool and closes it, which ends its session. Closing always closes
// the socket, so its error (a connection already broken) changes nothing.
func (h *keyHold) destroy(ctx context.Context) {
	_ = h.conn.Hijack().Close(ctx)
}

// check refuses a record of another key than the held one: a key's row changes only under its own lock.
func (h *keyHold) check(rec billingdomain.IdempotencyRecord) error {
	uid, err := toUUID(rec.UserID)
	if err != nil {
		return fmt.Errorf("user id: %w", err)
	}
	if uid != h.uid || rec.Key != h.key {
		return fmt.Errorf("idempotency key %q of user %s is not the held key %q of user %s",
			rec.Key, rec.UserID, h.key, fromUUID(h.uid))
	}
	return nil
}
