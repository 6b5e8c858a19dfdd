package arch

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// BaselineFile is the default baseline (the ratchet), relative to the repository root.
const BaselineFile = "seam-baseline.yml"

// Key identifies a violation in the baseline: no line number, so edits elsewhere in the file keep it valid.
type Key struct {
	// Channel is the violation's channel (imports or bus).
	Channel string `yaml:"channel" json:"channel"`
	// Rule is the violation's rule identifier.
	Rule string `yaml:"rule" json:"rule"`
	// File is the offending file relative to the repository root.
	File string `yaml:"file" json:"file"`
	// Detail is what the file does wrong: the import path, the subject.
	Detail string `yaml:"detail" json:"detail"`
}

// String is the key on one line, for messages.
func (k Key) String() string { return fmt.Sprintf("%s/%s %s: %s", k.Channel, k.Rule, k.File, k.Detail) }

// Baseline is the committed list of known violations a codebase adopting Seam tolerates while it fixes them
// (like Packwerk's package_todo.yml). One entry tolerates every occurrence of its key.
type Baseline struct {
	// Violations are the tolerated violations, sorted.
	Violations []Key `yaml:"violations"`
}

// baselineHeader opens a written baseline.
const baselineHeader = `# seam check baseline: known boundary violations that are tolerated while they are being fixed.
# A violation listed here does not fail seam check; a new one does; an entry whose violation is gone fails
# too (remove it). Only the imports and bus channels can be recorded. Do not edit by hand: after fixing or
# (when adopting Seam) accepting violations, rewrite it with
#   go run ./cmd/seam check --update-baseline
# and review the diff. See docs/boundaries.md.
`

// ReadBaseline reads the baseline at path; a missing file is an empty baseline.
func ReadBaseline(path string) (Baseline, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Baseline{}, nil
	}
	if err != nil {
		return Baseline{}, fmt.Errorf("arch: read baseline: %w", err)
	}
	var b Baseline
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&b); err != nil && !errors.Is(err, io.EOF) {
		return Baseline{}, fmt.Errorf("arch: baseline %s: %w", path, err)
	}
	for i, k := range b.Violations {
		if !slices.Contains([]string{ChannelImports, ChannelBus}, k.Channel) || k.Rule == "" || k.File == "" || k.Detail == "" {
			return Baseline{}, fmt.Errorf("arch: baseline %s: entry %d (%s): channel must be imports or bus, and rule, file and detail set",
				path, i+1, k)
		}
	}
	return b, nil
}

// NewBaseline is the baseline that tolerates the baselinable violations among vs, plus the entries of keep.
func NewBaseline(vs []Violation, keep Baseline) Baseline {
	var b Baseline
	add := func(k Key) {
		if !slices.Contains(b.Violations, k) {
			b.Violations = append(b.Violations, k)
		}
	}
	for _, k := range keep.Violations {
		add(k)
	}
	for _, v := range vs {
		if v.Baselinable() {
			add(v.Key())
		}
	}
	slices.SortFunc(b.Violations, func(x, y Key) int { return strings.Compare(x.String(), y.String()) })
	return b
}

// without returns the baseline minus the entries of the given channels.
func (b Baseline) without(channels []string) Baseline {
	var out Baseline
	for _, k := range b.Violations {
		if !slices.Contains(channels, k.Channel) {
			out.Violations = append(out.Violations, k)
		}
	}
	return out
}

// Write writes the baseline to path, with an explanatory header.
func (b Baseline) Write(path string) error {
	var buf bytes.Buffer
	buf.WriteString(baselineHeader)
	if len(b.Violations) == 0 {
		buf.WriteString("violations: []\n")
	} else {
		enc := yaml.NewEncoder(&buf)
		enc.SetIndent(2)
		if err := enc.Encode(b); err != nil {
			return fmt.Errorf("arch: encode baseline: %w", err)
		}
		if err := enc.Close(); err != nil {
			return fmt.Errorf("arch: encode baseline: %w", err)
		}
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("arch: write baseline: %w", err)
	}
	return nil
}

// apply moves the violations the baseline lists from Violations to Tolerated in results, and returns the
// baseline channel: one violation per entry that matches nothing in a channel that ran. Entries of
// channels that did not run, or failed to, are left alone.
func (b Baseline) apply(results []ChannelResult, file string) ChannelResult {
	listed := map[Key]bool{}
	for _, k := range b.Violations {
		listed[k] = true
	}
	seen := map[Key]bool{}
	judged := map[string]bool{}
	for i := range results {
		r := &results[i]
		judged[r.Name] = r.Err == nil
		var failing []Violation
		for _, v := range r.Violations {
			if v.Baselinable() && listed[v.Key()] {
				seen[v.Key()] = true
				r.Tolerated = append(r.Tolerated, v)
				continue
			}
			failing = append(failing, v)
		}
		r.Violations = failing
	}
	out := ChannelResult{Name: ChannelBaseline}
	for _, k := range b.Violations {
		if seen[k] || !judged[k.Channel] {
			continue
		}
		out.Violations = append(out.Violations, Violation{
			Channel: ChannelBaseline,
			Rule:    "stale-entry",
			File:    file,
			Detail:  k.String(),
			Message: fmt.Sprintf("stale baseline entry %s: fixed? remove it with seam check --update-baseline", k),
		})
	}
	return out
}
