package bus_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/seamkit/seam/platform/bus"
)

// refused is how long a test waits for the reply to a request the server drops for lack of permission.
const refused = 500 * time.Millisecond

// declarations are the test application's modules: billing publishes, notifications consumes billing's
// payments (one filter) and auth's events (two filters), reporting consumes all of billing's events.
var declarations = []bus.Declaration{
	{Module: "billing"},
	{Module: "notifications", Consumes: []bus.Consumption{
		{Stream: "BILLING", Durable: "notifications-billing", Subjects: []string{"billing.events.payment_completed"}},
		{Stream: "AUTH", Durable: "notifications-auth", Subjects: []string{"auth.events.user_registered", "auth.events.user_deleted"}},
	}},
	{Module: "reporting", Consumes: []bus.Consumption{
		{Stream: "BILLING", Durable: "reporting-billing", Subjects: []string{"billing.events.>"}},
	}},
}

func TestPermissions(t *testing.T) {
	got := declarations[1].Permissions()
	want := bus.Permissions{
		Publish: []string{
			"notifications.events.>",
			"$JS.API.STREAM.INFO.NOTIFICATIONS",
			"$JS.API.CONSUMER.CREATE.BILLING.notifications-billing.billing.events.payment_completed",
			"$JS.API.CONSUMER.INFO.BILLING.notifications-billing",
			"$JS.API.CONSUMER.MSG.NEXT.BILLING.notifications-billing",
			"$JS.ACK.BILLING.notifications-billing.>",
			"$JS.API.CONSUMER.CREATE.AUTH.notifications-auth",
			"$JS.API.CONSUMER.INFO.AUTH.notifications-auth",
			"$JS.API.CONSUMER.MSG.NEXT.AUTH.notifications-auth",
			"$JS.ACK.AUTH.notifications-auth.>",
		},
		Subscribe:      []string{"_INBOX_notifications.>", "seam.rpc.notifications.>", "seam.http.notifications", "$SRV.>"},
		AllowResponses: true,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("Permissions (-want +got):\n%s", diff)
	}
}

func TestValidateDeclarations(t *testing.T) {
	if err := bus.ValidateDeclarations(declarations); err != nil {
		t.Fatalf("valid declarations: %v", err)
	}
	consumes := func(c bus.Consumption) bus.Declaration {
		return bus.Declaration{Module: "notifications", Consumes: []bus.Consumption{c}}
	}
	tests := []struct {
		name  string
		decls []bus.Declaration
		want  string
	}{
		{"bad module name", []bus.Declaration{{Module: "Billing"}}, `module name "Billing"`},
		{"system user", []bus.Declaration{{Module: bus.SystemUser}}, "reserved"},
		{"bad stream", []bus.Declaration{consumes(bus.Consumption{Stream: "billing", Durable: "d", Subjects: []string{"billing.events.x"}})}, `stream "billing"`},
		{"bad durable", []bus.Declaration{consumes(bus.Consumption{Stream: "BILLING", Durable: "a.b", Subjects: []string{"billing.events.x"}})}, `consumer name "a.b"`},
		{"no subjects", []bus.Declaration{consumes(bus.Consumption{Stream: "BILLING", Durable: "d"})}, "no subjects"},
		{"subject of another stream", []bus.Declaration{consumes(bus.Consumption{Stream: "BILLING", Durable: "d", Subjects: []string{"auth.events.x"}})}, `subject "auth.events.x" is not on stream BILLING`},
		{"malformed subject", []bus.Declaration{consumes(bus.Consumption{Stream: "BILLING", Durable: "d", Subjects: []string{"billing.events.>.x"}})}, `subject "billing.events.>.x"`},
		{"durable twice", []bus.Declaration{{Module: "notifications", Consumes: []bus.Consumption{
			{Stream: "BILLING", Durable: "d", Subjects: []string{"billing.events.x"}},
			{Stream: "BILLING", Durable: "d", Subjects: []string{"billing.events.y"}},
		}}}, "declared twice"},
		{"module twice", []bus.Declaration{{Module: "billing"}, {Module: "billing"}}, "module billing is declared twice"},
		{"durable of two modules", []bus.Declaration{
			{Module: "notifications", Consumes: []bus.Consumption{{Stream: "BILLING", Durable: "d", Subjects: []string{"billing.events.x"}}}},
			{Module: "reporting", Consumes: []bus.Consumption{{Stream: "BILLING", Durable: "d", Subjects: []string{"billing.events.x"}}}},
		}, "declared by both notifications and reporting"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := bus.ValidateDeclarations(tt.decls)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ValidateDeclarations = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestDeclare(t *testing.T) {
	var cfg bus.Config
	cfg.SetDefaults()
	b := bus.New(cfg, testLogger(t))
	first := bus.Consumption{Stream: "AUTH", Durable: "notifications-auth", Subjects: []string{"auth.events.user_registered"}}
	second := bus.Consumption{Stream: "BILLING", Durable: "notifications-billing", Subjects: []string{"billing.events.x"}}
	for _, d := range []bus.Declaration{
		{Module: "notifications", Consumes: []bus.Consumption{second}},
		{Module: "billing"},
		{Module: "notifications", Consumes: []bus.Consumption{first, second}},
	} {
		if err := b.Declare(d); err != nil {
			t.Fatal(err)
		}
	}
	want := []bus.Declaration{{Module: "billing"}, {Module: "notifications", Consumes: []bus.Consumption{first, second}}}
	if diff := cmp.Diff(want, b.Declarations()); diff != "" {
		t.Fatalf("Declarations (-want +got):\n%s", diff)
	}
	if _, err := b.ModuleJetStream("billing"); !errors.Is(err, bus.ErrNotStarted) {
		t.Fatalf("ModuleJetStream before Start = %v, want ErrNotStarted", err)
	}
	if err := b.Declare(bus.Declaration{Module: "Bad"}); err != nil {
		t.Fatal(err)
	}
	if err := b.Start(t.Context()); err == nil || !strings.Contains(err.Error(), `module name "Bad"`) {
		t.Fatalf("Start with an invalid declaration = %v", err)
	}
}

// violation waits until conn has been told by the server that it lacks permission for subject (as a publish,
// or as a subscription when subscribe is true).
func violation(t *testing.T, conn *nats.Conn, subject string, subscribe bool) {
	t.Helper()
	if err := conn.Flush(); err != nil {
		t.Fatalf("flush: %v", err)
	}
	want := `Publish to "` + subject + `"`
	if subscribe {
		want = `Subscription to "` + subject + `"`
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := conn.LastError()
		if errors.Is(err, nats.ErrPermissionViolation) && strings.Contains(err.Error(), want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("last error of %s = %v, want a permissions violation for %s", conn.Opts.Name, err, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func moduleJS(t *testing.T, b *bus.Bus, module string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	conn, err := b.ModuleConn(module)
	if err != nil {
		t.Fatal(err)
	}
	js, err := b.ModuleJetStream(module)
	if err != nil {
		t.Fatal(err)
	}
	return conn, js
}

func streamMsgs(t *testing.T, b *bus.Bus, stream string) uint64 {
	t.Helper()
	s, err := b.JetStream().Stream(t.Context(), stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

func TestModulePermissionsEnforced(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	ctx := t.Context()
	b := embedded(t, t.TempDir(), declarations...)
	for _, m := range []string{"auth", "billing", "notifications"} {
		if _, err := b.EnsureStream(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Ready(ctx); err != nil {
		t.Fatalf("Ready: %v", err)
	}
	billingConn, billing := moduleJS(t, b, "billing")
	notificationsConn, notifications := moduleJS(t, b, "notifications")
	_, reporting := moduleJS(t, b, "reporting")
	if billingConn.Opts.Name != "seam-billing" || billingConn.Opts.InboxPrefix != "_INBOX_billing" {
		t.Fatalf("billing's connection is named %q with inbox prefix %q", billingConn.Opts.Name, billingConn.Opts.InboxPrefix)
	}

	t.Run("billing publishes its own event", func(t *testing.T) {
		if _, err := billing.Publish(ctx, "billing.events.payment_completed", []byte("{}")); err != nil {
			t.Fatalf("publish billing.events.payment_completed: %v", err)
		}
	})

	t.Run("billing cannot publish notifications' event", func(t *testing.T) {
		pubCtx, cancel := context.WithTimeout(ctx, refused)
		defer cancel()
		if ack, err := billing.Publish(pubCtx, "notifications.events.x", []byte("{}")); err == nil {
			t.Fatalf("publish notifications.events.x was acknowledged: %+v", ack)
		}
		violation(t, billingConn, "notifications.events.x", false)
		if n := streamMsgs(t, b, "NOTIFICATIONS"); n != 0 {
			t.Fatalf("the NOTIFICATIONS stream holds %d messages, want 0", n)
		}
	})

	t.Run("notifications consumes through its declared consumer", func(t *testing.T) {
		cons, err := notifications.CreateOrUpdateConsumer(ctx, "BILLING", jetstream.ConsumerConfig{
			Durable: "notifications-billing", FilterSubject: "billing.events.payment_completed", AckPolicy: jetstream.AckExplicitPolicy})
		if err != nil {
			t.Fatalf("create the declared consumer: %v", err)
		}
		batch, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for msg := range batch.Messages() {
			got = append(got, msg.Subject())
			if err := msg.DoubleAck(ctx); err != nil {
				t.Fatalf("acknowledge: %v", err)
			}
		}
		if batch.Error() != nil || len(got) != 1 || got[0] != "billing.events.payment_completed" {
			t.Fatalf("fetched %v (error %v), want billing's payment event", got, batch.Error())
		}
		if _, err := notifications.Consumer(ctx, "AUTH", "notifications-auth"); !errors.Is(err, jetstream.ErrConsumerNotFound) {
			t.Fatalf("info on the declared (not yet created) AUTH consumer = %v, want ErrConsumerNotFound", err)
		}
	})

	t.Run("notifications cannot widen its single-filter consumer", func(t *testing.T) {
		reqCtx, cancel := context.WithTimeout(ctx, refused)
		defer cancel()
		if _, err := notifications.CreateOrUpdateConsumer(reqCtx, "BILLING", jetstream.ConsumerConfig{
			Durable: "notifications-billing", FilterSubject: "billing.events.>"}); err == nil {
			t.Fatal("notifications widened its consumer's filter")
		}
		violation(t, notificationsConn, "$JS.API.CONSUMER.CREATE.BILLING.notifications-billing.billing.events.>", false)
	})

	t.Run("notifications cannot create an undeclared consumer", func(t *testing.T) {
		reqCtx, cancel := context.WithTimeout(ctx, refused)
		defer cancel()
		if _, err := notifications.CreateOrUpdateConsumer(reqCtx, "BILLING", jetstream.ConsumerConfig{
			Durable: "sneaky", FilterSubject: "billing.events.invoice_created"}); err == nil {
			t.Fatal("notifications created an undeclared consumer")
		}
		violation(t, notificationsConn, "$JS.API.CONSUMER.CREATE.BILLING.sneaky.billing.events.invoice_created", false)
	})

	t.Run("notifications cannot pull from reporting's consumer", func(t *testing.T) {
		if _, err := reporting.CreateOrUpdateConsumer(ctx, "BILLING", jetstream.ConsumerConfig{
			Durable: "reporting-billing", FilterSubject: "billing.events.>", AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
			t.Fatalf("reporting creates its declared consumer: %v", err)
		}
		infoCtx, cancel := context.WithTimeout(ctx, refused)
		defer cancel()
		if _, err := notifications.Consumer(infoCtx, "BILLING", "reporting-billing"); err == nil {
			t.Fatal("notifications looked up reporting's consumer")
		}
		violation(t, notificationsConn, "$JS.API.CONSUMER.INFO.BILLING.reporting-billing", false)
		next := "$JS.API.CONSUMER.MSG.NEXT.BILLING.reporting-billing"
		if msg, err := notificationsConn.Request(next, []byte(`{"batch":1,"expires":200000000}`), refused); err == nil {
			t.Fatalf("notifications pulled from reporting's consumer: %s %q", msg.Subject, msg.Data)
		}
		violation(t, notificationsConn, next, false)
		cons, err := b.JetStream().Consumer(ctx, "BILLING", "reporting-billing")
		if err != nil {
			t.Fatal(err)
		}
		if info := cons.CachedInfo(); info.Delivered.Consumer != 0 || info.NumPending != 1 {
			t.Fatalf("reporting's consumer delivered %d, pending %d; want nothing taken from it", info.Delivered.Consumer, info.NumPending)
		}
	})

	t.Run("notifications cannot subscribe to billing's subjects", func(t *testing.T) {
		for _, subject := range []string{"billing.events.>", "_INBOX_billing.>"} {
			sub, err := notificationsConn.SubscribeSync(subject)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := sub.NextMsg(5 * time.Second); !errors.Is(err, nats.ErrPermissionViolation) {
				t.Fatalf("subscription to %s: NextMsg = %v, want a permissions violation", subject, err)
			}
			violation(t, notificationsConn, subject, true)
			if err := sub.Unsubscribe(); err != nil {
				t.Fatal(err)
			}
		}
	})

	if _, err := b.ModuleConn("auth"); !errors.Is(err, bus.ErrUndeclared) {
		t.Fatalf("ModuleConn for an undeclared module = %v, want ErrUndeclared", err)
	}
	if err := b.Declare(bus.Declaration{Module: "auth"}); err == nil {
		t.Fatal("Declare after Start succeeded")
	}
}

func TestAuthorizationConfigOnStandaloneServer(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	ctx := t.Context()
	const secret = "operator-secret"
	decls := declarations[:2] // billing and notifications: every bcrypt hash costs time, more under -race
	block, err := bus.AuthorizationConfig(decls, secret)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(block, bus.Password(secret, "billing")) {
		t.Fatal("the authorization block contains a clear-text password")
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "nats.conf")
	text := "server_name: standalone\nlisten: 127.0.0.1:-1\njetstream {\n  store_dir: " +
		strings.ReplaceAll(filepath.Join(dir, "js"), `\`, `/`) + "\n}\n" + block
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(conf)
	if err != nil {
		t.Fatalf("nats-server rejects the configuration: %v\n%s", err, text)
	}
	opts.NoSigs = true
	srv, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	t.Cleanup(func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("standalone server not ready")
	}

	cfg := bus.Config{URLs: []string{srv.ClientURL()}, CredentialsSecret: secret}
	cfg.SetDefaults()
	b, err := bus.Start(ctx, cfg, testLogger(t), decls...)
	if err != nil {
		t.Fatalf("Seam cannot connect with the generated users: %v", err)
	}
	t.Cleanup(func() {
		if err := b.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	for _, m := range []string{"billing", "notifications"} {
		if _, err := b.EnsureStream(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	billingConn, billing := moduleJS(t, b, "billing")
	if _, err := billing.Publish(ctx, "billing.events.invoice_created", nil); err != nil {
		t.Fatalf("billing publishes its own event: %v", err)
	}
	pubCtx, cancel := context.WithTimeout(ctx, refused)
	defer cancel()
	if _, err := billing.Publish(pubCtx, "notifications.events.x", nil); err == nil {
		t.Fatal("billing published notifications' event")
	}
	violation(t, billingConn, "notifications.events.x", false)
	if n := streamMsgs(t, b, "NOTIFICATIONS"); n != 0 {
		t.Fatalf("the NOTIFICATIONS stream holds %d messages, want 0", n)
	}
	_, notifications := moduleJS(t, b, "notifications")
	if _, err := notifications.CreateOrUpdateConsumer(ctx, "BILLING", jetstream.ConsumerConfig{
		Durable: "notifications-billing", FilterSubject: "billing.events.payment_completed"}); err != nil {
		t.Fatalf("notifications creates its declared consumer: %v", err)
	}

	if _, err := bus.AuthorizationConfig([]bus.Declaration{{Module: "Bad"}}, secret); err == nil {
		t.Fatal("AuthorizationConfig accepted an invalid declaration")
	}
	if _, err := bus.AuthorizationConfig(declarations, ""); err == nil {
		t.Fatal("AuthorizationConfig accepted an empty secret")
	}
}

func TestSecret(t *testing.T) {
	if got, err := bus.Secret(bus.Config{CredentialsSecret: "configured"}); err != nil || got != "configured" {
		t.Fatalf("Secret with credentials_secret = %q, %v", got, err)
	}
	a, errA := bus.Secret(bus.Config{})
	b, errB := bus.Secret(bus.Config{})
	if errA != nil || errB != nil || a == "" || a == b {
		t.Fatalf("process secrets %q, %q (%v, %v): want two different random secrets", a, b, errA, errB)
	}
	path := filepath.Join(t.TempDir(), "data", "bus-secret")
	first, err := bus.Secret(bus.Config{SecretFile: path})
	if err != nil {
		t.Fatal(err)
	}
	second, err := bus.Secret(bus.Config{SecretFile: path})
	if err != nil || second != first {
		t.Fatalf("second read = %q, %v; want the generated %q", second, err, first)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Fatalf("secret file mode = %v, want 0600", info.Mode().Perm())
	}
	if got, err := bus.Secret(bus.Config{SecretFile: path, CredentialsSecret: "configured"}); err != nil || got != "configured" {
		t.Fatalf("credentials_secret does not win over the file: %q, %v", got, err)
	}
	if err := os.WriteFile(path, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := bus.Secret(bus.Config{SecretFile: path}); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Fatalf("Secret with an empty file = %v", err)
	}

	// HMAC-SHA256("s", "billing"), unpadded base64url: a fixed value, so every process derives the same one.
	if got := bus.Password("s", "billing"); got != "OukRTqDqc94lOsT3PEQ35UdVYlPy6_6pabSYqyituzo" {
		t.Fatalf(`Password("s", "billing") = %q`, got)
	}
	if bus.Password("s", "billing") == bus.Password("s", "auth") || bus.Password("s", "billing") == bus.Password("t", "billing") {
		t.Fatal("Password does not depend on both the user and the secret")
	}
}

func TestCredentialsConfig(t *testing.T) {
	var base bus.Config
	base.SetDefaults()
	ok := base
	ok.Credentials = map[string]bus.Credential{"seam": {User: "sys", Password: "p"}, "billing": {User: "b", Password: "q"}}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid credentials: %v", err)
	}
	tests := []struct {
		name string
		cred map[string]bus.Credential
		key  string
	}{
		{"not a module", map[string]bus.Credential{"Billing": {User: "b", Password: "p"}}, "bus.credentials.Billing"},
		{"no user", map[string]bus.Credential{"billing": {Password: "p"}}, "bus.credentials.billing.user"},
		{"no password", map[string]bus.Credential{"billing": {User: "b"}}, "bus.credentials.billing.password"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base
			c.Credentials = tt.cred
			if err := c.Validate(); err == nil || !strings.HasPrefix(err.Error(), tt.key+":") {
				t.Fatalf("Validate() = %v, want an error about %s", err, tt.key)
			}
		})
	}
}

func TestConfiguredCredentials(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	var cfg bus.Config
	cfg.SetDefaults()
	cfg.Port = -1
	cfg.StoreDir = t.TempDir()
	cfg.Credentials = map[string]bus.Credential{"billing": {User: "billing-svc", Password: "configured"}}
	b, err := bus.Start(t.Context(), cfg, testLogger(t), bus.Declaration{Module: "billing"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(context.Background())
	conn, err := b.ModuleConn("billing")
	if err != nil {
		t.Fatal(err)
	}
	if conn.Opts.User != "billing-svc" {
		t.Fatalf("billing connects as %q, want the configured billing-svc", conn.Opts.User)
	}

	clash := cfg
	clash.Credentials = map[string]bus.Credential{"billing": {User: "auth", Password: "x"}}
	if _, err := bus.Start(t.Context(), clash, testLogger(t), bus.Declaration{Module: "auth"}, bus.Declaration{Module: "billing"}); err == nil ||
		!strings.Contains(err.Error(), `both connect as NATS user "auth"`) {
		t.Fatalf("Start with two modules as one user = %v", err)
	}
}

// lockedBuffer is a log destination safe for the bus's goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestServerWithoutAuthorizationIsReported(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	t.Cleanup(func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("server not ready")
	}
	var logs lockedBuffer
	cfg := bus.Config{URLs: []string{srv.ClientURL()}}
	cfg.SetDefaults()
	b, err := bus.Start(t.Context(), cfg, slog.New(slog.NewTextHandler(&logs, nil)), bus.Declaration{Module: "billing"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(context.Background())
	if !strings.Contains(logs.String(), "module boundaries on the bus are not enforced") {
		t.Fatalf("no warning about the open server; log:\n%s", logs.String())
	}
}
