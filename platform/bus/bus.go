// Package bus connects a Seam process to NATS JetStream, running an embedded server when no external one is
// configured, and names the per-module streams and subjects events travel on.
//
// Each module that uses the bus declares it (Bus.Declare) and gets its own NATS connection, as its own user,
// whose server-side permissions allow publishing only the module's own events and consuming only through
// the durable consumers it declared (see Declaration.Permissions); the platform keeps a separate system
// connection to manage streams. The embedded server is configured with these users; an external server gets
// the same configuration from AuthorizationConfig.
package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/crypto/bcrypt"
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
	// CredentialsSecret is the secret every NATS user's password derives from (see Password); empty uses
	// the secret generated into SecretFile.
	CredentialsSecret string `yaml:"credentials_secret" secret:"true"`
	// Credentials overrides the user name and password a module (or SystemUser, "seam") connects as, keyed
	// by module name; a module without an entry uses its name and the derived password.
	Credentials map[string]Credential `yaml:"credentials"`
	// SecretFile keeps the generated secret when CredentialsSecret is empty; the application sets it to
	// <data_dir>/bus-secret. Empty (and no CredentialsSecret) means a secret that lasts as long as the process.
	SecretFile string `yaml:"-"`
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
	for _, name := range slices.Sorted(maps.Keys(c.Credentials)) {
		cred := c.Credentials[name]
		if name != SystemUser && !moduleName.MatchString(name) {
			return fmt.Errorf("bus.credentials.%s: not a module name (or %q)", name, SystemUser)
		}
		if strings.TrimSpace(cred.User) == "" || strings.ContainsAny(cred.User, " \t\r\n") {
			return fmt.Errorf("bus.credentials.%s.user: must be non-empty without whitespace", name)
		}
		if cred.Password == "" {
			return fmt.Errorf("bus.credentials.%s.password: must not be empty", name)
		}
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

// connectTimeout bounds connecting to the server, handshake and authentication included.
const connectTimeout = 10 * time.Second

// ErrNotStarted is returned by operations that need a connection before Start has succeeded.
var ErrNotStarted = errors.New("bus: not started")

// ErrUndeclared is returned (wrapped) when a module asks for its connection without having declared its use
// of the bus before Start.
var ErrUndeclared = errors.New("bus: module did not declare its use of the bus")

// Bus is the process's connection to NATS JetStream, one connection per declared module, and the embedded
// server when it runs one.
type Bus struct {
	cfg    Config
	logger *slog.Logger

	mu        sync.Mutex
	decls     map[string]Declaration
	elsewhere map[string]Declaration
	srv       *server.Server
	system    *client
	modules   map[string]*client
	clientURL string
	done      bool
}

// client is one NATS connection with its JetStream context.
type client struct {
	conn   *nats.Conn
	js     jetstream.JetStream
	closed chan struct{}
}

// New prepares a bus for cfg (with defaults applied); Start connects it.
func New(cfg Config, logger *slog.Logger) *Bus {
	return &Bus{cfg: cfg, logger: logger, decls: map[string]Declaration{}}
}

// Start prepares a bus for cfg, declares decls and starts it.
func Start(ctx context.Context, cfg Config, logger *slog.Logger, decls ...Declaration) (*Bus, error) {
	b := New(cfg, logger)
	for _, d := range decls {
		if err := b.Declare(d); err != nil {
			return nil, err
		}
	}
	if err := b.Start(ctx); err != nil {
		return nil, err
	}
	return b, nil
}

// Declare records what module d.Module uses of the bus; Start gives the module a connection with exactly
// those permissions. Declarations for one module add up. It must be called before Start, which validates
// them (see ValidateDeclarations).
func (b *Bus) Declare(d Declaration) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.system != nil || b.done {
		return fmt.Errorf("bus: declare %s: the bus is already started or closed", d.Module)
	}
	have, ok := b.decls[d.Module]
	if !ok {
		have = Declaration{Module: d.Module}
	}
	b.decls[d.Module] = have.merge(d)
	return nil
}

// DeclareElsewhere records what module d.Module, running in another process, uses of the bus: the embedded
// server (when this process runs it) then lets that process connect as the module, with the module's
// permissions; this process does not connect as it. It must be called before Start.
func (b *Bus) DeclareElsewhere(d Declaration) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.system != nil || b.done {
		return fmt.Errorf("bus: declare %s: the bus is already started or closed", d.Module)
	}
	if b.elsewhere == nil {
		b.elsewhere = map[string]Declaration{}
	}
	have, ok := b.elsewhere[d.Module]
	if !ok {
		have = Declaration{Module: d.Module}
	}
	b.elsewhere[d.Module] = have.merge(d)
	return nil
}

// Declarations returns what the modules declared, ordered by module name; they are not validated.
func (b *Bus) Declarations() []Declaration {
	b.mu.Lock()
	defer b.mu.Unlock()
	return sortedDeclarations(b.decls)
}

// Start runs the embedded server when no URLs are configured (with one user per declared module, plus
// SystemUser), waits until it accepts clients, then connects as SystemUser and as each declared module.
func (b *Bus) Start(ctx context.Context) error {
	if err := b.cfg.Validate(); err != nil {
		return fmt.Errorf("bus: %w", err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.system != nil || b.done {
		return errors.New("bus: already started or closed")
	}
	decls := sortedDeclarations(b.decls)
	elsewhere := sortedDeclarations(b.elsewhere)
	if err := ValidateDeclarations(append(slices.Clone(decls), elsewhere...)); err != nil {
		return err
	}
	secret, err := Secret(b.cfg)
	if err != nil {
		return err
	}
	creds := map[string]Credential{SystemUser: b.cfg.credential(secret, SystemUser)}
	users := map[string]string{creds[SystemUser].User: SystemUser}
	for _, d := range append(slices.Clone(decls), elsewhere...) {
		cred := b.cfg.credential(secret, d.Module)
		if other, taken := users[cred.User]; taken {
			return fmt.Errorf("bus: modules %s and %s would both connect as NATS user %q (see bus.credentials)", other, d.Module, cred.User)
		}
		users[cred.User], creds[d.Module] = d.Module, cred
	}
	var srv *server.Server
	clientURL := strings.Join(b.cfg.URLs, ",")
	if b.cfg.embedded() {
		if srv, err = b.startServer(ctx, append(slices.Clone(decls), elsewhere...), creds); err != nil {
			return err
		}
		clientURL = srv.ClientURL()
	}
	system, modules, err := b.connectAll(clientURL, decls, creds)
	if err != nil {
		if srv != nil {
			srv.Shutdown()
			srv.WaitForShutdown()
		}
		return err
	}
	b.srv, b.system, b.modules, b.clientURL = srv, system, modules, clientURL
	if !system.conn.AuthRequired() {
		b.logger.Warn("the NATS server does not require authentication: module boundaries on the bus are not enforced; " +
			"configure its users with bus.AuthorizationConfig")
	}
	b.logger.Info("bus connected", slog.String("url", system.conn.ConnectedUrlRedacted()), slog.Bool("embedded", srv != nil),
		slog.Int("module_connections", len(modules)))
	return nil
}

// connectAll connects as SystemUser and as every declared module; on failure it closes what it opened.
func (b *Bus) connectAll(clientURL string, decls []Declaration, creds map[string]Credential) (*client, map[string]*client, error) {
	system, err := b.connect(clientURL, "seam", creds[SystemUser], nil)
	if err != nil {
		return nil, nil, fmt.Errorf("bus: %w", err)
	}
	modules := map[string]*client{}
	for _, d := range decls {
		c, err := b.connect(clientURL, "seam-"+d.Module, creds[d.Module],
			[]nats.Option{nats.CustomInboxPrefix(InboxPrefix(d.Module)), nats.PermissionErrOnSubscribe(true)})
		if err != nil {
			system.conn.Close()
			for _, m := range modules {
				m.conn.Close()
			}
			return nil, nil, fmt.Errorf("bus: module %s: %w", d.Module, err)
		}
		modules[d.Module] = c
	}
	return system, modules, nil
}

// connect opens one named connection as cred, with the bus's reconnect, drain and logging behaviour.
func (b *Bus) connect(clientURL, name string, cred Credential, extra []nats.Option) (*client, error) {
	closed := make(chan struct{})
	opts := append(b.connectOptions(name, closed), nats.UserInfo(cred.User, cred.Password))
	conn, err := nats.Connect(clientURL, append(opts, extra...)...)
	if err != nil {
		return nil, fmt.Errorf("connect to %s as %s: %w", clientURL, cred.User, err)
	}
	js, err := jetstream.New(conn, jetstream.WithPublishAsyncTimeout(30*time.Second))
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("JetStream for %s: %w", name, err)
	}
	return &client{conn: conn, js: js, closed: closed}, nil
}

func (b *Bus) startServer(ctx context.Context, decls []Declaration, creds map[string]Credential) (*server.Server, error) {
	if strings.TrimSpace(b.cfg.StoreDir) == "" {
		return nil, errors.New("bus: bus.store_dir: must be set for the embedded server")
	}
	users, err := serverUsers(decls, creds)
	if err != nil {
		return nil, err
	}
	opts := &server.Options{
		ServerName: "seam",
		Host:       b.cfg.Host,
		Port:       b.cfg.Port,
		JetStream:  true,
		StoreDir:   b.cfg.StoreDir,
		SyncAlways: b.cfg.SyncAlways,
		NoSigs:     true,
		Users:      users,
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("bus: embedded server: %w", err)
	}
	fatal := make(chan string, 1)
	srv.SetLoggerV2(serverLogger{b.logger.With(slog.String("component", "nats-server")), fatal}, false, false, false)
	go srv.Start()
	wait := 10 * time.Second
	if deadline, ok := ctx.Deadline(); ok {
		wait = time.Until(deadline)
	}
	if err := awaitServer(srv, wait, fatal); err != nil {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, fmt.Errorf("bus: embedded server on %s:%d: %w", b.cfg.Host, b.cfg.Port, err)
	}
	b.logger.Info("embedded NATS server running", slog.String("url", srv.ClientURL()),
		slog.String("store_dir", b.cfg.StoreDir), slog.Bool("sync_always", b.cfg.SyncAlways), slog.Int("users", len(users)))
	return srv, nil
}

// serverUsers returns the embedded server's users: SystemUser with full access and each declared module with
// its Declaration.Permissions. The passwords are kept as cheap bcrypt hashes: they live only in this
// process's memory, and hashing keeps the server from warning about plaintext passwords.
func serverUsers(decls []Declaration, creds map[string]Credential) ([]*server.User, error) {
	hash := func(cred Credential) (string, error) {
		h, err := bcrypt.GenerateFromPassword([]byte(cred.Password), bcrypt.MinCost)
		if err != nil {
			return "", fmt.Errorf("bus: hash the password of %s: %w", cred.User, err)
		}
		return string(h), nil
	}
	sys, err := hash(creds[SystemUser])
	if err != nil {
		return nil, err
	}
	users := []*server.User{{Username: creds[SystemUser].User, Password: sys}}
	for _, d := range decls {
		cred := creds[d.Module]
		h, err := hash(cred)
		if err != nil {
			return nil, err
		}
		p := d.Permissions()
		perms := &server.Permissions{
			Publish:   &server.SubjectPermission{Allow: p.Publish},
			Subscribe: &server.SubjectPermission{Allow: p.Subscribe},
		}
		if p.AllowResponses {
			perms.Response = &server.ResponsePermission{MaxMsgs: responseMaxMsgs, Expires: responseWindow}
		}
		users = append(users, &server.User{Username: cred.User, Password: h, Permissions: perms})
	}
	return users, nil
}

// responseWindow is how long after a request its receiver may reply to it; it exceeds any call's deadline.
const responseWindow = 5 * time.Minute

// responseMaxMsgs is how many replies a receiver may send to one request: an api call gets one, a forwarded
// HTTP request an acknowledgement, a heartbeat every half second and the response (httpx.ServeNATS), which
// this covers for longer than responseWindow.
const responseMaxMsgs = 1000

func (b *Bus) connectOptions(name string, closed chan struct{}) []nats.Option {
	logger := b.logger.With(slog.String("connection", name))
	return []nats.Option{
		nats.Name(name),
		// Generous: a server verifying bcrypt password hashes (AuthorizationConfig's) under load answers the
		// handshake slowly, and connecting happens only at start and on reconnect.
		nats.Timeout(connectTimeout),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		nats.ReconnectJitter(500*time.Millisecond, 2*time.Second),
		nats.DrainTimeout(b.cfg.DrainTimeout),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				logger.Warn("bus disconnected", slog.Any("error", err))
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			logger.Info("bus reconnected", slog.String("url", c.ConnectedUrlRedacted()))
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			attrs := []any{slog.Any("error", err)}
			if sub != nil {
				attrs = append(attrs, slog.String("subject", sub.Subject))
			}
			logger.Error("bus error", attrs...)
		}),
		nats.ClosedHandler(func(*nats.Conn) { close(closed) }),
	}
}

// Conn is the platform's own (SystemUser) NATS connection; nil before Start. Modules use ModuleConn.
func (b *Bus) Conn() *nats.Conn {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.system == nil {
		return nil
	}
	return b.system.conn
}

// JetStream is the platform's own (SystemUser) JetStream context, for managing streams; nil before Start.
// Modules' relays and consumers use ModuleJetStream.
func (b *Bus) JetStream() jetstream.JetStream {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.system == nil {
		return nil
	}
	return b.system.js
}

// ModuleConn is module's own NATS connection (named "seam-<module>", replies under InboxPrefix(module)), with
// only the permissions its declaration grants.
func (b *Bus) ModuleConn(module string) (*nats.Conn, error) {
	c, err := b.module(module)
	if err != nil {
		return nil, err
	}
	return c.conn, nil
}

// ModuleJetStream is the JetStream context on module's own connection, which its outbox relay publishes and
// its inbox consumers consume through.
func (b *Bus) ModuleJetStream(module string) (jetstream.JetStream, error) {
	c, err := b.module(module)
	if err != nil {
		return nil, err
	}
	return c.js, nil
}

func (b *Bus) module(module string) (*client, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.system == nil {
		return nil, ErrNotStarted
	}
	c, ok := b.modules[module]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrUndeclared, module)
	}
	return c, nil
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
// replicas from the configuration, atomic batch publishing allowed) or updates it to that configuration.
func (b *Bus) EnsureStream(ctx context.Context, module string) (jetstream.Stream, error) {
	if !moduleName.MatchString(module) {
		return nil, fmt.Errorf("bus: module name %q must be lower-case letters, digits and underscores", module)
	}
	js := b.JetStream()
	if js == nil {
		return nil, ErrNotStarted
	}
	cfg := jetstream.StreamConfig{
		Name:        StreamName(module),
		Description: "events published by the " + module + " module",
		Subjects:    []string{module + ".events.>"},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		Duplicates:  b.cfg.DedupWindow,
		Replicas:    b.cfg.Replicas,
		// The outbox relay publishes large batches atomically: one disk sync for the batch under SyncAlways.
		AllowAtomicPublish: true,
	}
	for pause := 100 * time.Millisecond; ; pause = min(2*pause, 2*time.Second) {
		stream, err := js.CreateOrUpdateStream(ctx, cfg)
		if err == nil {
			return stream, nil
		}
		if !placementPending(err) {
			return nil, fmt.Errorf("bus: ensure stream %s: %w", cfg.Name, err)
		}
		// A NATS cluster that is still forming (its nodes have not all joined the JetStream meta group)
		// cannot place the replicas yet: wait for it, as long as the start allows.
		b.logger.Info("bus: waiting for the NATS cluster to place the stream's replicas", slog.String("stream", cfg.Name),
			slog.Int("replicas", cfg.Replicas), slog.Any("error", err))
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("bus: ensure stream %s: %w (last: %w)", cfg.Name, ctx.Err(), err)
		case <-t.C:
		}
	}
}

// placementPending reports whether err says JetStream found no peers for a stream's replicas (error code
// 10005), which a cluster whose nodes are still joining answers.
func placementPending(err error) bool {
	var jsErr jetstream.JetStreamError
	if !errors.As(err, &jsErr) || jsErr.APIError() == nil {
		return false
	}
	return jsErr.APIError().ErrorCode == errCodeNoSuitablePeers
}

// errCodeNoSuitablePeers is JetStream's "no suitable peers for placement" error code.
const errCodeNoSuitablePeers jetstream.ErrorCode = 10005

// Ready reports whether every connection is up and JetStream answers; it backs /readyz.
func (b *Bus) Ready(ctx context.Context) error {
	b.mu.Lock()
	system, modules := b.system, b.modules
	b.mu.Unlock()
	if system == nil {
		return ErrNotStarted
	}
	if status := system.conn.Status(); status != nats.CONNECTED {
		return fmt.Errorf("bus: connection is %s", status)
	}
	for _, name := range slices.Sorted(maps.Keys(modules)) {
		if status := modules[name].conn.Status(); status != nats.CONNECTED {
			return fmt.Errorf("bus: connection of module %s is %s", name, status)
		}
	}
	if _, err := system.js.AccountInfo(ctx); err != nil {
		return fmt.Errorf("bus: JetStream: %w", err)
	}
	return nil
}

// Close drains every connection at once (bounded by DrainTimeout and ctx), then shuts the embedded server
// down. It may be called more than once, and before Start.
func (b *Bus) Close(ctx context.Context) error {
	b.mu.Lock()
	if b.done {
		b.mu.Unlock()
		return nil
	}
	b.done = true
	system, modules, srv := b.system, b.modules, b.srv
	b.mu.Unlock()
	var errs []error
	if system != nil {
		var wg sync.WaitGroup
		var mu sync.Mutex
		drain := func(c *client, what string) {
			if err := c.drain(ctx); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("bus: %s%w", what, err))
				mu.Unlock()
			}
		}
		for name, c := range modules {
			wg.Go(func() { drain(c, "module "+name+": ") })
		}
		wg.Go(func() { drain(system, "") })
		wg.Wait()
	}
	if srv != nil {
		srv.Shutdown()
		srv.WaitForShutdown()
		b.logger.Info("embedded NATS server stopped")
	}
	return errors.Join(errs...)
}

// drain drains the connection and waits until it is closed, closing it at once if ctx ends first.
func (c *client) drain(ctx context.Context) error {
	if err := c.conn.Drain(); err != nil {
		c.conn.Close()
		return fmt.Errorf("drain: %w", err)
	}
	select {
	case <-c.closed:
		return nil
	case <-ctx.Done():
		c.conn.Close()
		return fmt.Errorf("drain: %w", ctx.Err())
	}
}

// awaitServer waits up to wait for srv to accept connections, and gives up at once when it reports a fatal
// error on fatal (a port already in use, say), which it does not recover from.
func awaitServer(srv *server.Server, wait time.Duration, fatal <-chan string) error {
	deadline := time.Now().Add(wait)
	for {
		select {
		case msg := <-fatal:
			return fmt.Errorf("%w: %s", ErrServerFailed, msg)
		default:
		}
		if srv.ReadyForConnections(min(serverPoll, max(time.Until(deadline), 0))) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: not ready within %s (see the log)", ErrServerFailed, wait)
		}
	}
}

// serverPoll is how long awaitServer waits for readiness between looks for a fatal error.
const serverPoll = 50 * time.Millisecond

// ErrServerFailed means the embedded NATS server did not start.
var ErrServerFailed = errors.New("did not start")

// serverLogger passes the embedded server's log lines to slog, and its fatal errors to fatal as well (when
// nothing is waiting there yet: the first one is kept).
type serverLogger struct {
	logger *slog.Logger
	fatal  chan<- string
}

func (l serverLogger) Noticef(format string, v ...any) { l.logger.Debug(fmt.Sprintf(format, v...)) }
func (l serverLogger) Warnf(format string, v ...any)   { l.logger.Warn(fmt.Sprintf(format, v...)) }
func (l serverLogger) Fatalf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	l.logger.Error(msg)
	select {
	case l.fatal <- msg:
	default:
	}
}
func (l serverLogger) Errorf(format string, v ...any) { l.logger.Error(fmt.Sprintf(format, v...)) }
func (l serverLogger) Debugf(format string, v ...any) { l.logger.Debug(fmt.Sprintf(format, v...)) }
func (l serverLogger) Tracef(format string, v ...any) { l.logger.Debug(fmt.Sprintf(format, v...)) }
