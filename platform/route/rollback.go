package route

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Rule rolls a split module back to local (its remote share to 0, every override removed) when, over the
// last Window since its last change, the remote side has made at least MinCalls calls and one of its limits
// is exceeded. A zero limit is off. It is the modules.<name>.rollback section of the configuration.
type Rule struct {
	// Window is how far back the rule looks (whole seconds, at least 1s).
	Window time.Duration `yaml:"window"`
	// MinCalls is how many remote calls the window must hold before the rule judges.
	MinCalls int `yaml:"min_calls"`
	// MaxErrorRate trips when the remote side's error rate exceeds it (0.05 = 5%).
	MaxErrorRate float64 `yaml:"max_error_rate"`
	// MaxErrorRatio trips when the remote error rate exceeds this many times the local one (with at least one
	// remote error and MinCalls local calls in the window).
	MaxErrorRatio float64 `yaml:"max_error_ratio"`
	// MaxP95Ratio trips when the remote p95 latency exceeds this many times the local p95 (with MinCalls
	// timed calls on each side).
	MaxP95Ratio float64 `yaml:"max_p95_ratio"`
	// Disabled turns the rule off whatever its limits.
	Disabled bool `yaml:"disabled"`
}

// Defaults of Rule.
const (
	DefaultRollbackWindow   = 30 * time.Second
	DefaultRollbackMinCalls = 20
	DefaultMaxErrorRate     = 0.05
	maxRollbackWindow       = 10 * time.Minute
)

// SetDefaults fills unset fields: a 30s window, 20 calls, and a 5% remote error rate limit when no limit is set.
func (r *Rule) SetDefaults() { r.setDefaults() }

func (r *Rule) setDefaults() {
	if r.Window == 0 {
		r.Window = DefaultRollbackWindow
	}
	if r.MinCalls == 0 {
		r.MinCalls = DefaultRollbackMinCalls
	}
	if r.MaxErrorRate == 0 && r.MaxErrorRatio == 0 && r.MaxP95Ratio == 0 {
		r.MaxErrorRate = DefaultMaxErrorRate
	}
}

// Validate checks the rule; errors name the key.
func (r Rule) Validate() error {
	switch {
	case r.Window < time.Second || r.Window > maxRollbackWindow || r.Window%time.Second != 0:
		return fmt.Errorf("window: must be whole seconds between 1s and %s, got %s", maxRollbackWindow, r.Window)
	case r.MinCalls < 1:
		return fmt.Errorf("min_calls: must be at least 1, got %d", r.MinCalls)
	case r.MaxErrorRate < 0 || r.MaxErrorRate > 1:
		return fmt.Errorf("max_error_rate: must be between 0 and 1, got %v", r.MaxErrorRate)
	case r.MaxErrorRatio < 0:
		return fmt.Errorf("max_error_ratio: must not be negative, got %v", r.MaxErrorRatio)
	case r.MaxP95Ratio < 0:
		return fmt.Errorf("max_p95_ratio: must not be negative, got %v", r.MaxP95Ratio)
	}
	return nil
}

func (r Rule) periods() int { return max(int(r.Window/time.Second), 1) }

// Verdict says why a rule tripped on a window, or "" when it did not.
func (r Rule) Verdict(local, remote Window) string {
	if r.Disabled || remote.Calls < uint64(r.MinCalls) {
		return ""
	}
	rr, lr := remote.ErrorRate(), local.ErrorRate()
	over := fmt.Sprintf("over %s (%d remote calls, %d errors; %d local calls, %d errors)", r.Window, remote.Calls,
		remote.Failures, local.Calls, local.Failures)
	switch {
	case r.MaxErrorRate > 0 && rr > r.MaxErrorRate:
		return fmt.Sprintf("remote error rate %.1f%% above the limit of %.1f%% %s", rr*100, r.MaxErrorRate*100, over)
	case r.MaxErrorRatio > 0 && remote.Failures > 0 && local.Calls >= uint64(r.MinCalls) && rr > r.MaxErrorRatio*lr:
		return fmt.Sprintf("remote error rate %.1f%% above %g× the local %.1f%% %s", rr*100, r.MaxErrorRatio, lr*100, over)
	case r.MaxP95Ratio > 0 && remote.Timed >= uint64(r.MinCalls) && local.Timed >= uint64(r.MinCalls) &&
		float64(remote.P95) > r.MaxP95Ratio*float64(local.P95):
		return fmt.Sprintf("remote p95 latency %s above %g× the local %s %s", remote.P95, r.MaxP95Ratio, local.P95, over)
	}
	return ""
}

// AutoActor is the actor of the changes the rollback rule makes.
const AutoActor = "auto-rollback"

// checkRule rolls mod back when its rule trips on the window since its last change.
func (t *Table) checkRule(ctx context.Context, mod *Module) {
	def, overrides := mod.State()
	remote := def.RemoteBP > 0
	for _, st := range overrides {
		remote = remote || st.RemoteBP > 0
	}
	if !remote {
		return
	}
	w := mod.window(mod.rule.periods(), true)
	why := mod.rule.Verdict(w[Local], w[Remote])
	if why == "" {
		return
	}
	_, _, err := t.Change(ctx, Change{Module: mod.name, RemoteBP: 0, Shadow: def.Shadow, Actor: AutoActor,
		Reason: why, Automatic: true})
	switch {
	case err == nil:
		mod.rollbacks.Add(1)
		mod.logger.Error("route: ALERT: rolled back to local", slog.String("reason", why), slog.Bool("alert", true))
	case errors.Is(err, context.Canceled):
	default:
		mod.logger.Error("route: ALERT: the rollback rule tripped but the rollback failed", slog.String("reason", why),
			slog.Bool("alert", true), slog.Any("error", err))
	}
}
