package notificationsdomain

import (
	"math"
	"testing"
)

func TestFormatMoney(t *testing.T) {
	tests := []struct {
		amount   int64
		currency string
		want     string
	}{
		{1250, "EUR", "12.50 EUR"},
		{990, "USD", "9.90 USD"},
		{5, "USD", "0.05 USD"},
		{0, "USD", "0.00 USD"},
		{100000000, "GBP", "1000000.00 GBP"},
		{500, "JPY", "500 JPY"},
		{1000, "KRW", "1000 KRW"},
		{1234, "BHD", "1.234 BHD"},
		{7, "KWD", "0.007 KWD"},
		{12345, "CLF", "1.2345 CLF"},
		{-1250, "EUR", "-12.50 EUR"},
		{1250, "eur", "12.50 EUR"},
		{math.MaxInt64, "EUR", "92233720368547758.07 EUR"},
		{math.MinInt64, "EUR", "-92233720368547758.08 EUR"},
	}
	for _, tt := range tests {
		if got := FormatMoney(tt.amount, tt.currency); got != tt.want {
			t.Errorf("FormatMoney(%d, %q) = %q, want %q", tt.amount, tt.currency, got, tt.want)
		}
	}
}

func TestMinorUnits(t *testing.T) {
	for code, want := range map[string]int{"EUR": 2, "USD": 2, "JPY": 0, "KRW": 0, "BHD": 3, "KWD": 3, "JOD": 3,
		"OMR": 3, "TND": 3, "IQD": 3, "LYD": 3, "CLF": 4, "XYZ": 2} {
		if got := MinorUnits(code); got != want {
			t.Errorf("MinorUnits(%s) = %d, want %d", code, got, want)
		}
	}
}
