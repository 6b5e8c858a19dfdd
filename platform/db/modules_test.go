package db_test

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/url"
	"slices"
	"strings"
	"testing"

	seamconfig "github.com/seamkit/seam/platform/config"
	"github.com/seamkit/seam/platform/db"
	"github.com/seamkit/seam/platform/pgtest"
)

// decode decodes a database section from YAML and the environment, as the application does.
func decode(yamlDoc string, environ ...string) (db.Config, error) {
	node, err := seamconfig.ParseYAML([]byte(yamlDoc))
	if err != nil {
		return db.Config{}, err
	}
	var c db.Config
	err = seamconfig.Decode(node, &c, seamconfig.EnvName(seamconfig.EnvPrefix, "database"), "", environ)
	return c, err
}

func TestModuleDatabasesConfig(t *testing.T) {
	c, err := decode(`
modules:
  billing:
    url: postgres://admin:yaml-secret@db-billing:5432/billing
  notifications:
    url: postgres://admin:other-secret@db-notifications/notifications
`, "SEAM_DATABASE_MODULE_URLS=billing=postgres://admin:env-secret@h1:5432,h2:5433/billing?target_session_attrs=read-write, reporting = postgres://r@h3/reporting")
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.ModuleDatabases()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"billing":       "postgres://admin:env-secret@h1:5432,h2:5433/billing?target_session_attrs=read-write",
		"notifications": "postgres://admin:other-secret@db-notifications/notifications",
		"reporting":     "postgres://r@h3/reporting",
	}
	if !maps.Equal(got, want) {
		t.Errorf("ModuleDatabases = %v, want %v (the environment's entry winning)", got, want)
	}

	logged := fmt.Sprint(seamconfig.Redacted(c))
	for _, secret := range []string{"yaml-secret", "other-secret", "env-secret"} {
		if strings.Contains(logged, secret) {
			t.Errorf("the logged configuration shows %s: %s", secret, logged)
		}
	}
	if !strings.Contains(logged, "db-billing:5432/billing") {
		t.Errorf("the logged configuration hides the module's host: %s", logged)
	}
}

func TestModuleDatabasesConfigErrorsNameTheKey(t *testing.T) {
	for name, tc := range map[string]struct {
		yaml, env, want string
	}{
		"not a module":       {yaml: "modules:\n  Billing:\n    url: postgres://a@h/d\n", want: "database.modules.Billing: not a module name"},
		"no url":             {yaml: "modules:\n  billing: {}\n", want: "database.modules.billing.url: must be set"},
		"bad url":            {yaml: "modules:\n  billing:\n    url: 'postgres://h:notaport/d'\n", want: "database.modules.billing.url: not a valid PostgreSQL URL"},
		"unknown key":        {yaml: "modules:\n  billing:\n    uri: postgres://a@h/d\n", want: "field uri not found"},
		"env not entries":    {env: "SEAM_DATABASE_MODULE_URLS=postgres://a@h/d", want: "database.module_urls: want <module>=<url> entries"},
		"env twice":          {env: "SEAM_DATABASE_MODULE_URLS=billing=postgres://a@h/d,billing=postgres://b@h/d", want: "database.module_urls: module billing appears twice"},
		"env bad url":        {env: "SEAM_DATABASE_MODULE_URLS=billing=postgres://a:secret@h:x/d", want: "database.module_urls: entry billing: not a valid PostgreSQL URL"},
		"env map as a whole": {env: "SEAM_DATABASE_MODULES=billing", want: "SEAM_DATABASE_MODULES: cannot be set from the environment"},
	} {
		t.Run(name, func(t *testing.T) {
			var environ []string
			if tc.env != "" {
				environ = append(environ, tc.env)
			}
			_, err := decode(tc.yaml, environ...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("decode = %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("error %q shows a password", err)
			}
		})
	}
}

func TestModuleOnADatabaseOfItsOwn(t *testing.T) {
	mainURL, ownURL := pgtest.NewDatabase(t), pgtest.NewDatabase(t)
	cfg := config(mainURL)
	cfg.Modules = map[string]db.ModuleConfig{"billing": {URL: ownURL}}
	d := start(t, cfg)
	ctx := ctxFor(t)
	if err := d.Migrate(ctx, "billing", billingMigrations); err != nil {
		t.Fatal(err)
	}
	if err := d.Migrate(ctx, "auth", authMigrations); err != nil {
		t.Fatal(err)
	}
	databaseOf := func(raw string) string { u, _ := url.Parse(raw); return strings.TrimPrefix(u.Path, "/") }
	for module, want := range map[string]string{"billing": databaseOf(ownURL), "auth": databaseOf(mainURL)} {
		var database string
		if err := modulePool(t, d, module).QueryRow(ctx, "SELECT current_database()").Scan(&database); err != nil {
			t.Fatal(err)
		}
		if database != want {
			t.Errorf("%s's pool is on %s, want %s", module, database, want)
		}
	}
	schemas := func(dsn string) []string {
		rows, err := superPool(t, dsn).Query(ctx, "SELECT nspname::text FROM pg_namespace WHERE nspname IN ('auth', 'billing') ORDER BY 1")
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for rows.Next() {
			var n string
			if err := rows.Scan(&n); err != nil {
				t.Fatal(err)
			}
			names = append(names, n)
		}
		return names
	}
	if got := schemas(mainURL); !slices.Equal(got, []string{"auth"}) {
		t.Errorf("schemas on the main database = %v, want [auth]", got)
	}
	if got := schemas(ownURL); !slices.Equal(got, []string{"billing"}) {
		t.Errorf("schemas on billing's database = %v, want [billing]", got)
	}
	if err := d.Ping(ctx); err != nil {
		t.Errorf("Ping: %v", err)
	}
}

func TestModuleDatabaseWithoutPasswordNeedsRoleSecret(t *testing.T) {
	cfg := config(pgtest.NewDatabase(t))
	cfg.Modules = map[string]db.ModuleConfig{"billing": {URL: "postgres://admin@127.0.0.1:1/billing"}}
	err := db.New(cfg, t.TempDir(), slog.New(slog.DiscardHandler)).Start(ctxFor(t))
	if err == nil || !strings.Contains(err.Error(), "database.role_secret: must be set when database.modules.billing.url has no password") {
		t.Fatalf("Start = %v, want the role_secret error naming the module's key", err)
	}
}

func TestLocalServerURLNeedsALocalServer(t *testing.T) {
	_, err := db.LocalServerURL(ctxFor(t), db.Config{}, t.TempDir(), slog.New(slog.DiscardHandler))
	if !errors.Is(err, db.ErrNoLocalServer) {
		t.Fatalf("LocalServerURL on an empty data directory = %v, want ErrNoLocalServer", err)
	}
}
