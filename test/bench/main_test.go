package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/seamkit/seam/test/bench/proc"
	"github.com/seamkit/seam/test/bench/report"
	"github.com/seamkit/seam/test/bench/suite"
)

// TestMain runs the suite's child roles when the test binary is re-executed as one (the remote call's peer
// servers, the bare handler, the profiled monolith), and the tests otherwise.
func TestMain(m *testing.M) {
	if spec, isChild, err := proc.ChildSpec(); isChild {
		if err == nil {
			err = suite.RunChild(spec)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestSmoke runs the suite in its quick mode, once, so that it cannot rot: with -short only the benchmarks
// that need no database (the local and the remote call, with their child processes); without it every
// benchmark (PostgreSQL, Seam's binaries, the deployments). It asserts that everything ran and rendered,
// never what the figures are.
func TestSmoke(t *testing.T) {
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	cfg := suite.Config{Runs: 1, Quick: true, RepoRoot: root, WorkDir: t.TempDir(), Progress: testWriter{t}}
	want := suite.All
	if testing.Short() {
		want = []string{suite.Local, suite.Remote}
		cfg.Only = want
	} else {
		// The server runs as the postgres user when the tests run as root: its directory's parents must be
		// traversable for it.
		dir, err := os.MkdirTemp("", "seam-bench-test-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = os.RemoveAll(dir) })
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		cfg.PostgresDir = filepath.Join(dir, "postgres")
	}
	rep, err := suite.Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Sections) != len(want) {
		t.Fatalf("got %d sections, want %d (%v)", len(rep.Sections), len(want), want)
	}
	for _, s := range rep.Sections {
		if len(s.Targets) == 0 || len(s.Figures) == 0 {
			t.Errorf("section %q has no targets or figures", s.Title)
		}
		for _, f := range s.Figures {
			if len(f.Runs) == 0 {
				t.Errorf("section %q: figure %q has no run", s.Title, f.Name)
			}
		}
	}
	var page, text bytes.Buffer
	if err := rep.Markdown(&page); err != nil {
		t.Fatal(err)
	}
	if err := rep.Text(&text); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(page.String(), report.Header) || !strings.Contains(page.String(), "## Targets") {
		t.Errorf("the page lacks its header or its targets:\n%s", page.String())
	}
}

// testWriter logs the suite's progress lines through the test.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
