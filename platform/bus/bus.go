// Package bus connects a Seam process to NATS JetStream, running an embedded server when no external one is
// configured, and names the per-module streams and subjects events travel on.
package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Headers every Seam event carries on the bus.
const (
	// HeaderMsgID carries the event id; JetStream drops a second message with the same id within the
	// stream's duplicate window, and consumers use it as the inbox key.
	HeaderMsgID = jetstream.MsgIDHeader
	// HeaderEventType carries the event type, e.g. "payment_completed".
	HeaderEventType = "Seam-Event-Type"
	// HeaderEventKey carries the aggregate key the event is about, e.g. an invoice id.
	HeaderEventKey = "Seam-Event-Key"
	// HeaderOccurredAt carries when the event was recorded, in RFC 3339 with nanoseconds.
	HeaderOccurredAt = "Seam-Occurred-At"
)

// Config is the bus section of the configuration.
type Config struct {
	// URLs of external NATS servers; empty runs an embedded server in this process.
	URLs []string `yaml:"urls"`
	// Host is the embedded server's listen host.
	Host string `yaml:"host"`
	// Port is the embedded server's listen port; -1 picks a free one.
	Port int `yaml:"port"`
	// StoreDir holds the embedded server's JetStream file store; the application sets it from its data dir.
	StoreDir string `yaml:"store_dir"`
	// SyncAlways makes the embedded server fsync every write before acknowledging it.
	SyncAlways bool `yaml:"sync_always"`
	// DedupWindow is how long a stream remembers message ids to drop duplicates.
	DedupWindow time.Duration `yaml:"dedup_window"`
	// Replicas is how many copies of each stream a NATS cluster keeps.
	Replicas int `yaml:"replicas"`
	// DrainTimeout bounds how long Close waits for in-flight messages; keep it below the stop timeout.
	DrainTimeout time.Duration `yaml:"drain_timeout"`
}

// DefaultPort is the embedded server's port when none is configured.
const DefaultPort = 4222

// SetDefaults fills the defaults into a Config before it is decoded. SyncAlways defaults to true, and a
// bool cannot tell unset from false, so SetDefaults always sets it: turn it off after SetDefaults (or in the
// configuration, which is decoded after SetDefaults).
func (c *Config) SetDefaults() {
	if c.Host == "" {
		c.Host = "127.0.0.1"
	}
	if c.Port == 0 {
		c.Port = DefaultPort
	}
	c.SyncAlways = true
	if c.DedupWindow == 0 {
		c.DedupWindow = 2 * time.Minute
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = 10 * time.Second
	}
}

// Validate checks the section; errors name the key. StoreDir is checked by Start, because the application
// fills it in from its data dir after validation.
func (c Config) Validate() error {
	for i, u := range c.URLs {
		if err := validateURL(u); err != nil {
			return fmt.Errorf("bus.urls[%d]: %w", i, err)
		}
	}
	if c.embedded() {
		if strings.TrimSpace(c.Host) == "" {
			return errors.New("bus.host: must not be empty")
		}
		if c.Port != -1 && (c.Port < 1 || c.Port > 65535) {
			return fmt.Errorf("bus.port: must be -1 (any free port) or between 1 and 65535, got %d", c.Port)
		}
		if c.Replicas != 1 {
			return fmt.Errorf("bus.replicas: the embedded server keeps one copy, got %d (set bus.urls for a cluster)", c.Replicas)
		}
	}
	if c.Replicas < 1 || c.Replicas > 5 {
		return fmt.Errorf("bus.replicas: must be between 1 and 5, got %d", c.Replicas)
	}
	if c.DedupWindow <= 0 {
		return fmt.Errorf("bus.dedup_window: must be positive, got %s", c.DedupWindow)
	}
	if c.DrainTimeout <= 0 {
		return fmt.Errorf("bus.drain_timeout: must be positive, got %s", c.DrainTimeout)
	}
	return nil
}

func (c Config) embedded() bool { return len(c.URLs) == 0 }

func validateURL(raw string) error {
	if strings.TrimSpace(raw) == "" {
		return errors.New("must not be empty")
	}
	if !strings.Contains(raw, "://") {
		raw = "nats://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("not a valid URL: %w", err)
	}
	switch u.Scheme {
	case "nats", "tls", "ws", "wss":
	default:
		return fmt.Errorf("scheme must be nats, tls, ws or wss, got %q", u.Scheme)
	}
	if u.Hostname() == "" {
		return errors.New("has no host")
	}
	return nil
}

// ErrNotStarted is returned by operations that need a connection before Start has succeeded.
var ErrNotStarted = errors.New("bus: not started")

// Bus is the process's connection to NATS JetStream, and the embedded server when it runs one.
type Bus struct {
	cfg    Config
	logger *slog.Logger

	mu        sync.Mutex
	srv       *server.Server
	conn      *nats.Conn
	js        jetstream.JetStream
	clientURL string
	closed    chan struct{}
	done      bool
}

// New prepares a bus for cfg (with defaults applied); Start connects it.
func New(cfg Config, logger *slog.Logger) *Bus {
	return &Bus{cfg: cfg, logger: logger}
}

// Start prepares a bus for cfg and starts it.
func Start(ctx context.Context, cfg Config, logger *slog.Logger) (*Bus, error) {
	b := New(cfg, logger)
	if err := b.Start(ctx); err != nil {
		return nil, err
	}
	return b, nil
}

// Start runs the embedded server when no URLs are configured, waits until it accepts clients, then
// connects to the bus.
func (b *Bus) Start(ctx context.Context) error {
	if err := b.cfg.Validate(); err != nil {
		return fmt.Errorf("bus: %w", err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.conn != nil || b.done {
		return errors.New("bus: already started or closed")
	}
	var srv *server.Server
	clientURL := strings.Join(b.cfg.URLs, ",")
	if b.cfg.embedded() {
		var err error
		if srv, err = b.startServer(ctx); err != nil {
			return err
		}
		clientURL = srv.ClientURL()
	}
	closed := make(chan struct{})
	conn, err := nats.Connect(clientURL, b.connectOptions(closed)...)
	if err != nil {
		if srv != nil {
			srv.Shutdown()
			srv.WaitForShutdown()
		}
		return fmt.Errorf("bus: connect to %s: %w", clientURL, err)
	}
	js, err := jetstream.New(conn, jetstream.WithPublishAsyncTimeout(30*time.Second))
	if err != nil {
		conn.Close()
		if srv != nil {
			srv.Shutdown()
			srv.WaitForShutdown()
		}
		return fmt.Errorf("bus: JetStream: %w", err)
	}
	b.srv, b.conn, b.js, b.clientURL, b.closed = srv, conn, js, clientURL, closed
	b.logger.Info("bus connected", slog.String("url", conn.ConnectedUrlRedacted()), slog.Bool("embedded", srv != nil))
	return nil
}

func (b *Bus) startServer(ctx context.Context) (*server.Server, error) {
	if strings.TrimSpace(b.cfg.StoreDir) == "" {
		return nil, errors.New("bus: bus.store_dir: must be set for the embedded server")
	}
	opts := &server.Options{
		ServerName: "seam",
		Host:       b.cfg.Host,
		Port:       b.cfg.Port,
		JetStream:  true,
		StoreDir:   b.cfg.StoreDir,
		SyncAlways: b.cfg.SyncAlways,
		NoSigs:     true,
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("bus: embedded server: %w", err)
	}
	srv.SetLoggerV2(serverLogger{b.logger.With(slog.String("component", "nats-server"))}, false, false, false)
	go srv.Start()
	wait := 10 * time.Second
	if deadline, ok := ctx.Deadline(); ok {
		wait = time.Until(deadline)
	}
	if !srv.ReadyForConnections(wait) {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, fmt.Errorf("bus: embedded server on %s:%d not ready within %s (see the log)", b.cfg.Host, b.cfg.Port, wait)
	}
	b.logger.Info("embedded NATS server running", slog.String("url", srv.ClientURL()),
		slog.String("store_dir", b.cfg.StoreDir), slog.Bool("sync_always", b.cfg.SyncAlways))
	return srv, nil
}

func (b *Bus) connectOptions(closed chan struct{}) []nats.Option {
	return []nats.Option{
		nats.Name("seam"),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		nats.ReconnectJitter(500*time.Millisecond, 2*time.Second),
		nats.DrainTimeout(b.cfg.DrainTimeout),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				b.logger.Warn("bus disconnected", slog.Any("error", err))
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			b.logger.Info("bus reconnected", slog.String("url", c.ConnectedUrlRedacted()))
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			attrs := []any{slog.Any("error", err)}
			if sub != nil {
				attrs = append(attrs, slog.String("subject", sub.Subject))
			}
			b.logger.Error("bus error", attrs...)
		}),
		nats.ClosedHandler(func(*nats.Conn) { close(closed) }),
	}
}

// Conn is the NATS connection, for request/reply and plain subscriptions; nil before Start.
func (b *Bus) Conn() *nats.Conn {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.conn
}

// JetStream is the JetStream context the outbox relays and inbox consumers use; nil before Start.
func (b *Bus) JetStream() jetstream.JetStream {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.js
}

// ClientURL is the address other processes use to reach this bus: the embedded server's URL, or the
// configured URLs joined by commas; empty before Start.
func (b *Bus) ClientURL() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.clientURL
}

var moduleName = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// StreamName names the stream that holds module's events, e.g. "billing" -> "BILLING".
func StreamName(module string) string { return strings.ToUpper(module) }

// EventSubject is the subject module publishes events of eventType on, e.g. "billing",
// "payment_completed" -> "billing.events.payment_completed".
func EventSubject(module, eventType string) string { return module + ".events." + eventType }

// EnsureStream creates module's stream (subjects "<module>.events.>", file storage, duplicate window and
// replicas from the configuration) or updates it to that configuration.
func (b *Bus) EnsureStream(ctx context.Context, module string) (jetstream.Stream, error) {
	if !moduleName.MatchString(module) {
		return nil, fmt.Errorf("bus: module name %q must be lower-case letters, digits and underscores", module)
	}
	js := b.JetStream()
	if js == nil {
		return nil, ErrNotStarted
	}
	stream, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        StreamName(module),
		Description: "events published by the " + module + " module",
		Subjects:    []string{module + ".events.>"},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		Duplicates:  b.cfg.DedupWindow,
		Replicas:    b.cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("bus: ensure stream %s: %w", StreamName(module), err)
	}
	return stream, nil
}

// Ready reports whether the bus is connected and JetStream answers; it backs /readyz.
func (b *Bus) Ready(ctx context.Context) error {
	b.mu.Lock()
	conn, js := b.conn, b.js
	b.mu.Unlock()
	if conn == nil {
		return ErrNotStarted
	}
	if status := conn.Status(); status != nats.CONNECTED {
		return fmt.Errorf("bus: connection is %s", status)
	}
	if _, err := js.AccountInfo(ctx); err != nil {
		return fmt.Errorf("bus: JetStream: %w", err)
	}
	return nil
}

// Close drains the connection (bounded by DrainTimeout and ctx), then shuts the embedded server down.
// It may be called more than once, and before Start.
func (b *Bus) Close(ctx context.Context) error {
	b.mu.Lock()
	if b.done {
		b.mu.Unlock()
		return nil
	}
	b.done = true
	conn, srv, closed := b.conn, b.srv, b.closed
	b.mu.Unlock()
	var errs []error
	if conn != nil {
		if err := conn.Drain(); err != nil {
			errs = append(errs, fmt.Errorf("bus: drain: %w", err))
			conn.Close()
		}
		select {
		case <-closed:
		case <-ctx.Done():
			conn.Close()
			errs = append(errs, fmt.Errorf("bus: drain: %w", ctx.Err()))
		}
	}
	if srv != nil {
		srv.Shutdown()
		srv.WaitForShutdown()
		b.logger.Info("embedded NATS server stopped")
	}
	return errors.Join(errs...)
}

// serverLogger passes the embedded server's log lines to slog.
type serverLogger struct{ logger *slog.Logger }

func (l serverLogger) Noticef(format string, v ...any) { l.logger.Debug(fmt.Sprintf(format, v...)) }
func (l serverLogger) Warnf(format string, v ...any)   { l.logger.Warn(fmt.Sprintf(format, v...)) }
func (l serverLogger) Fatalf(format string, v ...any)  { l.logger.Error(fmt.Sprintf(format, v...)) }
func (l serverLogger) Errorf(format string, v ...any)  { l.logger.Error(fmt.Sprintf(format, v...)) }
func (l serverLogger) Debugf(format string, v ...any)  { l.logger.Debug(fmt.Sprintf(format, v...)) }
func (l serverLogger) Tracef(format string, v ...any)  { l.logger.Debug(fmt.Sprintf(format, v...)) }
