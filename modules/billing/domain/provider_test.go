package billingdomain_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	billingdomain "github.com/seamkit/seam/modules/billing/domain"
)

func eur(amount int64) billingdomain.Money {
	return billingdomain.Money{AmountMinor: amount, Currency: "EUR"}
}

func TestSimulatedProviderPaymentMethods(t *testing.T) {
	want := []string{
		"pm_card_declined",
		"pm_card_expired",
		"pm_card_insufficient_funds",
		"pm_card_mastercard",
		"pm_card_visa",
	}
	got := billingdomain.PaymentMethods()
	if !slices.Equal(got, want) {
		t.Fatalf("PaymentMethods() = %v, want %v", got, want)
	}
	got[0] = "changed"
	if again := billingdomain.PaymentMethods(); !slices.Equal(again, want) {
		t.Errorf("changing the returned slice changed the next result: %v", again)
	}
}

func TestSimulatedProviderCharge(t *testing.T) {
	tests := []struct {
		name    string
		req     billingdomain.PaymentRequest
		want    billingdomain.PaymentResult
		wantErr error
	}{
		{
			name: "visa approved",
			req:  billingdomain.PaymentRequest{PaymentID: "p1", InvoiceID: "i1", UserID: "u1", Amount: eur(1250), PaymentMethod: "pm_card_visa"},
			want: billingdomain.PaymentResult{Approved: true, ProviderRef: "sim_p1"},
		},
		{
			name: "mastercard approved",
			req:  billingdomain.PaymentRequest{PaymentID: "p2", Amount: billingdomain.Money{AmountMinor: 1000, Currency: "JPY"}, PaymentMethod: "pm_card_mastercard"},
			want: billingdomain.PaymentResult{Approved: true, ProviderRef: "sim_p2"},
		},
		{
			name: "declined",
			req:  billingdomain.PaymentRequest{PaymentID: "p3", Amount: eur(1250), PaymentMethod: "pm_card_declined"},
			want: billingdomain.PaymentResult{ProviderRef: "sim_p3", DeclineCode: "card_declined", DeclineReason: "The card was declined."},
		},
		{
			name: "insufficient funds",
			req:  billingdomain.PaymentRequest{PaymentID: "p4", Amount: eur(1250), PaymentMethod: "pm_card_insufficient_funds"},
			want: billingdomain.PaymentResult{ProviderRef: "sim_p4", DeclineCode: "insufficient_funds", DeclineReason: "The card has insufficient funds."},
		},
		{
			name: "expired",
			req:  billingdomain.PaymentRequest{PaymentID: "p5", Amount: eur(1250), PaymentMethod: "pm_card_expired"},
			want: billingdomain.PaymentResult{ProviderRef: "sim_p5", DeclineCode: "expired_card", DeclineReason: "The card has expired."},
		},
		{
			name:    "unknown method",
			req:     billingdomain.PaymentRequest{PaymentID: "p6", Amount: eur(1250), PaymentMethod: "pm_card_amex"},
			wantErr: billingdomain.ErrUnknownPaymentMethod,
		},
		{
			name:    "empty method",
			req:     billingdomain.PaymentRequest{PaymentID: "p7", Amount: eur(1250)},
			wantErr: billingdomain.ErrUnknownPaymentMethod,
		},
		{
			name:    "method is case-sensitive",
			req:     billingdomain.PaymentRequest{PaymentID: "p8", Amount: eur(1250), PaymentMethod: "PM_CARD_VISA"},
			wantErr: billingdomain.ErrUnknownPaymentMethod,
		},
		{
			name:    "outage on amount ending in 13",
			req:     billingdomain.PaymentRequest{PaymentID: "p9", Amount: eur(1013), PaymentMethod: "pm_card_visa"},
			wantErr: billingdomain.ErrProviderUnavailable,
		},
		{
			name:    "outage on 13 minor units",
			req:     billingdomain.PaymentRequest{PaymentID: "p10", Amount: eur(13), PaymentMethod: "pm_card_declined"},
			wantErr: billingdomain.ErrProviderUnavailable,
		},
		{
			name:    "outage in a zero-decimal currency",
			req:     billingdomain.PaymentRequest{PaymentID: "p11", Amount: billingdomain.Money{AmountMinor: 2013, Currency: "JPY"}, PaymentMethod: "pm_card_visa"},
			wantErr: billingdomain.ErrProviderUnavailable,
		},
		{
			name:    "outage comes before the method check",
			req:     billingdomain.PaymentRequest{PaymentID: "p12", Amount: eur(1013), PaymentMethod: "pm_nope"},
			wantErr: billingdomain.ErrProviderUnavailable,
		},
		{
			name: "113 is not an outage",
			req:  billingdomain.PaymentRequest{PaymentID: "p13", Amount: eur(1130), PaymentMethod: "pm_card_visa"},
			want: billingdomain.PaymentResult{Approved: true, ProviderRef: "sim_p13"},
		},
		{
			name:    "missing payment id",
			req:     billingdomain.PaymentRequest{Amount: eur(1250), PaymentMethod: "pm_card_visa"},
			wantErr: billingdomain.ErrInvalidPaymentRequest,
		},
		{
			name:    "zero amount",
			req:     billingdomain.PaymentRequest{PaymentID: "p14", Amount: eur(0), PaymentMethod: "pm_card_visa"},
			wantErr: billingdomain.ErrInvalidAmount,
		},
		{
			name:    "unknown currency",
			req:     billingdomain.PaymentRequest{PaymentID: "p15", Amount: billingdomain.Money{AmountMinor: 100, Currency: "XXX"}, PaymentMethod: "pm_card_visa"},
			wantErr: billingdomain.ErrUnknownCurrency,
		},
	}
	var provider billingdomain.PaymentProvider = billingdomain.SimulatedProvider{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := provider.Charge(t.Context(), tt.req)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Charge error = %v, want %v", err, tt.wantErr)
				}
				if got != (billingdomain.PaymentResult{}) {
					t.Errorf("Charge = %+v on error, want the zero result", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("Charge error = %v", err)
			}
			if got != tt.want {
				t.Errorf("Charge = %+v, want %+v", got, tt.want)
			}
			again, err := provider.Charge(t.Context(), tt.req)
			if err != nil || again != got {
				t.Errorf("retried Charge = %+v, %v; want the same %+v", again, err, got)
			}
		})
	}
}

func TestSimulatedProviderRefund(t *testing.T) {
	tests := []struct {
		name    string
		ref     string
		amount  billingdomain.Money
		want    string
		wantErr error
	}{
		{name: "full refund", ref: "sim_p1", amount: eur(1250), want: "sim_re_p1_1250"},
		{name: "partial refund", ref: "sim_p1", amount: eur(250), want: "sim_re_p1_250"},
		{name: "outage", ref: "sim_p1", amount: eur(513), wantErr: billingdomain.ErrProviderUnavailable},
		{name: "foreign reference", ref: "ch_123", amount: eur(1250), wantErr: billingdomain.ErrUnknownProviderRef},
		{name: "bare prefix", ref: "sim_", amount: eur(1250), wantErr: billingdomain.ErrUnknownProviderRef},
		{name: "empty reference", ref: "", amount: eur(1250), wantErr: billingdomain.ErrUnknownProviderRef},
		{name: "negative amount", ref: "sim_p1", amount: eur(-1250), wantErr: billingdomain.ErrInvalidAmount},
		{name: "unknown currency", ref: "sim_p1", amount: billingdomain.Money{AmountMinor: 100, Currency: "eur"}, wantErr: billingdomain.ErrUnknownCurrency},
	}
	var provider billingdomain.PaymentProvider = billingdomain.SimulatedProvider{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := provider.Refund(t.Context(), tt.ref, tt.amount)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || got != "" {
					t.Fatalf("Refund = %q, %v; want \"\", %v", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Refund = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestSimulatedProviderHonoursContext(t *testing.T) {
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	expired, stop := context.WithDeadline(t.Context(), time.Unix(0, 0))
	defer stop()
	contexts := []struct {
		name    string
		ctx     context.Context
		wantErr error
	}{
		{"cancelled", cancelled, context.Canceled},
		{"deadline exceeded", expired, context.DeadlineExceeded},
	}
	provider := billingdomain.SimulatedProvider{}
	req := billingdomain.PaymentRequest{PaymentID: "p1", Amount: eur(1250), PaymentMethod: "pm_card_visa"}
	for _, tt := range contexts {
		t.Run(tt.name, func(t *testing.T) {
			if res, err := provider.Charge(tt.ctx, req); !errors.Is(err, tt.wantErr) || res.Approved {
				t.Errorf("Charge = %+v, %v; want %v", res, err, tt.wantErr)
			}
			if ref, err := provider.Refund(tt.ctx, "sim_p1", eur(1250)); !errors.Is(err, tt.wantErr) || ref != "" {
				t.Errorf("Refund = %q, %v; want %v", ref, err, tt.wantErr)
			}
		})
	}
}
