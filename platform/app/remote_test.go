package app

import (
	"errors"
	"strings"
	"testing"

	"go.uber.org/fx"
)

func TestModuleModeIsStrippedBeforeTheModuleDecodes(t *testing.T) {
	path := writeConfig(t, `
modules:
  demo:
    mode: remote
    greeting: hello
  other:
    greeting: hi
`)
	cfg, err := LoadConfig(path, []string{"SEAM_OTHER_MODE=remote"})
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]Mode{"demo": ModeRemote, "other": ModeRemote, "absent": ModeLocal} {
		got, err := cfg.ModuleMode(name)
		if err != nil || got != want {
			t.Errorf("ModuleMode(%s) = %q, %v; want %q", name, got, err, want)
		}
	}
	var section demoSection
	if err := cfg.ModuleSection("demo", &section); err != nil || section.Greeting != "hello" {
		t.Fatalf("ModuleSection after the mode was read = %+v, %v", section, err)
	}
	if unknown := cfg.unknownEnv(); len(unknown) != 0 {
		t.Fatalf("SEAM_OTHER_MODE reported as unknown: %v", unknown)
	}
}

func TestModuleModeEnvOverridesYAML(t *testing.T) {
	path := writeConfig(t, "modules:\n  demo:\n    mode: remote\n")
	cfg, err := LoadConfig(path, []string{"SEAM_DEMO_MODE=local"})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := cfg.ModuleMode("demo"); err != nil || got != ModeLocal {
		t.Fatalf("ModuleMode = %q, %v; want local", got, err)
	}
}

func TestModuleModeRefusesUnknownValues(t *testing.T) {
	for _, tc := range []struct{ yaml, env string }{
		{yaml: "modules:\n  demo:\n    mode: sideways\n"},
		{yaml: "modules:\n  demo:\n    mode: [local]\n"},
		{env: "SEAM_DEMO_MODE=Remote"},
	} {
		cfg, err := LoadConfig(writeConfig(t, tc.yaml), []string{tc.env})
		if err != nil {
			t.Fatal(err)
		}
		_, err = cfg.ModuleMode("demo")
		if err == nil || !strings.Contains(err.Error(), "modules.demo.mode") {
			t.Errorf("%q %q: err = %v, want one naming modules.demo.mode", tc.yaml, tc.env, err)
		}
	}
}

func TestRemoteModeNeedsARemoteAPI(t *testing.T) {
	cfg, err := LoadConfig("", []string{"SEAM_DEMO_MODE=remote"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = cfg.moduleOptions([]Module{{Name: "demo", Options: fx.Options()}})
	if err == nil || !strings.Contains(err.Error(), "modules.demo.mode") {
		t.Fatalf("err = %v, want one naming modules.demo.mode", err)
	}
}

func TestRunExtractedRefusesTheEmbeddedBus(t *testing.T) {
	cfg, err := LoadConfig("", nil)
	if err != nil {
		t.Fatal(err)
	}
	err = RunExtracted(t.Context(), cfg, nil, Module{Name: "demo", Options: fx.Options()})
	if !errors.Is(err, ErrEmbeddedBus) {
		t.Fatalf("err = %v, want ErrEmbeddedBus", err)
	}
}

func TestDeclarationsLeaveTheModesAlone(t *testing.T) {
	cfg, err := LoadConfig(writeConfig(t, "modules:\n  demo:\n    mode: remote\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Declarations(cfg, Module{Name: "demo", Options: fx.Options()}); err != nil {
		t.Fatal(err)
	}
	if got, err := cfg.ModuleMode("demo"); err != nil || got != ModeRemote {
		t.Fatalf("ModuleMode after Declarations = %q, %v; want remote", got, err)
	}
}
