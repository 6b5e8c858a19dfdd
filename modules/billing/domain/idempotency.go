package billingdomain

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"

	billingapi "github.com/seamkit/seam/modules/billing/api"
)

// MaxIdempotencyKeyLength is the longest Idempotency-Key billing accepts.
const MaxIdempotencyKeyLength = 255

// ValidateIdempotencyKey checks an Idempotency-Key header value: empty is billingapi.ErrIdempotencyKeyMissing,
// anything but 1..MaxIdempotencyKeyLength printable ASCII characters (space to tilde) is
// billingapi.ErrIdempotencyKeyInvalid.
func ValidateIdempotencyKey(key string) error {
	if key == "" {
		return billingapi.ErrIdempotencyKeyMissing
	}
	if len(key) > MaxIdempotencyKeyLength {
		return billingapi.ErrIdempotencyKeyInvalid
	}
	for i := range len(key) {
		if key[i] < ' ' || key[i] > '~' {
			return billingapi.ErrIdempotencyKeyInvalid
		}
	}
	return nil
}

// RequestHash fingerprints a request for its idempotency key: the SHA-256 of its method, path and canonical
// body (the decoded body encoded again, so spacing and key order do not matter). A key reused with another
// fingerprint is refused.
func RequestHash(method, path string, canonicalBody []byte) []byte {
	h := sha256.New()
	h.Write([]byte(method))
	h.Write([]byte{0})
	h.Write([]byte(path))
	h.Write([]byte{0})
	h.Write(canonicalBody)
	return h.Sum(nil)
}

// claim applies the idempotency rules to a pay request whose key this process holds. It returns either the
// record the caller now holds (a new key, or one in progress taken over at once, keeping its payment id) or
// the stored response to replay; a key used with another request is ErrIdempotencyKeyReused.
//
// An in-progress row found under the hold belongs to a request whose process died (or that failed after an
// approved charge, see abandon): a live one would still hold the key's lock, which the database frees when
// the holder's session ends, so it cannot outlive a crash. There is nothing to wait for, no time-based
// staleness to guess at, and a retry resent by a gateway seconds after its first instance died takes over
// at once. The takeover moves the row's UpdatedAt (the claim's fencing token), so should the dead claim's
// process still be about, its completion or deletion changes nothing.
func (s *Service) claim(ctx context.Context, hold KeyHold, req PayRequest) (IdempotencyRecord, *Response, error) {
	paymentID, err := newID()
	if err != nil {
		return IdempotencyRecord{}, nil, err
	}
	now := s.now()
	rec := IdempotencyRecord{
		UserID:      req.UserID,
		Key:         req.IdempotencyKey,
		RequestHash: req.RequestHash,
		PaymentID:   paymentID,
		State:       KeyStateInProgress,
		CreatedAt:   now,
		UpdatedAt:   now,
	}
	err = hold.CreateIdempotencyKey(ctx, rec)
	if err == nil {
		return rec, nil, nil
	}
	if !errors.Is(err, ErrIdempotencyKeyExists) {
		return IdempotencyRecord{}, nil, fmt.Errorf("record idempotency key: %w", err)
	}
	existing, err := hold.GetIdempotencyKey(ctx)
	if err != nil {
		return IdempotencyRecord{}, nil, fmt.Errorf("read idempotency key: %w", err)
	}
	if replay, err := answered(existing, req); replay != nil || err != nil {
		return IdempotencyRecord{}, replay, err
	}
	taken, err := hold.TakeOverIdempotencyKey(ctx, now)
	if err != nil {
		return IdempotencyRecord{}, nil, fmt.Errorf("take over idempotency key: %w", err)
	}
	s.logger.WarnContext(ctx, "took over an idempotency key left in progress by a failed or dead request",
		slog.String("user_id", req.UserID), slog.String("payment_id", taken.PaymentID),
		slog.Time("claimed_at", existing.UpdatedAt))
	return taken, nil, nil
}

// busy answers a request whose key another live process holds, from what the key's row says:
// ErrIdempotencyKeyReused when it was used with another request, its stored response when it has one, and
// otherwise ErrIdempotencyKeyInUse (a concurrent duplicate).
func (s *Service) busy(ctx context.Context, req PayRequest) (Response, error) {
	existing, err := s.repo.GetIdempotencyKey(ctx, req.UserID, req.IdempotencyKey)
	if errors.Is(err, ErrIdempotencyKeyNotFound) {
		return Response{}, billingapi.ErrIdempotencyKeyInUse // its holder has not recorded it yet, or just deleted it
	}
	if err != nil {
		return Response{}, fmt.Errorf("read idempotency key: %w", err)
	}
	replay, err := answered(existing, req)
	if err != nil {
		return Response{}, err
	}
	if replay == nil {
		return Response{}, billingapi.ErrIdempotencyKeyInUse
	}
	return *replay, nil
}

// answered applies the rules for a key used before to existing, its row: ErrIdempotencyKeyReused when req is
// another request, the stored response (Replayed) when the first one completed, and neither while it is in
// progress.
func answered(existing IdempotencyRecord, req PayRequest) (*Response, error) {
	if !bytes.Equal(existing.RequestHash, req.RequestHash) {
		return nil, billingapi.ErrIdempotencyKeyReused
	}
	if existing.State != KeyStateDone {
		return nil, nil
	}
	resp := existing.Response
	resp.Replayed = true
	return &resp, nil
}
