package app

import (
	"strings"
	"testing"
	"time"

	"go.uber.org/fx"

	"github.com/seamkit/seam/platform/route"
)

// routedDemo is a module with a remote api of one read-only and one writing method.
var routedDemo = Module{Name: "demo", Options: fx.Options(), Remote: Remote{
	methods: []route.MethodInfo{{Name: "Get", ReadOnly: true}, {Name: "Put"}},
}}

func TestRolloutAndRollbackSectionsAreReadBeforeTheModuleDecodes(t *testing.T) {
	path := writeConfig(t, `
modules:
  demo:
    mode: split
    greeting: hello
    rollout:
      percent: 12.5
      methods:
        Get: {percent: 50, shadow: true}
    rollback:
      window: 10s
      max_error_rate: 0.2
`)
	cfg, err := LoadConfig(path, []string{"SEAM_DEMO_ROLLBACK_MIN_CALLS=7"})
	if err != nil {
		t.Fatal(err)
	}
	mode, err := cfg.ModuleMode("demo")
	if err != nil || mode != ModeSplit {
		t.Fatalf("mode = %q, %v", mode, err)
	}
	mc, err := cfg.moduleRouting(routedDemo, mode)
	if err != nil {
		t.Fatal(err)
	}
	if mc.Mode != route.ModeSplit || mc.Initial != (route.State{RemoteBP: 1250}) ||
		mc.InitialOverrides["Get"] != (route.State{RemoteBP: 5000, Shadow: true}) {
		t.Fatalf("routing = %+v", mc)
	}
	if mc.Rule.Window != 10*time.Second || mc.Rule.MaxErrorRate != 0.2 || mc.Rule.MinCalls != 7 {
		t.Fatalf("rule = %+v", mc.Rule)
	}
	var section demoSection
	if err := cfg.ModuleSection("demo", &section); err != nil || section.Greeting != "hello" {
		t.Fatalf("the module's own section = %+v, %v", section, err)
	}
	if unknown := cfg.unknownEnv(); len(unknown) != 0 {
		t.Fatalf("SEAM_DEMO_ROLLBACK_MIN_CALLS reported as unknown: %v", unknown)
	}
}

func TestShadowModeShadowsFromTheStart(t *testing.T) {
	cfg, err := LoadConfig("", []string{"SEAM_DEMO_MODE=shadow", "SEAM_DEMO_ROLLOUT_PERCENT=100"})
	if err != nil {
		t.Fatal(err)
	}
	mode, err := cfg.ModuleMode("demo")
	if err != nil {
		t.Fatal(err)
	}
	mc, err := cfg.moduleRouting(routedDemo, mode)
	if err != nil || mc.Mode != route.ModeSplit || mc.Initial != (route.State{RemoteBP: route.Full, Shadow: true}) {
		t.Fatalf("routing = %+v, %v", mc, err)
	}
}

func TestBadRolloutsNameTheKey(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"{percent: 101}", "modules.demo.rollout.percent: 101"},
		{"{percent: 0.125}", "modules.demo.rollout.percent: 0.125"},
		{"{methods: {Put: {shadow: true}}}", "modules.demo.rollout.methods.Put.shadow: Put is not read-only"},
		{"{methods: {Nope: {percent: 1}}}", "modules.demo.rollout.methods.Nope: demo has no method Nope"},
		{"{methods: {Get: {percent: -1}}}", "modules.demo.rollout.methods.Get.percent: -1"},
		{"{sideways: true}", "modules.demo.rollout"},
	} {
		cfg, err := LoadConfig(writeConfig(t, "modules:\n  demo:\n    mode: split\n    rollout: "+tc.yaml+"\n"), nil)
		if err != nil {
			t.Fatal(err)
		}
		mode, err := cfg.ModuleMode("demo")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cfg.moduleRouting(routedDemo, mode); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("rollout %s: err = %v, want one containing %q", tc.yaml, err, tc.want)
		}
	}
}

func TestBadRollbackRuleNamesTheKey(t *testing.T) {
	cfg, err := LoadConfig("", []string{"SEAM_DEMO_MODE=split", "SEAM_DEMO_ROLLBACK_WINDOW=500ms"})
	if err != nil {
		t.Fatal(err)
	}
	mode, _ := cfg.ModuleMode("demo")
	if _, err := cfg.moduleRouting(routedDemo, mode); err == nil || !strings.Contains(err.Error(), "modules.demo.rollback.window:") {
		t.Fatalf("err = %v, want one naming modules.demo.rollback.window", err)
	}
}
