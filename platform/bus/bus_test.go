package bus_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/seamkit/seam/platform/bus"
)

func TestNames(t *testing.T) {
	if got := bus.StreamName("billing"); got != "BILLING" {
		t.Errorf("StreamName = %q", got)
	}
	if got := bus.EventSubject("billing", "payment_completed"); got != "billing.events.payment_completed" {
		t.Errorf("EventSubject = %q", got)
	}
}

func TestConfigDefaultsAndValidate(t *testing.T) {
	var c bus.Config
	c.SetDefaults()
	want := bus.Config{Host: "127.0.0.1", Port: 4222, SyncAlways: true, DedupWindow: 2 * time.Minute, Replicas: 1,
		DrainTimeout: 10 * time.Second}
	if c.Host != want.Host || c.Port != want.Port || c.SyncAlways != want.SyncAlways || c.DedupWindow != want.DedupWindow ||
		c.Replicas != want.Replicas || c.DrainTimeout != want.DrainTimeout {
		t.Fatalf("defaults = %+v, want %+v", c, want)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	tests := []struct {
		name   string
		change func(*bus.Config)
		key    string
	}{
		{"port zero", func(c *bus.Config) { c.Port = 0 }, "bus.port"},
		{"port too big", func(c *bus.Config) { c.Port = 70000 }, "bus.port"},
		{"empty host", func(c *bus.Config) { c.Host = " " }, "bus.host"},
		{"embedded replicas", func(c *bus.Config) { c.Replicas = 3 }, "bus.replicas"},
		{"cluster replicas", func(c *bus.Config) { c.URLs = []string{"nats://a:4222"}; c.Replicas = 7 }, "bus.replicas"},
		{"empty url", func(c *bus.Config) { c.URLs = []string{""} }, "bus.urls[0]"},
		{"bad scheme", func(c *bus.Config) { c.URLs = []string{"nats://a:4222", "http://b:4222"} }, "bus.urls[1]"},
		{"dedup window", func(c *bus.Config) { c.DedupWindow = -time.Second }, "bus.dedup_window"},
		{"drain timeout", func(c *bus.Config) { c.DrainTimeout = 0 }, "bus.drain_timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := want
			tt.change(&c)
			err := c.Validate()
			if err == nil || !strings.HasPrefix(err.Error(), tt.key+":") {
				t.Fatalf("Validate() = %v, want an error about %s", err, tt.key)
			}
		})
	}
	ok := want
	ok.URLs = []string{"nats://a:4222", "b:4223", "tls://c"}
	ok.Replicas = 3
	ok.Port = 0
	if err := ok.Validate(); err != nil {
		t.Fatalf("external config: %v", err)
	}
}

func testLogger(t *testing.T) *slog.Logger {
	t.Helper()
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// testSecret is the credentials secret the tests' buses share.
const testSecret = "test-secret"

func embedded(t *testing.T, dir string, decls ...bus.Declaration) *bus.Bus {
	t.Helper()
	var cfg bus.Config
	cfg.SetDefaults()
	cfg.Port = -1
	cfg.StoreDir = dir
	cfg.CredentialsSecret = testSecret
	b, err := bus.Start(t.Context(), cfg, testLogger(t), decls...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return b
}

func TestEmbeddedStreamDeduplicates(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	ctx := t.Context()
	dir := t.TempDir()
	b := embedded(t, dir)
	if !strings.HasPrefix(b.ClientURL(), "nats://127.0.0.1:") || strings.HasSuffix(b.ClientURL(), ":-1") {
		t.Fatalf("ClientURL = %q", b.ClientURL())
	}
	if err := b.Ready(ctx); err != nil {
		t.Fatalf("Ready: %v", err)
	}
	for range 2 {
		if _, err := b.EnsureStream(ctx, "billing"); err != nil {
			t.Fatalf("EnsureStream: %v", err)
		}
	}
	for range 2 {
		msg := nats.NewMsg(bus.EventSubject("billing", "payment_completed"))
		msg.Data = []byte(`{"amount":1}`)
		msg.Header.Set(bus.HeaderMsgID, "0b8f3f3e-8b39-4f7c-9d7e-7f5f0f5f0f5f")
		if _, err := b.JetStream().PublishMsg(ctx, msg); err != nil {
			t.Fatalf("publish: %v", err)
		}
	}
	stream, err := b.JetStream().Stream(ctx, bus.StreamName("billing"))
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 1 {
		t.Fatalf("stream holds %d messages, want 1", info.State.Msgs)
	}
	if info.Config.Storage != jetstream.FileStorage || info.Config.Duplicates != 2*time.Minute ||
		len(info.Config.Subjects) != 1 || info.Config.Subjects[0] != "billing.events.>" {
		t.Fatalf("stream config = %+v", info.Config)
	}
	if _, err := b.JetStream().Publish(ctx, "auth.events.x", nil); !errors.Is(err, jetstream.ErrNoStreamResponse) {
		t.Fatalf("publish outside any stream: %v, want ErrNoStreamResponse", err)
	}
	if _, err := b.EnsureStream(ctx, "Bad.Name"); err == nil {
		t.Fatal("EnsureStream accepted an invalid module name")
	}
}

func TestEmbeddedStoreSurvivesRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	ctx := t.Context()
	dir := t.TempDir()
	first := embedded(t, dir)
	if _, err := first.EnsureStream(ctx, "auth"); err != nil {
		t.Fatal(err)
	}
	if _, err := first.JetStream().Publish(ctx, bus.EventSubject("auth", "user_registered"), []byte("{}")); err != nil {
		t.Fatal(err)
	}
	if err := first.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := first.Close(ctx); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := first.Ready(ctx); err == nil {
		t.Fatal("Ready after Close succeeded")
	}

	second := embedded(t, dir)
	stream, err := second.EnsureStream(ctx, "auth")
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 1 {
		t.Fatalf("after restart the stream holds %d messages, want 1", info.State.Msgs)
	}
}

func TestEmbeddedServerOnATakenPortFailsAtOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = taken.Close() }()
	var cfg bus.Config
	cfg.SetDefaults()
	cfg.Host = "127.0.0.1"
	cfg.Port = taken.Addr().(*net.TCPAddr).Port
	cfg.StoreDir = t.TempDir()
	cfg.CredentialsSecret = testSecret
	// A deadline far away: failing within it is not enough, the start must fail on the server's own error.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	b, err := bus.Start(ctx, cfg, testLogger(t))
	if err == nil {
		_ = b.Close(context.Background())
		t.Fatal("started an embedded server on a port in use")
	}
	if !errors.Is(err, bus.ErrServerFailed) || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("error = %v, want ErrServerFailed naming the port in use", err)
	}
}

func TestExternalURLs(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	ctx := t.Context()
	reporting := bus.Declaration{Module: "reporting"}
	server := embedded(t, t.TempDir(), reporting)
	cfg := bus.Config{URLs: []string{server.ClientURL()}, CredentialsSecret: testSecret}
	cfg.SetDefaults()
	client, err := bus.Start(ctx, cfg, testLogger(t), reporting)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close(context.Background())
	if client.ClientURL() != server.ClientURL() {
		t.Errorf("client ClientURL = %q, want %q", client.ClientURL(), server.ClientURL())
	}
	if err := client.Ready(ctx); err != nil {
		t.Fatalf("Ready: %v", err)
	}
	if _, err := client.EnsureStream(ctx, "reporting"); err != nil {
		t.Fatal(err)
	}
	if _, err := server.JetStream().Stream(ctx, "REPORTING"); err != nil {
		t.Fatalf("stream made through the client is not on the server: %v", err)
	}
	js, err := client.ModuleJetStream("reporting")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, bus.EventSubject("reporting", "x"), nil); err != nil {
		t.Fatalf("the client's module connection cannot publish its own event: %v", err)
	}

	wrong := cfg
	wrong.CredentialsSecret = "another-secret"
	if _, err := bus.Start(ctx, wrong, testLogger(t)); !errors.Is(err, nats.ErrAuthorization) {
		t.Fatalf("Start with another secret = %v, want an authorization violation", err)
	}
	unknown := cfg
	if _, err := bus.Start(ctx, unknown, testLogger(t), bus.Declaration{Module: "billing"}); !errors.Is(err, nats.ErrAuthorization) ||
		!strings.Contains(err.Error(), "module billing") {
		t.Fatalf("Start as a module the server does not know = %v, want an authorization violation naming it", err)
	}
}

func TestNotStarted(t *testing.T) {
	var cfg bus.Config
	cfg.SetDefaults()
	b := bus.New(cfg, testLogger(t))
	if err := b.Ready(t.Context()); !errors.Is(err, bus.ErrNotStarted) {
		t.Fatalf("Ready = %v, want ErrNotStarted", err)
	}
	if _, err := b.EnsureStream(t.Context(), "billing"); !errors.Is(err, bus.ErrNotStarted) {
		t.Fatalf("EnsureStream = %v, want ErrNotStarted", err)
	}
	if err := b.Close(t.Context()); err != nil {
		t.Fatalf("Close before Start: %v", err)
	}
	if err := b.Start(t.Context()); err == nil {
		t.Fatal("Start after Close succeeded")
	}
	cfg.Port = -1
	if _, err := bus.Start(t.Context(), cfg, testLogger(t)); err == nil || !strings.Contains(err.Error(), "bus.store_dir") {
		t.Fatalf("Start without a store dir = %v", err)
	}
}
