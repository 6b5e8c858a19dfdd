package route

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Change is one change of a module's routing, as the admin API, the CLI or the rollback rule asks for it.
type Change struct {
	Module string `json:"module"`
	// Method is the method whose override changes; "" changes the module's default and removes every
	// override, so one change moves the whole module.
	Method   string `json:"method,omitempty"`
	RemoteBP int    `json:"remote_bp"`
	Shadow   bool   `json:"shadow"`
	// Actor says who asked: an admin's email, "auto-rollback", or "config".
	Actor  string `json:"actor"`
	Reason string `json:"reason"`
	// Automatic marks a change made by the rollback rule.
	Automatic bool      `json:"automatic"`
	At        time.Time `json:"at"`
}

// AuditEntry is one stored change with the state it replaced.
type AuditEntry struct {
	ID int64 `json:"id"`
	Change
	From State `json:"from"`
}

// Store keeps a module's routing state and its audit trail (the module's schema, see PGStore).
type Store interface {
	// Load returns the stored state; found is false when nothing was stored yet.
	Load(ctx context.Context) (def State, overrides map[string]State, found bool, err error)
	// Update runs fn on the stored state (locked against concurrent changes) and stores what it returns,
	// with its audit entry, in one transaction.
	Update(ctx context.Context, fn func(def State, overrides map[string]State) (State, map[string]State, AuditEntry, error)) error
	// Audit returns the newest limit audit entries, newest first.
	Audit(ctx context.Context, limit int) ([]AuditEntry, error)
	// SaveDiscrepancy stores a shadow discrepancy.
	SaveDiscrepancy(ctx context.Context, d Discrepancy) error
	// Discrepancies returns the newest limit discrepancies, newest first.
	Discrepancies(ctx context.Context, limit int) ([]Discrepancy, error)
}

// Notifier tells the other processes of an application that a module's routing changed, and hears them.
type Notifier interface {
	// Publish announces that module's stored state changed.
	Publish(module string) error
	// Subscribe calls fn with the module of every announcement until stop is called.
	Subscribe(fn func(module string)) (stop func(), err error)
}

// ModuleConfig describes a module to route.
type ModuleConfig struct {
	Name    string
	Mode    Mode
	Methods []MethodInfo
	// Initial is the state a split module starts with when its store holds none.
	Initial State
	// InitialOverrides are per-method initial states.
	InitialOverrides map[string]State
	Rule             Rule
	// Store keeps the state of a split module; required in ModeSplit.
	Store Store
}

// Table routes every module of a process. Start it to load stored states, follow other processes' changes
// and run the rollback rules; until then every module runs on its initial state.
type Table struct {
	logger   *slog.Logger
	notifier Notifier

	mu      sync.Mutex
	modules map[string]*Module
	period  atomic.Uint64
	cancel  context.CancelFunc
	done    chan struct{}
	stopSub func()
}

// NewTable returns an empty table; notifier may be nil (a process alone).
func NewTable(logger *slog.Logger, notifier Notifier) *Table {
	return &Table{logger: logger, notifier: notifier, modules: map[string]*Module{}}
}

// reloadEvery is how often a started table rereads the stored state of its split modules, in case an
// announcement was missed.
const reloadEvery = 10 * time.Second

// Add adds a module; its methods (and HTTPMethod) start on the initial state for its mode.
func (t *Table) Add(c ModuleConfig) (*Module, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.modules[c.Name]; ok {
		return nil, fmt.Errorf("route: module %s added twice", c.Name)
	}
	if c.Mode == ModeSplit && c.Store == nil {
		return nil, fmt.Errorf("route: split module %s needs a store", c.Name)
	}
	c.Rule.setDefaults()
	if err := c.Rule.Validate(); err != nil {
		return nil, fmt.Errorf("route: module %s: %w", c.Name, err)
	}
	mod := &Module{table: t, name: c.Name, mode: c.Mode, rule: c.Rule, methods: map[string]*Method{},
		store: c.Store, logger: t.logger.With(slog.String("module", c.Name))}
	periods := c.Rule.periods() + 2
	add := func(info MethodInfo) {
		m := &Method{mod: mod, name: info.Name, readOnly: info.ReadOnly, sampled: c.Mode == ModeLocal}
		m.sides = [2]*sideStats{newSideStats(periods), newSideStats(periods)}
		mod.methods[info.Name] = m
		mod.order = append(mod.order, m)
	}
	for _, info := range c.Methods {
		if info.Name == HTTPMethod || mod.methods[info.Name] != nil {
			return nil, fmt.Errorf("route: module %s: method %q declared twice", c.Name, info.Name)
		}
		add(info)
	}
	add(MethodInfo{Name: HTTPMethod})
	mod.shadows = newShadower(mod, mod.order)
	def, overrides := State{}, map[string]State{}
	switch c.Mode {
	case ModeRemote:
		def = State{RemoteBP: Full}
	case ModeSplit:
		def, overrides = c.Initial, maps.Clone(c.InitialOverrides)
		if overrides == nil {
			overrides = map[string]State{}
		}
		for name, st := range overrides {
			if err := mod.validate(Change{Method: name, RemoteBP: st.RemoteBP, Shadow: st.Shadow, Reason: "initial"}); err != nil {
				return nil, fmt.Errorf("route: module %s: initial state of %s: %w", c.Name, name, err)
			}
		}
	case ModeLocal:
	default:
		return nil, fmt.Errorf("route: module %s: unknown mode %q", c.Name, c.Mode)
	}
	for _, m := range mod.order {
		st, ok := overrides[m.name]
		if !ok {
			st = def
		}
		m.state.Store(&st)
	}
	mod.def, mod.overrides = def, overrides
	t.modules[c.Name] = mod
	return mod, nil
}

// Module returns the module called name, or nil.
func (t *Table) Module(name string) *Module {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.modules[name]
}

// Modules returns every module, sorted by name.
func (t *Table) Modules() []*Module {
	t.mu.Lock()
	defer t.mu.Unlock()
	mods := make([]*Module, 0, len(t.modules))
	for _, m := range t.modules {
		mods = append(mods, m)
	}
	sort.Slice(mods, func(i, j int) bool { return mods[i].name < mods[j].name })
	return mods
}

// ErrUnknownModule is returned for a module the table does not route.
var ErrUnknownModule = errors.New("route: unknown module")

// Start loads the stored state of every split module (storing its initial state the first time), follows
// other processes' announcements, and ticks the measurement periods and rollback rules every second until
// Stop.
func (t *Table) Start(ctx context.Context) error {
	for _, mod := range t.Modules() {
		if mod.mode != ModeSplit {
			continue
		}
		if err := t.loadOrInit(ctx, mod); err != nil {
			return err
		}
	}
	if t.notifier != nil {
		stop, err := t.notifier.Subscribe(func(module string) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if mod := t.Module(module); mod != nil && mod.mode == ModeSplit {
				if err := t.reload(ctx, mod); err != nil {
					mod.logger.Warn("route: reload the rollout after an announcement", slog.Any("error", err))
				}
			}
		})
		if err != nil {
			return fmt.Errorf("route: follow rollout changes: %w", err)
		}
		t.stopSub = stop
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	t.cancel, t.done = cancel, make(chan struct{})
	go t.run(runCtx)
	return nil
}

// Stop ends what Start began.
func (t *Table) Stop(context.Context) error {
	if t.stopSub != nil {
		t.stopSub()
	}
	if t.cancel != nil {
		t.cancel()
		<-t.done
	}
	return nil
}

func (t *Table) run(ctx context.Context) {
	defer close(t.done)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	lastReload := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		mods := t.Modules()
		next := t.period.Load() + 1
		for _, mod := range mods {
			for _, m := range mod.order {
				for _, s := range m.sides {
					s.advance(next)
				}
			}
		}
		t.period.Store(next)
		reload := time.Since(lastReload) >= reloadEvery
		if reload {
			lastReload = time.Now()
		}
		for _, mod := range mods {
			if mod.mode != ModeSplit {
				continue
			}
			if reload {
				if err := t.reload(ctx, mod); err != nil && ctx.Err() == nil {
					mod.logger.Warn("route: reload the stored rollout", slog.Any("error", err))
				}
			}
			t.checkRule(ctx, mod)
		}
	}
}

func (t *Table) loadOrInit(ctx context.Context, mod *Module) error {
	def, overrides, found, err := mod.store.Load(ctx)
	if err != nil {
		return fmt.Errorf("route: load the rollout of %s: %w", mod.name, err)
	}
	if found {
		cfgDef, cfgOverrides := mod.State()
		if def != cfgDef || !maps.Equal(overrides, cfgOverrides) {
			mod.logger.Info("route: the stored rollout overrides the configured initial one",
				slog.Float64("stored_percent", def.Percent()), slog.Float64("configured_percent", cfgDef.Percent()))
		}
		mod.apply(def, overrides)
		return nil
	}
	initDef, initOverrides := mod.State()
	err = mod.store.Update(ctx, func(State, map[string]State) (State, map[string]State, AuditEntry, error) {
		return initDef, initOverrides, AuditEntry{Change: Change{Module: mod.name, RemoteBP: initDef.RemoteBP,
			Shadow: initDef.Shadow, Actor: "config", Reason: "initial state from the configuration", At: time.Now()}}, nil
	})
	if err != nil {
		return fmt.Errorf("route: store the initial rollout of %s: %w", mod.name, err)
	}
	return nil
}

func (t *Table) reload(ctx context.Context, mod *Module) error {
	def, overrides, found, err := mod.store.Load(ctx)
	if err != nil || !found {
		return err
	}
	mod.apply(def, overrides)
	return nil
}

// Change validates c, stores it with its audit entry, applies it here and announces it to the other
// processes; it returns the module's new default state and overrides.
func (t *Table) Change(ctx context.Context, c Change) (State, map[string]State, error) {
	mod := t.Module(c.Module)
	if mod == nil {
		return State{}, nil, fmt.Errorf("%w %q", ErrUnknownModule, c.Module)
	}
	if err := mod.validate(c); err != nil {
		return State{}, nil, err
	}
	if c.At.IsZero() {
		c.At = time.Now()
	}
	var def State
	var overrides map[string]State
	err := mod.store.Update(ctx, func(oldDef State, oldOverrides map[string]State) (State, map[string]State, AuditEntry, error) {
		entry := AuditEntry{Change: c, From: oldDef}
		def, overrides = oldDef, maps.Clone(oldOverrides)
		if overrides == nil {
			overrides = map[string]State{}
		}
		if c.Method == "" {
			def, overrides = State{RemoteBP: c.RemoteBP, Shadow: c.Shadow}, map[string]State{}
		} else {
			if st, ok := oldOverrides[c.Method]; ok {
				entry.From = st
			}
			overrides[c.Method] = State{RemoteBP: c.RemoteBP, Shadow: c.Shadow}
		}
		return def, overrides, entry, nil
	})
	if err != nil {
		return State{}, nil, fmt.Errorf("route: store the change of %s: %w", c.Module, err)
	}
	mod.apply(def, overrides)
	mod.lastChange.Store(&c)
	log := mod.logger.Info
	if c.Automatic {
		log = mod.logger.Error
	}
	log("route: rollout changed", slog.String("method", c.Method), slog.Float64("percent", float64(c.RemoteBP)/100),
		slog.Bool("shadow", c.Shadow), slog.String("actor", c.Actor), slog.String("reason", c.Reason),
		slog.Bool("automatic", c.Automatic))
	if t.notifier != nil {
		if err := t.notifier.Publish(c.Module); err != nil {
			mod.logger.Warn("route: announce the change to other processes (they reread it within 10s)", slog.Any("error", err))
		}
	}
	return def, overrides, nil
}
