package arch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/seamkit/seam/arch/stubgen"
)

// FixCommand regenerates everything the generated channel checks.
const FixCommand = "go run ./cmd/seam check --fix"

// ErrSkipped is returned by Generator.Stale when the generator's input is broken, so it cannot tell whether
// its output is current; the channel owning the input reports why.
var ErrSkipped = errors.New("arch: generator input is broken")

// Generator is a producer of committed generated code whose output the generated channel keeps current.
// Further generators (e.g. remote stubs) join by being added to DefaultGenerators.
type Generator struct {
	// Name names the generator in the report, e.g. "sqlc".
	Name string
	// Command is how a developer reruns it, e.g. "make generate".
	Command string
	// Stale returns the files whose committed content differs from what the generator produces.
	Stale func(ctx context.Context, env Env) ([]StaleFile, error)
	// Fix rewrites the generator's output.
	Fix func(ctx context.Context, env Env) error
}

// StaleFile is one generated file that does not match its sources.
type StaleFile struct {
	// File is the file relative to the repository root.
	File string
	// Reason says how it differs, e.g. "missing" or "differs from the modules on disk".
	Reason string
}

// DefaultGenerators are the generators of a Seam repository: the remote stubs of the api interfaces, the
// go-arch-lint configuration (which depends on which stubs exist), sqlc's query code, the module graph
// documentation and the extracted modules' binaries (cmd/<module>/main.go, see `seam extract`).
func DefaultGenerators() []Generator {
	return []Generator{StubsGenerator(), ArchLintGenerator(), SQLCGenerator(), GraphDocsGenerator(), ExtractGenerator()}
}

// StubsGenerator keeps the remote client and server stubs of every module's api interface current (see
// `seam gen`).
func StubsGenerator() Generator {
	return Generator{
		Name:    "remote stubs",
		Command: "go run ./cmd/seam gen",
		Stale: func(_ context.Context, env Env) ([]StaleFile, error) {
			stale, err := stubgen.Check(env.Root)
			if err != nil {
				return nil, err
			}
			files := make([]StaleFile, len(stale))
			for i, s := range stale {
				files[i] = StaleFile{File: s.Path, Reason: s.Reason}
			}
			return files, nil
		},
		Fix: func(_ context.Context, env Env) error {
			_, err := stubgen.Write(env.Root)
			return err
		},
	}
}

// ArchLintGenerator keeps .go-arch-lint.yml equal to ArchLintConfig of the modules on disk.
func ArchLintGenerator() Generator {
	return Generator{
		Name:    "go-arch-lint config",
		Command: FixCommand,
		Stale: func(_ context.Context, env Env) ([]StaleFile, error) {
			return compareFiles(env.Root, map[string][]byte{ArchLintFile: ArchLintConfig(env.Modules)})
		},
		Fix: func(_ context.Context, env Env) error {
			// Reload: a generator that ran before this one may have added a module's remote stubs.
			mods, err := LoadModules(env.Root)
			if err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(env.Root, ArchLintFile), ArchLintConfig(mods), 0o644)
		},
	}
}

// sqlcDiffFile matches a file header of `sqlc diff`'s unified diff.
var sqlcDiffFile = regexp.MustCompile(`^--- a/(\S+)`)

// SQLCGenerator keeps sqlc's output (modules/<m>/data/*.gen.go) current, through `sqlc diff`.
func SQLCGenerator() Generator {
	return Generator{
		Name:    "sqlc",
		Command: "make generate",
		Stale: func(ctx context.Context, env Env) ([]StaleFile, error) {
			out, err := runSQLC(ctx, env, "diff")
			if err == nil {
				return nil, nil
			}
			if len(sqlcErrors(env, out)) > 0 {
				return nil, fmt.Errorf("%w: queries do not compile (see sql)", ErrSkipped)
			}
			var stale []StaleFile
			for line := range strings.Lines(string(out)) {
				if m := sqlcDiffFile.FindStringSubmatch(line); m != nil {
					stale = append(stale, StaleFile{File: m[1], Reason: "differs from what sqlc generates"})
				}
			}
			if len(stale) == 0 {
				return nil, fmt.Errorf("sqlc diff: %w: %s", err, strings.TrimSpace(string(out)))
			}
			return stale, nil
		},
		Fix: func(ctx context.Context, env Env) error {
			out, err := runSQLC(ctx, env, "generate")
			if err != nil {
				return fmt.Errorf("sqlc generate: %w: %s", err, strings.TrimSpace(string(out)))
			}
			return nil
		},
	}
}

// GraphDocsGenerator keeps the module graph documentation under docs/ current (see `seam graph`).
func GraphDocsGenerator() Generator {
	return Generator{
		Name:    "module graph docs",
		Command: DocsCommand,
		Stale: func(_ context.Context, env Env) ([]StaleFile, error) {
			g, err := LoadGraph(env.Root)
			if err != nil {
				return nil, err
			}
			return compareFiles(env.Root, g.GraphDocs())
		},
		Fix: func(_ context.Context, env Env) error {
			g, err := LoadGraph(env.Root)
			if err != nil {
				return err
			}
			return WriteGraphDocs(env.Root, g)
		},
	}
}

// compareFiles compares files on disk (relative to root) with their wanted content.
func compareFiles(root string, want map[string][]byte) ([]StaleFile, error) {
	var stale []StaleFile
	for _, name := range slices.Sorted(maps.Keys(want)) {
		got, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(name)))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			stale = append(stale, StaleFile{File: name, Reason: "missing"})
		case err != nil:
			return nil, err
		case !bytes.Equal(got, want[name]):
			stale = append(stale, StaleFile{File: name, Reason: "differs from what the sources produce (first at line " +
				fmt.Sprint(firstDiffLine(got, want[name])) + ")"})
		}
	}
	return stale, nil
}

// firstDiffLine returns the 1-based number of the first line where a and b differ.
func firstDiffLine(a, b []byte) int {
	n := min(len(a), len(b))
	i := 0
	for i < n && a[i] == b[i] {
		i++
	}
	return bytes.Count(a[:i], []byte("\n")) + 1
}

// checkGenerated asks every generator for stale files.
func checkGenerated(ctx context.Context, env Env, gens []Generator) ChannelResult {
	var res ChannelResult
	var names []string
	for _, g := range gens {
		stale, err := g.Stale(ctx, env)
		switch {
		case errors.Is(err, ErrSkipped):
			res.Notes = append(res.Notes, g.Name+": skipped, "+strings.TrimPrefix(err.Error(), ErrSkipped.Error()+": "))
			continue
		case err != nil:
			res.Err = errors.Join(res.Err, fmt.Errorf("%s: %w", g.Name, err))
			continue
		}
		names = append(names, g.Name)
		for _, s := range stale {
			msg := fmt.Sprintf("stale %s output: %s; run `%s`", g.Name, s.Reason, g.Command)
			if g.Command != FixCommand {
				msg += " (or `" + FixCommand + "`)"
			}
			res.Violations = append(res.Violations, Violation{
				Channel: ChannelGenerated,
				Rule:    "stale",
				File:    s.File,
				Detail:  g.Name,
				Message: msg,
			})
		}
	}
	res.Checked = strings.Join(names, ", ")
	return res
}
