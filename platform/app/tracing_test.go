package app

import (
	"strings"
	"testing"

	"github.com/seamkit/seam/platform/observe"
)

func TestTracingSectionFromYAMLAndEnv(t *testing.T) {
	cfg, err := LoadConfig("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Tracing.Exporter != observe.ExporterNone || cfg.Tracing.SampleRatio != 1 {
		t.Fatalf("tracing is on by default: %+v", cfg.Tracing)
	}
	path := writeConfig(t, "tracing:\n  exporter: otlp-grpc\n  endpoint: collector:4317\n  sample_ratio: 0\n")
	cfg, err = LoadConfig(path, []string{
		"SEAM_TRACING_EXPORTER=otlp-http", "SEAM_TRACING_ENDPOINT=http://collector:4318", "SEAM_TRACING_INSECURE=true",
		"SEAM_TRACING_SERVICE_NAME=edge",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := observe.TracingConfig{Exporter: "otlp-http", Endpoint: "http://collector:4318", Insecure: true, SampleRatio: 0, ServiceName: "edge"}
	if cfg.Tracing != want || cfg.tracing() != want {
		t.Fatalf("tracing = %+v, want %+v", cfg.Tracing, want)
	}
	if unknown := cfg.unknownEnv(); len(unknown) != 0 {
		t.Fatalf("SEAM_TRACING_* variables reported unknown: %v", unknown)
	}
	for env, key := range map[string]string{
		"SEAM_TRACING_EXPORTER=zipkin":   "tracing.exporter",
		"SEAM_TRACING_SAMPLE_RATIO=2":    "tracing.sample_ratio",
		"SEAM_TRACING_ENDPOINT=nowhere":  "tracing.endpoint",
		"SEAM_TRACING_SAMPLE_RATIO=half": "SEAM_TRACING_SAMPLE_RATIO",
	} {
		if _, err := LoadConfig("", []string{env}); err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("%s: err = %v, want one naming %s", env, err, key)
		}
	}
}

func TestTracingServiceNameDefaultsToTheProcessRole(t *testing.T) {
	cfg, err := LoadConfig("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.tracing().ServiceName; got != "seam-monolith" {
		t.Fatalf("monolith: service name %q", got)
	}
	// What RunExtracted sets for cmd/billing: billing here, every other module remote.
	cfg.forcedModes = map[string]Mode{"billing": ModeLocal, "auth": ModeRemote, "reporting": ModeRemote}
	if got := cfg.tracing().ServiceName; got != "seam-billing" {
		t.Fatalf("extracted billing: service name %q", got)
	}
	// What Declarations sets: every module local, which is a monolith.
	cfg.forcedModes = map[string]Mode{"billing": ModeLocal, "auth": ModeLocal}
	if got := cfg.tracing().ServiceName; got != "seam-monolith" {
		t.Fatalf("all local: service name %q", got)
	}
}
