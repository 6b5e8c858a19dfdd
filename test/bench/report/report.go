// Package report holds what a run of the benchmark suite measured, checks it against the targets, and renders
// it as a plain-text table for the terminal and as the generated docs/BENCHMARKS.md.
package report

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/seamkit/seam/test/bench/stats"
)

// Report is everything one run of the suite measured.
type Report struct {
	// Started is when the run began.
	Started time.Time
	// Took is how long the whole run took.
	Took time.Duration
	// Runs is how many times each figure was measured; tables show the median.
	Runs int
	// Quick marks a smoke run with shortened durations, whose figures are not comparable.
	Quick bool
	// Machine describes where it ran.
	Machine Machine
	// Sections hold the figures, one per benchmark.
	Sections []Section
}

// Section is one benchmark's figures, targets and findings.
type Section struct {
	// Title names the benchmark.
	Title string
	// Method says, in paragraphs, what was measured and how.
	Method []string
	// Tables summarise the medians.
	Tables []Table
	// Targets are the goals the figures are checked against.
	Targets []Target
	// Findings say, in paragraphs, what the profiles and counters show.
	Findings []string
	// Figures are every measured figure with each run's value, for the appendix.
	Figures []Figure
}

// Table is a captioned grid of cells.
type Table struct {
	// Caption introduces the table; it may be empty.
	Caption string
	// Header names the columns.
	Header []string
	// Rows hold the cells, as many per row as Header has.
	Rows [][]string
}

// Figure is one quantity measured once per run.
type Figure struct {
	// Name says what was measured.
	Name string
	// Unit is the quantity's unit, e.g. "µs" or "calls/s".
	Unit string
	// Runs holds each run's value.
	Runs []float64
}

// Median is the figure's median over its runs.
func (f Figure) Median() float64 { return stats.Median(f.Runs) }

// Target is a goal a measured value is checked against.
type Target struct {
	// Name says what is checked.
	Name string
	// Goal states the goal, e.g. "≤ 1.5× plain".
	Goal string
	// Measured is the value found, in the goal's terms.
	Measured string
	// Met reports whether the goal was reached.
	Met bool
	// Limits says what holds the figure back when the goal was missed.
	Limits string
}

// AtMost checks value ≤ bound; both are shown with format (a fmt verb such as "%.2f×").
func AtMost(name string, value, bound float64, format string) Target {
	return Target{Name: name, Goal: "≤ " + fmt.Sprintf(format, bound), Measured: fmt.Sprintf(format, value),
		Met: value <= bound && !math.IsNaN(value)}
}

// AtLeast checks value ≥ bound; both are shown with format.
func AtLeast(name string, value, bound float64, format string) Target {
	return Target{Name: name, Goal: "≥ " + fmt.Sprintf(format, bound), Measured: fmt.Sprintf(format, value),
		Met: value >= bound && !math.IsNaN(value)}
}

// Ratio is a/b, NaN when b is 0.
func Ratio(a, b float64) float64 {
	if b == 0 {
		return math.NaN()
	}
	return a / b
}

// Num formats a figure for a table: thousands separated, with digits after the point only for small values.
func Num(v float64) string {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return "n/a"
	case math.Abs(v) >= 100:
		return group(strconv.FormatFloat(math.Round(v), 'f', 0, 64))
	case math.Abs(v) >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
}

// group puts a thin comma between each three digits of an integer string.
func group(s string) string {
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// Micros formats a duration in microseconds.
func Micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// Millis formats a duration in milliseconds.
func Millis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// Pct formats a fraction as a percentage.
func Pct(f float64) string {
	if math.IsNaN(f) {
		return "n/a"
	}
	return strconv.FormatFloat(100*f, 'f', 1, 64) + "%"
}
