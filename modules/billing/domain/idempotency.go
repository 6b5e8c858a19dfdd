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

// claimAttempts bounds how often claim starts over when the key's row changes under it (deleted by a failed
// request, taken over by another retry).
const claimAttempts = 3

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

// claim applies the idempotency rules to a pay request. It returns either the record the caller now holds
// (a new key, or a stale one taken over, keeping its payment id) or the stored response to replay; a key
// used with another request is ErrIdempotencyKeyReused, and one still being processed ErrIdempotencyKeyInUse.
func (s *Service) claim(ctx context.Context, req PayRequest) (IdempotencyRecord, *Response, error) {
	for range claimAttempts {
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
		err = s.repo.CreateIdempotencyKey(ctx, rec)
		if err == nil {
			return rec, nil, nil
		}
		if !errors.Is(err, ErrIdempotencyKeyExists) {
			return IdempotencyRecord{}, nil, fmt.Errorf("record idempotency key: %w", err)
		}
		existing, err := s.repo.GetIdempotencyKey(ctx, req.UserID, req.IdempotencyKey)
		if errors.Is(err, ErrIdempotencyKeyNotFound) {
			continue // deleted by a failed request since: start over
		}
		if err != nil {
			return IdempotencyRecord{}, nil, fmt.Errorf("read idempotency key: %w", err)
		}
		if !bytes.Equal(existing.RequestHash, req.RequestHash) {
			return IdempotencyRecord{}, nil, billingapi.ErrIdempotencyKeyReused
		}
		if existing.State == KeyStateDone {
			resp := existing.Response
			resp.Replayed = true
			return IdempotencyRecord{}, &resp, nil
		}
		staleBefore := now.Add(-s.opts.StaleAfter)
		if !existing.UpdatedAt.Before(staleBefore) {
			return IdempotencyRecord{}, nil, billingapi.ErrIdempotencyKeyInUse
		}
		taken, err := s.repo.TakeOverIdempotencyKey(ctx, req.UserID, req.IdempotencyKey, staleBefore, now)
		if errors.Is(err, ErrIdempotencyKeyNotFound) {
			continue // another retry took it over, or it completed or was deleted: look again
		}
		if err != nil {
			return IdempotencyRecord{}, nil, fmt.Errorf("take over idempotency key: %w", err)
		}
		s.logger.WarnContext(ctx, "took over a stale idempotency key",
			slog.String("user_id", req.UserID), slog.String("payment_id", taken.PaymentID),
			slog.Time("claimed_at", existing.UpdatedAt))
		return taken, nil, nil
	}
	return IdempotencyRecord{}, nil, billingapi.ErrIdempotencyKeyInUse
}
