package route

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/seamkit/seam/platform/errs"
	"github.com/seamkit/seam/platform/observe"
)

// Shadow calls run in the background, at most maxShadowInFlight at once per module (beyond that they are
// skipped, so shadowing never queues work behind the callers), each within shadowTimeout.
const (
	maxShadowInFlight = 32
	shadowTimeout     = 5 * time.Second
	// maxDiff bounds the stored diff of one discrepancy.
	maxDiff = 8 << 10
)

// Discrepancy is a shadowed call whose two sides answered differently.
type Discrepancy struct {
	ID     int64     `json:"id"`
	Module string    `json:"module"`
	Method string    `json:"method"`
	At     time.Time `json:"at"`
	// Primary is the side whose answer the caller got.
	Primary   string `json:"primary"`
	RequestID string `json:"request_id,omitempty"`
	// Diff lists the differences, one per line: "path: primary → shadow".
	Diff string `json:"diff"`
}

// ShadowCounts are a method's shadow measurements since start.
type ShadowCounts struct {
	Compared      uint64 `json:"compared"`
	Discrepancies uint64 `json:"discrepancies"`
	Skipped       uint64 `json:"skipped"`
}

// shadower runs a module's shadow calls and records what they find.
type shadower struct {
	mod   *Module
	slots chan struct{}
	// counts holds each method's counts, by name; fixed at construction.
	counts map[string]*shadowCounts
}

type shadowCounts struct {
	compared, discrepancies, skipped atomic.Uint64
}

func newShadower(mod *Module, methods []*Method) *shadower {
	s := &shadower{mod: mod, slots: make(chan struct{}, maxShadowInFlight), counts: map[string]*shadowCounts{}}
	for _, m := range methods {
		s.counts[m.name] = &shadowCounts{}
	}
	return s
}

// ShadowCounts returns the method's shadow measurements.
func (m *Method) ShadowCounts() ShadowCounts {
	c := m.mod.shadows.counts[m.name]
	if c == nil {
		return ShadowCounts{}
	}
	return ShadowCounts{Compared: c.compared.Load(), Discrepancies: c.discrepancies.Load(), Skipped: c.skipped.Load()}
}

func (s *shadower) compare(ctx context.Context, m *Method, primary Side, result any, err error, other func(ctx context.Context) (any, error)) {
	counts := s.counts[m.name]
	select {
	case s.slots <- struct{}{}:
	default:
		counts.skipped.Add(1)
		return
	}
	requestID := observe.RequestID(ctx)
	// The caller's answer is encoded now, before the caller can change it (a slice it appends to, say).
	want := outcomeOf(result, err)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shadowTimeout)
	go func() {
		defer func() { <-s.slots }()
		defer cancel()
		got := outcomeOf(s.call(sctx, m, primary.Other(), other))
		counts.compared.Add(1)
		diff := Diff(want, got)
		if diff == "" {
			return
		}
		counts.discrepancies.Add(1)
		d := Discrepancy{Module: s.mod.name, Method: m.name, At: time.Now(), Primary: primary.String(),
			RequestID: requestID, Diff: truncate(diff, maxDiff)}
		s.mod.logger.Warn("route: shadow discrepancy", slog.String("method", m.name), slog.String("primary", d.Primary),
			slog.String("request_id", requestID), slog.String("diff", d.Diff))
		if s.mod.store == nil {
			return
		}
		if err := s.mod.store.SaveDiscrepancy(sctx, d); err != nil {
			s.mod.logger.Warn("route: store a shadow discrepancy", slog.Any("error", err))
		}
	}()
}

// call runs the shadow side, measured like any call of that side, turning a panic into an error.
func (s *shadower) call(ctx context.Context, m *Method, side Side, other func(ctx context.Context) (any, error)) (result any, err error) {
	stats := m.sides[side]
	p := s.mod.table.period.Load()
	stats.count()
	start := time.Now()
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("route: shadow call of %s.%s panicked: %v", s.mod.name, m.name, r)
		}
		if Failed(err) {
			stats.fail()
		}
		stats.observe(p, time.Since(start))
	}()
	return other(ctx)
}

// Outcome is an answer as shadowing compares it: the result as JSON, or the error's stable code.
type Outcome struct {
	Result json.RawMessage `json:"result,omitempty"`
	Error  string          `json:"error,omitempty"`
}

// outcomeOf describes an answer: an error by its client-safe code (or what kind of failure it is), a
// result by its JSON encoding.
func outcomeOf(result any, err error) Outcome {
	if err != nil {
		return Outcome{Error: errorCode(err)}
	}
	b, mErr := json.Marshal(result)
	if mErr != nil {
		return Outcome{Error: "unencodable result: " + mErr.Error()}
	}
	return Outcome{Result: b}
}

func errorCode(err error) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "deadline_exceeded"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	if e, ok := errs.As(err); ok {
		return e.Code
	}
	return "internal"
}

// Diff compares two outcomes and returns their differences, one per line ("path: primary → shadow",
// paths like $.items[2].status), or "" when they are the same. JSON objects compare key by key, so key order
// and spacing do not matter.
func Diff(primary, shadow Outcome) string {
	var lines []string
	switch {
	case primary.Error != "" || shadow.Error != "":
		if primary.Error != shadow.Error {
			lines = append(lines, fmt.Sprintf("outcome: %s → %s", describe(primary), describe(shadow)))
		}
	default:
		var a, b any
		if json.Unmarshal(primary.Result, &a) != nil || json.Unmarshal(shadow.Result, &b) != nil {
			if !bytes.Equal(primary.Result, shadow.Result) {
				lines = append(lines, fmt.Sprintf("$: %s → %s", primary.Result, shadow.Result))
			}
			break
		}
		diffValues("$", a, b, &lines)
	}
	return strings.Join(lines, "\n")
}

func describe(o Outcome) string {
	if o.Error != "" {
		return "error " + o.Error
	}
	return "ok"
}

func diffValues(path string, a, b any, lines *[]string) {
	switch av := a.(type) {
	case map[string]any:
		bv, ok := b.(map[string]any)
		if !ok {
			break
		}
		keys := map[string]bool{}
		for k := range av {
			keys[k] = true
		}
		for k := range bv {
			keys[k] = true
		}
		sorted := make([]string, 0, len(keys))
		for k := range keys {
			sorted = append(sorted, k)
		}
		sort.Strings(sorted)
		for _, k := range sorted {
			x, inA := av[k]
			y, inB := bv[k]
			switch {
			case !inA:
				*lines = append(*lines, fmt.Sprintf("%s.%s: (absent) → %s", path, k, compact(y)))
			case !inB:
				*lines = append(*lines, fmt.Sprintf("%s.%s: %s → (absent)", path, k, compact(x)))
			default:
				diffValues(path+"."+k, x, y, lines)
			}
		}
		return
	case []any:
		bv, ok := b.([]any)
		if !ok {
			break
		}
		if len(av) != len(bv) {
			*lines = append(*lines, fmt.Sprintf("%s: %d items → %d items", path, len(av), len(bv)))
		}
		for i := range min(len(av), len(bv)) {
			diffValues(fmt.Sprintf("%s[%d]", path, i), av[i], bv[i], lines)
		}
		return
	}
	if ca, cb := compact(a), compact(b); ca != cb {
		*lines = append(*lines, fmt.Sprintf("%s: %s → %s", path, ca, cb))
	}
}

func compact(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "\n… (truncated)"
}
