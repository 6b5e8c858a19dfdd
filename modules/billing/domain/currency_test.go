package billingdomain

import (
	"regexp"
	"testing"
)

func TestLookupCurrency(t *testing.T) {
	tests := []struct {
		code      string
		wantOK    bool
		wantUnits int
	}{
		{"USD", true, 2},
		{"EUR", true, 2},
		{"GBP", true, 2},
		{"JPY", true, 0},
		{"KRW", true, 0},
		{"ISK", true, 0},
		{"CLP", true, 0},
		{"XOF", true, 0},
		{"KWD", true, 3},
		{"BHD", true, 3},
		{"TND", true, 3},
		{"OMR", true, 3},
		{"CLF", true, 4},
		{"UYW", true, 4},
		{"XCG", true, 2},
		{"ZWG", true, 2},
		{"SLE", true, 2},
		{"VES", true, 2},
		{"usd", false, 0},
		{"Usd", false, 0},
		{" USD", false, 0},
		{"USD ", false, 0},
		{"US", false, 0},
		{"USDD", false, 0},
		{"", false, 0},
		{"XAU", false, 0},
		{"XAG", false, 0},
		{"XPT", false, 0},
		{"XPD", false, 0},
		{"XTS", false, 0},
		{"XXX", false, 0},
		{"XDR", false, 0},
		{"BOV", false, 0},
		{"USN", false, 0},
		{"HRK", false, 0},
		{"ZWL", false, 0},
		{"SLL", false, 0},
		{"ANG", false, 0},
		{"CUC", false, 0},
		{"VEF", false, 0},
		{"MRO", false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			got, ok := LookupCurrency(tt.code)
			if ok != tt.wantOK {
				t.Fatalf("LookupCurrency(%q) ok = %v, want %v", tt.code, ok, tt.wantOK)
			}
			want := Currency{}
			if tt.wantOK {
				want = Currency{Code: tt.code, MinorUnits: tt.wantUnits}
			}
			if got != want {
				t.Errorf("LookupCurrency(%q) = %+v, want %+v", tt.code, got, want)
			}
		})
	}
}

func TestCurrencyTableIsWellFormed(t *testing.T) {
	code := regexp.MustCompile(`^[A-Z]{3}$`)
	if n := len(minorUnits); n < 150 || n > 170 {
		t.Errorf("the currency table has %d codes; ISO 4217 has about 155 active ones", n)
	}
	for c, units := range minorUnits {
		if !code.MatchString(c) {
			t.Errorf("code %q is not three upper-case letters", c)
		}
		switch units {
		case 0, 2, 3, 4:
		default:
			t.Errorf("%s has %d minor units; ISO 4217 uses 0, 2, 3 or 4", c, units)
		}
	}
}
