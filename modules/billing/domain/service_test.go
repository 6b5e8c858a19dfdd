package billingdomain_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	billingapi "github.com/seamkit/seam/modules/billing/api"
	billingdomain "github.com/seamkit/seam/modules/billing/domain"
	"github.com/seamkit/seam/platform/errs"
)

func TestCreateInvoice(t *testing.T) {
	e := newEnv(t)
	inv, err := e.svc.CreateInvoice(t.Context(), alice, billingdomain.NewInvoice{AmountMinor: 1250, Currency: "EUR", Description: "March retainer"})
	if err != nil {
		t.Fatalf("CreateInvoice: %v", err)
	}
	if inv.ID == "" || inv.UserID != alice || inv.AmountMinor != 1250 || inv.Currency != "EUR" ||
		inv.Description != "March retainer" || inv.Status != billingapi.StatusOpen || inv.PaidAt != nil {
		t.Fatalf("invoice = %+v", inv)
	}
	if inv.CreatedAt.Nanosecond()%1000 != 0 || inv.CreatedAt.Location() != time.UTC {
		t.Errorf("created_at %v is not UTC microseconds, as the database stores it", inv.CreatedAt)
	}
	st := e.repo.snapshot()
	if diff := cmp.Diff(inv, st.invoices[inv.ID]); diff != "" {
		t.Errorf("stored invoice differs (-returned +stored):\n%s", diff)
	}
	want := []billingdomain.Event{{
		Subject: billingapi.SubjectInvoiceCreated,
		Type:    billingapi.EventInvoiceCreated,
		Key:     inv.ID,
		Payload: billingapi.InvoiceCreated{InvoiceID: inv.ID, UserID: alice, Email: "alice@example.com",
			AmountMinor: 1250, Currency: "EUR", Description: "March retainer", CreatedAt: inv.CreatedAt},
	}}
	if diff := cmp.Diff(want, st.events); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

func TestCreateInvoiceValidation(t *testing.T) {
	tests := []struct {
		name   string
		in     billingdomain.NewInvoice
		fields []string
	}{
		{"zero amount", billingdomain.NewInvoice{AmountMinor: 0, Currency: "EUR", Description: "x"}, []string{"amount_minor"}},
		{"negative amount", billingdomain.NewInvoice{AmountMinor: -5, Currency: "EUR", Description: "x"}, []string{"amount_minor"}},
		{"absurd amount", billingdomain.NewInvoice{AmountMinor: 9_000_000_000_000_000_000, Currency: "EUR", Description: "x"}, []string{"amount_minor"}},
		{"just above the maximum", billingdomain.NewInvoice{AmountMinor: billingdomain.MaxAmountMinor + 1, Currency: "EUR", Description: "x"}, []string{"amount_minor"}},
		{"unknown currency", billingdomain.NewInvoice{AmountMinor: 100, Currency: "XYZ", Description: "x"}, []string{"currency"}},
		{"lower-case currency", billingdomain.NewInvoice{AmountMinor: 100, Currency: "eur", Description: "x"}, []string{"currency"}},
		{"blank description", billingdomain.NewInvoice{AmountMinor: 100, Currency: "EUR", Description: "  \t"}, []string{"description"}},
		{"long description", billingdomain.NewInvoice{AmountMinor: 100, Currency: "EUR", Description: strings.Repeat("é", 501)}, []string{"description"}},
		{"NUL in description", billingdomain.NewInvoice{AmountMinor: 100, Currency: "EUR", Description: "a\x00b"}, []string{"description"}},
		{"everything missing", billingdomain.NewInvoice{}, []string{"amount_minor", "currency", "description"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			_, err := e.svc.CreateInvoice(t.Context(), alice, tt.in)
			if !errors.Is(err, errs.ErrValidation) {
				t.Fatalf("CreateInvoice error = %v, want a validation error", err)
			}
			ve, _ := errs.As(err)
			var got []string
			for _, f := range ve.Fields {
				got = append(got, f.Field)
			}
			if diff := cmp.Diff(tt.fields, got); diff != "" {
				t.Errorf("invalid fields (-want +got):\n%s", diff)
			}
			if st := e.repo.snapshot(); len(st.invoices) != 0 || len(st.events) != 0 {
				t.Errorf("a refused invoice left state behind: %+v", st)
			}
		})
	}
	t.Run("boundaries are accepted", func(t *testing.T) {
		e := newEnv(t)
		for _, in := range []billingdomain.NewInvoice{
			{AmountMinor: 1, Currency: "JPY", Description: "x"},
			{AmountMinor: billingdomain.MaxAmountMinor, Currency: "KWD", Description: strings.Repeat("é", 500)},
			{AmountMinor: 5, Currency: "EUR", Description: "line one\n\tline two"},
		} {
			if _, err := e.svc.CreateInvoice(t.Context(), alice, in); err != nil {
				t.Errorf("CreateInvoice(%+v): %v", in, err)
			}
		}
	})
}

func TestCreateInvoiceForAMissingAccount(t *testing.T) {
	e := newEnv(t)
	e.auth.remove(alice)
	_, err := e.svc.CreateInvoice(t.Context(), alice, billingdomain.NewInvoice{AmountMinor: 100, Currency: "EUR", Description: "x"})
	if !errors.Is(err, billingapi.ErrAccountNotFound) {
		t.Fatalf("error = %v, want ErrAccountNotFound", err)
	}
	if st := e.repo.snapshot(); len(st.invoices) != 0 {
		t.Errorf("invoice stored for a missing account")
	}
}

func TestGetAndListInvoices(t *testing.T) {
	e := newEnv(t)
	first := e.invoice(t, alice, 100)
	second := e.invoice(t, alice, 200)
	bobs := e.invoice(t, bob, 300)

	got, err := e.svc.GetInvoice(t.Context(), alice, first.ID)
	if err != nil || got.ID != first.ID {
		t.Fatalf("GetInvoice(own) = %+v, %v", got, err)
	}
	for _, id := range []string{bobs.ID, "00000000-0000-4000-8000-000000000000", "not-a-uuid"} {
		if _, err := e.svc.GetInvoice(t.Context(), alice, id); !errors.Is(err, billingapi.ErrInvoiceNotFound) {
			t.Errorf("GetInvoice(%s) error = %v, want ErrInvoiceNotFound", id, err)
		}
	}

	list, err := e.svc.ListInvoices(t.Context(), alice, billingdomain.DefaultListLimit)
	if err != nil {
		t.Fatalf("ListInvoices: %v", err)
	}
	if len(list) != 2 || list[0].ID != second.ID || list[1].ID != first.ID {
		t.Errorf("ListInvoices = %+v, want alice's two, newest first", list)
	}
	if list, _ := e.svc.ListInvoices(t.Context(), alice, 1); len(list) != 1 || list[0].ID != second.ID {
		t.Errorf("ListInvoices(limit 1) = %+v", list)
	}
	for _, limit := range []int{0, -1, billingdomain.MaxListLimit + 1} {
		if _, err := e.svc.ListInvoices(t.Context(), alice, limit); !errors.Is(err, errs.ErrValidation) {
			t.Errorf("ListInvoices(limit %d) error = %v, want a validation error", limit, err)
		}
	}
}
