package billingdomain

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	authapi "github.com/seamkit/seam/modules/auth/api"
	billingapi "github.com/seamkit/seam/modules/billing/api"
	"github.com/seamkit/seam/platform/errs"
)

// cleanupTimeout bounds deleting a key after a failed request.
const cleanupTimeout = 5 * time.Second

// MaxPaymentMethodLength is the longest payment method identifier billing passes to a provider.
const MaxPaymentMethodLength = 255

// PayRequest asks to pay one of the user's invoices.
type PayRequest struct {
	UserID        string
	InvoiceID     string
	PaymentMethod string
	// IdempotencyKey is the client's Idempotency-Key, scoped to UserID.
	IdempotencyKey string
	// RequestHash fingerprints the request (see RequestHash).
	RequestHash []byte
}

// PayResult is a successful payment and the invoice it paid. For a declined payment, the error says so and
// Payment holds the failed attempt.
type PayResult struct {
	Payment billingapi.Payment
	Invoice billingapi.Invoice
}

// Responder renders the outcome of a pay request (a result, or a business error such as
// billingapi.ErrPaymentDeclined) as the response stored on its idempotency key. It runs inside the payment's
// transaction.
type Responder func(result PayResult, err error) (Response, error)

// ValidatePaymentMethod checks that a payment method was given, as a validation error on "payment_method".
// Whether the provider knows it is for the provider to say (billingapi.ErrUnknownPaymentMethod).
func ValidatePaymentMethod(method string) error {
	var c errs.Collector
	c.Check(method != "" && len(method) <= MaxPaymentMethodLength, "payment_method",
		"is required, at most %d characters", MaxPaymentMethodLength)
	return c.Err()
}

// Pay pays an invoice at most once per idempotency key, Stripe-style:
//
//   - The request first takes the key's liveness lock (Repository.HoldIdempotencyKey), a database session
//     lock that lives as long as this process's connection, and keeps it until it returns.
//   - A new key is recorded (in progress) in its own transaction, then the payment runs and, in ONE
//     transaction, its payment row, the invoice's new status, its event and the response rendered by respond
//     are stored. That response is returned.
//   - The same key with the same request returns the stored response (Replayed); with another request it is
//     billingapi.ErrIdempotencyKeyReused; while the first is still in progress (its process holds the lock),
//     billingapi.ErrIdempotencyKeyInUse. A key left in progress by a process that died (its lock is free)
//     is taken over at once, keeping its payment id: see claim.
//   - Business outcomes (invoice not found, already paid, declined, unknown payment method) are stored and
//     replayed like successes. Other failures (provider unavailable, internal errors) are returned and free
//     the key for a retry: it is deleted when nothing was charged, or left in progress with its payment id
//     when the provider approved a charge that could not be recorded, so the retry takes it over and its
//     charge is deduplicated by the provider.
//
// Once the key is claimed the request runs to its end, within Options.PaymentTimeout, even if ctx ends:
// a client that hangs up mid-charge must not leave the key half-processed.
func (s *Service) Pay(ctx context.Context, req PayRequest, respond Responder) (Response, error) {
	if err := ValidateIdempotencyKey(req.IdempotencyKey); err != nil {
		return Response{}, err
	}
	if err := ValidatePaymentMethod(req.PaymentMethod); err != nil {
		return Response{}, err
	}
	hold, err := s.repo.HoldIdempotencyKey(ctx, req.UserID, req.IdempotencyKey)
	if errors.Is(err, ErrIdempotencyKeyHeld) {
		return s.busy(ctx, req)
	}
	if err != nil {
		return Response{}, fmt.Errorf("hold idempotency key: %w", err)
	}
	defer hold.Release()
	rec, replay, err := s.claim(ctx, hold, req)
	if err != nil {
		return Response{}, err
	}
	if replay != nil {
		return *replay, nil
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.PaymentTimeout)
	defer cancel()
	resp, charged, err := s.process(pctx, hold, req, rec, respond)
	if err != nil {
		s.abandon(ctx, hold, rec, charged, err)
		return Response{}, err
	}
	return resp, nil
}

// process runs a claimed pay request and stores its response. charged reports whether the provider approved
// a charge, which matters only when err is not nil.
//
// Concurrency: the provider is called while the invoice row is locked (SELECT ... FOR UPDATE), inside the
// transaction that records the outcome. Two requests paying the same invoice (with different keys) therefore
// run one after the other: the second waits for the lock, then sees the invoice paid and answers
// ErrInvoiceAlreadyPaid without calling the provider, so an invoice is charged at most once, and a declined
// attempt leaves it open for the next. The alternative, a committed "pending" payment marker and a charge
// outside any transaction, holds no lock during the call but needs a sweeper for markers left by crashed
// processes; charging under the lock needs nothing of the kind (a crash ends the database session, which
// rolls the transaction back and frees the invoice lock and the key's liveness lock together; a retry then
// takes the key over at once with the same payment id, which the provider deduplicates). The transaction
// runs on the connection holding the key's lock, so its cost, that one connection and one row lock held for
// the charge, is bounded by Options.PaymentTimeout, and a request never waits for a second connection. The
// partial unique index on succeeded payments and the open-to-paid compare-and-set in MarkInvoicePaid back
// this up in the database.
func (s *Service) process(ctx context.Context, hold KeyHold, req PayRequest, rec IdempotencyRecord, respond Responder) (Response, bool, error) {
	user, err := s.user(ctx, req.UserID)
	if err != nil {
		return Response{}, false, err
	}
	var (
		resp    Response
		charged bool
	)
	err = hold.InPaymentTx(ctx, func(ctx context.Context, tx PaymentTx) error {
		charged = false
		result, outcome, err := s.payLocked(ctx, tx, req, rec, user, &charged)
		if err != nil {
			return err
		}
		resp, err = respond(result, outcome)
		if err != nil {
			return fmt.Errorf("render pay response: %w", err)
		}
		if err := tx.CompleteIdempotencyKey(ctx, rec, resp, s.now()); err != nil {
			return fmt.Errorf("store pay response: %w", err)
		}
		return nil
	})
	if err != nil {
		return Response{}, charged, err
	}
	return resp, charged, nil
}

// payLocked locks the invoice and charges it. outcome is the business error to store and replay (nil on
// success); err aborts the transaction.
func (s *Service) payLocked(ctx context.Context, tx PaymentTx, req PayRequest, rec IdempotencyRecord,
	user authapi.User, charged *bool) (result PayResult, outcome, err error) {
	inv, err := tx.LockInvoice(ctx, req.UserID, req.InvoiceID)
	if errors.Is(err, billingapi.ErrInvoiceNotFound) {
		return PayResult{}, billingapi.ErrInvoiceNotFound, nil
	}
	if err != nil {
		return PayResult{}, nil, fmt.Errorf("lock invoice: %w", err)
	}
	if inv.Status != billingapi.StatusOpen {
		return PayResult{}, billingapi.ErrInvoiceAlreadyPaid, nil
	}
	amount, err := NewMoney(inv.AmountMinor, inv.Currency)
	if err != nil {
		return PayResult{}, nil, fmt.Errorf("invoice %s: %w", inv.ID, err)
	}
	res, err := s.provider.Charge(ctx, PaymentRequest{
		PaymentID:     rec.PaymentID,
		InvoiceID:     inv.ID,
		UserID:        inv.UserID,
		Amount:        amount,
		PaymentMethod: req.PaymentMethod,
	})
	switch {
	case errors.Is(err, ErrUnknownPaymentMethod):
		return PayResult{}, billingapi.ErrUnknownPaymentMethod, nil
	case errors.Is(err, ErrProviderUnavailable):
		return PayResult{}, nil, fmt.Errorf("charge invoice %s: %w: %w", inv.ID, billingapi.ErrProviderUnavailable, err)
	case err != nil:
		return PayResult{}, nil, fmt.Errorf("charge invoice %s: %w", inv.ID, err)
	}
	*charged = res.Approved
	now := s.now()
	payment := billingapi.Payment{
		ID:          rec.PaymentID,
		InvoiceID:   inv.ID,
		UserID:      inv.UserID,
		Status:      billingapi.PaymentStatusSucceeded,
		AmountMinor: amount.AmountMinor,
		Currency:    amount.Currency,
		ProviderRef: res.ProviderRef,
		CreatedAt:   now,
	}
	if !res.Approved {
		return s.recordDecline(ctx, tx, inv, payment, res, user)
	}
	if err := tx.InsertPayment(ctx, payment); err != nil {
		return PayResult{}, nil, fmt.Errorf("record payment: %w", err)
	}
	if inv, err = tx.MarkInvoicePaid(ctx, inv.ID, now); err != nil {
		return PayResult{}, nil, fmt.Errorf("mark invoice paid: %w", err)
	}
	err = tx.Publish(ctx, Event{
		Subject: billingapi.SubjectPaymentCompleted,
		Type:    billingapi.EventPaymentCompleted,
		Key:     inv.ID,
		Payload: billingapi.PaymentCompleted{
			PaymentID:   payment.ID,
			InvoiceID:   inv.ID,
			UserID:      inv.UserID,
			Email:       user.Email,
			AmountMinor: payment.AmountMinor,
			Currency:    payment.Currency,
			PaidAt:      now,
		},
	})
	if err != nil {
		return PayResult{}, nil, fmt.Errorf("publish payment completed: %w", err)
	}
	return PayResult{Payment: payment, Invoice: inv}, nil, nil
}

// declineFallback is the decline code recorded when a provider declines without one.
const declineFallback = "declined"

// recordDecline records a declined attempt (a failed payment and PaymentFailed); the invoice stays open.
func (s *Service) recordDecline(ctx context.Context, tx PaymentTx, inv billingapi.Invoice, payment billingapi.Payment,
	res PaymentResult, user authapi.User) (result PayResult, outcome, err error) {
	payment.Status = billingapi.PaymentStatusFailed
	payment.DeclineCode = res.DeclineCode
	if payment.DeclineCode == "" {
		payment.DeclineCode = declineFallback
	}
	if err := tx.InsertPayment(ctx, payment); err != nil {
		return PayResult{}, nil, fmt.Errorf("record declined payment: %w", err)
	}
	err = tx.Publish(ctx, Event{
		Subject: billingapi.SubjectPaymentFailed,
		Type:    billingapi.EventPaymentFailed,
		Key:     inv.ID,
		Payload: billingapi.PaymentFailed{
			PaymentID:   payment.ID,
			InvoiceID:   inv.ID,
			UserID:      inv.UserID,
			Email:       user.Email,
			AmountMinor: payment.AmountMinor,
			Currency:    payment.Currency,
			DeclineCode: payment.DeclineCode,
			FailedAt:    payment.CreatedAt,
		},
	})
	if err != nil {
		return PayResult{}, nil, fmt.Errorf("publish payment failed: %w", err)
	}
	return PayResult{Payment: payment, Invoice: inv}, declined(payment.DeclineCode), nil
}

// declined returns billingapi.ErrPaymentDeclined (it matches with errors.Is) with the provider's decline code
// in its client-visible message.
func declined(declineCode string) error {
	e := *billingapi.ErrPaymentDeclined
	e.Message = fmt.Sprintf("%s (decline code: %s)", e.Message, declineCode)
	return &e
}

// abandon frees a key whose request failed without a stored response, so the client can retry: deleted when
// nothing was charged, left in progress (with its payment id) when a charge was approved and could not be
// recorded, for the retry to take over once Pay releases the hold. If the deletion fails, the key is left
// in progress too, and taken over all the same.
func (s *Service) abandon(ctx context.Context, hold KeyHold, rec IdempotencyRecord, charged bool, cause error) {
	attrs := []any{slog.String("user_id", rec.UserID), slog.String("payment_id", rec.PaymentID), slog.Any("cause", cause)}
	if charged {
		s.logger.ErrorContext(ctx, "payment approved but not recorded; keeping its idempotency key for a retry", attrs...)
		return
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	if err := hold.DeleteIdempotencyKey(cctx, rec); err != nil {
		s.logger.ErrorContext(ctx, "delete idempotency key", append(attrs, slog.Any("error", err))...)
	}
}
