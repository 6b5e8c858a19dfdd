// Package localcall measures a local module call through Seam's generated router (billing's, in local mode,
// with the routing table's metrics registered) against the same call made directly through the
// billingapi.Billing interface, and through a wrapper that only forwards it.
package localcall

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"reflect"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	billingapi "github.com/seamkit/seam/modules/billing/api"
	billingremote "github.com/seamkit/seam/modules/billing/api/remote"
	"github.com/seamkit/seam/platform/identity"
	"github.com/seamkit/seam/platform/route"
	"github.com/seamkit/seam/test/bench/report"
)

// memBilling is an in-memory billingapi.Billing doing a realistic small amount of work: one map lookup
// and an ownership check, returning an Invoice.
type memBilling struct {
	invoices map[string]billingapi.Invoice
}

// GetInvoice returns one of userID's invoices, or billingapi.ErrInvoiceNotFound.
func (m *memBilling) GetInvoice(_ context.Context, userID, invoiceID string) (billingapi.Invoice, error) {
	inv, ok := m.invoices[invoiceID]
	if !ok || inv.UserID != userID {
		return billingapi.Invoice{}, billingapi.ErrInvoiceNotFound
	}
	return inv, nil
}

const (
	userID    = "0193a6a4-7f5e-7c1a-9c1e-000000000001"
	invoiceID = "0193a6a4-7f5e-7c1a-9c1e-1b2d3e4f5a6b"
)

func newMemBilling() *memBilling {
	m := &memBilling{invoices: map[string]billingapi.Invoice{}}
	created := time.Date(2026, 11, 22, 1, 2, 3, 0, time.UTC)
	for i := range 1000 {
		id := fmt.Sprintf("0193a6a4-7f5e-7c1a-9c1e-%012d", i)
		m.invoices[id] = billingapi.Invoice{ID: id, UserID: userID, AmountMinor: 1250, Currency: "EUR",
			Description: "Pro plan, November", Status: billingapi.StatusOpen, CreatedAt: created}
	}
	m.invoices[invoiceID] = billingapi.Invoice{ID: invoiceID, UserID: userID, AmountMinor: 1250, Currency: "EUR",
		Description: "Pro plan, November", Status: billingapi.StatusOpen, CreatedAt: created}
	return m
}

// forwarder is a billingapi.Billing that only passes each call on: what any implementation wrapping
// another one costs before doing anything of its own.
type forwarder struct {
	next billingapi.Billing
}

// GetInvoice calls next's GetInvoice.
func (f *forwarder) GetInvoice(ctx context.Context, userID, invoiceID string) (billingapi.Invoice, error) {
	return f.next.GetInvoice(ctx, userID, invoiceID)
}

// invoiceSize is the size in bytes of the value GetInvoice returns, copied on its way out of the router.
var invoiceSize = reflect.TypeFor[billingapi.Invoice]().Size()

// errWrongInvoice is a call that returned another invoice than the one asked for.
var errWrongInvoice = errors.New("localcall: wrong invoice")

// Result is one run's figures.
type Result struct {
	// PlainNs and RoutedNs are the nanoseconds per call without and with the router.
	PlainNs, RoutedNs float64
	// ForwardedNs is the nanoseconds per call through a wrapper that only forwards it.
	ForwardedNs float64
	// RoutingNs is the nanoseconds of the router's bookkeeping alone (route.Method.Enter, Call.Route when
	// the call is pending, and Call.End), as the router does it.
	RoutingNs float64
	// PlainAllocs and RoutedAllocs are the heap allocations per call without and with the router.
	PlainAllocs, RoutedAllocs int64
}

// Setup is the ways of calling billing that the benchmark compares.
type Setup struct {
	plain, routed, forwarded billingapi.Billing
	method                   *route.Method
	table                    *route.Table
	ctx                      context.Context
}

// NewSetup builds the plain implementation and billing's generated router around it, in local mode, with the
// routing table started and registered as a Prometheus collector (metrics on), as a process does.
func NewSetup(ctx context.Context) (*Setup, error) {
	impl := newMemBilling()
	tbl := route.NewTable(slog.New(slog.DiscardHandler), nil)
	mod, err := tbl.Add(route.ModuleConfig{Name: billingremote.Module, Mode: route.ModeLocal, Methods: billingremote.BillingMethods})
	if err != nil {
		return nil, fmt.Errorf("localcall: %w", err)
	}
	if err := prometheus.NewRegistry().Register(tbl); err != nil {
		return nil, fmt.Errorf("localcall: register metrics: %w", err)
	}
	if err := tbl.Start(ctx); err != nil {
		return nil, fmt.Errorf("localcall: start routing: %w", err)
	}
	callerCtx := identity.With(context.Background(), identity.Principal{UserID: userID, Email: "alice@example.com", Role: identity.RoleUser})
	return &Setup{plain: impl, routed: billingremote.NewBillingRouter(impl, nil, mod), forwarded: &forwarder{next: impl},
		method: mod.Method("GetInvoice"), table: tbl, ctx: callerCtx}, nil
}

// Close stops the routing table.
func (s *Setup) Close(ctx context.Context) error {
	if err := s.table.Stop(ctx); err != nil {
		return fmt.Errorf("localcall: stop routing: %w", err)
	}
	return nil
}

// SetBenchTime sets how long each testing.Benchmark of Run lasts (the -test.benchtime flag, 1s by default).
func SetBenchTime(d time.Duration) error {
	testing.Init() // registers the test flags in a plain program; does nothing in a test binary
	f := flag.Lookup("test.benchtime")
	if f == nil {
		return errors.New("localcall: no -test.benchtime flag")
	}
	if err := f.Value.Set(d.String()); err != nil {
		return fmt.Errorf("localcall: benchtime: %w", err)
	}
	return nil
}

// Run measures each call once with testing.Benchmark (each for the bench time, see SetBenchTime).
func (s *Setup) Run() (Result, error) {
	plain, err := bench(s.ctx, s.plain)
	if err != nil {
		return Result{}, err
	}
	routed, err := bench(s.ctx, s.routed)
	if err != nil {
		return Result{}, err
	}
	forwarded, err := bench(s.ctx, s.forwarded)
	if err != nil {
		return Result{}, err
	}
	routing := testing.Benchmark(func(tb *testing.B) {
		for tb.Loop() {
			c := s.method.Enter()
			if c.Pending() {
				c = c.Route(s.ctx, userID)
			}
			c.End(s.ctx, nil)
		}
	})
	if routing.N == 0 {
		return Result{}, errors.New("localcall: the routing benchmark did not run")
	}
	return Result{PlainNs: nsPerOp(plain), RoutedNs: nsPerOp(routed), ForwardedNs: nsPerOp(forwarded),
		RoutingNs: nsPerOp(routing), PlainAllocs: plain.AllocsPerOp(), RoutedAllocs: routed.AllocsPerOp()}, nil
}

func bench(ctx context.Context, b billingapi.Billing) (testing.BenchmarkResult, error) {
	var failure error
	res := testing.Benchmark(func(tb *testing.B) {
		tb.ReportAllocs()
		for tb.Loop() {
			inv, err := b.GetInvoice(ctx, userID, invoiceID)
			if err == nil && inv.ID != invoiceID {
				err = errWrongInvoice
			}
			if err != nil {
				failure = err
				tb.FailNow()
			}
		}
	})
	if failure != nil {
		return res, fmt.Errorf("localcall: GetInvoice: %w", failure)
	}
	if res.N == 0 {
		return res, errors.New("localcall: the benchmark did not run")
	}
	return res, nil
}

func nsPerOp(r testing.BenchmarkResult) float64 {
	return float64(r.T.Nanoseconds()) / float64(r.N)
}

// Section turns the runs, each benchmark of which lasted benchTime, into the report's section.
func Section(runs []Result, benchTime time.Duration) report.Section {
	var plainNs, routedNs, plainAllocs, routedAllocs, ratio, routingNs, forwardedNs []float64
	for _, r := range runs {
		routingNs = append(routingNs, r.RoutingNs)
		plainNs = append(plainNs, r.PlainNs)
		routedNs = append(routedNs, r.RoutedNs)
		plainAllocs = append(plainAllocs, float64(r.PlainAllocs))
		routedAllocs = append(routedAllocs, float64(r.RoutedAllocs))
		ratio = append(ratio, r.RoutedNs/r.PlainNs)
		forwardedNs = append(forwardedNs, r.ForwardedNs)
	}
	figs := []report.Figure{
		{Name: "plain interface call", Unit: "ns/op", Runs: plainNs},
		{Name: "through billing's router (local mode, metrics on)", Unit: "ns/op", Runs: routedNs},
		{Name: "routed / plain", Unit: "×", Runs: ratio},
		{Name: "plain interface call", Unit: "allocs/op", Runs: plainAllocs},
		{Name: "through billing's router", Unit: "allocs/op", Runs: routedAllocs},
		{Name: "the router's bookkeeping alone (Enter, Route when pending, End)", Unit: "ns/op", Runs: routingNs},
		{Name: "through a wrapper that only forwards the call", Unit: "ns/op", Runs: forwardedNs},
	}
	m := func(i int) float64 { return figs[i].Median() }
	speed := report.AtMost("Local call through the router vs a plain interface call (time)", m(2), 1.5, "%.2f×")
	allocs := report.AtMost("Local call through the router: added allocations per call", m(4)-m(3), 0, "%.0f")
	if !speed.Met {
		speed.Limits = fmt.Sprintf("the router adds %.1f ns per call to the %.1f ns of the call itself, and a wrapper that "+
			"only forwards the call, doing nothing else, adds %.1f ns: most of the overhead is what any second Go frame "+
			"returning the %d-byte `billingapi.Invoice` costs. Go returns a result that size on the stack and copies it "+
			"twice in each frame it passes through (from the callee's results into a temporary, then into the frame's "+
			"own results; golang/go#24416), as 16-byte moves whose last two overlap, so one load of each copy straddles "+
			"two stores of the copy just before, which the processor cannot forward from its store buffer: it waits "+
			"for them to reach the cache. The routing itself, measured alone, is %.1f ns (route.Method.Enter, "+
			"inlined into the router, loads the method and the tracer and counts the call with one atomic add; one call "+
			"in 64 is left pending for Call.Route to time with two clock reads; Call.End returns at once for an untimed "+
			"success), and the router costs %.1f ns more than the forwarding wrapper. The overhead in nanoseconds stays "+
			"put while the plain call's time moves with the machine, so the ratio does too.",
			m(1)-m(0), m(0), m(6)-m(0), invoiceSize, m(5), m(1)-m(6))
	}
	if !allocs.Met {
		allocs.Limits = fmt.Sprintf("the routed call allocates %.0f times per call against %.0f for the plain one.", m(4), m(3))
	}
	return report.Section{
		Title: "Local module call: Seam's router vs a plain interface call",
		Method: []string{
			"An in-memory `billingapi.Billing` (a map of 1,001 invoices; `GetInvoice` looks one up, checks its owner " +
				"and returns the `Invoice`) is called (a) directly through the `billingapi.Billing` interface, (b) " +
				"through billing's generated router, `billingremote.NewBillingRouter`, with the module added to a started " +
				"`route.Table` in `route.ModeLocal` with `billingremote.BillingMethods`, the table registered as a " +
				"Prometheus collector (metrics on), and (c) through a wrapper whose `GetInvoice` only returns the wrapped " +
				"one's, the least any implementation wrapping another costs. The caller's context carries a principal, as " +
				"a request's does. " +
				fmt.Sprintf("Each run is one `testing.Benchmark` of each, %s long.", benchTime),
		},
		Tables: []report.Table{{
			Header: []string{"call", "ns/op", "allocs/op"},
			Rows: [][]string{
				{"plain `billingapi.Billing` call", report.Num(m(0)), report.Num(m(3))},
				{"through `billingremote.NewBillingRouter` (local mode, metrics on)", report.Num(m(1)), report.Num(m(4))},
				{"routed / plain", fmt.Sprintf("%.2f×", m(2)), ""},
				{"through a wrapper that only forwards the call", report.Num(m(6)), ""},
				{"the router's bookkeeping alone: `route.Method.Enter`, `Call.Route` when pending, `Call.End`", report.Num(m(5)), ""},
			},
		}},
		Targets: []report.Target{speed, allocs},
		Figures: figs,
	}
}
