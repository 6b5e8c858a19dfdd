package billingremote_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	billingapi "github.com/seamkit/seam/modules/billing/api"
	billingremote "github.com/seamkit/seam/modules/billing/api/remote"
	"github.com/seamkit/seam/platform/identity"
	"github.com/seamkit/seam/platform/migrate"
	"github.com/seamkit/seam/platform/pgtest"
	"github.com/seamkit/seam/platform/route"
	"github.com/seamkit/seam/platform/rpc/rpctest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// splitBilling routes billing in split mode from state, its local side local and its remote side remote
// served over a real NATS server, its routing stored in a fresh PostgreSQL database.
func splitBilling(t *testing.T, local, remote billingapi.Billing, state route.State) (billingapi.Billing, *route.Module) {
	t.Helper()
	conn := rpctest.Connect(t)
	svc, err := billingremote.ServeBilling(conn, remote, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop() })
	pool := pgtest.NewPool(t)
	if err := migrate.Up(t.Context(), pool, "billing", nil, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	tbl := route.NewTable(slog.New(slog.DiscardHandler), nil)
	mod, err := tbl.Add(route.ModuleConfig{Name: "billing", Mode: route.ModeSplit, Methods: billingremote.BillingMethods,
		Initial: state, Store: route.NewPGStore(pool, "billing"), Rule: route.Rule{Disabled: true}})
	if err != nil {
		t.Fatal(err)
	}
	if err := tbl.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tbl.Stop(context.Background()) })
	return billingremote.NewBillingRouter(local, billingremote.NewBillingClient(conn), mod), mod
}

// waitDiscrepancies polls the module's stored discrepancies until there are n.
func waitDiscrepancies(t *testing.T, mod *route.Module, n int) []route.Discrepancy {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ds, err := mod.Discrepancies(t.Context(), 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) >= n {
			return ds
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d discrepancies after 10s, want %d: %+v", len(ds), n, ds)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestShadowedReadsAnswerFromThePrimaryAndRecordDifferences(t *testing.T) {
	if testing.Short() {
		t.Skip("needs PostgreSQL and NATS")
	}
	open := billingapi.Invoice{ID: "inv-1", UserID: "u-1", AmountMinor: 100, Currency: "EUR", Status: billingapi.StatusOpen}
	paid := open
	paid.Status = billingapi.StatusPaid
	local := &fakeBilling{invoices: map[string]billingapi.Invoice{"inv-1": open}}
	remote := &fakeBilling{invoices: map[string]billingapi.Invoice{"inv-1": paid}}
	router, mod := splitBilling(t, local, remote, route.State{RemoteBP: 0, Shadow: true})
	ctx := identity.With(t.Context(), identity.Principal{UserID: "u-1", Role: identity.RoleUser})

	got, err := router.GetInvoice(ctx, "u-1", "inv-1")
	if err != nil || got.Status != billingapi.StatusOpen {
		t.Fatalf("GetInvoice = %+v, %v; want the local (primary) answer", got, err)
	}
	ds := waitDiscrepancies(t, mod, 1)
	if ds[0].Primary != "local" || ds[0].Method != "GetInvoice" || ds[0].Diff != `$.status: "open" → "paid"` {
		t.Fatalf("discrepancy = %+v", ds[0])
	}

	// An error injected on the shadow side is recorded and never reaches the caller.
	remote.mu.Lock()
	remote.fail = errors.New("injected remote failure")
	remote.mu.Unlock()
	got, err = router.GetInvoice(ctx, "u-1", "inv-1")
	if err != nil || got.Status != billingapi.StatusOpen {
		t.Fatalf("GetInvoice with a failing shadow = %+v, %v; want the local answer", got, err)
	}
	ds = waitDiscrepancies(t, mod, 2)
	if !strings.HasPrefix(ds[0].Diff, "outcome: ok → error ") {
		t.Fatalf("discrepancy of a failing shadow = %q", ds[0].Diff)
	}

	// With everyone remote, the remote side answers and the local one is the shadow.
	remote.mu.Lock()
	remote.fail = nil
	remote.mu.Unlock()
	if _, _, err := mod.Table().Change(t.Context(), route.Change{Module: "billing", RemoteBP: route.Full, Shadow: true, Actor: "test", Reason: "all remote"}); err != nil {
		t.Fatal(err)
	}
	got, err = router.GetInvoice(ctx, "u-1", "inv-1")
	if err != nil || got.Status != billingapi.StatusPaid {
		t.Fatalf("GetInvoice at 100%% = %+v, %v; want the remote answer", got, err)
	}
	ds = waitDiscrepancies(t, mod, 3)
	if ds[0].Primary != "remote" || ds[0].Diff != `$.status: "paid" → "open"` {
		t.Fatalf("discrepancy with the remote primary = %+v", ds[0])
	}
	if w := mod.Method("GetInvoice").MethodWindow(); w[route.Local].Calls != 3 || w[route.Remote].Calls != 3 {
		t.Fatalf("calls per side = %d local, %d remote; want 3 and 3 (primaries and shadows)", w[route.Local].Calls, w[route.Remote].Calls)
	}
}
