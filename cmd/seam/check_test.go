package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/seamkit/seam/arch/archtest"
)

// checkInProcess runs `seam --repo repo check args...` in the test's process and returns what it printed.
func checkInProcess(t *testing.T, repo string, args ...string) (string, error) {
	t.Helper()
	root := &cobra.Command{Use: "seam", SilenceUsage: true, SilenceErrors: true}
	root.PersistentFlags().String("repo", repo, "repository root")
	root.AddCommand(checkCommand())
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(append([]string{"check"}, args...))
	err := root.Execute()
	return out.String(), err
}

const plantedBusViolation = `package billing

import "github.com/seamkit/seam/platform/outbox"

var _ = outbox.Event{Subject: "notifications.events.x", Type: "x"}
`

func TestCheckCommandReport(t *testing.T) {
	if testing.Short() {
		t.Skip("runs sqlc on a copy of the repository")
	}
	repo := archtest.CopyRepo(t)
	out, err := checkInProcess(t, repo, "--channel", "bus,sql")
	if err != nil {
		t.Fatalf("clean copy: %v\n%s", err, out)
	}
	for _, want := range []string{"bus        ok", "sql        ok", "ok: no boundary violations"} {
		if !strings.Contains(out, want) {
			t.Errorf("clean report lacks %q:\n%s", want, out)
		}
	}

	archtest.WriteFile(t, repo, "modules/billing/planted.go", plantedBusViolation)
	out, err = checkInProcess(t, repo, "--channel", "bus")
	if !errors.Is(err, errViolations) {
		t.Fatalf("err = %v, want errViolations\n%s", err, out)
	}
	for _, want := range []string{
		"bus        FAIL   1 violation",
		`modules/billing/planted.go:5: names subject "notifications.events.x" of module notifications`,
		"FAIL: 1 violation.",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}

	out, err = checkInProcess(t, repo, "--channel", "bus", "--json")
	if !errors.Is(err, errViolations) {
		t.Fatalf("--json: err = %v", err)
	}
	var rep struct {
		OK       bool
		Channels []struct {
			Name       string
			Violations []struct{ File, Rule string }
		}
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("--json output does not parse: %v\n%s", err, out)
	}
	if rep.OK || len(rep.Channels) == 0 || rep.Channels[0].Name != "bus" || len(rep.Channels[0].Violations) != 1 ||
		rep.Channels[0].Violations[0].File != "modules/billing/planted.go" {
		t.Errorf("--json: %+v", rep)
	}

	if out, err := checkInProcess(t, repo, "--channel", "nope"); err == nil || !strings.Contains(err.Error(), `unknown channel "nope"`) {
		t.Errorf("--channel nope: err = %v\n%s", err, out)
	}
}

// TestCheckCommandExitStatus runs the built binary: a violation makes the exit status non-zero.
func TestCheckCommandExitStatus(t *testing.T) {
	if testing.Short() {
		t.Skip("builds cmd/seam")
	}
	bin := filepath.Join(t.TempDir(), "seam")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	repo := archtest.CopyRepo(t)
	archtest.WriteFile(t, repo, "modules/billing/planted.go", plantedBusViolation)
	cmd := exec.Command(bin, "--repo", repo, "check", "--channel", "bus")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("exit: %v, want status 1\n%s", err, out)
	}
	if !strings.Contains(string(out), "modules/billing/planted.go:5:") {
		t.Errorf("output does not name the file:\n%s", out)
	}
}
