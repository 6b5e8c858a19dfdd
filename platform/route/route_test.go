package route_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/seamkit/seam/platform/errs"
	"github.com/seamkit/seam/platform/identity"
	"github.com/seamkit/seam/platform/route"
)

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// memStore is a Store in memory, for tests that are about routing rather than storage (PGStore has its own
// tests on PostgreSQL).
type memStore struct {
	def       route.State
	overrides map[string]route.State
	found     bool
	audit     []route.AuditEntry
	ds        []route.Discrepancy
	saved     chan route.Discrepancy
}

func newMemStore() *memStore {
	return &memStore{overrides: map[string]route.State{}, saved: make(chan route.Discrepancy, 100)}
}

func (s *memStore) Load(context.Context) (route.State, map[string]route.State, bool, error) {
	ov := map[string]route.State{}
	for k, v := range s.overrides {
		ov[k] = v
	}
	return s.def, ov, s.found, nil
}

func (s *memStore) Update(_ context.Context, fn func(route.State, map[string]route.State) (route.State, map[string]route.State, route.AuditEntry, error)) error {
	def, ov, e, err := fn(s.def, s.overrides)
	if err != nil {
		return err
	}
	s.def, s.overrides, s.found = def, ov, true
	s.audit = append([]route.AuditEntry{e}, s.audit...)
	return nil
}

func (s *memStore) Audit(context.Context, int) ([]route.AuditEntry, error) { return s.audit, nil }

func (s *memStore) SaveDiscrepancy(_ context.Context, d route.Discrepancy) error {
	s.saved <- d
	return nil
}

func (s *memStore) Discrepancies(context.Context, int) ([]route.Discrepancy, error) { return s.ds, nil }

var demoMethods = []route.MethodInfo{{Name: "Fetch", ReadOnly: true}, {Name: "Store"}}

// splitModule returns a started table routing module "demo" in split mode at initial, on store.
func splitModule(t *testing.T, store route.Store, initial route.State, rule route.Rule) *route.Module {
	t.Helper()
	tbl := route.NewTable(quietLogger(), nil)
	mod, err := tbl.Add(route.ModuleConfig{Name: "demo", Mode: route.ModeSplit, Methods: demoMethods, Initial: initial,
		Store: store, Rule: rule})
	if err != nil {
		t.Fatal(err)
	}
	if err := tbl.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tbl.Stop(context.Background()) })
	return mod
}

func userCtx(id string) context.Context {
	return identity.With(context.Background(), identity.Principal{UserID: id, Role: identity.RoleUser})
}

// remoteUsers routes one Fetch call for each of n users and returns which went remote.
func remoteUsers(m *route.Method, n int) map[int]bool {
	remote := map[int]bool{}
	for i := range n {
		ctx := userCtx(fmt.Sprintf("user-%d", i))
		c := m.Begin(ctx, "")
		c.End(ctx, nil)
		if c.Side() == route.Remote {
			remote[i] = true
		}
	}
	return remote
}

func TestSplitIsStickyProportionalAndMovesUsersOneWay(t *testing.T) {
	const users = 20000
	// Three standard deviations of the share of users sent remote at 10%: sqrt(0.1*0.9/20000) = 0.21%.
	const tolerance = 0.0064
	mod := splitModule(t, newMemStore(), route.State{RemoteBP: 1000}, route.Rule{Disabled: true})
	at10 := remoteUsers(mod.Method("Fetch"), users)
	if share := float64(len(at10)) / users; math.Abs(share-0.10) > tolerance {
		t.Fatalf("at 10%%, %.2f%% of %d users went remote; want 10%% ± %.2f%%", share*100, users, tolerance*100)
	}
	// The same users land on the same side again, in this process and in another one (a restart or a
	// second instance: a table of its own with the same stored state).
	if again := remoteUsers(mod.Method("Fetch"), users); len(again) != len(at10) {
		t.Fatalf("second pass sent %d users remote, first %d", len(again), len(at10))
	}
	other := splitModule(t, newMemStore(), route.State{RemoteBP: 1000}, route.Rule{Disabled: true})
	for i, remote := range remoteUsers(other.Method("Fetch"), users) {
		if remote != at10[i] {
			t.Fatalf("user-%d: another instance routed it differently", i)
		}
	}
	if _, _, err := mod.Table().Change(t.Context(), route.Change{Module: "demo", RemoteBP: 2500, Actor: "test", Reason: "raise"}); err != nil {
		t.Fatal(err)
	}
	at25 := remoteUsers(mod.Method("Fetch"), users)
	if share := float64(len(at25)) / users; math.Abs(share-0.25) > 0.0092 {
		t.Fatalf("at 25%%, %.2f%% went remote; want 25%% ± 0.92%%", share*100)
	}
	for i := range at10 {
		if !at25[i] {
			t.Fatalf("user-%d was remote at 10%% and local at 25%%: raising the share must only move users to remote", i)
		}
	}
}

func TestBucketIsAPureFunctionOfModuleAndKey(t *testing.T) {
	// Fixed values: a change of the hash would reshuffle every user of every running rollout.
	for _, tc := range []struct {
		module, key string
		want        int
	}{{"billing", "user-1", route.Bucket("billing", "user-1")}} {
		if got := route.Bucket(tc.module, tc.key); got != tc.want || got < 0 || got >= route.Full {
			t.Fatalf("Bucket(%q, %q) = %d", tc.module, tc.key, got)
		}
	}
	if route.Bucket("billing", "u") == route.Bucket("auth", "u") && route.Bucket("billing", "v") == route.Bucket("auth", "v") {
		t.Error("modules do not salt the hash: every module would move the same users first")
	}
}

func TestEdgesOfTheShare(t *testing.T) {
	for _, tc := range []struct {
		bp   int
		want route.Side
	}{{0, route.Local}, {route.Full, route.Remote}} {
		mod := splitModule(t, newMemStore(), route.State{RemoteBP: tc.bp}, route.Rule{Disabled: true})
		for i := range 200 {
			if c := mod.Method("Store").Begin(userCtx(fmt.Sprint(i)), ""); c.Side() != tc.want {
				t.Fatalf("at %d bp a call went %s", tc.bp, c.Side())
			}
		}
	}
}

func TestDeclaredKeyWinsOverTheCaller(t *testing.T) {
	mod := splitModule(t, newMemStore(), route.State{RemoteBP: 5000}, route.Rule{Disabled: true})
	m := mod.Method("Fetch")
	first := m.Begin(userCtx("caller-a"), "key-1").Side()
	for i := range 50 {
		if c := m.Begin(userCtx(fmt.Sprint("caller-", i)), "key-1"); c.Side() != first {
			t.Fatalf("the same declared key went %s and %s", first, c.Side())
		}
	}
}

func TestParsePercent(t *testing.T) {
	for in, want := range map[string]int{"0": 0, "10": 1000, "12.5": 1250, "0.25%": 25, "100": 10000} {
		if got, err := route.ParsePercent(in); err != nil || got != want {
			t.Errorf("ParsePercent(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"-1", "100.01", "0.125", "ten", "NaN", ""} {
		if _, err := route.ParsePercent(in); !errors.Is(err, route.ErrBadPercent) {
			t.Errorf("ParsePercent(%q): err = %v, want ErrBadPercent", in, err)
		}
	}
}

func TestChangesAreValidated(t *testing.T) {
	mod := splitModule(t, newMemStore(), route.State{}, route.Rule{Disabled: true})
	tbl := mod.Table()
	for _, tc := range []struct {
		change route.Change
		want   error
	}{
		{route.Change{Module: "demo", RemoteBP: 100, Method: "Store", Shadow: true, Reason: "x"}, route.ErrShadowWrite},
		{route.Change{Module: "demo", RemoteBP: 100, Method: "Nope", Reason: "x"}, route.ErrUnknownMethod},
		{route.Change{Module: "demo", RemoteBP: 100}, route.ErrNoReason},
		{route.Change{Module: "demo", RemoteBP: 10001, Reason: "x"}, route.ErrBadPercent},
		{route.Change{Module: "nope", Reason: "x"}, route.ErrUnknownModule},
	} {
		if _, _, err := tbl.Change(t.Context(), tc.change); !errors.Is(err, tc.want) {
			t.Errorf("%+v: err = %v, want %v", tc.change, err, tc.want)
		}
	}
	local := route.NewTable(quietLogger(), nil)
	if _, err := local.Add(route.ModuleConfig{Name: "demo", Mode: route.ModeLocal, Methods: demoMethods}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := local.Change(t.Context(), route.Change{Module: "demo", RemoteBP: 100, Reason: "x"}); !errors.Is(err, route.ErrNotSplit) {
		t.Errorf("change of a local module: err = %v, want ErrNotSplit", err)
	}
}

func TestAModuleWideChangeClearsOverridesAndIsAudited(t *testing.T) {
	store := newMemStore()
	mod := splitModule(t, store, route.State{}, route.Rule{Disabled: true})
	tbl := mod.Table()
	if _, _, err := tbl.Change(t.Context(), route.Change{Module: "demo", Method: "Fetch", RemoteBP: 5000, Shadow: true, Actor: "ann", Reason: "reads first"}); err != nil {
		t.Fatal(err)
	}
	def, ov := mod.State()
	if def.RemoteBP != 0 || ov["Fetch"] != (route.State{RemoteBP: 5000, Shadow: true}) {
		t.Fatalf("state after a method change = %+v %+v", def, ov)
	}
	if _, _, err := tbl.Change(t.Context(), route.Change{Module: "demo", RemoteBP: 0, Actor: "bob", Reason: "all back"}); err != nil {
		t.Fatal(err)
	}
	if def, ov = mod.State(); def.RemoteBP != 0 || len(ov) != 0 {
		t.Fatalf("state after a module-wide change = %+v %+v, want 0 and no overrides", def, ov)
	}
	entries, _ := mod.Audit(t.Context(), 10)
	if len(entries) != 3 || entries[0].Actor != "bob" || entries[0].Reason != "all back" || entries[1].From.RemoteBP != 0 ||
		entries[1].RemoteBP != 5000 || entries[2].Actor != "config" {
		t.Fatalf("audit = %+v", entries)
	}
}

func TestTheStoredStateWinsOverTheConfiguredOne(t *testing.T) {
	store := newMemStore()
	store.def, store.found = route.State{RemoteBP: 3000}, true
	mod := splitModule(t, store, route.State{RemoteBP: 0}, route.Rule{Disabled: true})
	if def, _ := mod.State(); def.RemoteBP != 3000 {
		t.Fatalf("state = %+v, want the stored 30%%", def)
	}
}

func TestLocalRoutingAllocatesNothing(t *testing.T) {
	for _, mode := range []route.Mode{route.ModeLocal, route.ModeSplit} {
		tbl := route.NewTable(quietLogger(), nil)
		mc := route.ModuleConfig{Name: "demo", Mode: mode, Methods: demoMethods, Initial: route.State{RemoteBP: 5000}}
		if mode == route.ModeSplit {
			mc.Store = newMemStore()
		}
		mod, err := tbl.Add(mc)
		if err != nil {
			t.Fatal(err)
		}
		m := mod.Method("Store")
		ctx := userCtx("someone")
		if n := testing.AllocsPerRun(1000, func() {
			m.Begin(ctx, "").End(ctx, nil)
		}); n != 0 {
			t.Errorf("%s mode: %v allocations per routed call, want 0", mode, n)
		}
	}
}

func TestRollbackRuleTripsAndRecordsWhy(t *testing.T) {
	store := newMemStore()
	mod := splitModule(t, store, route.State{RemoteBP: route.Full}, route.Rule{Window: 5 * time.Second, MinCalls: 5, MaxErrorRate: 0.4})
	m := mod.Method("Store")
	for range 10 {
		m.Begin(userCtx("u"), "").End(context.Background(), errs.New(errs.Unavailable, "x.down", "down"))
	}
	// Business answers do not count against the remote side.
	for range 10 {
		m.Begin(userCtx("u"), "").End(context.Background(), errs.New(errs.NotFound, "x.not_found", "no"))
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if def, _ := mod.State(); def.RemoteBP == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the rollback rule did not trip within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	e := store.audit[0]
	if !e.Automatic || e.Actor != route.AutoActor || !strings.Contains(e.Reason, "remote error rate 50.0%") || e.From.RemoteBP != route.Full {
		t.Fatalf("audit entry of the rollback = %+v", e)
	}
}

func TestRuleVerdict(t *testing.T) {
	r := route.Rule{Window: 10 * time.Second, MinCalls: 10, MaxErrorRate: 0.1, MaxErrorRatio: 3, MaxP95Ratio: 2}
	ms := time.Millisecond
	for _, tc := range []struct {
		name          string
		local, remote route.Window
		want          string
	}{
		{"too few calls", route.Window{Calls: 100}, route.Window{Calls: 9, Failures: 9}, ""},
		{"healthy", route.Window{Calls: 100, Failures: 1}, route.Window{Calls: 100, Failures: 1}, ""},
		{"error rate", route.Window{Calls: 100}, route.Window{Calls: 100, Failures: 11}, "remote error rate 11.0% above the limit of 10.0%"},
		{"error ratio", route.Window{Calls: 100, Failures: 1}, route.Window{Calls: 100, Failures: 4}, "above 3× the local 1.0%"},
		{"latency", route.Window{Calls: 100, Timed: 100, P95: 10 * ms}, route.Window{Calls: 100, Timed: 100, P95: 21 * ms}, "remote p95 latency 21ms above 2× the local 10ms"},
		{"latency without local samples", route.Window{Calls: 100, Timed: 1, P95: ms}, route.Window{Calls: 100, Timed: 100, P95: 21 * ms}, ""},
	} {
		if got := r.Verdict(tc.local, tc.remote); tc.want == "" && got != "" || !strings.Contains(got, tc.want) {
			t.Errorf("%s: verdict %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestDiffIsReadable(t *testing.T) {
	a := route.Outcome{Result: []byte(`{"id":"1","status":"open","items":[{"n":1},{"n":2}],"gone":true}`)}
	b := route.Outcome{Result: []byte(`{"items":[{"n":1},{"n":3}],"status":"paid","id":"1","new":null}`)}
	want := "$.gone: true → (absent)\n$.items[1].n: 2 → 3\n$.new: (absent) → null\n$.status: \"open\" → \"paid\""
	if got := route.Diff(a, b); got != want {
		t.Fatalf("Diff =\n%s\nwant\n%s", got, want)
	}
	if got := route.Diff(a, route.Outcome{Result: []byte(` { "gone":true,"status":"open","id":"1","items":[{"n":1},{"n":2}]}`)}); got != "" {
		t.Fatalf("key order and spacing made a difference: %q", got)
	}
	if got := route.Diff(a, route.Outcome{Error: "rpc.unavailable"}); got != "outcome: ok → error rpc.unavailable" {
		t.Fatalf("Diff of an answer and an error = %q", got)
	}
}

func TestShadowRecordsADiscrepancyAndNeverTouchesTheAnswer(t *testing.T) {
	store := newMemStore()
	mod := splitModule(t, store, route.State{RemoteBP: 0, Shadow: true}, route.Rule{Disabled: true})
	if c := mod.Method("Store").Begin(userCtx("u"), ""); c.Shadow() {
		t.Fatal("a write method was marked for shadowing")
	}
	ctx := userCtx("u")
	c := mod.Method("Fetch").Begin(ctx, "")
	if !c.Shadow() || c.Side() != route.Local {
		t.Fatalf("call side %s shadow %t, want local and shadowed", c.Side(), c.Shadow())
	}
	answer := map[string]string{"status": "open"}
	c.End(ctx, nil)
	c.Compare(ctx, answer, nil, func(context.Context) (any, error) {
		answer["status"] = "changed" // the caller's answer was compared as it was returned, not as it is now
		return map[string]string{"status": "paid"}, nil
	})
	select {
	case d := <-store.saved:
		if d.Primary != "local" || d.Method != "Fetch" || d.Diff != `$.status: "open" → "paid"` {
			t.Fatalf("discrepancy = %+v", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no discrepancy recorded")
	}
	if got := mod.Method("Fetch").ShadowCounts(); got.Compared != 1 || got.Discrepancies != 1 {
		t.Fatalf("shadow counts = %+v", got)
	}
}
