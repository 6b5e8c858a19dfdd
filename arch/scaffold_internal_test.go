package arch

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeTestFile(t *testing.T, root, rel, content string) {
	t.Helper()
	p := filepath.Join(root, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestRegisterInMonolith(t *testing.T) {
	cases := map[string]struct{ main, want string }{
		"in order, module last": {
			main: `package main

import (
	"context"

	"example.com/x/modules/auth"
	"example.com/x/modules/reporting"
	"example.com/x/platform/app"
)

func main() {
	_ = app.Run(context.Background(), nil, nil,
		auth.Module, reporting.Module)
}
`,
			want: `import (
	"context"

	"example.com/x/modules/auth"
	"example.com/x/modules/inventory"
	"example.com/x/modules/reporting"
	"example.com/x/platform/app"
)

func main() {
	_ = app.Run(context.Background(), nil, nil,
		auth.Module, reporting.Module, inventory.Module)
}
`,
		},
		"one argument per line, aliased app, after every module import": {
			main: `package main

import (
	"context"

	"example.com/x/modules/auth"
	seamapp "example.com/x/platform/app"
)

func main() {
	_ = seamapp.Run(
		context.Background(), nil, nil,
		auth.Module, // the first module
	)
}
`,
			want: `import (
	"context"

	"example.com/x/modules/auth"
	"example.com/x/modules/inventory"
	seamapp "example.com/x/platform/app"
)

func main() {
	_ = seamapp.Run(
		context.Background(), nil, nil,
		auth.Module, inventory.Module, // the first module
	)
}
`,
		},
		"no module yet": {
			main: `package main

import (
	"context"

	"example.com/x/platform/app"
)

func main() { _ = app.Run(context.Background(), nil, nil) }
`,
			want: `import (
	"context"

	"example.com/x/modules/inventory"
	"example.com/x/platform/app"
)

func main() { _ = app.Run(context.Background(), nil, nil, inventory.Module) }
`,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			writeTestFile(t, root, MonolithMain, tc.main)
			got, err := registerInMonolith(root, "example.com/x", "inventory")
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasSuffix(string(got), tc.want) {
				t.Fatalf("got:\n%s\nwant it to end with:\n%s", got, tc.want)
			}
		})
	}
}

func TestRegisterInMonolithRefusesWhatItCannotEdit(t *testing.T) {
	cases := map[string]string{
		"no app import": "package main\n\nimport (\n\t\"fmt\"\n)\n\nfunc main() { fmt.Println() }\n",
		"no app.Run":    "package main\n\nimport (\n\t\"example.com/x/platform/app\"\n)\n\nvar _ = app.New\n",
		"spread modules": "package main\n\nimport (\n\t\"example.com/x/platform/app\"\n)\n\n" +
			"func main() { _ = app.Run(nil, nil, nil, mods...) }\n",
	}
	for name, src := range cases {
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			writeTestFile(t, root, MonolithMain, src)
			_, err := registerInMonolith(root, "example.com/x", "inventory")
			if err == nil || !strings.Contains(err.Error(), "by hand") {
				t.Fatalf("err = %v, want advice to register it by hand", err)
			}
		})
	}
}

func TestAddSQLCEntry(t *testing.T) {
	data := scaffoldData{Name: "inventory", Title: "Inventory", Upper: "INVENTORY", GoModule: "example.com/x"}
	cases := map[string]struct{ in, wantPrefix, wantSuffix string }{
		"sql last": {
			in: "# head\nversion: \"2\"\nsql:\n  - name: auth\n    engine: postgresql\n",
			wantPrefix: "# head\nversion: \"2\"\nsql:\n  - name: auth\n    engine: postgresql\n\n" +
				"  - name: inventory\n    engine: postgresql\n",
			wantSuffix: "            go_type: \"time.Time\"\n",
		},
		"key after sql, unindented list": {
			in:         "sql:\n- name: auth\n  engine: postgresql\n\n# plugins come last\nplugins: []\n",
			wantPrefix: "sql:\n- name: auth\n  engine: postgresql\n\n- name: inventory\n  engine: postgresql\n",
			wantSuffix: "          go_type: \"time.Time\"\n\n# plugins come last\nplugins: []\n",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			writeTestFile(t, root, SQLCConfigFile, tc.in)
			got, err := addSQLCEntry(root, data)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(string(got), tc.wantPrefix) || !strings.HasSuffix(string(got), tc.wantSuffix) {
				t.Fatalf("got:\n%s", got)
			}
		})
	}
	t.Run("existing entry", func(t *testing.T) {
		root := t.TempDir()
		writeTestFile(t, root, SQLCConfigFile, "sql:\n  - name: inventory\n")
		if _, err := addSQLCEntry(root, data); err == nil || !strings.Contains(err.Error(), "entry with that name") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("no sql list", func(t *testing.T) {
		root := t.TempDir()
		writeTestFile(t, root, SQLCConfigFile, "version: \"2\"\n")
		if _, err := addSQLCEntry(root, data); err == nil || !strings.Contains(err.Error(), "no sql: list") {
			t.Fatalf("err = %v", err)
		}
	})
}
