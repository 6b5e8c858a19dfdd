package arch_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/seamkit/seam/arch"
	"github.com/seamkit/seam/arch/archtest"
)

func TestExtractedMainsAreCurrent(t *testing.T) {
	root := archtest.RepoRoot(t)
	mods, err := arch.LoadModules(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range mods {
		want, err := arch.ExtractedMain(root, mods, m.Name)
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(arch.ExtractedMainPath(m.Name))))
		if err != nil {
			t.Fatalf("%v (run `go run ./cmd/seam extract %s`)", err, m.Name)
		}
		if string(got) != string(want) {
			t.Errorf("%s is stale (run `go run ./cmd/seam check --fix`)", arch.ExtractedMainPath(m.Name))
		}
		for _, frag := range []string{"app.RunExtracted(context.Background(), cfg, os.Stdout, " + m.Name + ".Module", "DO NOT EDIT"} {
			if !strings.Contains(string(want), frag) {
				t.Errorf("cmd/%s/main.go lacks %q", m.Name, frag)
			}
		}
	}
	if _, err := arch.ExtractedMain(root, mods, "nosuch"); !errors.Is(err, arch.ErrUnknownModule) {
		t.Errorf("extract nosuch: err = %v, want ErrUnknownModule", err)
	}
}

func TestExtractGeneratorReportsAndFixesStaleMains(t *testing.T) {
	root := archtest.CopyRepo(t)
	mods, err := arch.LoadModules(root)
	if err != nil {
		t.Fatal(err)
	}
	env := arch.Env{Root: root, Modules: mods}
	gen := arch.ExtractGenerator()
	archtest.WriteFile(t, root, "cmd/billing/main.go", "package main\n")
	if err := os.Remove(filepath.Join(root, "cmd", "auth", "main.go")); err != nil {
		t.Fatal(err)
	}
	stale, err := gen.Stale(context.Background(), env)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, s := range stale {
		got[s.File] = s.Reason
	}
	if len(got) != 2 || got["cmd/auth/main.go"] != "missing" || !strings.Contains(got["cmd/billing/main.go"], "differs") {
		t.Fatalf("stale = %+v, want cmd/auth/main.go missing and cmd/billing/main.go differing", stale)
	}
	if err := gen.Fix(context.Background(), env); err != nil {
		t.Fatal(err)
	}
	if stale, err := gen.Stale(context.Background(), env); err != nil || len(stale) != 0 {
		t.Fatalf("after Fix: stale = %+v, %v", stale, err)
	}
}
