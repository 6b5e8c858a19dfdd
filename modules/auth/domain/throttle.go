package authdomain

import (
	"errors"
	"fmt"
	"time"
)

// LoginAttempts is one account's recent failed logins, as the data layer stores it between requests.
// The zero value means no recent failures; a successful login deletes the stored state.
type LoginAttempts struct {
	// Failures counts failed logins since FirstFailure.
	Failures int
	// FirstFailure starts the current counting window.
	FirstFailure time.Time
	// LockedUntil, when in the future, blocks every login attempt for the account.
	LockedUntil time.Time
}

// Throttle is the per-account login throttling policy: MaxFailures failed logins within Window lock the
// account for Lockout. It is pure logic; callers load and store LoginAttempts themselves.
type Throttle struct {
	// MaxFailures is how many failures within Window trigger a lockout.
	MaxFailures int
	// Window is how long failures keep counting toward MaxFailures, measured from the first one.
	Window time.Duration
	// Lockout is how long a locked account stays locked.
	Lockout time.Duration
}

// DefaultThrottle returns the default policy: 5 failures within 15 minutes lock the account for 15 minutes.
func DefaultThrottle() Throttle {
	return Throttle{MaxFailures: 5, Window: 15 * time.Minute, Lockout: 15 * time.Minute}
}

// Validate reports whether the policy can throttle anything, for checking configuration at start-up.
func (t Throttle) Validate() error {
	var errs []error
	if t.MaxFailures < 1 {
		errs = append(errs, fmt.Errorf("throttle: max failures must be at least 1, got %d", t.MaxFailures))
	}
	if t.Window <= 0 {
		errs = append(errs, fmt.Errorf("throttle: window must be positive, got %s", t.Window))
	}
	if t.Lockout <= 0 {
		errs = append(errs, fmt.Errorf("throttle: lockout must be positive, got %s", t.Lockout))
	}
	return errors.Join(errs...)
}

// Allowed reports whether a login may be attempted at now; when it may not, retryAfter is how long until
// the lockout ends. An account is locked for the half-open interval [lock start, LockedUntil).
func (t Throttle) Allowed(a LoginAttempts, now time.Time) (ok bool, retryAfter time.Duration) {
	if now.Before(a.LockedUntil) {
		return false, a.LockedUntil.Sub(now)
	}
	return true, 0
}

// RecordFailure returns a after one more failed login at now. A failure starts a new window when there is
// none, when the previous window (the half-open interval [FirstFailure, FirstFailure+Window)) has passed, or
// when a previous lockout has ended; the MaxFailures-th failure within a window locks the account until
// now+Lockout. A failure recorded while locked changes nothing, so the lockout is never extended.
func (t Throttle) RecordFailure(a LoginAttempts, now time.Time) LoginAttempts {
	if now.Before(a.LockedUntil) {
		return a
	}
	lockEnded := !a.LockedUntil.IsZero()
	windowPassed := !now.Before(a.FirstFailure.Add(t.Window))
	if a.Failures <= 0 || windowPassed || lockEnded {
		a = LoginAttempts{FirstFailure: now}
	}
	a.Failures++
	if a.Failures >= t.MaxFailures {
		a.LockedUntil = now.Add(t.Lockout)
	}
	return a
}
