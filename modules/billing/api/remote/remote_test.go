package billingremote_test

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	billingapi "github.com/seamkit/seam/modules/billing/api"
	billingremote "github.com/seamkit/seam/modules/billing/api/remote"
	"github.com/seamkit/seam/platform/identity"
	"github.com/seamkit/seam/platform/rpc/rpctest"
)

// fakeBilling is an in-memory billing that, like the real one, hides other users' invoices and sees the
// caller's principal.
type fakeBilling struct {
	mu       sync.Mutex
	invoices map[string]billingapi.Invoice
	callers  []identity.Principal
	// fail, when set, is what every call returns.
	fail error
}

func (f *fakeBilling) GetInvoice(ctx context.Context, userID, invoiceID string) (billingapi.Invoice, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if p, ok := identity.From(ctx); ok {
		f.callers = append(f.callers, p)
	}
	if f.fail != nil {
		return billingapi.Invoice{}, f.fail
	}
	inv, ok := f.invoices[invoiceID]
	if !ok || inv.UserID != userID {
		return billingapi.Invoice{}, billingapi.ErrInvoiceNotFound
	}
	return inv, nil
}

func TestGeneratedClientAgainstGeneratedServer(t *testing.T) {
	conn := rpctest.Connect(t)
	paid := time.Date(2026, 11, 2, 10, 30, 0, 123456789, time.UTC)
	inv := billingapi.Invoice{ID: "inv-1", UserID: "u-1", AmountMinor: 1250, Currency: "EUR",
		Description: "Pro plan", Status: billingapi.StatusPaid, CreatedAt: paid.Add(-time.Hour), PaidAt: &paid}
	impl := &fakeBilling{invoices: map[string]billingapi.Invoice{inv.ID: inv}}
	svc, err := billingremote.ServeBilling(conn, impl, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("ServeBilling: %v", err)
	}
	t.Cleanup(func() { _ = svc.Stop() })

	client := billingremote.NewBillingClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	caller := identity.Principal{UserID: "u-1", Email: "a@example.com", Role: identity.RoleUser}
	got, err := client.GetInvoice(identity.With(ctx, caller), "u-1", "inv-1")
	if err != nil {
		t.Fatalf("GetInvoice: %v", err)
	}
	if diff := cmp.Diff(inv, got); diff != "" {
		t.Fatalf("invoice (-want +got):\n%s", diff)
	}
	if _, err := client.GetInvoice(ctx, "u-2", "inv-1"); !errors.Is(err, billingapi.ErrInvoiceNotFound) {
		t.Fatalf("another user's invoice: err = %v, want ErrInvoiceNotFound", err)
	}
	impl.mu.Lock()
	defer impl.mu.Unlock()
	if len(impl.callers) != 1 || impl.callers[0] != caller {
		t.Fatalf("server saw callers %+v, want [%+v]", impl.callers, caller)
	}
	if info := svc.Info(); info.Name != "seam-billing" || len(info.Endpoints) != 1 ||
		info.Endpoints[0].Subject != billingremote.SubjectGetInvoice {
		t.Fatalf("service info = %+v", info)
	}
}
