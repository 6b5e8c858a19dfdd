package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"go.uber.org/fx"
	"go.uber.org/fx/fxevent"

	"github.com/seamkit/seam/platform/bus"
	"github.com/seamkit/seam/platform/config"
	"github.com/seamkit/seam/platform/db"
	"github.com/seamkit/seam/platform/failpoint"
	"github.com/seamkit/seam/platform/httpx"
	"github.com/seamkit/seam/platform/observe"
	"github.com/seamkit/seam/platform/rpc"
)

// Module names a module and the fx options that run it in this process.
type Module struct {
	Name    string
	Options fx.Option
	// Remote reaches the module when it runs in another process (modules.<name>.mode: remote) and serves
	// its api to other processes when it runs in this one; see RemoteAPI.
	Remote Remote
	// HTTPPrefix is where the module mounts its HTTP routes, which a gateway forwards when the module runs
	// remote; empty means "/api/<name>".
	HTTPPrefix string
}

// StartTimeout bounds start-up, which on a first run includes creating the local database cluster.
const StartTimeout = 2 * time.Minute

// BusSecretFile is the file, in the data directory, that keeps the generated secret the modules' NATS
// passwords derive from (when bus.credentials_secret is not set).
const BusSecretFile = "bus-secret"

// BusConfig is the bus section with the application's defaults filled in: the generated secret lives in
// <data_dir>/bus-secret.
func (c *Config) BusConfig() bus.Config {
	bc := c.Bus
	if bc.SecretFile == "" {
		bc.SecretFile = filepath.Join(c.DataDir, BusSecretFile)
	}
	return bc
}

// New builds the fx application for cfg running modules, logging to logOut.
func New(cfg *Config, logOut io.Writer, modules ...Module) (*fx.App, *slog.Logger, error) {
	if err := failpoint.Configure(cfg.Failpoints); err != nil {
		return nil, nil, fmt.Errorf("config: failpoints: %w", err)
	}
	a, logger, err := assemble(cfg, logOut, fx.Options(), modules)
	if err == nil && failpoint.Enabled() {
		logger.Warn("failpoints are active: this process will fail on purpose (fault testing only)",
			slog.String("failpoints", cfg.Failpoints))
	}
	return a, logger, err
}

// Declarations assembles the application for cfg and modules, every module local whatever its configured
// mode, without starting it (no database, bus or listener is touched) and returns what the modules declared of
// the bus through Publisher, Consume and their api servers. It is the input of bus.AuthorizationConfig, and
// being read from the assembled code, it cannot drift from it.
func Declarations(cfg *Config, modules ...Module) ([]bus.Declaration, error) {
	var b *bus.Bus
	if _, _, err := assemble(cfg.allLocal(modules), io.Discard, fx.Populate(&b), modules); err != nil {
		return nil, err
	}
	decls := b.Declarations()
	if err := bus.ValidateDeclarations(decls); err != nil {
		return nil, err
	}
	return decls, nil
}

// assemble builds the fx application for cfg running modules plus extra, logging to logOut.
func assemble(cfg *Config, logOut io.Writer, extra fx.Option, modules []Module) (*fx.App, *slog.Logger, error) {
	logger, err := observe.NewLogger(cfg.Log, logOut)
	if err != nil {
		return nil, nil, fmt.Errorf("config: %w", err)
	}
	names := make([]string, len(modules))
	for i, m := range modules {
		names[i] = m.Name
	}
	if err := cfg.checkModules(names); err != nil {
		return nil, nil, err
	}
	asm, err := cfg.moduleOptions(modules)
	if err != nil {
		return nil, nil, err
	}
	elsewhere, err := cfg.elsewhereDeclarations(modules, asm.remote)
	if err != nil {
		return nil, nil, err
	}
	logger.Info("configuration", slog.Any("config", config.Redacted(cfg)))
	kernel := fx.Options(
		fx.WithLogger(func() fxevent.Logger {
			l := &fxevent.SlogLogger{Logger: logger}
			l.UseLogLevel(slog.LevelDebug)
			return l
		}),
		fx.StartTimeout(StartTimeout),
		fx.StopTimeout(cfg.StopTimeout),
		fx.Supply(cfg, logger, cfg.HTTP),
		fx.Provide(
			observe.NewMetrics,
			func(lc fx.Lifecycle) *db.Database {
				d := db.New(cfg.Database, cfg.DataDir, logger)
				lc.Append(fx.Hook{OnStart: d.Start, OnStop: d.Stop})
				return d
			},
			func(lc fx.Lifecycle) (*bus.Bus, error) {
				// Modules declare their use of the bus (Publisher, Consume) while the graph is built;
				// Start, in OnStart, runs after that and gives each its own connection.
				b := bus.New(cfg.BusConfig(), logger)
				for _, d := range elsewhere {
					if err := b.DeclareElsewhere(d); err != nil {
						return nil, err
					}
				}
				lc.Append(fx.Hook{
					OnStart: func(ctx context.Context) error {
						if err := b.Start(ctx); err != nil {
							return err
						}
						for _, name := range names {
							if _, err := b.EnsureStream(ctx, name); err != nil {
								return fmt.Errorf("bus: stream for %s: %w", name, err)
							}
						}
						return nil
					},
					OnStop: b.Close,
				})
				return b, nil
			},
			func(lc fx.Lifecycle) *rpc.Lanes {
				lanes := rpc.NewLanes(logger)
				lc.Append(fx.StopHook(lanes.Close))
				return lanes
			},
			NewConsumers,
			httpx.AsRoutes(adminRoutes),
			httpx.AsRoutes(dashboardRoutes),
			httpx.AsReadinessCheck(func(d *db.Database) httpx.ReadinessCheck {
				return httpx.ReadinessCheck{Name: "database", Check: d.Ping}
			}),
			httpx.AsReadinessCheck(func(b *bus.Bus) httpx.ReadinessCheck {
				return httpx.ReadinessCheck{Name: "bus", Check: b.Ready}
			}),
		),
		// Force the kernel to start first (and stop last) whatever the modules ask for.
		fx.Invoke(func(*db.Database, *bus.Bus) {}),
		// Tracing's hook follows the bus's, registered as soon as the bus is built, before any module that
		// reaches the bus has registered its own (fx runs the modules' invokes before these): tracing starts
		// before those modules and stops, flushing its spans, after the HTTP server, relays and consumers and
		// before the bus closes.
		fx.Decorate(func(lc fx.Lifecycle, b *bus.Bus) *bus.Bus {
			t := observe.NewTracing(cfg.tracing(), logger)
			lc.Append(fx.Hook{OnStart: t.Start, OnStop: t.Stop})
			return b
		}),
		fx.Invoke(registerConsumerMetrics),
	)
	all := append([]fx.Option{kernel, routingOptions(asm.routes, asm.nodes)}, asm.opts...)
	all = append(all, startRouting, httpx.Module, extra)
	a := fx.New(all...)
	if err := a.Err(); err != nil {
		return nil, logger, fmt.Errorf("assemble application: %w", err)
	}
	for _, name := range cfg.unknownEnv() {
		logger.Warn("environment variable is not a Seam setting; ignored (misspelt?)", slog.String("variable", name))
	}
	return a, logger, nil
}

// Run starts the application, waits for SIGINT or SIGTERM (or ctx's end), then shuts down gracefully:
// HTTP drains first, then consumers and relays, then the bus and the database.
func Run(ctx context.Context, cfg *Config, logOut io.Writer, modules ...Module) error {
	a, logger, err := New(cfg, logOut, modules...)
	if err != nil {
		return err
	}
	startCtx, cancel := context.WithTimeout(ctx, StartTimeout)
	defer cancel()
	if err := a.Start(startCtx); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	logger.Info("seam started")
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sig)
	select {
	case s := <-sig:
		logger.Info("shutting down", slog.String("signal", s.String()))
	case <-ctx.Done():
		logger.Info("shutting down", slog.String("reason", context.Cause(ctx).Error()))
	}
	stopCtx, cancelStop := context.WithTimeout(context.WithoutCancel(ctx), cfg.StopTimeout)
	defer cancelStop()
	if err := a.Stop(stopCtx); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("stop: %w", err)
	}
	logger.Info("seam stopped")
	return nil
}
