package route

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/seamkit/seam/platform/errs"
	"github.com/seamkit/seam/platform/observe"
)

// Mode says where a process runs a module.
type Mode string

const (
	// ModeLocal runs the module only here: every call is local.
	ModeLocal Mode = "local"
	// ModeRemote runs the module only elsewhere: every call is remote.
	ModeRemote Mode = "remote"
	// ModeSplit runs the module here and elsewhere, sending a share of its calls remote.
	ModeSplit Mode = "split"
)

// HTTPMethod is the name under which a module's HTTP routes, as the process forwards them, are routed and
// measured beside its api methods (whose Go names start with a capital letter, so it cannot collide).
const HTTPMethod = "http"

// MethodInfo describes one method of a module's api, as its generated router declares it.
type MethodInfo struct {
	// Name is the Go method name.
	Name string
	// ReadOnly marks a method that changes nothing (//seam:readonly), the only kind that may be shadowed.
	ReadOnly bool
}

// sampleEvery is how often a local call of a module in local mode is timed (one in sampleEvery): a clock
// read costs more than the call itself here. Remote calls, and every call of a module in split mode, are
// all timed, since comparing the sides is the point there.
const sampleEvery = 64

// epoch is the origin of the monotonic times calls are timed with.
var epoch = time.Now()

// Module is the routing of one module in a process: its mode, the state of the module and of each method,
// the measurements of both sides, its rollback rule and where its state is stored.
type Module struct {
	table   *Table
	name    string
	mode    Mode
	rule    Rule
	methods map[string]*Method
	order   []*Method
	store   Store
	shadows *shadower
	logger  *slog.Logger

	mu sync.Mutex
	// def is the module's default state; overrides are per-method states that replace it.
	def       State
	overrides map[string]State
	// changedAt is the period of the last change of state, before which the rollback rule does not look.
	changedAt  atomic.Uint64
	lastChange atomic.Pointer[Change]
	rollbacks  atomic.Uint64
}

// Method routes and measures the calls of one method (or of the module's HTTP routes).
type Method struct {
	mod      *Module
	name     string
	readOnly bool
	sampled  bool
	state    atomic.Pointer[State]
	sides    [2]*sideStats
}

// Name is the method's name.
func (m *Method) Name() string { return m.name }

// ReadOnly reports whether the method may be shadowed.
func (m *Method) ReadOnly() bool { return m.readOnly }

// Module is the module the method belongs to.
func (m *Method) Module() *Module { return m.mod }

// Call is one call in progress: the side it goes to, whether to shadow and trace it, and its start. It is
// three words, returned in registers, so routing a call allocates nothing and costs little.
type Call struct {
	m *Method
	// start is when a timed call began (time since epoch), 0 for an untimed one.
	start time.Duration
	flags callFlags
}

// callFlags packs a call's side and options.
type callFlags uint8

const (
	flagRemote callFlags = 1 << iota
	flagShadow
	flagTraced
	// flagPending marks a call Enter could not route, which Route finishes.
	flagPending
	// flagCounted marks a pending call Enter already counted, which Route only has to time.
	flagCounted
)

// Begin routes one call whose routing key is key ("" derives it from ctx with Key, only when the share
// needs one) and starts measuring it: Enter, then Route when the call is Pending. When Traced says so,
// the caller starts the call's span with StartSpan before making it.
func (m *Method) Begin(ctx context.Context, key string) Call {
	c := m.Enter()
	if c.Pending() {
		c = c.Route(ctx, key)
	}
	return c
}

// Enter starts routing one call without calling anything, so that a router inlines it: when the module
// runs in local mode and tracing is off (every call local, none shadowed or traced), it counts the call,
// which is then routed, untimed, but for the one call in sampleEvery that Route times. Any other call is
// Pending, for Route to route.
func (m *Method) Enter() Call {
	if !m.sampled || observe.TracingEnabled() {
		return Call{m: m, flags: flagPending}
	}
	if m.sides[Local].count()%sampleEvery == 0 {
		return Call{m: m, flags: flagPending | flagCounted}
	}
	return Call{m: m}
}

// Pending reports whether Enter left the call for Route to finish.
func (c Call) Pending() bool { return c.flags&flagPending != 0 }

// Route finishes routing a call Enter left pending, whose routing key is key ("" derives it from ctx with
// Key, only when the share needs one): it picks the side, shadowing and tracing, counts the call unless
// Enter did, and starts timing it when it is to be timed.
func (c Call) Route(ctx context.Context, key string) Call {
	m := c.m
	if c.flags&flagCounted != 0 {
		return m.timed(0) // a local call, counted by Enter, chosen to be timed
	}
	st := m.state.Load()
	var flags callFlags
	if st.RemoteBP > 0 {
		if key == "" && st.RemoteBP < Full {
			key = Key(ctx)
		}
		if pick(m.mod.name, *st, key) == Remote {
			flags = flagRemote
		}
	}
	if st.Shadow && m.readOnly {
		flags |= flagShadow
	}
	if observe.TracingEnabled() && observe.Traced(ctx) {
		flags |= flagTraced
	}
	if n := m.sides[flags.side()].count(); flags&flagRemote != 0 || !m.sampled || n%sampleEvery == 0 {
		return m.timed(flags)
	}
	return Call{m: m, flags: flags}
}

// timed returns a call with flags that is timed from now.
func (m *Method) timed(flags callFlags) Call {
	return Call{m: m, start: max(time.Since(epoch), 1), flags: flags}
}

// Side is where the call goes.
func (c Call) Side() Side { return c.flags.side() }

// side is the side flags send a call to.
func (f callFlags) side() Side {
	if f&flagRemote != 0 {
		return Remote
	}
	return Local
}

// Shadow reports whether the call's other side is to be called too, for comparison (see Compare).
func (c Call) Shadow() bool { return c.flags&flagShadow != 0 }

// Traced reports whether the call runs in a traced context, so it gets a span of its own (StartSpan).
func (c Call) Traced() bool { return c.flags&flagTraced != 0 }

// StartSpan starts the call's span (module/method, with its side) and returns the context carrying it,
// which the call is made and ended with.
func (c Call) StartSpan(ctx context.Context) context.Context {
	ctx, span := observe.StartSpan(ctx, c.m.mod.name+"/"+c.m.name, trace.SpanKindInternal)
	span.SetAttributes(attribute.String("seam.module", c.m.mod.name), attribute.String("seam.method", c.m.name),
		attribute.String("seam.side", c.Side().String()))
	return ctx
}

// End records the call's outcome, ctx being the one it was made with: err counts as a failure of its side
// when Failed says so; a traced call's span ends.
func (c Call) End(ctx context.Context, err error) {
	if err == nil && c.start == 0 && c.flags&flagTraced == 0 {
		return // an untimed success: it was counted when it was routed
	}
	c.end(ctx, err)
}

func (c Call) end(ctx context.Context, err error) {
	s := c.m.sides[c.Side()]
	if err != nil && Failed(err) {
		s.fail()
	}
	if c.start != 0 {
		s.observe(c.m.mod.table.period.Load(), time.Since(epoch)-c.start)
	}
	if c.flags&flagTraced != 0 {
		observe.EndSpan(trace.SpanFromContext(ctx), err)
	}
}

// Compare calls the other side in the background with other and records a discrepancy when its answer
// differs from the one the caller got (result and err). It returns at once; the caller's answer is never
// affected, and a shadow call that cannot start right away (too many in flight) is skipped and counted.
func (c Call) Compare(ctx context.Context, result any, err error, other func(ctx context.Context) (any, error)) {
	c.m.mod.shadows.compare(ctx, c.m, c.Side(), result, err, other)
}

// Name is the module's name.
func (mod *Module) Name() string { return mod.name }

// Mode is how this process runs the module.
func (mod *Module) Mode() Mode { return mod.mode }

// Method returns the module's method called name, or nil.
func (mod *Module) Method(name string) *Method { return mod.methods[name] }

// Methods returns the module's methods in declaration order, HTTPMethod last.
func (mod *Module) Methods() []*Method { return slices.Clone(mod.order) }

// Rule is the module's rollback rule.
func (mod *Module) Rule() Rule { return mod.rule }

// LastChange is the last change of the module's state this process applied, or nil.
func (mod *Module) LastChange() *Change { return mod.lastChange.Load() }

// State returns the module's default state and its per-method overrides.
func (mod *Module) State() (State, map[string]State) {
	mod.mu.Lock()
	defer mod.mu.Unlock()
	overrides := make(map[string]State, len(mod.overrides))
	for k, v := range mod.overrides {
		overrides[k] = v
	}
	return mod.def, overrides
}

// Errors of state changes.
var (
	// ErrNotSplit is returned when a change asks a module that this process does not run in split mode to
	// send a share remote.
	ErrNotSplit = errs.New(errs.Conflict, "route.not_split",
		"the module does not run in split mode in this process, so its share cannot change; set modules.<name>.mode to split")
	// ErrUnknownMethod is returned for a method the module's api does not have.
	ErrUnknownMethod = errs.New(errs.NotFound, "route.unknown_method", "the module has no such method")
	// ErrShadowWrite is returned when a change asks to shadow a method that is not read-only.
	ErrShadowWrite = errs.New(errs.Unprocessable, "route.shadow_write",
		"only read-only methods (//seam:readonly) and the HTTP routes' GET and HEAD requests can be shadowed")
	// ErrNoReason is returned for a change without a reason.
	ErrNoReason = errs.New(errs.Unprocessable, "route.reason_required", "a change of rollout needs a reason (1 to 500 characters)")
)

// maxReason bounds the length of a change's reason.
const maxReason = 500

// validate checks that change c can apply to the module, as its mode and methods allow.
func (mod *Module) validate(c Change) error {
	if mod.mode != ModeSplit {
		return fmt.Errorf("route: %s runs %s: %w", mod.name, mod.mode, ErrNotSplit)
	}
	if n := len([]rune(c.Reason)); n == 0 || n > maxReason {
		return ErrNoReason
	}
	if c.RemoteBP < 0 || c.RemoteBP > Full {
		return ErrBadPercent
	}
	if c.Method == "" {
		return nil
	}
	m := mod.methods[c.Method]
	if m == nil {
		return fmt.Errorf("route: %s.%s: %w", mod.name, c.Method, ErrUnknownMethod)
	}
	if c.Shadow && !m.readOnly && m.name != HTTPMethod {
		return fmt.Errorf("route: %s.%s: %w", mod.name, c.Method, ErrShadowWrite)
	}
	return nil
}

// apply makes def and overrides the module's state and refreshes each method's effective state.
func (mod *Module) apply(def State, overrides map[string]State) {
	mod.mu.Lock()
	defer mod.mu.Unlock()
	if mod.mode != ModeSplit {
		return
	}
	changed := def != mod.def || len(overrides) != len(mod.overrides)
	for k, v := range overrides {
		if mod.overrides[k] != v {
			changed = true
		}
	}
	mod.def, mod.overrides = def, overrides
	for _, m := range mod.order {
		st, ok := overrides[m.name]
		if !ok {
			st = def
		}
		m.state.Store(&st)
	}
	if changed {
		mod.changedAt.Store(mod.table.period.Load())
	}
}

// window sums each side's calls over the last n periods of every method, or (sinceChange) only over those
// since the module's state last changed when that is more recent.
func (mod *Module) window(n int, sinceChange bool) [2]Window {
	now := mod.table.period.Load()
	// The period of the change itself counts: the calls made after it in that period are in it.
	if since := int(now-mod.changedAt.Load()) + 1; sinceChange && since < n {
		n = since
	}
	var acc [2]windowAcc
	for _, m := range mod.order {
		for s := range m.sides {
			m.sides[s].collect(&acc[s], now, n)
		}
	}
	return [2]Window{acc[Local].window(), acc[Remote].window()}
}

// MethodWindow sums one method's calls per side over its module's rollback window.
func (m *Method) MethodWindow() [2]Window {
	now := m.mod.table.period.Load()
	n := m.mod.rule.periods()
	var acc [2]windowAcc
	for s := range m.sides {
		m.sides[s].collect(&acc[s], now, n)
	}
	return [2]Window{acc[Local].window(), acc[Remote].window()}
}

// Window sums the module's calls per side over its rollback window.
func (mod *Module) Window() [2]Window { return mod.window(mod.rule.periods(), false) }

// MethodSnapshot is one method's routing and measurements, as the admin API and dashboard show them.
type MethodSnapshot struct {
	Name     string  `json:"name"`
	ReadOnly bool    `json:"read_only"`
	Percent  float64 `json:"percent"`
	Shadow   bool    `json:"shadow"`
	// Overridden says the method has a state of its own instead of the module's.
	Overridden bool         `json:"overridden"`
	Local      Window       `json:"local"`
	Remote     Window       `json:"remote"`
	Shadows    ShadowCounts `json:"shadows"`
}

// ModuleSnapshot is a module's routing and measurements over its rollback window.
type ModuleSnapshot struct {
	Name       string           `json:"name"`
	Mode       Mode             `json:"mode"`
	Percent    float64          `json:"percent"`
	Shadow     bool             `json:"shadow"`
	Rule       Rule             `json:"rollback"`
	WindowSecs int              `json:"window_seconds"`
	Local      Window           `json:"local"`
	Remote     Window           `json:"remote"`
	Methods    []MethodSnapshot `json:"methods"`
	LastChange *Change          `json:"last_change,omitempty"`
	Rollbacks  uint64           `json:"automatic_rollbacks"`
}

// Snapshot returns the module's routing and its measurements over its rollback window.
func (mod *Module) Snapshot() ModuleSnapshot {
	def, overrides := mod.State()
	w := mod.Window()
	s := ModuleSnapshot{Name: mod.name, Mode: mod.mode, Percent: def.Percent(), Shadow: def.Shadow, Rule: mod.rule,
		WindowSecs: mod.rule.periods(), Local: w[Local], Remote: w[Remote], LastChange: mod.LastChange(),
		Rollbacks: mod.rollbacks.Load()}
	for _, m := range mod.order {
		st := *m.state.Load()
		_, overridden := overrides[m.name]
		mw := m.MethodWindow()
		s.Methods = append(s.Methods, MethodSnapshot{Name: m.name, ReadOnly: m.readOnly, Percent: st.Percent(),
			Shadow: st.Shadow && (m.readOnly || m.name == HTTPMethod), Overridden: overridden, Local: mw[Local],
			Remote: mw[Remote], Shadows: m.ShadowCounts()})
	}
	return s
}

// Discrepancies returns the module's newest limit shadow discrepancies (none without a store).
func (mod *Module) Discrepancies(ctx context.Context, limit int) ([]Discrepancy, error) {
	if mod.store == nil {
		return nil, nil
	}
	ds, err := mod.store.Discrepancies(ctx, limit)
	for i := range ds {
		ds[i].Module = mod.name
	}
	return ds, err
}

// Audit returns the module's newest limit routing changes (none without a store).
func (mod *Module) Audit(ctx context.Context, limit int) ([]AuditEntry, error) {
	if mod.store == nil {
		return nil, nil
	}
	es, err := mod.store.Audit(ctx, limit)
	for i := range es {
		es[i].Module = mod.name
	}
	return es, err
}

// Table is the table the module belongs to.
func (mod *Module) Table() *Table { return mod.table }
