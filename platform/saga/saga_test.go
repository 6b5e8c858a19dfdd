package saga_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/seamkit/seam/platform/errs"
	"github.com/seamkit/seam/platform/failpoint"
	"github.com/seamkit/seam/platform/migrate"
	"github.com/seamkit/seam/platform/pgtest"
	"github.com/seamkit/seam/platform/saga"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const schema = "shop"

// order is the state of the test saga: the steps it went through.
type order struct {
	Trail []string `json:"trail"`
}

var errOutOfStock = errs.New(errs.Conflict, "shop.out_of_stock", "out of stock")

// env is a migrated schema with an effects table that every step and compensation writes to in its
// transaction, so the tests can count what was applied.
type env struct {
	pool *pgxpool.Pool
}

func newEnv(t *testing.T) env {
	t.Helper()
	if testing.Short() {
		t.Skip("needs PostgreSQL: skipped with -short")
	}
	pool := pgtest.NewPool(t)
	ctx := t.Context()
	if err := migrate.Up(ctx, pool, schema, nil, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `CREATE TABLE shop.effects (seq bigserial PRIMARY KEY, saga_id text, step text, action text)`); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = failpoint.Configure("") })
	return env{pool: pool}
}

// effect returns a step function recording (step, action) in the step's transaction.
func effect(step, action string) func(context.Context, saga.Tx, *order) error {
	return func(ctx context.Context, tx saga.Tx, st *order) error {
		st.Trail = append(st.Trail, step+":"+action)
		_, err := tx.Exec(ctx, `INSERT INTO shop.effects (saga_id, step, action) VALUES ('', $1, $2)`, step, action)
		return err
	}
}

func definition() saga.Definition[order] {
	d := saga.Definition[order]{Type: "order"}
	for _, name := range []string{"reserve", "charge", "ship"} {
		d.Steps = append(d.Steps, saga.Step[order]{Name: name, Do: effect(name, "do"), Compensate: effect(name, "undo")})
	}
	return d
}

func (e env) runner(t *testing.T, opts saga.Options) *saga.Runner {
	t.Helper()
	r, err := saga.NewRunner(e.pool, schema, slog.New(slog.DiscardHandler), opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := saga.Register(r, definition()); err != nil {
		t.Fatal(err)
	}
	return r
}

func (e env) effects(t *testing.T) []string {
	t.Helper()
	rows, err := e.pool.Query(t.Context(), `SELECT step || ':' || action FROM shop.effects ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (e env) log(t *testing.T, id string) []string {
	t.Helper()
	rows, err := e.pool.Query(t.Context(), `SELECT name || ':' || action FROM shop.saga_steps WHERE saga_id = $1
ORDER BY done_at, step DESC`, id)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func configure(t *testing.T, spec string) {
	t.Helper()
	if err := failpoint.Configure(spec); err != nil {
		t.Fatal(err)
	}
}

func TestCompletes(t *testing.T) {
	e := newEnv(t)
	r := e.runner(t, saga.Options{})
	inst, err := r.Start(t.Context(), "order", "o-1", order{})
	if err != nil {
		t.Fatal(err)
	}
	if inst.Status != saga.StatusCompleted || inst.Step != 3 || inst.Error != "" {
		t.Fatalf("saga = %+v, want completed after 3 steps", inst)
	}
	var st order
	if err := inst.Decode(&st); err != nil {
		t.Fatal(err)
	}
	want := []string{"reserve:do", "charge:do", "ship:do"}
	if !slices.Equal(st.Trail, want) {
		t.Errorf("state trail = %v, want %v", st.Trail, want)
	}
	if got := e.effects(t); !slices.Equal(got, want) {
		t.Errorf("effects = %v, want %v", got, want)
	}
	// The same id again starts nothing.
	again, err := r.Start(t.Context(), "order", "o-1", order{Trail: []string{"other"}})
	if err != nil || again.Status != saga.StatusCompleted {
		t.Fatalf("second Start = %+v, %v", again, err)
	}
	if got := e.effects(t); len(got) != 3 {
		t.Errorf("a second Start with the same id applied effects: %v", got)
	}
	if _, err := r.Get(t.Context(), "nope"); !errors.Is(err, saga.ErrNotFound) {
		t.Errorf("Get(missing) error = %v, want ErrNotFound", err)
	}
}

func TestFailingEachStepCompensatesTheCompletedOnesInReverse(t *testing.T) {
	steps := []string{"reserve", "charge", "ship"}
	for k, failing := range steps {
		t.Run(failing, func(t *testing.T) {
			e := newEnv(t)
			r := e.runner(t, saga.Options{})
			configure(t, "saga.order."+failing+".do=error")
			id := "o-" + failing
			inst, err := r.Start(t.Context(), "order", id, order{})
			if err != nil {
				t.Fatal(err)
			}
			if inst.Status != saga.StatusCompensated || inst.Step != 0 || inst.FailedStep != failing {
				t.Fatalf("saga = %+v, want compensated after %s failed", inst, failing)
			}
			var want []string
			for _, s := range steps[:k] {
				want = append(want, s+":do")
			}
			for i := k - 1; i >= 0; i-- {
				want = append(want, steps[i]+":undo")
			}
			if got := e.effects(t); !slices.Equal(got, want) {
				t.Errorf("effects = %v, want %v", got, want)
			}
			var st order
			if err := inst.Decode(&st); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(st.Trail, want) {
				t.Errorf("state trail = %v, want %v", st.Trail, want)
			}
			wantLog := make([]string, len(want))
			for i, w := range want {
				wantLog[i] = w
				if s, ok := cutSuffix(w, ":undo"); ok {
					wantLog[i] = s + ":compensate"
				}
			}
			if got := e.log(t, id); !slices.Equal(got, wantLog) {
				t.Errorf("step log = %v, want %v", got, wantLog)
			}
		})
	}
}

func cutSuffix(s, suffix string) (string, bool) {
	if len(s) >= len(suffix) && s[len(s)-len(suffix):] == suffix {
		return s[:len(s)-len(suffix)], true
	}
	return s, false
}

func TestClientSafeFailureCodeIsKept(t *testing.T) {
	e := newEnv(t)
	r, err := saga.NewRunner(e.pool, schema, nil, saga.Options{})
	if err != nil {
		t.Fatal(err)
	}
	d := definition()
	d.Steps[1].Do = func(context.Context, saga.Tx, *order) error { return fmt.Errorf("charge: %w", errOutOfStock) }
	if err := saga.Register(r, d); err != nil {
		t.Fatal(err)
	}
	inst, err := r.Start(t.Context(), "order", "o-code", order{})
	if err != nil {
		t.Fatal(err)
	}
	if inst.Status != saga.StatusCompensated || inst.ErrorCode != "shop.out_of_stock" || inst.FailedStep != "charge" {
		t.Fatalf("saga = %+v, want compensated with code shop.out_of_stock", inst)
	}
}

func TestFailingCompensationIsRetriedAndAppliedOnce(t *testing.T) {
	e := newEnv(t)
	r := e.runner(t, saga.Options{Backoff: []time.Duration{time.Millisecond}})
	// ship fails; charge's compensation fails twice after writing its effect (which rolls back), then works.
	configure(t, "saga.order.ship.do=error,saga.order.charge.compensated=error*2")
	inst, err := r.Start(t.Context(), "order", "o-retry", order{})
	if err != nil {
		t.Fatal(err)
	}
	if inst.Status != saga.StatusCompensating || inst.Attempts != 1 || inst.Step != 2 {
		t.Fatalf("after Start: %+v, want compensating with 1 failed attempt", inst)
	}
	waitFor(t, func() bool {
		if _, err := r.Resume(t.Context()); err != nil {
			t.Fatal(err)
		}
		inst, err = r.Get(t.Context(), "o-retry")
		return err == nil && inst.Status.Terminal()
	})
	if inst.Status != saga.StatusCompensated {
		t.Fatalf("saga = %+v, want compensated", inst)
	}
	want := []string{"reserve:do", "charge:do", "charge:undo", "reserve:undo"}
	if got := e.effects(t); !slices.Equal(got, want) {
		t.Errorf("effects = %v, want %v", got, want)
	}
}

func TestCompensationThatNeverWorksMarksTheSagaFailed(t *testing.T) {
	e := newEnv(t)
	r := e.runner(t, saga.Options{Backoff: []time.Duration{time.Millisecond}, MaxAttempts: 3})
	configure(t, "saga.order.ship.do=error,saga.order.charge.compensate=error")
	if _, err := r.Start(t.Context(), "order", "o-stuck", order{}); err != nil {
		t.Fatal(err)
	}
	var inst saga.Instance
	waitFor(t, func() bool {
		if _, err := r.Resume(t.Context()); err != nil {
			t.Fatal(err)
		}
		var err error
		inst, err = r.Get(t.Context(), "o-stuck")
		return err == nil && inst.Status.Terminal()
	})
	if inst.Status != saga.StatusFailed || inst.Attempts != 3 || inst.Step != 2 {
		t.Fatalf("saga = %+v, want failed after 3 attempts at charge", inst)
	}
	if got := e.effects(t); !slices.Equal(got, []string{"reserve:do", "charge:do"}) {
		t.Errorf("effects = %v: nothing may be compensated past the failing compensation", got)
	}
}

// TestCrashMidCompensationResumesInANewRunner kills the runner (a panic unwinding it, as a crash would
// leave the transaction uncommitted) after charge's compensation wrote its effect; a new runner resumes the
// saga and every compensation is applied exactly once.
func TestCrashMidCompensationResumesInANewRunner(t *testing.T) {
	e := newEnv(t)
	first := e.runner(t, saga.Options{})
	configure(t, "saga.order.ship.do=error,saga.order.charge.compensated=panic@1")
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("the failpoint did not crash the runner")
			}
		}()
		_, _ = first.Start(t.Context(), "order", "o-crash", order{})
	}()
	inst, err := first.Get(t.Context(), "o-crash")
	if err != nil {
		t.Fatal(err)
	}
	if inst.Status != saga.StatusCompensating || inst.Step != 2 {
		t.Fatalf("after the crash: %+v, want compensating with 2 steps to undo", inst)
	}
	if got := e.effects(t); !slices.Equal(got, []string{"reserve:do", "charge:do"}) {
		t.Fatalf("effects after the crash = %v", got)
	}

	second := e.runner(t, saga.Options{})
	var wg sync.WaitGroup
	for range 2 { // two resumers at once (two processes starting): still once each
		wg.Go(func() {
			if _, err := second.Resume(t.Context()); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	waitFor(t, func() bool {
		if _, err := second.Resume(t.Context()); err != nil {
			t.Fatal(err)
		}
		inst, err = second.Get(t.Context(), "o-crash")
		return err == nil && inst.Status.Terminal()
	})
	if inst.Status != saga.StatusCompensated {
		t.Fatalf("saga = %+v, want compensated", inst)
	}
	want := []string{"reserve:do", "charge:do", "charge:undo", "reserve:undo"}
	if got := e.effects(t); !slices.Equal(got, want) {
		t.Errorf("effects = %v, want %v", got, want)
	}
}

// TestCrashMidStepResumesForward interrupts a forward step; the resumer runs it again and completes.
func TestCrashMidStepResumesForward(t *testing.T) {
	e := newEnv(t)
	first := e.runner(t, saga.Options{})
	configure(t, "saga.order.charge.done=panic@1")
	func() {
		defer func() { _ = recover() }()
		_, _ = first.Start(t.Context(), "order", "o-fwd", order{})
	}()
	second := e.runner(t, saga.Options{PollInterval: 10 * time.Millisecond})
	second.StartResumer()
	t.Cleanup(func() { _ = second.StopResumer(context.Background()) })
	var inst saga.Instance
	waitFor(t, func() bool {
		var err error
		inst, err = second.Get(t.Context(), "o-fwd")
		return err == nil && inst.Status.Terminal()
	})
	if inst.Status != saga.StatusCompleted {
		t.Fatalf("saga = %+v, want completed", inst)
	}
	if got, want := e.effects(t), []string{"reserve:do", "charge:do", "ship:do"}; !slices.Equal(got, want) {
		t.Errorf("effects = %v, want %v", got, want)
	}
	if err := second.StopResumer(t.Context()); err != nil {
		t.Error(err)
	}
}

func TestStartRefusesUnknownTypesAndIDsOfAnotherType(t *testing.T) {
	e := newEnv(t)
	r := e.runner(t, saga.Options{})
	if _, err := r.Start(t.Context(), "nope", "x", order{}); !errors.Is(err, saga.ErrUnknownType) {
		t.Errorf("unknown type: %v", err)
	}
	other := saga.Definition[order]{Type: "other", Steps: []saga.Step[order]{{Name: "a", Do: effect("a", "do")}}}
	if err := saga.Register(r, other); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Start(t.Context(), "order", "same", order{}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Start(t.Context(), "other", "same", order{}); !errors.Is(err, saga.ErrTypeMismatch) {
		t.Errorf("id of another type: %v", err)
	}
	if err := saga.Register(r, other); !errors.Is(err, saga.ErrInvalidDefinition) {
		t.Errorf("registering twice: %v", err)
	}
	for _, bad := range []saga.Definition[order]{
		{Type: ""},
		{Type: "empty"},
		{Type: "dup", Steps: []saga.Step[order]{{Name: "a", Do: effect("a", "do")}, {Name: "a", Do: effect("a", "do")}}},
		{Type: "nodo", Steps: []saga.Step[order]{{Name: "a"}}},
	} {
		if err := saga.Register(r, bad); !errors.Is(err, saga.ErrInvalidDefinition) {
			t.Errorf("Register(%+v) = %v, want ErrInvalidDefinition", bad, err)
		}
	}
}

func TestKeyIsStable(t *testing.T) {
	a, b := saga.Key("s1", "charge"), saga.Key("s1", "charge")
	if a != b || a == saga.Key("s1", "refund") || a == saga.Key("s2", "charge") {
		t.Errorf("Key not stable or not distinct: %s %s", a, b)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 20s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestUnknownTypeIsLeftAlone(t *testing.T) {
	e := newEnv(t)
	r := e.runner(t, saga.Options{Backoff: []time.Duration{time.Millisecond}})
	configure(t, "saga.order.ship.do=error,saga.order.charge.compensate=error")
	if _, err := r.Start(t.Context(), "order", "o-orphan", order{}); err != nil {
		t.Fatal(err)
	}
	// A process that does not know "order" resumes nothing and changes nothing.
	other, err := saga.NewRunner(e.pool, schema, nil, saga.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := other.Resume(t.Context()); err != nil || n != 1 {
		t.Fatalf("Resume = %d, %v; want 1 saga looked at", n, err)
	}
	inst, err := other.Get(t.Context(), "o-orphan")
	if err != nil || inst.Status != saga.StatusCompensating || inst.Step != 2 {
		t.Fatalf("saga = %+v, %v; want it untouched", inst, err)
	}
	if got := e.effects(t); !slices.Equal(got, []string{"reserve:do", "charge:do"}) {
		t.Errorf("effects = %v", got)
	}
}
