package billingdomain

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// PaymentRequest is what billing asks a payment provider to charge. PaymentID is billing's own id for the
// attempt and doubles as the provider's idempotency key: charging the same PaymentID twice must not charge
// twice.
type PaymentRequest struct {
	PaymentID     string
	InvoiceID     string
	UserID        string
	Amount        Money
	PaymentMethod string
}

// PaymentResult is a provider's answer to a charge. ProviderRef identifies the charge at the provider (also
// for a decline) and is what Refund takes; DeclineCode is a stable machine code and DeclineReason a sentence
// for people, both empty when Approved.
type PaymentResult struct {
	Approved      bool
	ProviderRef   string
	DeclineCode   string
	DeclineReason string
}

// PaymentProvider is the port through which billing moves money; adapters for real providers implement it.
// A decline is an answer, reported as a PaymentResult with Approved false and a nil error. An error means
// there is no answer: the provider could not be reached (ErrProviderUnavailable, or the context's error), or
// refused the request as malformed (ErrUnknownPaymentMethod, ErrInvalidAmount, ErrUnknownCurrency,
// ErrInvalidPaymentRequest, ErrUnknownProviderRef), so nothing was charged or refunded.
type PaymentProvider interface {
	// Charge takes req.Amount from req.PaymentMethod, idempotently per req.PaymentID.
	Charge(ctx context.Context, req PaymentRequest) (PaymentResult, error)
	// Refund returns amount of the charge providerRef to the payer and gives the refund's reference.
	Refund(ctx context.Context, providerRef string, amount Money) (string, error)
}

// The errors a PaymentProvider returns when it gives no answer; match them with errors.Is.
var (
	// ErrProviderUnavailable means the provider could not be reached or did not answer; retrying later may
	// succeed.
	ErrProviderUnavailable = errors.New("payment provider unavailable")
	// ErrUnknownPaymentMethod means the provider does not know the payment method at all (as opposed to
	// declining it), so the caller should ask for another one.
	ErrUnknownPaymentMethod = errors.New("unknown payment method")
	// ErrInvalidPaymentRequest means a charge lacks what the provider needs to process it, such as a
	// PaymentID.
	ErrInvalidPaymentRequest = errors.New("invalid payment request")
	// ErrUnknownProviderRef means a refund names a charge the provider never issued.
	ErrUnknownProviderRef = errors.New("unknown provider reference")
)

// The test payment methods SimulatedProvider accepts.
const (
	// MethodCardVisa is a Visa card that is always approved.
	MethodCardVisa = "pm_card_visa"
	// MethodCardMastercard is a Mastercard that is always approved.
	MethodCardMastercard = "pm_card_mastercard"
	// MethodCardDeclined is a card that is always declined with DeclineCardDeclined.
	MethodCardDeclined = "pm_card_declined"
	// MethodCardInsufficientFunds is a card that is always declined with DeclineInsufficientFunds.
	MethodCardInsufficientFunds = "pm_card_insufficient_funds"
	// MethodCardExpired is a card that is always declined with DeclineExpiredCard.
	MethodCardExpired = "pm_card_expired"
)

// The decline codes SimulatedProvider reports in PaymentResult.DeclineCode.
const (
	// DeclineCardDeclined is a decline without a more specific reason.
	DeclineCardDeclined = "card_declined"
	// DeclineInsufficientFunds means the account cannot cover the amount.
	DeclineInsufficientFunds = "insufficient_funds"
	// DeclineExpiredCard means the card is past its expiry date.
	DeclineExpiredCard = "expired_card"
)

// simulatedRefPrefix starts every charge reference SimulatedProvider issues.
const simulatedRefPrefix = "sim_"

// simulatedOutcomes is what SimulatedProvider answers for each test payment method.
var simulatedOutcomes = map[string]PaymentResult{
	MethodCardVisa:              {Approved: true},
	MethodCardMastercard:        {Approved: true},
	MethodCardDeclined:          {DeclineCode: DeclineCardDeclined, DeclineReason: "The card was declined."},
	MethodCardInsufficientFunds: {DeclineCode: DeclineInsufficientFunds, DeclineReason: "The card has insufficient funds."},
	MethodCardExpired:           {DeclineCode: DeclineExpiredCard, DeclineReason: "The card has expired."},
}

// PaymentMethods lists, sorted, the test payment methods SimulatedProvider accepts, for documentation and for
// validating input before it reaches the provider. The caller owns the returned slice.
func PaymentMethods() []string {
	return slices.Sorted(maps.Keys(simulatedOutcomes))
}

// SimulatedProvider is a deterministic, stateless PaymentProvider for development, demos and tests; it moves
// no money. Its answer depends only on the request:
//
//   - pm_card_visa, pm_card_mastercard: approved.
//   - pm_card_declined: declined with "card_declined".
//   - pm_card_insufficient_funds: declined with "insufficient_funds".
//   - pm_card_expired: declined with "expired_card".
//   - any other method: ErrUnknownPaymentMethod.
//   - an amount whose last two digits of minor units are 13 (1013, 13, 99913), in any currency and with any
//     method: ErrProviderUnavailable, to simulate an outage. This is checked before the payment method, as a
//     provider that cannot be reached does not look at the request.
//
// The charge reference is "sim_" + PaymentID, so a retried charge gets the same reference, as a real provider
// honouring an idempotency key would give. A cancelled or expired context is returned as its error before
// anything else is looked at.
type SimulatedProvider struct{}

var _ PaymentProvider = SimulatedProvider{}

// Charge answers req as the SimulatedProvider documentation describes; it also refuses a request without a
// PaymentID (ErrInvalidPaymentRequest) or with an amount NewMoney would refuse.
func (SimulatedProvider) Charge(ctx context.Context, req PaymentRequest) (PaymentResult, error) {
	if err := ctx.Err(); err != nil {
		return PaymentResult{}, fmt.Errorf("simulated charge: %w", err)
	}
	if req.PaymentID == "" {
		return PaymentResult{}, fmt.Errorf("simulated charge: %w: payment id is empty", ErrInvalidPaymentRequest)
	}
	if _, err := NewMoney(req.Amount.AmountMinor, req.Amount.Currency); err != nil {
		return PaymentResult{}, fmt.Errorf("simulated charge: %w", err)
	}
	if simulatesOutage(req.Amount) {
		return PaymentResult{}, fmt.Errorf("simulated charge of %s: %w", req.Amount, ErrProviderUnavailable)
	}
	result, ok := simulatedOutcomes[req.PaymentMethod]
	if !ok {
		return PaymentResult{}, fmt.Errorf("simulated charge: %w %q (test methods: %s)",
			ErrUnknownPaymentMethod, req.PaymentMethod, strings.Join(PaymentMethods(), ", "))
	}
	result.ProviderRef = simulatedRefPrefix + req.PaymentID
	return result, nil
}

// Refund accepts any valid amount against a reference SimulatedProvider issued (it keeps no state, so it
// cannot refuse refunding more than was charged) and returns "sim_re_" + the charge's PaymentID + "_" + the
// amount in minor units, so a retried refund gets the same reference. Amounts ending in 13 minor units fail
// with ErrProviderUnavailable, as for Charge.
func (SimulatedProvider) Refund(ctx context.Context, providerRef string, amount Money) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("simulated refund: %w", err)
	}
	paymentID, ok := strings.CutPrefix(providerRef, simulatedRefPrefix)
	if !ok || paymentID == "" {
		return "", fmt.Errorf("simulated refund: %w %q", ErrUnknownProviderRef, providerRef)
	}
	if _, err := NewMoney(amount.AmountMinor, amount.Currency); err != nil {
		return "", fmt.Errorf("simulated refund: %w", err)
	}
	if simulatesOutage(amount) {
		return "", fmt.Errorf("simulated refund of %s: %w", amount, ErrProviderUnavailable)
	}
	return simulatedRefPrefix + "re_" + paymentID + "_" + strconv.FormatInt(amount.AmountMinor, 10), nil
}

// simulatesOutage reports whether SimulatedProvider plays unreachable for amount.
func simulatesOutage(amount Money) bool {
	return amount.AmountMinor%100 == 13
}
