package observe_test

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"github.com/seamkit/seam/platform/observe"
)

func TestLoggerCarriesModuleAndRequestID(t *testing.T) {
	var buf bytes.Buffer
	l, err := observe.NewLogger(observe.LogConfig{}, &buf)
	if err != nil {
		t.Fatal(err)
	}
	ctx := observe.WithRequestID(context.Background(), "req-1")
	observe.ModuleLogger(l, "billing").InfoContext(ctx, "invoice created")
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("not JSON: %q: %v", buf.String(), err)
	}
	if rec["module"] != "billing" || rec["request_id"] != "req-1" || rec["msg"] != "invoice created" {
		t.Fatalf("record = %v", rec)
	}
}

func TestLoggerRejectsBadLevel(t *testing.T) {
	if _, err := observe.NewLogger(observe.LogConfig{Level: "loud"}, &bytes.Buffer{}); err == nil {
		t.Fatal("want error for unknown level")
	}
}
