package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"go.uber.org/fx"
	"gopkg.in/yaml.v3"

	"github.com/seamkit/seam/platform/bus"
	"github.com/seamkit/seam/platform/config"
	"github.com/seamkit/seam/platform/httpx"
	"github.com/seamkit/seam/platform/observe"
	"github.com/seamkit/seam/platform/route"
	"github.com/seamkit/seam/platform/rpc"
)

// Mode says where a module runs, as seen from one process: modules.<name>.mode (SEAM_<NAME>_MODE).
type Mode string

const (
	// ModeLocal runs the module in this process (the default): its api is a Go call here, and the process
	// also serves the api and the module's HTTP routes on the bus for other processes.
	ModeLocal Mode = "local"
	// ModeRemote runs the module elsewhere: its api goes through the generated client over NATS, and this
	// process forwards HTTP requests under /api/<name> to the processes that run it (it is their gateway).
	ModeRemote Mode = "remote"
	// ModeSplit runs the module both here and in its extracted processes: a sticky share of its callers
	// (modules.<name>.rollout, changed live through the admin API) goes remote, api calls and HTTP requests
	// alike, and the rest stays local. This process does not serve the module on the bus, so "remote" means
	// the extracted instances.
	ModeSplit Mode = "split"
	// ModeShadow is ModeSplit with shadowing on: read-only calls are also made on the side not chosen and the
	// answers compared.
	ModeShadow Mode = "shadow"
)

// modes lists the values of Mode, for messages.
var modes = []Mode{ModeLocal, ModeRemote, ModeSplit, ModeShadow}

// Keys of a module's section that app reads (and removes) before the module decodes it.
const (
	modeKey     = "mode"
	rolloutKey  = "rollout"
	rollbackKey = "rollback"
)

// Remote is what a process needs of a module beyond its Options: the api client to use when the module runs
// elsewhere, the server that lets other processes call it when it runs here, and the router that measures
// every call and, in split mode, sends each to one side. Build it with RemoteAPI.
type Remote struct {
	methods []route.MethodInfo
	// uses records, in the scope of caller, that caller takes module's api.
	uses   func(caller, module string) fx.Option
	local  func(module string) fx.Option
	remote func(module string) fx.Option
	split  func(module string) fx.Option
	serve  func(module string) fx.Option
}

// RemoteAPI describes module api T's generated stubs (modules/<m>/api/remote): newClient is the generated
// New<X>ClientFunc, serve the generated Serve<X>, newRouter the generated New<X>Router and methods the
// generated <X>Methods. remoteOnly adds options used only when the module runs remote (for example the
// adapters the process needs over the client, such as auth's token verifier).
func RemoteAPI[T any](newClient func(conn func() *nats.Conn, opts ...rpc.CallOption) T,
	serve func(conn *nats.Conn, impl T, logger *slog.Logger, opts ...rpc.ServeOption) (micro.Service, error),
	newRouter func(local, remote T, mod *route.Module) T, methods []route.MethodInfo, remoteOnly ...fx.Option) Remote {
	var none T
	return Remote{
		methods: methods,
		uses: func(caller, module string) fx.Option {
			return fx.Decorate(func(api T, g *ModuleGraph) T {
				g.call(caller, module)
				return api
			})
		},
		local: func(module string) fx.Option {
			return fx.Decorate(func(local T, t *route.Table) T { return newRouter(local, none, t.Module(module)) })
		},
		split: func(module string) fx.Option {
			return fx.Decorate(func(local T, b *bus.Bus, t *route.Table, cfg *Config, lanes *rpc.Lanes) T {
				return newRouter(local, newClient(b.Conn, cfg.callOptions(lanes)...), t.Module(module))
			})
		},
		remote: func(module string) fx.Option {
			return fx.Options(
				fx.Provide(func(b *bus.Bus, t *route.Table, cfg *Config, lanes *rpc.Lanes) T {
					return newRouter(none, newClient(b.Conn, cfg.callOptions(lanes)...), t.Module(module))
				}),
				fx.Options(remoteOnly...),
			)
		},
		serve: func(module string) fx.Option {
			return fx.Invoke(func(lc fx.Lifecycle, b *bus.Bus, impl T, logger *slog.Logger, cfg *Config, s *httpx.Server,
				hcfg httpx.Config) error {
				if err := b.Declare(bus.Declaration{Module: module}); err != nil {
					return err
				}
				var svc micro.Service
				lc.Append(fx.Hook{
					OnStart: func(context.Context) error {
						conn, err := b.ModuleConn(module)
						if err != nil {
							return err
						}
						// The module's HTTP routes are served on its lanes too, for gateways that have a lane to it.
						ml := observe.ModuleLogger(logger, module)
						svc, err = serve(conn, impl, ml, rpc.ServeLanes(cfg.RPC),
							rpc.AlsoServe(httpx.LaneEndpoint(s.Handler(), hcfg.WriteTimeout, ml)))
						return err
					},
					OnStop: func(context.Context) error { return svc.Stop() },
				})
				return nil
			})
		},
	}
}

// localOptions runs m in this process: its own options, its api (through its router) and HTTP routes
// served on the bus for gateways in other processes.
func localOptions(m Module, modules []Module) fx.Option {
	opts := []fx.Option{scoped(m, m.Options, modules), serveHTTPOnBus(m.Name)}
	if m.Remote.serve != nil {
		opts = append(opts, m.Remote.local(m.Name), m.Remote.serve(m.Name), measuredRoutes(m.Name, m.prefix(), false))
	}
	return fx.Options(opts...)
}

// splitOptions runs m here and routes its calls between this process and its extracted instances; it
// serves nothing of m on the bus.
func splitOptions(m Module, modules []Module) (fx.Option, error) {
	if m.Remote.split == nil {
		return nil, fmt.Errorf("config: modules.%s.%s: module %s has no remote api (Module.Remote is not set)", m.Name, modeKey, m.Name)
	}
	return fx.Options(scoped(m, m.Options, modules), m.Remote.split(m.Name), measuredRoutes(m.Name, m.prefix(), true)), nil
}

// remoteOptions reaches m in other processes: its api through the generated client, and its HTTP routes
// through a gateway.
func remoteOptions(m Module) (fx.Option, error) {
	if m.Remote.remote == nil {
		return nil, fmt.Errorf("config: modules.%s.%s: module %s has no remote api (Module.Remote is not set)", m.Name, modeKey, m.Name)
	}
	return fx.Options(m.Remote.remote(m.Name), gatewayRoutes(m.Name, m.prefix())), nil
}

// prefix is where m mounts its HTTP routes.
func (m Module) prefix() string {
	if m.HTTPPrefix == "" {
		return "/api/" + m.Name
	}
	return m.HTTPPrefix
}

// serveHTTPOnBus serves the HTTP requests gateways forward for module with the process's whole handler
// (request id, authentication, body limit and the module's routes), on the module's own connection.
func serveHTTPOnBus(module string) fx.Option {
	return fx.Invoke(func(lc fx.Lifecycle, b *bus.Bus, s *httpx.Server, cfg httpx.Config, logger *slog.Logger) error {
		if err := b.Declare(bus.Declaration{Module: module}); err != nil {
			return err
		}
		var ns *httpx.NATSServer
		lc.Append(fx.Hook{
			OnStart: func(context.Context) error {
				conn, err := b.ModuleConn(module)
				if err != nil {
					return err
				}
				ns, err = httpx.ServeNATS(conn, bus.HTTPSubject(module), s.Handler(), cfg.WriteTimeout, observe.ModuleLogger(logger, module))
				return err
			},
			OnStop: func(ctx context.Context) error { return ns.Stop(ctx) },
		})
		return nil
	})
}

// newGateway returns the gateway that forwards module's HTTP requests to the processes running it, on the
// process's direct lanes to them when lanes are on, and over the platform's own connection otherwise.
func newGateway(module string, b *bus.Bus, cfg httpx.Config, logger *slog.Logger, appCfg *Config, lanes *rpc.Lanes) *httpx.Gateway {
	var opts []httpx.GatewayOption
	if appCfg.RPC.Lanes {
		opts = append(opts, httpx.OverLanes(lanes, module))
	}
	return httpx.NewGateway(b.Conn, bus.HTTPSubject(module), cfg.WriteTimeout, observe.ModuleLogger(logger, module), opts...)
}

// gatewayRoutes mounts a gateway at prefix that forwards every request there to the processes running
// module, measured by the module's router.
func gatewayRoutes(module, prefix string) fx.Option {
	return fx.Provide(httpx.AsRoutes(func(b *bus.Bus, cfg httpx.Config, logger *slog.Logger, t *route.Table, appCfg *Config,
		lanes *rpc.Lanes) httpx.Routes {
		h := route.HTTP(t.Module(module), nil, newGateway(module, b, cfg, logger, appCfg, lanes), logger)
		return httpx.Routes{Prefix: prefix, Mount: func(r chi.Router) {
			r.Handle("/", h)
			r.Handle("/*", h)
		}}
	}))
}

// measuredRoutes wraps the module's own routes at prefix in its router: each request is measured, and in
// split mode (forward) served here or forwarded to the module's extracted instances as the router decides.
func measuredRoutes(module, prefix string, forward bool) fx.Option {
	return fx.Provide(httpx.AsWrapper(func(b *bus.Bus, cfg httpx.Config, logger *slog.Logger, t *route.Table, appCfg *Config,
		lanes *rpc.Lanes) httpx.Wrapper {
		var gw *httpx.Gateway
		if forward {
			gw = newGateway(module, b, cfg, logger, appCfg, lanes)
		}
		return httpx.Wrapper{Prefix: prefix, Middleware: func(next http.Handler) http.Handler {
			return route.HTTP(t.Module(module), next, gw, logger)
		}}
	}))
}

// assembly is what moduleOptions decides about the modules of a process.
type assembly struct {
	// opts run each module as its mode says.
	opts []fx.Option
	// remote names the modules that run entirely elsewhere.
	remote []string
	// routes is the routing of every module that has a remote api.
	routes []route.ModuleConfig
	// nodes are the modules with their modes, for the module graph.
	nodes []GraphNode
}

// moduleOptions decides how this process runs each module, from its mode.
func (c *Config) moduleOptions(modules []Module) (assembly, error) {
	var a assembly
	for _, m := range modules {
		mode, err := c.ModuleMode(m.Name)
		if err != nil {
			return assembly{}, err
		}
		var o fx.Option
		switch mode {
		case ModeLocal:
			o = localOptions(m, modules)
		case ModeRemote:
			o, err = remoteOptions(m)
			a.remote = append(a.remote, m.Name)
		default:
			o, err = splitOptions(m, modules)
		}
		if err != nil {
			return assembly{}, err
		}
		a.opts = append(a.opts, o)
		a.nodes = append(a.nodes, GraphNode{Name: m.Name, Mode: mode})
		rc, err := c.moduleRouting(m, mode)
		if err != nil {
			return assembly{}, err
		}
		if m.Remote.methods != nil || mode != ModeLocal {
			a.routes = append(a.routes, rc)
		}
	}
	return a, nil
}

// allLocal returns a copy of c in which every one of modules runs locally.
func (c *Config) allLocal(modules []Module) *Config {
	dry := *c
	// Reading a mode removes it from the module's section: the copy must not touch c's sections.
	dry.Modules = maps.Clone(c.Modules)
	dry.forcedModes = map[string]Mode{}
	for _, m := range modules {
		dry.forcedModes[m.Name] = ModeLocal
	}
	return &dry
}

// elsewhereDeclarations returns the bus declarations of the modules named remote, read from their code as if
// they ran here: the embedded server lets the processes running them connect with those permissions.
func (c *Config) elsewhereDeclarations(modules []Module, remote []string) ([]bus.Declaration, error) {
	if len(remote) == 0 || len(c.Bus.URLs) > 0 {
		return nil, nil
	}
	decls, err := Declarations(c, modules...)
	if err != nil {
		return nil, fmt.Errorf("declarations of the remote modules: %w", err)
	}
	var out []bus.Declaration
	for _, d := range decls {
		if slices.Contains(remote, d.Module) {
			out = append(out, d)
		}
	}
	return out, nil
}

// ModuleMode returns where module name runs: a mode forced by RunExtracted, else SEAM_<NAME>_MODE, else
// modules.<name>.mode, else ModeLocal. It removes the mode key from the module's section, so the module's
// own Config never sees it.
func (c *Config) ModuleMode(name string) (Mode, error) {
	envName := config.EnvName(config.EnvPrefix, name, modeKey)
	if c.knownEnv == nil {
		c.knownEnv = map[string]bool{}
	}
	c.knownEnv[envName] = true
	raw, fromYAML, err := c.takeModeKey(name)
	if err != nil {
		return "", err
	}
	for _, kv := range c.environ {
		if k, v, _ := strings.Cut(kv, "="); k == envName {
			raw, fromYAML = v, false
		}
	}
	if forced, ok := c.forcedModes[name]; ok {
		return forced, nil
	}
	if raw == "" && !fromYAML {
		return ModeLocal, nil
	}
	m := Mode(strings.TrimSpace(raw))
	if !slices.Contains(modes, m) {
		return "", fmt.Errorf("config: modules.%s.%s (%s): must be one of %s, got %q", name, modeKey, envName, modeList(), raw)
	}
	return m, nil
}

// takeModeKey removes modules.<name>.mode from the section, returning its value and whether it was there.
func (c *Config) takeModeKey(name string) (string, bool, error) {
	v, ok := c.takeKey(name, modeKey)
	if !ok {
		return "", false, nil
	}
	if v.Kind != yaml.ScalarNode {
		return "", false, fmt.Errorf("config: modules.%s.%s: must be one of %s", name, modeKey, modeList())
	}
	return v.Value, true, nil
}

// takeKey removes modules.<name>.<key> from the section and returns its value, if it was there.
func (c *Config) takeKey(name, key string) (*yaml.Node, bool) {
	node, ok := c.Modules[name]
	if !ok || node.Kind != yaml.MappingNode {
		return nil, false
	}
	for i := 0; i+1 < len(node.Content); i += 2 {
		if node.Content[i].Value != key {
			continue
		}
		v := node.Content[i+1]
		// A new slice: the section's nodes may be shared with a copy of the configuration (allLocal).
		node.Content = append(node.Content[:i:i], node.Content[i+2:]...)
		c.Modules[name] = node
		return v, true
	}
	return nil, false
}

// modeList renders modes for a message: "local", "remote", "split" or "shadow".
func modeList() string {
	quoted := make([]string, len(modes))
	for i, m := range modes {
		quoted[i] = strconv.Quote(string(m))
	}
	return strings.Join(quoted[:len(quoted)-1], ", ") + " or " + quoted[len(quoted)-1]
}

// ErrEmbeddedBus is returned by RunExtracted when no external NATS servers are configured.
var ErrEmbeddedBus = errors.New("bus.urls (SEAM_BUS_URLS): an extracted module must connect to external NATS servers " +
	"(the monolith's embedded server listening on a port, or a NATS cluster); it does not run an embedded server")

// RunExtracted runs local, a module extracted into its own binary: local in this process and every module in
// others remote, reached through their generated clients and gateways. It refuses to start without bus.urls.
func RunExtracted(ctx context.Context, cfg *Config, logOut io.Writer, local Module, others ...Module) error {
	if len(cfg.Bus.URLs) == 0 {
		return ErrEmbeddedBus
	}
	cfg.forcedModes = map[string]Mode{local.Name: ModeLocal}
	for _, m := range others {
		cfg.forcedModes[m.Name] = ModeRemote
	}
	return Run(ctx, cfg, logOut, append([]Module{local}, others...)...)
}
