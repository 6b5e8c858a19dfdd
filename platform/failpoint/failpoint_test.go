package failpoint_test

import (
	"errors"
	"testing"
	"time"

	"github.com/seamkit/seam/platform/failpoint"
)

func TestOffByDefault(t *testing.T) {
	if err := failpoint.Configure(""); err != nil {
		t.Fatal(err)
	}
	if failpoint.Enabled() || failpoint.Inject("anything") != nil {
		t.Fatal("no failpoint configured, want nothing to happen")
	}
}

func TestErrorOnNthHit(t *testing.T) {
	t.Cleanup(func() { _ = failpoint.Configure("") })
	if err := failpoint.Configure("a=error@2, b=error*1"); err != nil {
		t.Fatal(err)
	}
	if err := failpoint.Inject("a"); err != nil {
		t.Fatalf("first hit of a: %v", err)
	}
	if err := failpoint.Inject("a"); !errors.Is(err, failpoint.ErrInjected) {
		t.Fatalf("second hit of a: %v", err)
	}
	if err := failpoint.Inject("a"); err != nil {
		t.Fatalf("third hit of a: %v", err)
	}
	if err := failpoint.Inject("b"); !errors.Is(err, failpoint.ErrInjected) {
		t.Fatalf("first hit of b: %v", err)
	}
	if err := failpoint.Inject("b"); err != nil {
		t.Fatalf("second hit of b: %v", err)
	}
	if err := failpoint.Inject("c"); err != nil {
		t.Fatalf("unconfigured c: %v", err)
	}
}

func TestSleepAndPanic(t *testing.T) {
	t.Cleanup(func() { _ = failpoint.Configure("") })
	if err := failpoint.Configure("s=sleep(20ms),p=panic"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := failpoint.Inject("s"); err != nil || time.Since(start) < 20*time.Millisecond {
		t.Fatalf("sleep: err %v after %s", err, time.Since(start))
	}
	defer func() {
		if recover() == nil {
			t.Fatal("want a panic")
		}
	}()
	_ = failpoint.Inject("p")
}

func TestBadSpecs(t *testing.T) {
	for _, spec := range []string{"noequals", "=error", "a=explode", "a=sleep(soon)", "a=error@0", "a=error*x"} {
		if err := failpoint.Configure(spec); err == nil {
			t.Errorf("Configure(%q) accepted", spec)
		}
	}
}
