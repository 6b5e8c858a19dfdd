package errs_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/seamkit/seam/platform/errs"
)

var errThingNotFound = errs.New(errs.NotFound, "demo.thing_not_found", "thing not found")

func TestIsMatchesByCode(t *testing.T) {
	wrapped := fmt.Errorf("load thing 42: %w", errThingNotFound)
	if !errors.Is(wrapped, errThingNotFound) {
		t.Fatal("wrapped sentinel does not match")
	}
	rebuilt := errs.New(errs.NotFound, "demo.thing_not_found", "thing not found")
	if !errors.Is(rebuilt, errThingNotFound) {
		t.Fatal("an error rebuilt from its code must match the sentinel")
	}
	other := errs.New(errs.NotFound, "demo.other", "x")
	if errors.Is(other, errThingNotFound) {
		t.Fatal("different codes must not match")
	}
}

func TestValidationCollector(t *testing.T) {
	var c errs.Collector
	c.Check(true, "a", "fine")
	if c.Err() != nil {
		t.Fatal("no fields recorded, want nil")
	}
	c.Check(false, "amount", "must be positive, got %d", -1)
	err := c.Err()
	if !errors.Is(err, errs.ErrValidation) {
		t.Fatalf("want validation error, got %v", err)
	}
	e, ok := errs.As(err)
	if !ok || len(e.Fields) != 1 || e.Fields[0].Detail != "must be positive, got -1" {
		t.Fatalf("fields = %+v", e)
	}
}

func TestKindRoundTrip(t *testing.T) {
	for k := errs.Internal; k <= errs.Unavailable; k++ {
		if got := errs.ParseKind(k.String()); got != k {
			t.Errorf("ParseKind(%q) = %v, want %v", k.String(), got, k)
		}
	}
	if errs.ParseKind("nonsense") != errs.Internal {
		t.Error("unknown kind must parse as internal")
	}
}
