package billingdomain

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// MaxAmountMinor is the largest amount, in minor units of any currency, that billing accepts (1e11, a billion
// euros in cents); anything above it is refused as absurd rather than risked near int64 overflow.
const MaxAmountMinor int64 = 1_000_000_000_00

// The errors NewMoney wraps; match them with errors.Is.
var (
	// ErrInvalidAmount means an amount is not positive or exceeds MaxAmountMinor.
	ErrInvalidAmount = errors.New("invalid amount")
	// ErrUnknownCurrency means a currency code is not an active ISO 4217 code billing accepts.
	ErrUnknownCurrency = errors.New("unknown currency")
)

// Money is an amount billing charges: an integer number of minor units (cents for EUR, yen for JPY) of an
// ISO 4217 currency, so no amount ever goes through floating point.
type Money struct {
	AmountMinor int64
	Currency    string
}

// NewMoney returns a validated Money: amountMinor must be in 1..MaxAmountMinor (else ErrInvalidAmount) and
// currency an exact code LookupCurrency knows (else ErrUnknownCurrency).
func NewMoney(amountMinor int64, currency string) (Money, error) {
	if amountMinor <= 0 || amountMinor > MaxAmountMinor {
		return Money{}, fmt.Errorf("%w: %d minor units is outside 1..%d", ErrInvalidAmount, amountMinor, MaxAmountMinor)
	}
	if _, ok := LookupCurrency(currency); !ok {
		return Money{}, fmt.Errorf("%w: %q", ErrUnknownCurrency, currency)
	}
	return Money{AmountMinor: amountMinor, Currency: currency}, nil
}

// String formats m for people, with as many decimals as the currency has minor units: "12.50 EUR",
// "1000 JPY", "1.234 KWD". A Money built by hand with an unknown currency prints its minor units unscaled.
func (m Money) String() string {
	units := 0
	if c, ok := LookupCurrency(m.Currency); ok {
		units = c.MinorUnits
	}
	var b strings.Builder
	abs := uint64(m.AmountMinor)
	if m.AmountMinor < 0 {
		b.WriteByte('-')
		abs = -abs
	}
	if units == 0 {
		b.WriteString(strconv.FormatUint(abs, 10))
	} else {
		scale := uint64(1)
		for range units {
			scale *= 10
		}
		fmt.Fprintf(&b, "%d.%0*d", abs/scale, units, abs%scale)
	}
	if m.Currency != "" {
		b.WriteByte(' ')
		b.WriteString(m.Currency)
	}
	return b.String()
}
