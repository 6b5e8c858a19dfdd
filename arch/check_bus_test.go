package arch_test

import (
	"context"
	"strings"
	"testing"

	"github.com/seamkit/seam/arch"
	"github.com/seamkit/seam/arch/archtest"
)

// busRepo is a minimal repository: billing and notifications, each with an api declaring its subjects.
func busRepo(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	archtest.WriteFile(t, root, "modules/billing/api/api.go", `package billingapi

// SubjectInvoiceCreated is billing's event.
const SubjectInvoiceCreated = "billing.events.invoice_created"
`)
	archtest.WriteFile(t, root, "modules/notifications/api/api.go", `package notificationsapi

// SubjectSent is notifications' event.
const SubjectSent = "notifications.events.sent"

// Message has a Subject that is not a bus subject.
type Message struct{ Subject string }
`)
	return root
}

// busViolations runs the bus channel on root and returns its failing violations as report lines.
func busViolations(t *testing.T, root string) []string {
	t.Helper()
	res, err := arch.Check(context.Background(), arch.Options{Root: root, Channels: []string{arch.ChannelBus}})
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, v := range res.Failures() {
		lines = append(lines, v.String())
	}
	return lines
}

func TestBusCheckAcceptsOwnSubjectsAndConsumption(t *testing.T) {
	root := busRepo(t)
	archtest.WriteFile(t, root, "modules/billing/data/publish.go", `package billingdata

import (
	billingapi "github.com/seamkit/seam/modules/billing/api"
	notificationsapi "github.com/seamkit/seam/modules/notifications/api"
	"github.com/seamkit/seam/platform/bus"
	"github.com/seamkit/seam/platform/inbox"
	"github.com/seamkit/seam/platform/outbox"
)

var events = []outbox.Event{
	{Subject: billingapi.SubjectInvoiceCreated},
	{Subject: "billing.events.invoice_paid"},
	{Subject: bus.EventSubject("billing", "x")},
	{Subject: ev.Subject},
}

var subs = []inbox.Subscription{{
	Stream:   bus.StreamName("notifications"),
	Subjects: []string{notificationsapi.SubjectSent, "notifications.events.bounced"},
}}

var decl = bus.Declaration{Consumes: []bus.Consumption{{Subjects: []string{"notifications.events.sent"}}}}

var msg = notificationsapi.Message{Subject: "Your invoice"}
`)
	if got := busViolations(t, root); len(got) != 0 {
		t.Errorf("violations in a clean module:\n%s", strings.Join(got, "\n"))
	}
}

func TestBusCheckReportsForeignSubjectsAndRawNATS(t *testing.T) {
	root := busRepo(t)
	archtest.WriteFile(t, root, "modules/billing/planted.go", `package billing

import (
	"github.com/nats-io/nats.go"
	notificationsapi "github.com/seamkit/seam/modules/notifications/api"
	"github.com/seamkit/seam/platform/bus"
	"github.com/seamkit/seam/platform/outbox"
)

var a = outbox.Event{Subject: "notifications.events.x"}
var b = outbox.Event{Subject: notificationsapi.SubjectSent}
var c = outbox.Event{Subject: "payments.done"}
var d = bus.EventSubject("notifications", "x")

func raw(b *bus.Bus) { b.JetStream(); _, _ = b.ModuleConn("billing"); _ = nats.Connect }
`)
	archtest.WriteFile(t, root, "modules/billing/planted_test.go", `package billing

var tests = "notifications.events.x"
`)
	got := busViolations(t, root)
	want := []string{
		`modules/billing/planted.go:4: imports github.com/nats-io/nats.go`,
		`modules/billing/planted.go:10: names subject "notifications.events.x" of module notifications`,
		`modules/billing/planted.go:11: publishes under notificationsapi.SubjectSent, a subject of module notifications`,
		`modules/billing/planted.go:12: publishes on "payments.done", outside billing.events.*`,
		`modules/billing/planted.go:13: builds a subject of module notifications`,
		`modules/billing/planted.go:15: takes the raw NATS connection (JetStream)`,
		`modules/billing/planted.go:15: takes the raw NATS connection (ModuleConn)`,
	}
	if len(got) != len(want) {
		t.Errorf("got %d violations, want %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
	}
	for _, w := range want {
		found := false
		for _, g := range got {
			found = found || strings.HasPrefix(g, w)
		}
		if !found {
			t.Errorf("no violation starting %q in:\n%s", w, strings.Join(got, "\n"))
		}
	}
}
