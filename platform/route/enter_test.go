package route_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/seamkit/seam/platform/errs"
	"github.com/seamkit/seam/platform/observe"
	"github.com/seamkit/seam/platform/observe/observetest"
	"github.com/seamkit/seam/platform/route"
)

// routed makes one call of m the way a generated router does: Enter, Route when pending, a span when
// traced, then End with err.
func routed(ctx context.Context, m *route.Method, err error) route.Call {
	c := m.Enter()
	if c.Pending() {
		c = c.Route(ctx, "")
	}
	if c.Traced() {
		ctx = c.StartSpan(ctx)
	}
	c.End(ctx, err)
	return c
}

func localModule(t testing.TB) *route.Module {
	t.Helper()
	mod, err := route.NewTable(quietLogger(), nil).Add(route.ModuleConfig{Name: "demo", Mode: route.ModeLocal, Methods: demoMethods})
	if err != nil {
		t.Fatal(err)
	}
	return mod
}

func TestLocalCallsAreCountedOnceAndOneIn64Timed(t *testing.T) {
	m := localModule(t).Method("Fetch")
	ctx := userCtx("u")
	pending := 0
	for range 640 {
		c := m.Enter()
		if c.Pending() {
			pending++
			c = c.Route(ctx, "")
		}
		if c.Side() != route.Local || c.Shadow() || c.Traced() {
			t.Fatalf("a local call went %s, shadow %t, traced %t", c.Side(), c.Shadow(), c.Traced())
		}
		c.End(ctx, nil)
	}
	if pending != 10 {
		t.Fatalf("Enter left %d of 640 local calls pending, want the 10 to be timed", pending)
	}
	routed(ctx, m, errs.New(errs.Unavailable, "demo.down", "down"))
	routed(ctx, m, errs.New(errs.NotFound, "demo.not_found", "no"))
	w := m.MethodWindow()
	if l := w[route.Local]; l.Calls != 642 || l.Timed != 10 || l.Failures != 1 {
		t.Fatalf("local window = %+v, want 642 calls, 10 timed (one in 64), 1 failure (not found is an answer)", l)
	}
	if r := w[route.Remote]; r.Calls != 0 {
		t.Fatalf("remote window = %+v, want no calls", r)
	}
}

func TestSplitCallsAreAllPendingCountedOnceAndTimed(t *testing.T) {
	mod := splitModule(t, newMemStore(), route.State{RemoteBP: 5000}, route.Rule{Disabled: true})
	m := mod.Method("Fetch")
	if !m.Enter().Pending() {
		t.Fatal("Enter routed a call of a split module by itself")
	}
	for i := range 100 {
		routed(userCtx(fmt.Sprint("user-", i)), m, nil)
	}
	w := m.MethodWindow()
	if got := w[route.Local].Calls + w[route.Remote].Calls; got != 100 || w[route.Local].Timed+w[route.Remote].Timed != 100 {
		t.Fatalf("windows = %+v, want 100 calls, every one timed", w)
	}
	if w[route.Local].Calls == 0 || w[route.Remote].Calls == 0 {
		t.Fatalf("windows = %+v, want calls on both sides at 50%%", w)
	}
}

func TestTracedLocalCallGetsItsSpanAndIsCountedOnce(t *testing.T) {
	rec := observetest.Tracing(t)
	m := localModule(t).Method("Fetch")
	ctx, parent := observe.StartSpan(userCtx("u"), "caller", trace.SpanKindInternal)
	if c := routed(ctx, m, nil); !c.Traced() || c.Side() != route.Local {
		t.Fatalf("a call in a traced context: traced %t, side %s", c.Traced(), c.Side())
	}
	parent.End()
	span := observetest.WaitSpan(t, rec, time.Second, "the call's span", observetest.Named("demo/Fetch", trace.SpanKindInternal))
	if observetest.Attr(span, "seam.side") != "local" || span.Parent().SpanID() != parent.SpanContext().SpanID() {
		t.Fatalf("span %s: side %q, parent %v", span.Name(), observetest.Attr(span, "seam.side"), span.Parent())
	}
	// Untraced calls while tracing is on still route without a span.
	if c := routed(userCtx("u"), m, nil); c.Traced() {
		t.Fatal("a call in an untraced context was traced")
	}
	if w := m.MethodWindow(); w[route.Local].Calls != 2 {
		t.Fatalf("local calls = %d, want 2", w[route.Local].Calls)
	}
}
