package billingdomain_test

import (
	"errors"
	"math"
	"testing"

	billingdomain "github.com/seamkit/seam/modules/billing/domain"
)

func TestNewMoney(t *testing.T) {
	tests := []struct {
		name     string
		amount   int64
		currency string
		wantErr  error
	}{
		{"one cent", 1, "EUR", nil},
		{"typical", 1250, "USD", nil},
		{"zero-decimal currency", 1000, "JPY", nil},
		{"three-decimal currency", 1234, "KWD", nil},
		{"maximum", billingdomain.MaxAmountMinor, "EUR", nil},
		{"zero", 0, "EUR", billingdomain.ErrInvalidAmount},
		{"negative", -100, "EUR", billingdomain.ErrInvalidAmount},
		{"min int64", math.MinInt64, "EUR", billingdomain.ErrInvalidAmount},
		{"above maximum", billingdomain.MaxAmountMinor + 1, "EUR", billingdomain.ErrInvalidAmount},
		{"max int64", math.MaxInt64, "EUR", billingdomain.ErrInvalidAmount},
		{"lower-case currency", 100, "eur", billingdomain.ErrUnknownCurrency},
		{"empty currency", 100, "", billingdomain.ErrUnknownCurrency},
		{"made-up currency", 100, "ABC", billingdomain.ErrUnknownCurrency},
		{"testing code", 100, "XTS", billingdomain.ErrUnknownCurrency},
		{"metal", 100, "XAU", billingdomain.ErrUnknownCurrency},
		{"bad amount and currency: amount reported", 0, "ABC", billingdomain.ErrInvalidAmount},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := billingdomain.NewMoney(tt.amount, tt.currency)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("NewMoney(%d, %q) error = %v, want %v", tt.amount, tt.currency, err, tt.wantErr)
				}
				if got != (billingdomain.Money{}) {
					t.Errorf("NewMoney(%d, %q) = %+v on error, want the zero Money", tt.amount, tt.currency, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("NewMoney(%d, %q) error = %v", tt.amount, tt.currency, err)
			}
			want := billingdomain.Money{AmountMinor: tt.amount, Currency: tt.currency}
			if got != want {
				t.Errorf("NewMoney(%d, %q) = %+v, want %+v", tt.amount, tt.currency, got, want)
			}
		})
	}
}

func TestMoneyString(t *testing.T) {
	tests := []struct {
		money billingdomain.Money
		want  string
	}{
		{billingdomain.Money{AmountMinor: 1250, Currency: "EUR"}, "12.50 EUR"},
		{billingdomain.Money{AmountMinor: 1, Currency: "USD"}, "0.01 USD"},
		{billingdomain.Money{AmountMinor: 100, Currency: "USD"}, "1.00 USD"},
		{billingdomain.Money{AmountMinor: 1000, Currency: "JPY"}, "1000 JPY"},
		{billingdomain.Money{AmountMinor: 1234, Currency: "KWD"}, "1.234 KWD"},
		{billingdomain.Money{AmountMinor: 5, Currency: "BHD"}, "0.005 BHD"},
		{billingdomain.Money{AmountMinor: 12345, Currency: "CLF"}, "1.2345 CLF"},
		{billingdomain.Money{AmountMinor: billingdomain.MaxAmountMinor, Currency: "EUR"}, "1000000000.00 EUR"},
		{billingdomain.Money{AmountMinor: -1250, Currency: "EUR"}, "-12.50 EUR"},
		{billingdomain.Money{AmountMinor: -5, Currency: "EUR"}, "-0.05 EUR"},
		{billingdomain.Money{AmountMinor: math.MinInt64, Currency: "EUR"}, "-92233720368547758.08 EUR"},
		{billingdomain.Money{AmountMinor: 1250, Currency: "ABC"}, "1250 ABC"},
		{billingdomain.Money{}, "0"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.money.String(); got != tt.want {
				t.Errorf("%+v.String() = %q, want %q", tt.money, got, tt.want)
			}
		})
	}
}
