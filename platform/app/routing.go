package app

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"sync"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"go.uber.org/fx"

	"github.com/seamkit/seam/platform/bus"
	"github.com/seamkit/seam/platform/config"
	"github.com/seamkit/seam/platform/observe"
	"github.com/seamkit/seam/platform/route"
)

// RolloutConfig is a split module's initial routing (modules.<name>.rollout): the share of callers sent to
// its extracted instances, whether read-only calls are shadowed, and per-method overrides (an api method's
// Go name, or "http" for its HTTP routes). It applies until the first change is stored; from then on the
// stored state (changed with the admin API or `seam rollout`) wins, across restarts.
type RolloutConfig struct {
	// Percent of callers sent remote, 0 to 100 with at most two decimals.
	Percent float64 `yaml:"percent"`
	// Shadow also calls the other side of every read-only call and records differences.
	Shadow bool `yaml:"shadow"`
	// Methods override the module's share for single methods.
	Methods map[string]MethodRollout `yaml:"methods"`
}

// MethodRollout is one method's initial routing.
type MethodRollout struct {
	Percent float64 `yaml:"percent"`
	Shadow  bool    `yaml:"shadow"`
}

// Validate checks the percentages; errors name the key.
func (r RolloutConfig) Validate() error {
	if _, err := route.PercentBP(r.Percent); err != nil {
		return fmt.Errorf("percent: %w", err)
	}
	names := make([]string, 0, len(r.Methods))
	for name := range r.Methods {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if _, err := route.PercentBP(r.Methods[name].Percent); err != nil {
			return fmt.Errorf("methods.%s.percent: %w", name, err)
		}
	}
	return nil
}

// moduleRouting reads module m's rollout and rollback sections (removing them from its section) and
// returns how the routing table routes it in mode.
func (c *Config) moduleRouting(m Module, mode Mode) (route.ModuleConfig, error) {
	var rollout RolloutConfig
	var rule route.Rule
	for _, s := range []struct {
		key string
		out any
	}{{rolloutKey, &rollout}, {rollbackKey, &rule}} {
		node, _ := c.takeKey(m.Name, s.key)
		prefix := config.EnvName(config.EnvPrefix, m.Name, s.key)
		c.noteEnv(s.out, prefix)
		if err := config.Decode(node, s.out, prefix, "modules."+m.Name+"."+s.key, c.environ); err != nil {
			return route.ModuleConfig{}, fmt.Errorf("config: %w", err)
		}
	}
	mc := route.ModuleConfig{Name: m.Name, Methods: m.Remote.methods, Rule: rule}
	switch mode {
	case ModeLocal:
		mc.Mode = route.ModeLocal
		return mc, nil
	case ModeRemote:
		mc.Mode = route.ModeRemote
		return mc, nil
	}
	readOnly := map[string]bool{route.HTTPMethod: true}
	for _, info := range m.Remote.methods {
		readOnly[info.Name] = info.ReadOnly
	}
	for name, mr := range rollout.Methods {
		key := fmt.Sprintf("config: modules.%s.%s.methods.%s", m.Name, rolloutKey, name)
		ro, known := readOnly[name]
		switch {
		case !known:
			return route.ModuleConfig{}, fmt.Errorf("%s: %s has no method %s (its api methods, or %q for its HTTP routes)",
				key, m.Name, name, route.HTTPMethod)
		case mr.Shadow && !ro:
			return route.ModuleConfig{}, fmt.Errorf("%s.shadow: %s is not read-only (//seam:readonly): only read-only methods can be shadowed",
				key, name)
		}
	}
	mc.Mode = route.ModeSplit
	mc.Initial.RemoteBP, _ = route.PercentBP(rollout.Percent)
	mc.Initial.Shadow = rollout.Shadow || mode == ModeShadow
	mc.InitialOverrides = map[string]route.State{}
	for name, mr := range rollout.Methods {
		bp, _ := route.PercentBP(mr.Percent)
		mc.InitialOverrides[name] = route.State{RemoteBP: bp, Shadow: mr.Shadow}
	}
	return mc, nil
}

// ModulePools holds the connection pool of every module this process runs locally, for the platform's own
// use of their schemas (their routing state); app.Storage fills it.
type ModulePools struct {
	mu    sync.Mutex
	pools map[string]*pgxpool.Pool
}

// NewModulePools returns an empty registry.
func NewModulePools() *ModulePools { return &ModulePools{pools: map[string]*pgxpool.Pool{}} }

func (p *ModulePools) add(module string, pool *pgxpool.Pool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pools[module] = pool
}

func (p *ModulePools) get(module string) (*pgxpool.Pool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	pool, ok := p.pools[module]
	if !ok {
		return nil, fmt.Errorf("module %s has no database in this process (app.Storage), where its routing would be stored", module)
	}
	return pool, nil
}

// moduleStore is a module's route.PGStore, resolved from ModulePools at first use (the pools are made
// after the routing table).
type moduleStore struct {
	pools  *ModulePools
	module string
}

func (s moduleStore) store() (*route.PGStore, error) {
	pool, err := s.pools.get(s.module)
	if err != nil {
		return nil, err
	}
	return route.NewPGStore(pool, s.module), nil
}

func (s moduleStore) Load(ctx context.Context) (route.State, map[string]route.State, bool, error) {
	st, err := s.store()
	if err != nil {
		return route.State{}, nil, false, err
	}
	return st.Load(ctx)
}

func (s moduleStore) Update(ctx context.Context, fn func(route.State, map[string]route.State) (route.State, map[string]route.State, route.AuditEntry, error)) error {
	st, err := s.store()
	if err != nil {
		return err
	}
	return st.Update(ctx, fn)
}

func (s moduleStore) Audit(ctx context.Context, limit int) ([]route.AuditEntry, error) {
	st, err := s.store()
	if err != nil {
		return nil, err
	}
	return st.Audit(ctx, limit)
}

func (s moduleStore) SaveDiscrepancy(ctx context.Context, d route.Discrepancy) error {
	st, err := s.store()
	if err != nil {
		return err
	}
	return st.SaveDiscrepancy(ctx, d)
}

func (s moduleStore) Discrepancies(ctx context.Context, limit int) ([]route.Discrepancy, error) {
	st, err := s.store()
	if err != nil {
		return nil, err
	}
	return st.Discrepancies(ctx, limit)
}

// routeSubject is where processes announce that a module's stored routing changed (the module's name is
// the message body), on the platform's own connection.
const routeSubject = "seam.route.changed"

// busNotifier announces routing changes to the application's other processes over the bus.
type busNotifier struct{ b *bus.Bus }

func (n busNotifier) Publish(module string) error {
	conn := n.b.Conn()
	if conn == nil {
		return bus.ErrNotStarted
	}
	return conn.Publish(routeSubject, []byte(module))
}

func (n busNotifier) Subscribe(fn func(module string)) (func(), error) {
	conn := n.b.Conn()
	if conn == nil {
		return nil, bus.ErrNotStarted
	}
	sub, err := conn.Subscribe(routeSubject, func(m *nats.Msg) { go fn(string(m.Data)) })
	if err != nil {
		return nil, fmt.Errorf("subscribe to %s: %w", routeSubject, err)
	}
	return func() { _ = sub.Unsubscribe() }, nil
}

// routingOptions provides the routing table of modules (routes, one per module with a remote api), started
// after every module's migrations and stopped before the bus closes, and exposes it at /metrics; and the
// module graph of nodes.
func routingOptions(routes []route.ModuleConfig, nodes []GraphNode) fx.Option {
	return fx.Options(
		fx.Provide(func(b *bus.Bus) *ModuleGraph {
			g := newModuleGraph(nodes)
			g.bus = b
			return g
		}),
		fx.Provide(NewModulePools, func(logger *slog.Logger, b *bus.Bus, pools *ModulePools, metrics *observe.Metrics) (*route.Table, error) {
			t := route.NewTable(observe.ModuleLogger(logger, "route"), busNotifier{b})
			for _, mc := range routes {
				if mc.Mode == route.ModeSplit {
					mc.Store = moduleStore{pools: pools, module: mc.Name}
				}
				if _, err := t.Add(mc); err != nil {
					return nil, fmt.Errorf("config: modules.%s: %w", mc.Name, err)
				}
			}
			if err := metrics.Registry().Register(t); err != nil {
				return nil, fmt.Errorf("route: register metrics: %w", err)
			}
			return t, nil
		}),
	)
}

// startRouting starts the routing table once every module has started (their migrations ran), so split
// modules can load their stored state.
var startRouting = fx.Invoke(func(lc fx.Lifecycle, t *route.Table) {
	lc.Append(fx.Hook{OnStart: t.Start, OnStop: t.Stop})
})
