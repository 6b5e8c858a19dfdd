package arch

import (
	"cmp"
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
)

// The channels a module can leak through, in report order, and the pseudo-channel of the ratchet.
const (
	// ChannelImports covers Go imports: go-arch-lint with the generated configuration, plus the standard
	// library rules go-arch-lint cannot express.
	ChannelImports = "imports"
	// ChannelSQL covers queries: sqlc compiles each module's queries against that module's migrations only.
	ChannelSQL = "sql"
	// ChannelBus covers event declarations: a module publishes only its own subjects, through its outbox.
	ChannelBus = "bus"
	// ChannelGenerated covers committed generated files, which must match what their generators produce.
	ChannelGenerated = "generated"
	// ChannelBaseline reports baseline entries that no longer match a violation.
	ChannelBaseline = "baseline"
)

// Channels lists the checks Check runs, in report order.
var Channels = []string{ChannelImports, ChannelSQL, ChannelBus, ChannelGenerated}

// Violation is one broken rule at one place.
type Violation struct {
	// Channel is one of Channels, or ChannelBaseline for a stale baseline entry.
	Channel string `json:"channel"`
	// Rule is a short stable identifier of the rule, e.g. "domain-imports".
	Rule string `json:"rule"`
	// File is the offending file relative to the repository root, with forward slashes.
	File string `json:"file"`
	// Line is the 1-based line, or 0 when the violation concerns the whole file.
	Line int `json:"line,omitempty"`
	// Detail identifies the violation within the file without a line number (the import path, the SQL
	// error, the subject), so that unrelated edits keep its baseline key.
	Detail string `json:"detail"`
	// Message is the readable description printed after "file:line: ".
	Message string `json:"message"`
}

// Key is what identifies a violation in the baseline.
func (v Violation) Key() Key {
	return Key{Channel: v.Channel, Rule: v.Rule, File: v.File, Detail: v.Detail}
}

// Location is "file:line", or "file" when the line is unknown.
func (v Violation) Location() string {
	if v.Line > 0 {
		return fmt.Sprintf("%s:%d", v.File, v.Line)
	}
	return v.File
}

// String is the violation as one report line.
func (v Violation) String() string { return v.Location() + ": " + v.Message }

// Baselinable reports whether the ratchet may tolerate the violation. Import and bus violations may be
// recorded; a SQL violation cannot be (sqlc cannot generate code for a query that does not compile, so there
// is nothing to tolerate), nor can stale generated code or a stale baseline entry.
func (v Violation) Baselinable() bool {
	return v.Channel == ChannelImports || v.Channel == ChannelBus
}

// ChannelResult is the outcome of one channel.
type ChannelResult struct {
	// Name is the channel, one of Channels.
	Name string `json:"name"`
	// Violations are the violations that fail the check (not tolerated by the baseline).
	Violations []Violation `json:"violations"`
	// Tolerated are the violations the baseline lists.
	Tolerated []Violation `json:"tolerated,omitempty"`
	// Checked says what the channel looked at, for the report.
	Checked string `json:"checked,omitempty"`
	// Notes say what the channel skipped and why.
	Notes []string `json:"notes,omitempty"`
	// Err is set when the channel could not run; the check then fails.
	Err error `json:"-"`
}

// Result is the outcome of Check.
type Result struct {
	// Modules are the modules found on disk.
	Modules []string `json:"modules"`
	// Channels are the results of the channels that ran, in Channels order, then ChannelBaseline.
	Channels []ChannelResult `json:"channels"`
	// BaselineFile is the baseline used, relative to the repository root.
	BaselineFile string `json:"baseline_file"`
	// BaselineEntries is how many entries the baseline had (after --update-baseline: has).
	BaselineEntries int `json:"baseline_entries"`
	// BaselineWritten is true when Check rewrote the baseline (Options.UpdateBaseline).
	BaselineWritten bool `json:"baseline_written,omitempty"`
	// Fixed lists what Options.Fix regenerated.
	Fixed []string `json:"fixed,omitempty"`
}

// OK reports whether every channel ran and nothing fails.
func (r *Result) OK() bool {
	for _, c := range r.Channels {
		if c.Err != nil || len(c.Violations) > 0 {
			return false
		}
	}
	return true
}

// Failures returns every violation that fails the check, in report order.
func (r *Result) Failures() []Violation {
	var out []Violation
	for _, c := range r.Channels {
		out = append(out, c.Violations...)
	}
	return out
}

// Options configure Check.
type Options struct {
	// Root is the repository root; "" means the current directory.
	Root string
	// Go is the go command running the pinned tools; "" means "go" from PATH.
	Go string
	// Channels restricts the run to these channels; nil runs all of Channels. Baseline entries of channels
	// that did not run are neither applied nor reported stale.
	Channels []string
	// BaselineFile is the baseline, relative to Root; "" means BaselineFile.
	BaselineFile string
	// Generators are the producers of committed generated code the generated channel compares and Fix
	// reruns; nil means DefaultGenerators().
	Generators []Generator
	// Fix reruns every generator before checking.
	Fix bool
	// UpdateBaseline rewrites the baseline with the baselinable violations found, so they are tolerated;
	// entries of channels that did not run are kept.
	UpdateBaseline bool
}

// Env is what a check needs to know about the repository.
type Env struct {
	// Root is the absolute repository root.
	Root string
	// Go is the go command.
	Go string
	// Modules are the modules on disk.
	Modules []Module
}

// Rel returns path (absolute, or relative to Root) relative to Root with forward slashes.
func (e Env) Rel(path string) string {
	if filepath.IsAbs(path) {
		if rel, err := filepath.Rel(e.Root, path); err == nil && !strings.HasPrefix(rel, "..") {
			path = rel
		}
	}
	return filepath.ToSlash(path)
}

// Check runs the boundary checks of the repository and applies the baseline. Violations and channels that
// could not run are in the Result; the error is for what prevents checking at all (an unreadable baseline,
// a broken modules directory, a failing --fix).
func Check(ctx context.Context, opts Options) (*Result, error) {
	root := opts.Root
	if root == "" {
		root = "."
	}
	root, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("arch: %w", err)
	}
	env := Env{Root: root, Go: opts.Go}
	if env.Go == "" {
		env.Go = "go"
	}
	channels := opts.Channels
	if channels == nil {
		channels = Channels
	}
	for _, c := range channels {
		if !slices.Contains(Channels, c) {
			return nil, fmt.Errorf("arch: unknown channel %q (want one of %s)", c, strings.Join(Channels, ", "))
		}
	}
	gens := opts.Generators
	if gens == nil {
		gens = DefaultGenerators()
	}
	baselineFile := opts.BaselineFile
	if baselineFile == "" {
		baselineFile = BaselineFile
	}

	res := &Result{BaselineFile: filepath.ToSlash(baselineFile)}
	if opts.Fix {
		mods, err := LoadModules(root)
		if err != nil {
			return nil, err
		}
		env.Modules = mods
		for _, g := range gens {
			if err := g.Fix(ctx, env); err != nil {
				return nil, fmt.Errorf("arch: regenerate %s: %w", g.Name, err)
			}
			res.Fixed = append(res.Fixed, g.Name)
		}
	}
	mods, err := LoadModules(root)
	if err != nil {
		return nil, err
	}
	env.Modules = mods
	for _, m := range mods {
		res.Modules = append(res.Modules, m.Name)
	}
	baseline, err := ReadBaseline(filepath.Join(root, filepath.FromSlash(baselineFile)))
	if err != nil {
		return nil, err
	}

	runners := map[string]func(context.Context, Env) ChannelResult{
		ChannelImports:   checkImports,
		ChannelSQL:       checkSQL,
		ChannelBus:       checkBus,
		ChannelGenerated: func(ctx context.Context, env Env) ChannelResult { return checkGenerated(ctx, env, gens) },
	}
	results := make([]ChannelResult, len(channels))
	var wg sync.WaitGroup
	for i, name := range channels {
		wg.Go(func() {
			r := runners[name](ctx, env)
			r.Name = name
			sortViolations(r.Violations)
			results[i] = r
		})
	}
	wg.Wait()
	slices.SortStableFunc(results, func(a, b ChannelResult) int {
		return slices.Index(Channels, a.Name) - slices.Index(Channels, b.Name)
	})

	if opts.UpdateBaseline {
		var found []Violation
		for _, r := range results {
			if r.Err != nil {
				return nil, fmt.Errorf("arch: cannot update the baseline: channel %s could not run: %w", r.Name, r.Err)
			}
			found = append(found, r.Violations...)
		}
		baseline = NewBaseline(found, baseline.without(channels))
		if err := baseline.Write(filepath.Join(root, filepath.FromSlash(baselineFile))); err != nil {
			return nil, err
		}
		res.BaselineWritten = true
	}
	res.BaselineEntries = len(baseline.Violations)
	res.Channels = append(results, baseline.apply(results, res.BaselineFile))
	return res, nil
}

// sortViolations orders violations by file, line, then rule and detail, so reports are stable.
func sortViolations(vs []Violation) {
	slices.SortFunc(vs, func(a, b Violation) int {
		return cmp.Or(strings.Compare(a.File, b.File), a.Line-b.Line, strings.Compare(a.Rule, b.Rule),
			strings.Compare(a.Detail, b.Detail))
	})
}
