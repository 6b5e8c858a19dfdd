package app

import (
	"context"
	"io/fs"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/fx"

	"github.com/seamkit/seam/platform/bus"
	"github.com/seamkit/seam/platform/db"
	"github.com/seamkit/seam/platform/inbox"
	"github.com/seamkit/seam/platform/observe"
	"github.com/seamkit/seam/platform/outbox"
)

// Section provides module name's typed configuration section to that module only.
func Section[T any](name string) fx.Option {
	return fx.Provide(fx.Private, func(c *Config) (T, error) {
		var section T
		err := c.ModuleSection(name, &section)
		return section, err
	})
}

// Storage gives the module its own logger (module=<name>) and a private connection pool, and applies its
// migrations into its schema at start, before any of the module's own start hooks.
func Storage(name string, migrations fs.FS) fx.Option {
	return fx.Options(
		fx.Decorate(func(l *slog.Logger) *slog.Logger { return observe.ModuleLogger(l, name) }),
		fx.Provide(fx.Private, func(lc fx.Lifecycle, d *db.Database) (*pgxpool.Pool, error) {
			pool, err := d.ModulePool(name)
			if err != nil {
				return nil, err
			}
			lc.Append(fx.Hook{
				OnStart: func(ctx context.Context) error { return d.Migrate(ctx, name, migrations) },
				OnStop:  func(context.Context) error { pool.Close(); return nil },
			})
			return pool, nil
		}),
		fx.Invoke(func(pools *ModulePools, pool *pgxpool.Pool) { pools.add(name, pool) }),
	)
}

// Publisher runs the module's outbox relay, which publishes the events the module commits to its stream. It
// declares the module's use of the bus, so the module connects to NATS as its own user, allowed to publish
// only its own events.
func Publisher(name string) fx.Option {
	return fx.Invoke(func(lc fx.Lifecycle, pool *pgxpool.Pool, b *bus.Bus, logger *slog.Logger, metrics *observe.Metrics) error {
		if err := b.Declare(bus.Declaration{Module: name}); err != nil {
			return err
		}
		var relay *outbox.Relay
		lc.Append(fx.Hook{
			OnStart: func(ctx context.Context) error {
				js, err := b.ModuleJetStream(name)
				if err != nil {
					return err
				}
				relay = outbox.NewRelay(pool, js, name, logger, outbox.RelayOptions{Backlog: metrics})
				return relay.Start(ctx)
			},
			OnStop: func(ctx context.Context) error { return relay.Stop(ctx) },
		})
		return nil
	})
}

// Consume runs a durable consumer for the module; its handler applies each event once, in the module's own
// transaction with the inbox record. It declares the consumer (stream, durable name, subjects) as the
// module's use of the bus, so the module's NATS user may read through this consumer and no other; the bus
// validates the declaration when it starts. It registers the consumer in consumers, so the admin API can
// re-drive its dead letters and replay it; the inbox section of the configuration may override its retries.
func Consume(lc fx.Lifecycle, consumers *Consumers, name string, pool *pgxpool.Pool, b *bus.Bus, logger *slog.Logger, sub inbox.Subscription) {
	declErr := b.Declare(bus.Declaration{Module: name, Consumes: []bus.Consumption{
		{Stream: sub.Stream, Durable: sub.Name, Subjects: sub.Subjects},
	}})
	entry := consumers.add(name, pool, sub, logger)
	lc.Append(fx.Hook{
		OnStart: func(ctx context.Context) error {
			if declErr != nil {
				return declErr
			}
			js, err := b.ModuleJetStream(name)
			if err != nil {
				return err
			}
			return entry.start(ctx, js)
		},
		OnStop: entry.stop,
	})
}
