package app_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/fx"

	"github.com/seamkit/seam/platform/app"
	"github.com/seamkit/seam/platform/bus"
	"github.com/seamkit/seam/platform/inbox"
)

func ignore(context.Context, pgx.Tx, inbox.Message) error { return nil }

// consumer is a module that consumes through subs and publishes nothing.
func consumer(name string, subs ...inbox.Subscription) app.Module {
	return app.Module{Name: name, Options: fx.Module(name,
		app.Storage(name, fstest.MapFS{}),
		fx.Invoke(func(lc fx.Lifecycle, consumers *app.Consumers, pool *pgxpool.Pool, b *bus.Bus, logger *slog.Logger) {
			for _, sub := range subs {
				app.Consume(lc, consumers, name, pool, b, logger, sub)
			}
		}),
	)}
}

func publisher(name string) app.Module {
	return app.Module{Name: name, Options: fx.Module(name, app.Storage(name, fstest.MapFS{}), app.Publisher(name))}
}

func loadConfig(t *testing.T) *app.Config {
	t.Helper()
	cfg, err := app.LoadConfig("", []string{"SEAM_DATA_DIR=" + t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestDeclarationsComeFromPublisherAndConsume(t *testing.T) {
	cfg := loadConfig(t)
	payments := inbox.Subscription{Name: "notifications-billing", Stream: bus.StreamName("billing"),
		Subjects: []string{"billing.events.payment_completed"}, Handler: ignore}
	signups := inbox.Subscription{Name: "notifications-auth", Stream: bus.StreamName("auth"),
		Subjects: []string{"auth.events.user_registered"}, Handler: ignore}
	got, err := app.Declarations(cfg, publisher("auth"), publisher("billing"), consumer("notifications", payments, signups),
		consumer("quiet"))
	if err != nil {
		t.Fatal(err)
	}
	want := []bus.Declaration{
		{Module: "auth"},
		{Module: "billing"},
		{Module: "notifications", Consumes: []bus.Consumption{
			{Stream: "AUTH", Durable: "notifications-auth", Subjects: []string{"auth.events.user_registered"}},
			{Stream: "BILLING", Durable: "notifications-billing", Subjects: []string{"billing.events.payment_completed"}},
		}},
		// Every module has a NATS user: it serves its HTTP routes (and its api) on the bus for other processes.
		{Module: "quiet"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("Declarations (-want +got):\n%s", diff)
	}

	bad := inbox.Subscription{Name: "reporting-billing", Stream: bus.StreamName("billing"),
		Subjects: []string{"auth.events.user_registered"}, Handler: ignore}
	if _, err := app.Declarations(cfg, consumer("reporting", bad)); err == nil ||
		!strings.Contains(err.Error(), `subject "auth.events.user_registered" is not on stream BILLING`) {
		t.Fatalf("Declarations with a subject off the stream = %v", err)
	}
}

func TestBusConfigKeepsTheSecretInTheDataDir(t *testing.T) {
	cfg := loadConfig(t)
	if got, want := cfg.BusConfig().SecretFile, cfg.DataDir+"/"+app.BusSecretFile; got != want {
		t.Fatalf("SecretFile = %q, want %q", got, want)
	}
}
