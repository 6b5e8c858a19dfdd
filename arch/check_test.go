package arch_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/seamkit/seam/arch"
	"github.com/seamkit/seam/arch/archtest"
)

// These tests run the real tools (go-arch-lint, sqlc) on temporary copies of the repository, so they skip
// under -short. The tools are built by `go tool` on first use and cached.

func skipShort(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("runs go-arch-lint and sqlc on a copy of the repository")
	}
}

// check runs Check on root and returns the result and its text report.
func check(t *testing.T, opts arch.Options) (*arch.Result, string) {
	t.Helper()
	res, err := arch.Check(context.Background(), opts)
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	var out bytes.Buffer
	if err := res.WriteText(&out); err != nil {
		t.Fatal(err)
	}
	return res, out.String()
}

func TestCheckCleanTreePasses(t *testing.T) {
	skipShort(t)
	root := archtest.CopyRepo(t)
	res, report := check(t, arch.Options{Root: root})
	if !res.OK() {
		t.Fatalf("the repository does not pass seam check:\n%s", report)
	}
	for _, c := range arch.Channels {
		if !slices.ContainsFunc(res.Channels, func(r arch.ChannelResult) bool { return r.Name == c }) {
			t.Errorf("channel %s did not run:\n%s", c, report)
		}
	}
	t.Logf("report:\n%s", report)
}

// planted are violations of every channel, planted together in one copy (one run of the tools); each
// must be reported in its channel, naming its file.
var planted = []struct {
	name, file, content string
	channel, want       string
}{
	{
		name: "domain imports another module's domain", channel: arch.ChannelImports,
		file: "modules/billing/domain/planted.go",
		content: `package billingdomain

import notificationsdomain "github.com/seamkit/seam/modules/notifications/domain"

var _ = notificationsdomain.ErrInvalidEvent
`,
		want: "modules/billing/domain/planted.go:3: billing-domain may not import github.com/seamkit/seam/modules/notifications/domain (rule: ",
	},
	{
		name: "platform imports a module", channel: arch.ChannelImports,
		file: "platform/httpx/planted.go",
		content: `package httpx

import _ "github.com/seamkit/seam/modules/billing/api"
`,
		want: "platform/httpx/planted.go:3: platform may not import github.com/seamkit/seam/modules/billing/api (rule: platform imports no module",
	},
	{
		name: "domain imports its data package", channel: arch.ChannelImports,
		file: "modules/notifications/domain/planted.go",
		content: `package notificationsdomain

import _ "github.com/seamkit/seam/modules/notifications/data"
`,
		want: "modules/notifications/domain/planted.go:3: notifications-domain may not import github.com/seamkit/seam/modules/notifications/data",
	},
	{
		name: "domain imports net/http", channel: arch.ChannelImports,
		file: "modules/reporting/domain/planted.go",
		content: `package reportingdomain

import _ "net/http"
`,
		want: "modules/reporting/domain/planted.go:3: reporting-domain may not import net/http (rule: ",
	},
	{
		name: "api imports platform beyond the contract types", channel: arch.ChannelImports,
		file: "modules/auth/api/planted.go",
		content: `package authapi

import _ "github.com/seamkit/seam/platform/db"
`,
		want: "modules/auth/api/planted.go:3: auth-api may not import github.com/seamkit/seam/platform/db (rule: an api package imports only the standard library and platform/errs, platform/identity)",
	},
	{
		name: "a module composes another module", channel: arch.ChannelImports,
		file: "modules/billing/compose_planted.go",
		content: `package billing

import _ "github.com/seamkit/seam/modules/notifications"
`,
		want: "modules/billing/compose_planted.go:3: billing may not import github.com/seamkit/seam/modules/notifications (rule: ",
	},
	{
		name: "query joins another module's table", channel: arch.ChannelSQL,
		file: "sql/billing/queries/planted.sql",
		content: `-- name: InvoiceEmails :many
SELECT i.id, u.email
FROM billing.invoices i
JOIN auth.users u ON u.id = i.user_id;
`,
		want: `sql/billing/queries/planted.sql:1: query reads schema "auth", which belongs to module auth`,
	},
	{
		name: "module publishes another module's subject", channel: arch.ChannelBus,
		file: "modules/billing/bus_planted.go",
		content: `package billing

import "github.com/seamkit/seam/platform/outbox"

var _ = outbox.Event{Subject: "notifications.events.x", Type: "x"}
`,
		want: `modules/billing/bus_planted.go:5: names subject "notifications.events.x" of module notifications`,
	},
}

func TestCheckReportsPlantedViolations(t *testing.T) {
	skipShort(t)
	root := archtest.CopyRepo(t)
	for _, p := range planted {
		archtest.WriteFile(t, root, p.file, p.content)
	}
	// A stale go-arch-lint configuration: a hand edit.
	cfg := filepath.Join(root, arch.ArchLintFile)
	data, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, bytes.Replace(data, []byte("  billing-api:"), []byte("  billing-api-renamed:"), 1), 0o644); err != nil {
		t.Fatal(err)
	}

	res, report := check(t, arch.Options{Root: root})
	t.Logf("report:\n%s", report)
	if res.OK() {
		t.Fatal("Check passed a tree with planted violations")
	}
	byChannel := map[string][]string{}
	for _, c := range res.Channels {
		if c.Err != nil {
			t.Errorf("channel %s could not run: %v", c.Name, c.Err)
		}
		for _, v := range c.Violations {
			byChannel[c.Name] = append(byChannel[c.Name], v.String())
		}
	}
	for _, p := range planted {
		t.Run(p.name, func(t *testing.T) {
			if !slices.ContainsFunc(byChannel[p.channel], func(v string) bool { return strings.HasPrefix(v, p.want) }) {
				t.Errorf("%s: no violation starting\n  %s\namong:\n  %s", p.channel, p.want, strings.Join(byChannel[p.channel], "\n  "))
			}
			if !strings.Contains(report, p.want) {
				t.Errorf("the report does not show %q", p.want)
			}
		})
	}
	t.Run("stale go-arch-lint config", func(t *testing.T) {
		want := arch.ArchLintFile + ": stale go-arch-lint config output"
		if !slices.ContainsFunc(byChannel[arch.ChannelGenerated], func(v string) bool { return strings.HasPrefix(v, want) }) {
			t.Errorf("generated: no violation starting %q among %q", want, byChannel[arch.ChannelGenerated])
		}
		if !strings.Contains(report, arch.FixCommand) {
			t.Errorf("the report does not say how to regenerate (%s)", arch.FixCommand)
		}
	})
	t.Run("nothing else", func(t *testing.T) {
		// Each planted file yields its violation. The generated channel names the stale config and the
		// module graph docs (the planted imports are new dependencies); sqlc is skipped while queries do not
		// compile.
		n := 0
		for _, vs := range byChannel {
			for _, v := range vs {
				if !strings.HasPrefix(v, "docs/module-graph.") {
					n++
				}
			}
		}
		if want := len(planted) + 1; n != want {
			t.Errorf("%d violations, want %d", n, want)
		}
	})
}

func TestCheckFixRegeneratesArchLintConfig(t *testing.T) {
	skipShort(t)
	root := archtest.CopyRepo(t)
	if err := os.Remove(filepath.Join(root, arch.ArchLintFile)); err != nil {
		t.Fatal(err)
	}
	res, report := check(t, arch.Options{Root: root, Channels: []string{arch.ChannelGenerated}})
	if res.OK() || !strings.Contains(report, arch.ArchLintFile+": stale go-arch-lint config output: missing") {
		t.Fatalf("a missing %s is not reported:\n%s", arch.ArchLintFile, report)
	}
	res, report = check(t, arch.Options{Root: root, Channels: []string{arch.ChannelGenerated}, Fix: true})
	if !res.OK() {
		t.Fatalf("after --fix:\n%s", report)
	}
	got, err := os.ReadFile(filepath.Join(root, arch.ArchLintFile))
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join(archtest.RepoRoot(t), arch.ArchLintFile))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("--fix wrote a different %s than the committed one", arch.ArchLintFile)
	}
}

// TestCheckRatchet: a baseline entry tolerates its violation (even after unrelated edits move it), a new
// violation fails, a fixed-but-listed entry fails, and --update-baseline writes the entries. Only the first
// step runs go-arch-lint; the others use the bus channel, whose entries work the same way.
func TestCheckRatchet(t *testing.T) {
	skipShort(t)
	root := archtest.CopyRepo(t)
	importViolation := "modules/billing/domain/legacy.go"
	busViolation := "modules/billing/legacy_events.go"
	archtest.WriteFile(t, root, importViolation, `package billingdomain

import _ "github.com/seamkit/seam/modules/billing/data"
`)
	archtest.WriteFile(t, root, busViolation, `package billing

const legacySubject = "reporting.events.invoice_totals"
`)
	bus := []string{arch.ChannelBus}

	// Adoption: record today's violations.
	res, report := check(t, arch.Options{Root: root, Channels: []string{arch.ChannelImports, arch.ChannelBus}, UpdateBaseline: true})
	if !res.OK() || !res.BaselineWritten || res.BaselineEntries != 2 || !strings.Contains(report, "1 tolerated (baseline)") {
		t.Fatalf("--update-baseline: ok=%v written=%v entries=%d\n%s", res.OK(), res.BaselineWritten, res.BaselineEntries, report)
	}
	baseline, err := os.ReadFile(filepath.Join(root, arch.BaselineFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"channel: imports", "rule: domain-imports", "file: " + importViolation, "detail: github.com/seamkit/seam/modules/billing/data",
		"channel: bus", "rule: foreign-subject", "file: " + busViolation, "detail: reporting.events.invoice_totals",
	} {
		if !strings.Contains(string(baseline), want) {
			t.Errorf("baseline lacks %q:\n%s", want, baseline)
		}
	}

	// A listed violation is tolerated, also after an unrelated edit moves it to another line.
	archtest.WriteFile(t, root, busViolation, `package billing

// legacySubject predates Seam.
const legacySubject = "reporting.events.invoice_totals"
`)
	res, report = check(t, arch.Options{Root: root, Channels: bus})
	if !res.OK() || !strings.Contains(report, "1 tolerated (baseline)") {
		t.Fatalf("baseline entry not tolerated:\n%s", report)
	}

	// A new violation fails, and only it is reported.
	newViolation := "modules/billing/new_events.go"
	archtest.WriteFile(t, root, newViolation, `package billing

const newSubject = "auth.events.user_deleted"
`)
	res, report = check(t, arch.Options{Root: root, Channels: bus})
	if fails := res.Failures(); res.OK() || len(fails) != 1 || fails[0].File != newViolation {
		t.Fatalf("new violation: failures %v\n%s", fails, report)
	}
	if err := os.Remove(filepath.Join(root, newViolation)); err != nil {
		t.Fatal(err)
	}

	// Fixing a listed violation without removing its entry fails, naming the entry.
	if err := os.Remove(filepath.Join(root, busViolation)); err != nil {
		t.Fatal(err)
	}
	res, report = check(t, arch.Options{Root: root, Channels: bus})
	fails := res.Failures()
	if res.OK() || len(fails) != 1 || fails[0].Channel != arch.ChannelBaseline ||
		!strings.Contains(fails[0].String(), "stale baseline entry bus/foreign-subject "+busViolation) ||
		!strings.Contains(report, "remove it with seam check --update-baseline") {
		t.Fatalf("fixed-but-listed entry: failures %v\n%s", fails, report)
	}

	// --update-baseline drops it and keeps the entry of the channel that did not run.
	res, report = check(t, arch.Options{Root: root, Channels: bus, UpdateBaseline: true})
	if !res.OK() || res.BaselineEntries != 1 {
		t.Fatalf("--update-baseline after the fix: entries=%d\n%s", res.BaselineEntries, report)
	}
	baseline, err = os.ReadFile(filepath.Join(root, arch.BaselineFile))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(baseline), "file: "+importViolation) || strings.Contains(string(baseline), busViolation) {
		t.Errorf("baseline after the fix:\n%s", baseline)
	}
}

// TestCheckReportsStaleRemoteStub: a remote stub that no longer matches its api interface (here, a method
// added to billingapi.Billing) fails the generated channel, naming the stub and the command that rewrites it.
func TestCheckReportsStaleRemoteStub(t *testing.T) {
	skipShort(t)
	root := archtest.CopyRepo(t)
	apiFile := filepath.Join(root, "modules/billing/api/api.go")
	data, err := os.ReadFile(apiFile)
	if err != nil {
		t.Fatal(err)
	}
	const anchor = "type Billing interface {\n"
	if !bytes.Contains(data, []byte(anchor)) {
		t.Fatalf("%s has no %q", apiFile, anchor)
	}
	added := bytes.Replace(data, []byte(anchor), []byte(anchor+
		"\t// CountInvoices is a method added after the stubs were generated.\n"+
		"\tCountInvoices(ctx context.Context, userID string) (int, error)\n"), 1)
	if err := os.WriteFile(apiFile, added, 0o644); err != nil {
		t.Fatal(err)
	}
	res, report := check(t, arch.Options{Root: root, Channels: []string{arch.ChannelGenerated}})
	const stub = "modules/billing/api/remote/remote.gen.go"
	if res.OK() || !strings.Contains(report, stub) || !strings.Contains(report, "seam gen") {
		t.Fatalf("a stale %s is not reported:\n%s", stub, report)
	}
	if res, report = check(t, arch.Options{Root: root, Channels: []string{arch.ChannelGenerated}, Fix: true}); !res.OK() {
		t.Fatalf("after --fix:\n%s", report)
	}
	regenerated, err := os.ReadFile(filepath.Join(root, stub))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(regenerated, []byte("CountInvoices")) {
		t.Fatalf("--fix did not regenerate %s with the new method", stub)
	}
}
