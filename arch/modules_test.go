package arch_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/seamkit/seam/arch"
	"github.com/seamkit/seam/arch/archtest"
)

func TestLoadModules(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"modules/zeta/api", "modules/zeta/domain", "modules/alpha/data", "modules/alpha/api", "modules/.hidden"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "modules", "README.md"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := arch.LoadModules(root)
	if err != nil {
		t.Fatal(err)
	}
	want := []arch.Module{
		{Name: "alpha", Dir: "modules/alpha", Layers: []string{"api", "data"}},
		{Name: "zeta", Dir: "modules/zeta", Layers: []string{"api", "domain"}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("LoadModules (-want +got):\n%s", diff)
	}

	if err := os.MkdirAll(filepath.Join(root, "modules", "Bad-Name"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := arch.LoadModules(root); err == nil || !strings.Contains(err.Error(), "Bad-Name") {
		t.Errorf("LoadModules with modules/Bad-Name: err = %v, want one naming the directory", err)
	}
	if mods, err := arch.LoadModules(t.TempDir()); err != nil || mods != nil {
		t.Errorf("LoadModules without modules/: %v, %v", mods, err)
	}
}

// TestArchLintFileCurrent fails when the committed .go-arch-lint.yml is not what the modules on disk
// generate (seam check reports the same; this keeps `go test` honest on its own).
func TestArchLintFileCurrent(t *testing.T) {
	root := archtest.RepoRoot(t)
	mods, err := arch.LoadModules(root)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(root, arch.ArchLintFile))
	if err != nil {
		t.Fatal(err)
	}
	if want := arch.ArchLintConfig(mods); !bytes.Equal(got, want) {
		t.Errorf("%s is stale: run `%s`", arch.ArchLintFile, arch.FixCommand)
	}
}

func TestArchLintConfig(t *testing.T) {
	mods := []arch.Module{
		{Name: "billing", Dir: "modules/billing", Layers: []string{"api", "domain", "data"}},
		{Name: "notes", Dir: "modules/notes", Layers: []string{"api", "domain"}},
		{Name: "ops", Dir: "modules/ops"},
	}
	cfg := string(arch.ArchLintConfig(mods))
	if !bytes.Equal(arch.ArchLintConfig(mods), []byte(cfg)) {
		t.Fatal("ArchLintConfig is not deterministic")
	}
	for _, want := range []string{
		"  billing-domain: { in: [modules/billing/domain, modules/billing/domain/**] }\n",
		"  notes:          { in: modules/notes }\n",
		"  ops:            { in: modules/ops }\n",
		// Domain: own api and itself, other modules' api, platform; pure libraries only; no deep scan.
		"  billing-domain:\n    mayDependOn: [billing-api, billing-domain, notes-api, platform, platform-contract]\n" +
			"    canUse: [jwt, xcrypto, uuid]\n    deepScan: false\n",
		// api: contract types only, no libraries.
		"  notes-api:\n    mayDependOn: [notes-api, platform-contract]\n",
		// Module roots compose their own layers; a module without api is nobody's dependency.
		"  ops:\n    mayDependOn: [billing-api, notes-api, platform, platform-contract, sqlfs]\n",
		"  billing-data:\n    mayDependOn: [billing-api, billing-domain, billing-data, platform, platform-contract]\n",
		"  platform:\n    mayDependOn: [platform, platform-contract]\n",
		"  platform-contract: { in: [platform/errs, platform/identity] }\n",
	} {
		if !strings.Contains(cfg, want) {
			t.Errorf("config lacks\n%s\nconfig:\n%s", want, cfg)
		}
	}
	if strings.Contains(cfg, "notes-data") || strings.Contains(cfg, "ops-api") {
		t.Errorf("config names layers that do not exist:\n%s", cfg)
	}
}
