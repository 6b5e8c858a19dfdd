// Package failpoint lets fault tests make a running Seam process fail at named points of its code (crash
// after a publish, error inside a saga step), the way etcd's gofail and TiDB's failpoints do. Failpoints are
// off unless the process is configured with them (config key `failpoints`, SEAM_FAILPOINTS); the check on the
// hot path is one atomic load.
package failpoint

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// ErrInjected is returned by Inject when a failpoint's action is "error".
var ErrInjected = errors.New("failpoint: injected failure")

type action struct {
	kind  string // error, exit, sleep, panic
	sleep time.Duration
	// nth, when set, fires the action on the nth hit only; times, when set, fires it on the first times hits.
	nth, times int64
	hits       atomic.Int64
}

var (
	enabled atomic.Bool
	mu      sync.RWMutex
	points  = map[string]*action{}
)

// Configure replaces the active failpoints with spec: comma-separated `name=action` terms, where action is
// `error`, `panic`, `exit` (the process kills itself with SIGKILL, like a crash), or `sleep(<duration>)`,
// optionally suffixed `@N` (only the Nth hit fires) or `*N` (the first N hits fire). An empty spec turns
// every failpoint off.
func Configure(spec string) error {
	if err := Validate(spec); err != nil {
		return err
	}
	parsed := map[string]*action{}
	for _, term := range strings.Split(spec, ",") {
		if term = strings.TrimSpace(term); term == "" {
			continue
		}
		name, act, _ := strings.Cut(term, "=")
		parsed[name], _ = parseAction(act)
	}
	mu.Lock()
	points = parsed
	mu.Unlock()
	enabled.Store(len(parsed) > 0)
	return nil
}

func parseAction(s string) (*action, error) {
	a := &action{}
	if base, n, ok := strings.Cut(s, "@"); ok {
		v, err := strconv.ParseInt(n, 10, 64)
		if err != nil || v < 1 {
			return nil, fmt.Errorf("bad hit number %q", n)
		}
		s, a.nth = base, v
	} else if base, n, ok := strings.Cut(s, "*"); ok {
		v, err := strconv.ParseInt(n, 10, 64)
		if err != nil || v < 1 {
			return nil, fmt.Errorf("bad hit count %q", n)
		}
		s, a.times = base, v
	}
	switch {
	case s == "error", s == "panic", s == "exit":
		a.kind = s
	case strings.HasPrefix(s, "sleep(") && strings.HasSuffix(s, ")"):
		d, err := time.ParseDuration(strings.TrimSuffix(strings.TrimPrefix(s, "sleep("), ")"))
		if err != nil {
			return nil, fmt.Errorf("bad sleep duration in %q", s)
		}
		a.kind, a.sleep = "sleep", d
	default:
		return nil, fmt.Errorf("unknown action %q (want error, panic, exit or sleep(<duration>))", s)
	}
	return a, nil
}

// Validate checks spec without activating it.
func Validate(spec string) error {
	for _, term := range strings.Split(spec, ",") {
		if term = strings.TrimSpace(term); term == "" {
			continue
		}
		name, act, ok := strings.Cut(term, "=")
		if !ok || name == "" {
			return fmt.Errorf("failpoint %q: want name=action", term)
		}
		if _, err := parseAction(act); err != nil {
			return fmt.Errorf("failpoint %s: %w", name, err)
		}
	}
	return nil
}

// Enabled reports whether any failpoint is configured.
func Enabled() bool { return enabled.Load() }

// Inject runs the action configured for name, if any: it returns ErrInjected for "error", panics for
// "panic", kills the process for "exit", sleeps for "sleep", and returns nil when name is not active.
func Inject(name string) error {
	if !enabled.Load() {
		return nil
	}
	mu.RLock()
	a := points[name]
	mu.RUnlock()
	if a == nil {
		return nil
	}
	hit := a.hits.Add(1)
	if (a.nth > 0 && hit != a.nth) || (a.times > 0 && hit > a.times) {
		return nil
	}
	switch a.kind {
	case "error":
		return fmt.Errorf("%w at %s", ErrInjected, name)
	case "panic":
		panic("failpoint " + name)
	case "exit":
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // SIGKILL cannot be caught; wait for it to land
	case "sleep":
		time.Sleep(a.sleep)
	}
	return nil
}
