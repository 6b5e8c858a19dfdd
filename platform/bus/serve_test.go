package bus_test

import (
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/seamkit/seam/platform/bus"
)

// TestModulesServeTheirOwnAPIAndHTTP checks the subjects of remote calls: a module's connection serves its
// api (RPCSubjects) and HTTP (HTTPSubject) subjects and answers the platform's requests, and may not take
// another module's.
func TestModulesServeTheirOwnAPIAndHTTP(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	b := embedded(t, t.TempDir(), declarations...)
	billingConn, err := b.ModuleConn("billing")
	if err != nil {
		t.Fatal(err)
	}
	for _, subject := range []string{"seam.rpc.billing.GetInvoice", bus.HTTPSubject("billing")} {
		sub, err := billingConn.QueueSubscribe(strings.Replace(subject, "GetInvoice", "*", 1), "q", func(m *nats.Msg) {
			_ = m.Respond([]byte("pong " + m.Subject))
		})
		if err != nil {
			t.Fatalf("billing serves %s: %v", subject, err)
		}
		t.Cleanup(func() { _ = sub.Unsubscribe() })
		if err := billingConn.Flush(); err != nil {
			t.Fatal(err)
		}
		reply, err := b.Conn().Request(subject, []byte("ping"), 5*time.Second)
		if err != nil || string(reply.Data) != "pong "+subject {
			t.Fatalf("the platform calls %s: %v, %v", subject, reply, err)
		}
	}
	notificationsConn, err := b.ModuleConn("notifications")
	if err != nil {
		t.Fatal(err)
	}
	for _, subject := range []string{bus.RPCSubjects("billing"), bus.HTTPSubject("billing")} {
		if _, err := notificationsConn.Subscribe(subject, func(*nats.Msg) {}); err == nil {
			violation(t, notificationsConn, subject, true)
		}
	}
}

// TestDeclareElsewhereLetsAnotherProcessConnect checks that an embedded server knows the modules that run in
// other processes, with their permissions, without this process connecting as them.
func TestDeclareElsewhereLetsAnotherProcessConnect(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	var cfg bus.Config
	cfg.SetDefaults()
	cfg.Port = -1
	cfg.StoreDir = t.TempDir()
	cfg.CredentialsSecret = testSecret
	b := bus.New(cfg, testLogger(t))
	if err := b.DeclareElsewhere(bus.Declaration{Module: "billing"}); err != nil {
		t.Fatal(err)
	}
	if err := b.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close(t.Context()) })
	if _, err := b.ModuleConn("billing"); err == nil {
		t.Fatal("the process connected as a module declared elsewhere")
	}
	conn, err := nats.Connect(b.ClientURL(), nats.UserInfo("billing", bus.Password(testSecret, "billing")),
		nats.CustomInboxPrefix(bus.InboxPrefix("billing")))
	if err != nil {
		t.Fatalf("another process connects as billing: %v", err)
	}
	defer conn.Close()
	if _, err := conn.Subscribe("notifications.events.>", func(*nats.Msg) {}); err == nil {
		violation(t, conn, "notifications.events.>", true)
	}
}
