package main

import (
	"bytes"
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/seamkit/seam/arch"
	"github.com/seamkit/seam/arch/archtest"
)

// seamInProcess runs the graph and new commands on the repository at repo, as `seam --repo repo args...`,
// and returns what they printed.
func seamInProcess(t *testing.T, repo string, args ...string) (string, error) {
	t.Helper()
	root := &cobra.Command{Use: "seam", SilenceUsage: true, SilenceErrors: true}
	root.PersistentFlags().String("repo", repo, "repository root")
	root.AddCommand(graphCommand(), newCommand())
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

func TestGraphFormats(t *testing.T) {
	repo := archtest.RepoRoot(t)
	cases := map[string][]string{
		"text":    {"billing -> auth", "call", "modules/billing/", "Extraction difficulty", "score = 3 × callers"},
		"mermaid": {"flowchart LR", "m_billing -->|call| m_auth", "m_reporting -.->|event| m_billing"},
		"dot":     {"digraph modules {", `"billing" -> "auth" [label="call", style=solid`},
	}
	for format, want := range cases {
		out, err := seamInProcess(t, repo, "graph", "--format", format)
		if err != nil {
			t.Fatalf("--format %s: %v", format, err)
		}
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("--format %s: output lacks %q:\n%s", format, w, out)
			}
		}
	}
	if _, err := seamInProcess(t, repo, "graph", "--format", "svg"); err == nil || !strings.Contains(err.Error(), "text, mermaid or dot") {
		t.Errorf("--format svg: err = %v", err)
	}
}

func TestGraphDocsCheckAndWrite(t *testing.T) {
	repo := archtest.CopyRepo(t)
	if out, err := seamInProcess(t, repo, "graph", "--check-docs"); err != nil {
		t.Fatalf("clean copy: %v\n%s", err, out)
	}
	// A new call dependency: reporting now uses billing's contract.
	archtest.WriteFile(t, repo, "modules/reporting/planted.go", `package reporting

import billingapi "github.com/seamkit/seam/modules/billing/api"

var _ billingapi.Billing
`)
	_, err := seamInProcess(t, repo, "graph", "--check-docs")
	if !errors.Is(err, arch.ErrStaleDocs) || !strings.Contains(err.Error(), arch.GraphDocsPath) {
		t.Fatalf("after planting a dependency: err = %v, want stale %s", err, arch.GraphDocsPath)
	}
	if out, err := seamInProcess(t, repo, "graph", "--write-docs"); err != nil {
		t.Fatalf("--write-docs: %v\n%s", err, out)
	}
	if out, err := seamInProcess(t, repo, "graph", "--check-docs"); err != nil {
		t.Fatalf("after --write-docs: %v\n%s", err, out)
	}
	out, err := seamInProcess(t, repo, "graph")
	if err != nil || !regexp.MustCompile(`reporting -> billing +call +modules/reporting/planted.go:5\n`).MatchString(out) {
		t.Fatalf("graph after planting: %v\n%s", err, out)
	}
}
