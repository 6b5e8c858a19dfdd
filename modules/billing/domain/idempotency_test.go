package billingdomain_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	billingapi "github.com/seamkit/seam/modules/billing/api"
	billingdomain "github.com/seamkit/seam/modules/billing/domain"
)

func TestValidateIdempotencyKey(t *testing.T) {
	tests := []struct {
		key  string
		want error
	}{
		{"k", nil},
		{"pay-0190a000-0000-7000-8000-00000000a11c", nil},
		{"spaces and ~!@#$%^&*() are printable", nil},
		{strings.Repeat("k", 255), nil},
		{"", billingapi.ErrIdempotencyKeyMissing},
		{strings.Repeat("k", 256), billingapi.ErrIdempotencyKeyInvalid},
		{"tab\there", billingapi.ErrIdempotencyKeyInvalid},
		{"new\nline", billingapi.ErrIdempotencyKeyInvalid},
		{"del\x7f", billingapi.ErrIdempotencyKeyInvalid},
		{"ünïcode", billingapi.ErrIdempotencyKeyInvalid},
	}
	for _, tt := range tests {
		if err := billingdomain.ValidateIdempotencyKey(tt.key); !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
			t.Errorf("ValidateIdempotencyKey(%q) = %v, want %v", tt.key, err, tt.want)
		}
	}
}

func TestRequestHash(t *testing.T) {
	base := billingdomain.RequestHash("POST", "/api/billing/invoices/a/pay", []byte(`{"payment_method":"pm_card_visa"}`))
	if len(base) != 32 {
		t.Fatalf("hash has %d bytes, want 32 (SHA-256)", len(base))
	}
	if again := billingdomain.RequestHash("POST", "/api/billing/invoices/a/pay", []byte(`{"payment_method":"pm_card_visa"}`)); !bytes.Equal(base, again) {
		t.Errorf("the same request hashes differently")
	}
	others := [][]byte{
		billingdomain.RequestHash("PUT", "/api/billing/invoices/a/pay", []byte(`{"payment_method":"pm_card_visa"}`)),
		billingdomain.RequestHash("POST", "/api/billing/invoices/b/pay", []byte(`{"payment_method":"pm_card_visa"}`)),
		billingdomain.RequestHash("POST", "/api/billing/invoices/a/pay", []byte(`{"payment_method":"pm_card_mastercard"}`)),
		// The separators keep the parts apart: moving bytes between method and path changes the hash.
		billingdomain.RequestHash("POST/", "api/billing/invoices/a/pay", []byte(`{"payment_method":"pm_card_visa"}`)),
	}
	for i, h := range others {
		if bytes.Equal(base, h) {
			t.Errorf("request %d hashes like the base request", i)
		}
	}
}
