package authdomain

import (
	"testing"
	"time"
)

var throttleStart = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// failTimes records one failure at each offset from throttleStart, starting from a.
func failTimes(th Throttle, a LoginAttempts, offsets ...time.Duration) LoginAttempts {
	for _, off := range offsets {
		a = th.RecordFailure(a, throttleStart.Add(off))
	}
	return a
}

func TestThrottleDefaults(t *testing.T) {
	th := DefaultThrottle()
	if th.MaxFailures != 5 || th.Window != 15*time.Minute || th.Lockout != 15*time.Minute {
		t.Fatalf("DefaultThrottle = %+v", th)
	}
	if err := th.Validate(); err != nil {
		t.Fatalf("Validate(defaults): %v", err)
	}
	if ok, retry := th.Allowed(LoginAttempts{}, throttleStart); !ok || retry != 0 {
		t.Fatalf("Allowed(no state) = %v, %s; want true, 0", ok, retry)
	}
}

func TestThrottleValidate(t *testing.T) {
	for _, th := range []Throttle{
		{},
		{MaxFailures: 0, Window: time.Minute, Lockout: time.Minute},
		{MaxFailures: 5, Window: 0, Lockout: time.Minute},
		{MaxFailures: 5, Window: time.Minute, Lockout: -time.Minute},
	} {
		if err := th.Validate(); err == nil {
			t.Errorf("Validate(%+v) = nil, want an error", th)
		}
	}
}

func TestThrottleLocksOnMaxFailuresWithinWindow(t *testing.T) {
	th := DefaultThrottle()
	a := failTimes(th, LoginAttempts{}, 0, time.Minute, 2*time.Minute, 3*time.Minute)
	if a.Failures != 4 || !a.FirstFailure.Equal(throttleStart) || !a.LockedUntil.IsZero() {
		t.Fatalf("after 4 failures: %+v", a)
	}
	if ok, _ := th.Allowed(a, throttleStart.Add(3*time.Minute)); !ok {
		t.Fatal("locked after MaxFailures-1 failures")
	}

	fifth := throttleStart.Add(th.Window - time.Nanosecond) // the last instant still inside the window
	a = th.RecordFailure(a, fifth)
	if a.Failures != 5 || !a.LockedUntil.Equal(fifth.Add(th.Lockout)) {
		t.Fatalf("after the 5th failure inside the window: %+v", a)
	}
	ok, retry := th.Allowed(a, fifth)
	if ok || retry != th.Lockout {
		t.Fatalf("Allowed at lock start = %v, %s; want false, %s", ok, retry, th.Lockout)
	}
	ok, retry = th.Allowed(a, a.LockedUntil.Add(-time.Second))
	if ok || retry != time.Second {
		t.Fatalf("Allowed 1s before unlock = %v, %s; want false, 1s", ok, retry)
	}
	if ok, retry = th.Allowed(a, a.LockedUntil); !ok || retry != 0 {
		t.Fatalf("Allowed at LockedUntil = %v, %s; want true, 0", ok, retry)
	}
}

func TestThrottleWindowResets(t *testing.T) {
	th := DefaultThrottle()
	a := failTimes(th, LoginAttempts{}, 0, time.Minute, 2*time.Minute, 3*time.Minute)
	// Exactly Window after the first failure the window has passed: this failure opens a new one.
	a = th.RecordFailure(a, throttleStart.Add(th.Window))
	if a.Failures != 1 || !a.FirstFailure.Equal(throttleStart.Add(th.Window)) || !a.LockedUntil.IsZero() {
		t.Fatalf("failure at the window's end: %+v; want a new window with 1 failure", a)
	}
}

func TestThrottleFailureWhileLockedDoesNotExtend(t *testing.T) {
	th := DefaultThrottle()
	locked := failTimes(th, LoginAttempts{}, 0, 1, 2, 3, 4)
	if locked.LockedUntil.IsZero() {
		t.Fatalf("not locked after 5 failures: %+v", locked)
	}
	if got := th.RecordFailure(locked, throttleStart.Add(time.Minute)); got != locked {
		t.Fatalf("failure while locked changed the state: %+v -> %+v", locked, got)
	}
}

func TestThrottleAfterLockoutStartsOver(t *testing.T) {
	th := DefaultThrottle()
	locked := failTimes(th, LoginAttempts{}, 0, 1, 2, 3, 4)
	after := locked.LockedUntil
	a := th.RecordFailure(locked, after)
	if a.Failures != 1 || !a.FirstFailure.Equal(after) || !a.LockedUntil.IsZero() {
		t.Fatalf("first failure after the lockout: %+v; want a fresh window with 1 failure", a)
	}
	for i := 2; i <= th.MaxFailures; i++ {
		a = th.RecordFailure(a, after.Add(time.Duration(i)*time.Second))
	}
	if ok, _ := th.Allowed(a, after.Add(10*time.Second)); ok {
		t.Fatalf("not locked again after %d more failures: %+v", th.MaxFailures, a)
	}
}

func TestThrottleSingleFailurePolicy(t *testing.T) {
	th := Throttle{MaxFailures: 1, Window: time.Minute, Lockout: time.Minute}
	a := th.RecordFailure(LoginAttempts{}, throttleStart)
	if ok, retry := th.Allowed(a, throttleStart); ok || retry != time.Minute {
		t.Fatalf("Allowed after the only permitted failure = %v, %s; want false, 1m", ok, retry)
	}
}
