package main

import (
	"crypto/sha256"
	"errors"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/seamkit/seam/arch"
	"github.com/seamkit/seam/arch/archtest"
	"github.com/seamkit/seam/test/harness"
)

// treeHashes returns every file and directory under root with a hash of its content.
func treeHashes(t *testing.T, root string) map[string][32]byte {
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

func TestNewModuleRefusesBadNamesAndWritesNothing(t *testing.T) {
	repo := archtest.CopyRepo(t)
	before := treeHashes(t, repo)
	for name, why := range map[string]string{
		"Inventory": "a module name is 2 to 31 characters: a lower-case letter, then lower-case letters or digits",
		"i":         "a module name is 2 to 31 characters",
		"stock-2":   "a module name is 2 to 31 characters",
		"platform":  "the name is reserved",
		"app":       "the name is reserved",
		"api":       "the name is reserved",
		"test":      "the name is reserved",
		"type":      "Go keyword",
		"billing":   "modules/billing exists already",
	} {
		out, err := seamInProcess(t, repo, "new", "module", name)
		if !errors.Is(err, arch.ErrInvalidModuleName) || !strings.Contains(err.Error(), `"`+name+`"`) ||
			!strings.Contains(err.Error(), why) {
			t.Errorf("seam new module %s: err = %v, want it refused because %q", name, err, why)
		}
		if out != "" {
			t.Errorf("seam new module %s printed %q", name, out)
		}
	}
	if _, err := seamInProcess(t, repo, "new", "module"); err == nil {
		t.Error("seam new module without a name succeeded")
	}
	if diff := cmp.Diff(before, treeHashes(t, repo)); diff != "" {
		t.Fatalf("refused names changed the repository (-before +after):\n%s", diff)
	}
}

// runInCopy runs a command in dir, failing the test with its output if it fails, and logs how long it took.
func runInCopy(t *testing.T, dir string, name string, args ...string) string {
	t.Helper()
	start := time.Now()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	t.Logf("%s %s: %s", name, strings.Join(args, " "), time.Since(start).Round(time.Millisecond))
	return string(out)
}

// TestNewModuleBuildsLintsTestsAndServes scaffolds a module in a copy of the repository, then builds, vets,
// checks, lints and tests the copy, and runs its monolith to call the new module's API.
func TestNewModuleBuildsLintsTestsAndServes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds, lints and runs a copy of the repository: skipped with -short")
	}
	repo := archtest.CopyRepo(t)
	out := runInCopy(t, repo, "go", "run", "./cmd/seam", "new", "module", "inventory")
	for _, f := range []string{"modules/inventory/module.go", "modules/inventory/data/db.gen.go", "cmd/monolith/main.go", "sqlc.yaml", ".go-arch-lint.yml"} {
		if !strings.Contains(out, "  "+f+"\n") {
			t.Errorf("the report does not list %s:\n%s", f, out)
		}
	}
	runInCopy(t, repo, "go", "build", "./...")
	runInCopy(t, repo, "go", "vet", "./...")
	if unformatted := runInCopy(t, repo, "gofmt", "-l", "modules/inventory", "cmd/monolith"); unformatted != "" {
		t.Errorf("not gofmt'd: %s", unformatted)
	}
	runInCopy(t, repo, "go", "run", "./cmd/seam", "check")
	runInCopy(t, repo, "go", "run", "./cmd/seam", "graph", "--check-docs")
	runInCopy(t, repo, "go", "tool", "-modfile=tools/go.mod", "golangci-lint", "run", "./modules/inventory/...", "./cmd/monolith/...")
	tests := runInCopy(t, repo, "go", "test", "-count=1", "-v", "./modules/inventory/...")
	if !strings.Contains(tests, "--- PASS: TestItemsListNewestFirstPerOwner") {
		t.Errorf("the real-PostgreSQL data test did not run:\n%s", tests)
	}

	bin := filepath.Join(t.TempDir(), "monolith")
	runInCopy(t, repo, "go", "build", "-o", bin, "./cmd/monolith")
	p := harness.Start(t, harness.Options{Binary: bin, Env: []string{"SEAM_LOG_LEVEL=warn"}})
	c := harness.NewClient(t, p.BaseURL)
	creds := map[string]string{"email": "ada@example.com", "password": "correct horse battery"}
	if r := c.Do(harness.Request{Method: http.MethodPost, Path: "/api/auth/signup", Body: creds}); r.Status != http.StatusCreated {
		t.Fatalf("signup: %d %s", r.Status, r.Body)
	}
	var login struct {
		AccessToken string `json:"access_token"`
	}
	r := c.Do(harness.Request{Method: http.MethodPost, Path: "/api/auth/login", Body: creds})
	if r.Status != http.StatusOK {
		t.Fatalf("login: %d %s", r.Status, r.Body)
	}
	r.JSON(t, &login)

	if r := c.Do(harness.Request{Method: http.MethodGet, Path: "/api/inventory/items"}); r.Status != http.StatusUnauthorized {
		t.Fatalf("GET /api/inventory/items without a token: %d %s", r.Status, r.Body)
	}
	r = c.Do(harness.Request{Method: http.MethodGet, Path: "/api/inventory/items", Token: login.AccessToken})
	if r.Status != http.StatusOK || strings.TrimSpace(string(r.Body)) != `{"items":[]}` {
		t.Fatalf("GET /api/inventory/items: %d %s", r.Status, r.Body)
	}
	item := map[string]string{"name": "first"}
	if r := c.Do(harness.Request{Method: http.MethodPost, Path: "/api/inventory/items", Token: login.AccessToken, Body: item}); r.Status != http.StatusCreated {
		t.Fatalf("POST /api/inventory/items: %d %s", r.Status, r.Body)
	}
	if r := c.Do(harness.Request{Method: http.MethodPost, Path: "/api/inventory/items", Token: login.AccessToken, Body: item}); r.Status != http.StatusConflict {
		t.Fatalf("POST the same item again: %d %s", r.Status, r.Body)
	}
	var list struct {
		Items []struct {
			Name string `json:"name"`
		} `json:"items"`
	}
	r = c.Do(harness.Request{Method: http.MethodGet, Path: "/api/inventory/items", Token: login.AccessToken})
	if r.Status != http.StatusOK {
		t.Fatalf("GET /api/inventory/items: %d %s", r.Status, r.Body)
	}
	r.JSON(t, &list)
	if len(list.Items) != 1 || list.Items[0].Name != "first" {
		t.Fatalf("items = %+v, want [first]", list.Items)
	}
}
