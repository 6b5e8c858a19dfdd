package arch_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/seamkit/seam/arch"
	"github.com/seamkit/seam/arch/archtest"
)

// snapshot returns every file and directory under root with a hash of its content.
func snapshot(t *testing.T, root string) map[string][32]byte {
	t.Helper()
	out := map[string][32]byte{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if d.IsDir() {
			out[rel+"/"] = [32]byte{}
			return nil
		}
		data, err := os.ReadFile(p)
		out[rel] = sha256.Sum256(data)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestValidateModuleName(t *testing.T) {
	root := archtest.RepoRoot(t)
	refused := map[string]string{
		"Inventory":             "lower-case letter",
		"x":                     "2 to 31 characters",
		"9lives":                "lower-case letter",
		"in-stock":              "lower-case letter",
		"in_stock":              "lower-case letter",
		strings.Repeat("a", 32): "2 to 31 characters",
		"platform":              "repository's own layout",
		"api":                   "repository's own layout",
		"test":                  "repository's own layout",
		"func":                  "Go keyword",
		"string":                "predeclared Go identifier",
		"http":                  "standard library package",
		"order":                 "PostgreSQL reserved word",
		"public":                "PostgreSQL schema",
		"billing":               "modules/billing exists already",
		"cfg":                   "cmd/monolith/main.go already uses the identifier cfg",
	}
	for name, want := range refused {
		err := arch.ValidateModuleName(root, name)
		if !errors.Is(err, arch.ErrInvalidModuleName) || !strings.Contains(err.Error(), want) ||
			!strings.Contains(err.Error(), `"`+name+`"`) {
			t.Errorf("%q: err = %v, want ErrInvalidModuleName naming it and saying %q", name, err, want)
		}
	}
	for _, name := range []string{"inventory", "shop2", "ab", strings.Repeat("a", 31)} {
		if err := arch.ValidateModuleName(root, name); err != nil {
			t.Errorf("%q: %v", name, err)
		}
	}
}

func TestNewModuleUndoesEverythingWhenAStepFails(t *testing.T) {
	root := archtest.CopyRepo(t)
	before := snapshot(t, root)
	boom := errors.New("generator exploded")
	generated := false
	_, err := arch.NewModule(context.Background(), root, "inventory", func(_ context.Context, dir string) error {
		// The generator runs once every file is in place; what it writes must go too.
		for _, f := range []string{"modules/inventory/module.go", "sql/inventory/migrations/00001_init.sql"} {
			if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
				t.Errorf("generator ran before %s was written: %v", f, err)
			}
		}
		archtest.WriteFile(t, dir, "modules/inventory/data/db.gen.go", "package inventorydata\n")
		generated = true
		return boom
	})
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "inventory") {
		t.Fatalf("err = %v, want the generator's error", err)
	}
	if !generated {
		t.Fatal("generator not called")
	}
	if diff := cmp.Diff(before, snapshot(t, root)); diff != "" {
		t.Fatalf("the repository changed (-before +after):\n%s", diff)
	}
}
