package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"log/slog"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/seamkit/seam/platform/db"
	"github.com/seamkit/seam/platform/pgtest"
	sqlfs "github.com/seamkit/seam/sql"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// runDB runs `seam --repo ../.. db args...` in the test's process, with no configuration file and an
// empty data directory unless the test's environment says otherwise.
func runDB(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := &cobra.Command{Use: "seam", SilenceUsage: true, SilenceErrors: true}
	root.PersistentFlags().String("repo", "../..", "repository root")
	root.AddCommand(dbCommand())
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(append([]string{"db"}, args...))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := root.ExecuteContext(ctx)
	return out.String(), err
}

// cleanEnv gives the test no configuration file and its own empty data directory.
func cleanEnv(t *testing.T) {
	t.Helper()
	t.Setenv("SEAM_CONFIG", "")
	t.Setenv("SEAM_DATA_DIR", t.TempDir())
}

func TestDBMoveArgumentErrors(t *testing.T) {
	cleanEnv(t)
	const a, b = "postgres://postgres:pw@127.0.0.1:1/a?sslmode=disable", "postgres://postgres:pw@127.0.0.1:1/b?sslmode=disable"
	for name, tc := range map[string]struct {
		args []string
		env  string
		want string
	}{
		"no module":           {args: []string{"move", "--to", b}, want: "accepts 1 arg(s), received 0"},
		"no --to":             {args: []string{"move", "billing"}, want: `required flag(s) "to" not set`},
		"verify without --to": {args: []string{"verify", "billing"}, want: `required flag(s) "to" not set`},
		"invalid module":      {args: []string{"move", "Bill-ing", "--to", b}, want: `module "Bill-ing": not a module name`},
		"unknown module":      {args: []string{"move", "biling", "--to", b}, want: `unknown module "biling": this seam binary carries no migrations for it (sql/biling/migrations); modules: auth, billing, notifications, reporting`},
		"same database":       {args: []string{"move", "billing", "--from", a, "--to", a + "&application_name=x"}, want: "the source and the target are the same database: both are 127.0.0.1:1/a"},
		"unreachable":         {args: []string{"move", "billing", "--from", a, "--to", b}, want: "connect to the source database 127.0.0.1:1/a"},
		"bad --to":            {args: []string{"move", "billing", "--from", a, "--to", "postgres://h:port/d"}, want: "target database URL"},
		"no source":           {args: []string{"move", "billing", "--to", b}, want: "no --from given, and the configuration names no database for billing"},
		"bad configuration":   {args: []string{"move", "billing", "--to", b}, env: "SEAM_DATABASE_MODULE_URLS=nonsense", want: "database.module_urls: want <module>=<url> entries"},
		"configured = --to":   {args: []string{"verify", "billing", "--to", b}, env: "SEAM_DATABASE_MODULE_URLS=billing=" + b, want: "same database"},
	} {
		t.Run(name, func(t *testing.T) {
			if tc.env != "" {
				k, v, _ := strings.Cut(tc.env, "=")
				t.Setenv(k, v)
			}
			out, err := runDB(t, tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("seam db %s = %v (output %q), want an error saying %q", strings.Join(tc.args, " "), err, out, tc.want)
			}
			if strings.Contains(out+err.Error(), ":pw@") {
				t.Errorf("a password is shown: %s %v", out, err)
			}
		})
	}
}

func TestDBMoveCommand(t *testing.T) {
	cleanEnv(t)
	source, target := pgtest.NewDatabase(t), pgtest.NewDatabase(t)
	prefix := "t" + strings.ToLower(rand.Text()[:10]) + "_"
	t.Setenv("SEAM_DATABASE_ROLE_PREFIX", prefix)
	d := db.New(db.Config{URL: source, RolePrefix: prefix}, t.TempDir(), slog.New(slog.DiscardHandler))
	ctx := context.Background()
	if err := d.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Stop(context.Background()) })
	if err := d.Migrate(ctx, "billing", sqlfs.Migrations("billing")); err != nil {
		t.Fatal(err)
	}
	pool, err := d.ModulePool("billing")
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := pool.Exec(ctx, `INSERT INTO invoices (id, user_id, amount_minor, currency, description, created_at)
		VALUES (gen_random_uuid(), gen_random_uuid(), 100, 'EUR', 'first', now())`); err != nil {
		t.Fatal(err)
	}

	out, err := runDB(t, "move", "billing", "--from", source, "--to", target)
	if err != nil {
		t.Fatalf("seam db move: %v\n%s", err, out)
	}
	password, _ := must(url.Parse(source)).User.Password()
	if strings.Contains(out, password) {
		t.Errorf("the output shows the admin password:\n%s", out)
	}
	for _, want := range []string{
		"from postgres://postgres:xxxxx@127.0.0.1:",
		"billing.invoices ",
		"ok: billing moved, ",
		"  database:\n    modules:\n      billing:\n        url: postgres://postgres:xxxxx@127.0.0.1:",
		"  SEAM_DATABASE_MODULE_URLS=billing=postgres://postgres:xxxxx@127.0.0.1:",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output does not hold %q:\n%s", want, out)
		}
	}
	t.Logf("seam db move billing:\n%s", out)

	// With the source in the configuration, --from is not needed.
	t.Setenv("SEAM_DATABASE_URL", source)
	out, err = runDB(t, "verify", "billing", "--to", target)
	if err != nil || !strings.Contains(out, "(database.url)") || !strings.Contains(out, "ok: billing holds the same ") {
		t.Fatalf("seam db verify = %v:\n%s", err, out)
	}
	if _, err := pool.Exec(ctx, "DELETE FROM invoices"); err != nil {
		t.Fatal(err)
	}
	out, err = runDB(t, "verify", "billing", "--to", target)
	if err == nil || !strings.Contains(err.Error(), "verification failed") || !strings.Contains(out, "DIFFERS") {
		t.Fatalf("seam db verify after a write to the source = %v, want a failed verification:\n%s", err, out)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
