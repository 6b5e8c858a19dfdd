// Command bench runs Seam's benchmark suite in one go, each figure next to its baselines and the median of
// several runs, prints a table and writes docs/BENCHMARKS.md. `make bench` runs it; `-quick` makes a smoke
// run. Started with proc.RoleEnv set, it runs as one of the suite's child processes instead.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/seamkit/seam/test/bench/proc"
	"github.com/seamkit/seam/test/bench/suite"
)

func main() {
	if spec, isChild, err := proc.ChildSpec(); isChild {
		if err == nil {
			err = suite.RunChild(spec)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench child:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	runs := fs.Int("runs", 3, "measure each figure this many times and report the median")
	quick := fs.Bool("quick", false, "smoke run: every duration cut short, figures not comparable")
	only := fs.String("only", "", "comma-separated benchmarks to run ("+strings.Join(suite.All, ", ")+"); empty runs all")
	out := fs.String("out", "docs/BENCHMARKS.md", "the page to write (relative to the repository root); empty writes none")
	work := fs.String("work", "bin/bench", "directory for binaries, logs and profiles (relative to the repository root)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	root, err := repoRoot()
	if err != nil {
		return err
	}
	cfg := suite.Config{Runs: *runs, Quick: *quick, RepoRoot: root, WorkDir: resolve(root, *work), Progress: os.Stderr}
	if *only != "" {
		cfg.Only = strings.Split(*only, ",")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := suite.Run(ctx, cfg)
	if err != nil {
		return err
	}
	if err := rep.Text(os.Stdout); err != nil {
		return err
	}
	if *out == "" {
		return nil
	}
	var page bytes.Buffer
	if err := rep.Markdown(&page); err != nil {
		return err
	}
	path := resolve(root, *out)
	// Paths under the repository are shown relative to it.
	text := strings.ReplaceAll(page.String(), root+string(filepath.Separator), "")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	fmt.Fprintln(os.Stderr, "bench: wrote", path)
	return nil
}

// resolve makes path absolute under root unless it already is.
func resolve(root, path string) string {
	if filepath.IsAbs(path) {
		return path
	}
	return filepath.Join(root, path)
}

// repoRoot is the directory holding go.mod above the working directory.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("repository root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("repository root: no go.mod above the working directory")
		}
		dir = parent
	}
}
