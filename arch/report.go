package arch

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// WriteText writes the result as the readable report of `seam check`: one block per channel, each failing
// violation as "file:line: message", then a summary line.
func (r *Result) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "seam check: %d modules (%s)\n", len(r.Modules), strings.Join(r.Modules, ", "))
	if len(r.Fixed) > 0 {
		fmt.Fprintf(&b, "regenerated: %s\n", strings.Join(r.Fixed, ", "))
	}
	if r.BaselineWritten {
		fmt.Fprintf(&b, "wrote %s: %d entries\n", r.BaselineFile, r.BaselineEntries)
	}
	b.WriteString("\n")
	failures, broken, tolerated := 0, 0, 0
	for _, c := range r.Channels {
		status := "ok"
		switch {
		case c.Err != nil:
			status = "ERROR"
			broken++
		case len(c.Violations) > 0:
			status = "FAIL"
		}
		var info []string
		switch {
		case c.Err != nil:
			info = append(info, "could not run")
		case len(c.Violations) > 0:
			info = append(info, plural(len(c.Violations), "violation"))
		}
		if len(c.Tolerated) > 0 {
			info = append(info, fmt.Sprintf("%d tolerated (baseline)", len(c.Tolerated)))
		}
		if c.Name == ChannelBaseline {
			info = append(info, fmt.Sprintf("%s: %s", r.BaselineFile, plural(r.BaselineEntries, "entry")))
		} else if len(c.Violations) == 0 && c.Err == nil && c.Checked != "" {
			info = append(info, c.Checked)
		}
		fmt.Fprintf(&b, "%-10s %-6s %s\n", c.Name, status, strings.Join(info, "; "))
		if c.Err != nil {
			for line := range strings.Lines(c.Err.Error()) {
				fmt.Fprintf(&b, "  %s", line)
			}
			b.WriteString("\n")
		}
		for _, v := range c.Violations {
			fmt.Fprintf(&b, "  %s\n", v)
		}
		for _, n := range c.Notes {
			fmt.Fprintf(&b, "  note: %s\n", n)
		}
		failures += len(c.Violations)
		tolerated += len(c.Tolerated)
	}
	b.WriteString("\n")
	switch {
	case r.OK():
		fmt.Fprintf(&b, "ok: no boundary violations")
		if tolerated > 0 {
			fmt.Fprintf(&b, " (%d tolerated by %s)", tolerated, r.BaselineFile)
		}
		b.WriteString("\n")
	default:
		var parts []string
		if failures > 0 {
			parts = append(parts, plural(failures, "violation"))
		}
		if broken > 0 {
			parts = append(parts, plural(broken, "channel")+" could not run")
		}
		fmt.Fprintf(&b, "FAIL: %s.\n", strings.Join(parts, ", "))
		if r.failing(ChannelGenerated) {
			fmt.Fprintf(&b, "Stale generated files: run `%s`.\n", FixCommand)
		}
		if r.failing(ChannelImports) || r.failing(ChannelBus) {
			b.WriteString("Adopting Seam in an existing codebase? Record today's import and bus violations with " +
				"`seam check --update-baseline`; new ones will still fail.\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// failing reports whether the channel has failing violations.
func (r *Result) failing(channel string) bool {
	for _, c := range r.Channels {
		if c.Name == channel && len(c.Violations) > 0 {
			return true
		}
	}
	return false
}

// WriteJSON writes the result as one JSON document, for tools.
func (r *Result) WriteJSON(w io.Writer) error {
	type channel struct {
		ChannelResult
		Error string `json:"error,omitempty"`
	}
	out := struct {
		OK bool `json:"ok"`
		*Result
		Channels []channel `json:"channels"`
	}{OK: r.OK(), Result: r}
	for _, c := range r.Channels {
		ch := channel{ChannelResult: c}
		if c.Err != nil {
			ch.Error = c.Err.Error()
		}
		out.Channels = append(out.Channels, ch)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// plural formats n with a noun, pluralised when n != 1.
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	if strings.HasSuffix(noun, "y") {
		return fmt.Sprintf("%d %sies", n, strings.TrimSuffix(noun, "y"))
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
