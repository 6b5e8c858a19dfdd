package db_test

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/seamkit/seam/platform/db"
	"github.com/seamkit/seam/platform/migrate"
	"github.com/seamkit/seam/platform/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func ctxFor(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// rolePrefix is a prefix of roles no other test uses: roles belong to the whole (shared) test cluster.
func rolePrefix() string {
	return "t" + strings.ToLower(rand.Text()[:10]) + "_"
}

// config is a database section for dsn whose roles no other test shares.
func config(dsn string) db.Config {
	c := db.Config{URL: dsn, RolePrefix: rolePrefix()}
	c.SetDefaults()
	return c
}

// start starts a Database on cfg, stopped when the test ends.
func start(t *testing.T, cfg db.Config) *db.Database {
	t.Helper()
	d := db.New(cfg, t.TempDir(), slog.New(slog.DiscardHandler))
	if err := d.Start(ctxFor(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Stop(context.Background()) })
	return d
}

// modulePool is d's pool for module, closed when the test ends.
func modulePool(t *testing.T, d *db.Database, module string) *pgxpool.Pool {
	t.Helper()
	pool, err := d.ModulePool(module)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func superPool(t *testing.T, dsn string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(ctxFor(t), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func migrations(files map[string]string) fstest.MapFS {
	fsys := fstest.MapFS{}
	for name, body := range files {
		fsys[name] = &fstest.MapFile{Data: []byte("-- +goose Up\n" + body + "\n")}
	}
	return fsys
}

var (
	authMigrations = migrations(map[string]string{
		"00001_users.sql": "CREATE TABLE auth.users (id bigint PRIMARY KEY, email text NOT NULL);",
	})
	billingMigrations = migrations(map[string]string{
		"00001_invoices.sql": "CREATE TABLE billing.invoices (id bigserial PRIMARY KEY, amount bigint NOT NULL);",
		"00002_status.sql":   "CREATE TYPE billing.status AS ENUM ('open', 'paid');\nCREATE VIEW billing.open AS SELECT id FROM billing.invoices;",
	})
)

// wantDenied checks err is SQLSTATE 42501 (insufficient_privilege) with a message naming object.
func wantDenied(t *testing.T, what string, err error, object string) {
	t.Helper()
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "42501" {
		t.Errorf("%s: err = %v, want SQLSTATE 42501", what, err)
		return
	}
	if !strings.Contains(pgErr.Message, object) {
		t.Errorf("%s: message %q does not name %q", what, pgErr.Message, object)
	}
}

// strangers lists schema itself and the relations and types in it that role does not own, as
// "name=owner".
func strangers(t *testing.T, pool *pgxpool.Pool, schema, role string) []string {
	t.Helper()
	rows, err := pool.Query(ctxFor(t), `
SELECT n.nspname || '=' || pg_get_userbyid(n.nspowner) FROM pg_namespace n WHERE n.nspname = $1 AND pg_get_userbyid(n.nspowner) <> $2
UNION ALL
SELECT c.relname || '=' || pg_get_userbyid(c.relowner) FROM pg_class c
 WHERE c.relnamespace = $1::regnamespace AND pg_get_userbyid(c.relowner) <> $2
UNION ALL
SELECT t.typname || '=' || pg_get_userbyid(t.typowner) FROM pg_type t
 WHERE t.typnamespace = $1::regnamespace AND pg_get_userbyid(t.typowner) <> $2`, schema, role)
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func count(t *testing.T, pool *pgxpool.Pool, query string, args ...any) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(ctxFor(t), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

func TestModuleRolesCannotReachOtherSchemasOrPublic(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	super := superPool(t, dsn)
	ctx := ctxFor(t)
	// A database from before PostgreSQL 15 lets everyone create objects in public: Seam revokes that.
	if _, err := super.Exec(ctx, "GRANT CREATE ON SCHEMA public TO PUBLIC"); err != nil {
		t.Fatal(err)
	}
	cfg := config(dsn)
	d := start(t, cfg)
	if err := d.Migrate(ctx, "auth", authMigrations); err != nil {
		t.Fatal(err)
	}
	if err := d.Migrate(ctx, "billing", billingMigrations); err != nil {
		t.Fatal(err)
	}
	authRole, billingRole := cfg.RolePrefix+"auth", cfg.RolePrefix+"billing"
	auth, billing := modulePool(t, d, "auth"), modulePool(t, d, "billing")
	if _, err := auth.Exec(ctx, "INSERT INTO auth.users VALUES (1, 'a@example.test')"); err != nil {
		t.Fatalf("auth writes its own table: %v", err)
	}

	var user, searchPath string
	if err := billing.QueryRow(ctx, "SELECT current_user, current_setting('search_path')").Scan(&user, &searchPath); err != nil {
		t.Fatal(err)
	}
	if user != billingRole || searchPath != "billing" {
		t.Errorf("billing connects as %q with search_path %q, want %q and billing", user, searchPath, billingRole)
	}

	_, err := billing.Exec(ctx, "SELECT * FROM auth.users")
	wantDenied(t, "billing selects auth.users", err, "schema auth")
	_, err = billing.Exec(ctx, "INSERT INTO auth.users VALUES (2, 'b@example.test')")
	wantDenied(t, "billing inserts into auth.users", err, "schema auth")
	_, err = auth.Exec(ctx, "SELECT * FROM billing.invoices")
	wantDenied(t, "auth selects billing.invoices", err, "schema billing")
	_, err = billing.Exec(ctx, "CREATE TABLE public.x (id int)")
	wantDenied(t, "billing creates public.x", err, "schema public")
	_, err = billing.Exec(ctx, "CREATE SCHEMA elsewhere")
	wantDenied(t, "billing creates a schema", err, "database")
	_, err = billing.Exec(ctx, "SET ROLE "+pgx.Identifier{authRole}.Sanitize())
	wantDenied(t, "billing becomes auth", err, authRole)
	_, err = billing.Exec(ctx, "ALTER ROLE "+pgx.Identifier{billingRole}.Sanitize()+" SUPERUSER")
	wantDenied(t, "billing makes itself superuser", err, "superuser")

	if _, err := billing.Exec(ctx, "CREATE TABLE billing.x (id int)"); err != nil {
		t.Errorf("billing creates billing.x: %v", err)
	}
	if _, err := billing.Exec(ctx, "CREATE TABLE y (id int)"); err != nil {
		t.Errorf("billing creates y (unqualified): %v", err)
	}
	if n := count(t, super, "SELECT count(*) FROM pg_tables WHERE schemaname = 'billing' AND tablename = 'y'"); n != 1 {
		t.Errorf("unqualified table y is not in schema billing")
	}
	if n := count(t, super, "SELECT count(*) FROM auth.users"); n != 1 {
		t.Errorf("auth.users holds %d rows, want 1 (billing's insert refused)", n)
	}

	// Every object the migrations (platform and module) made is the role's own.
	for schema, role := range map[string]string{"auth": authRole, "billing": billingRole} {
		if s := strangers(t, super, schema, role); len(s) != 0 {
			t.Errorf("objects in %s not owned by %s: %v", schema, role, s)
		}
	}
	if n := count(t, super, "SELECT count(*) FROM pg_tables WHERE schemaname = 'billing' AND tablename IN ('outbox', 'inbox', 'goose_db_version', 'seam_platform_version', 'invoices')"); n != 5 {
		t.Errorf("billing holds %d of the platform and module tables, want 5", n)
	}

	var isSuper, createDB, createRole, inherit, login bool
	err = super.QueryRow(ctx, "SELECT rolsuper, rolcreatedb, rolcreaterole, rolinherit, rolcanlogin FROM pg_roles WHERE rolname = $1",
		billingRole).Scan(&isSuper, &createDB, &createRole, &inherit, &login)
	if err != nil || isSuper || createDB || createRole || inherit || !login {
		t.Errorf("role %s: superuser=%t createdb=%t createrole=%t inherit=%t login=%t, %v",
			billingRole, isSuper, createDB, createRole, inherit, login, err)
	}
	if n := count(t, super, "SELECT count(*) FROM pg_namespace WHERE has_schema_privilege('public', oid, 'CREATE')"); n != 0 {
		t.Errorf("PUBLIC may still create objects in %d schema(s)", n)
	}
}

func TestProvisioningIsIdempotentAndConcurrent(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	cfg := config(dsn)
	ctx := ctxFor(t)
	// Four "processes" (separate Databases, so separate admin and module pools) start both modules at once.
	const instances = 4
	dbs := make([]*db.Database, instances)
	for i := range dbs {
		dbs[i] = start(t, cfg)
	}
	errs := make([]error, instances)
	var wg sync.WaitGroup
	for i, d := range dbs {
		wg.Go(func() {
			errs[i] = errors.Join(d.Migrate(ctx, "auth", authMigrations), d.Migrate(ctx, "billing", billingMigrations))
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("instance %d: %v", i, err)
		}
	}
	// And once more, in sequence, on a Database that has seen the modules already.
	for range 2 {
		if err := dbs[0].Migrate(ctx, "billing", billingMigrations); err != nil {
			t.Fatalf("second provisioning: %v", err)
		}
	}
	super := superPool(t, dsn)
	if n := count(t, super, "SELECT count(*) FROM billing.goose_db_version WHERE version_id > 0"); n != 2 {
		t.Errorf("billing's migrations recorded %d times, want 2", n)
	}
	// The password every instance derives is the one set last: each instance's pool connects.
	for i, d := range dbs {
		pool := modulePool(t, d, "billing")
		if _, err := pool.Exec(ctx, "INSERT INTO invoices (amount) VALUES (1)"); err != nil {
			t.Errorf("instance %d inserts as billing: %v", i, err)
		}
	}
	if s := strangers(t, super, "billing", cfg.RolePrefix+"billing"); len(s) != 0 {
		t.Errorf("objects in billing not owned by its role: %v", s)
	}
}

func TestPoolMadeBeforeStartConnectsOnceStarted(t *testing.T) {
	cfg := config(pgtest.NewDatabase(t))
	d := db.New(cfg, t.TempDir(), slog.New(slog.DiscardHandler))
	t.Cleanup(func() { _ = d.Stop(context.Background()) })
	pool, err := d.ModulePool("billing")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	ctx := ctxFor(t)
	if err := pool.Ping(ctx); !errors.Is(err, db.ErrNotStarted) {
		t.Fatalf("Ping before Start = %v, want ErrNotStarted", err)
	}
	if err := d.Start(ctx); err != nil {
		t.Fatal(err)
	}
	// No Migrate: the pool's first connection provisions the role and schema.
	var user string
	if err := pool.QueryRow(ctx, "SELECT current_user").Scan(&user); err != nil {
		t.Fatalf("query after Start: %v", err)
	}
	if user != cfg.RolePrefix+"billing" {
		t.Errorf("connected as %q, want %q", user, cfg.RolePrefix+"billing")
	}
	if _, err := pool.Exec(ctx, "CREATE TABLE t (id int)"); err != nil {
		t.Errorf("create a table in the module's schema: %v", err)
	}
}

func TestSchemaFromBeforeRolesIsHandedToTheRole(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	super := superPool(t, dsn)
	ctx := ctxFor(t)
	// What an old data directory holds: the schema, its tables, sequences, types and functions all
	// created by the superuser.
	if err := migrate.Up(ctx, super, "billing", billingMigrations, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := super.Exec(ctx, `CREATE SEQUENCE billing.numbers;
		CREATE DOMAIN billing.amount AS bigint CHECK (VALUE >= 0);
		CREATE FUNCTION billing.total() RETURNS bigint LANGUAGE sql AS 'SELECT sum(amount)::bigint FROM billing.invoices';
		INSERT INTO billing.invoices (amount) VALUES (5)`); err != nil {
		t.Fatal(err)
	}
	cfg := config(dsn)
	d := start(t, cfg)
	if err := d.Migrate(ctx, "billing", billingMigrations); err != nil {
		t.Fatal(err)
	}
	role := cfg.RolePrefix + "billing"
	if s := strangers(t, super, "billing", role); len(s) != 0 {
		t.Errorf("objects in billing still owned by others: %v", s)
	}
	if n := count(t, super, "SELECT count(*) FROM pg_proc WHERE pronamespace = 'billing'::regnamespace AND pg_get_userbyid(proowner) <> $1", role); n != 0 {
		t.Errorf("%d function(s) in billing not owned by %s", n, role)
	}
	pool := modulePool(t, d, "billing")
	if _, err := pool.Exec(ctx, "INSERT INTO invoices (amount) VALUES (7)"); err != nil {
		t.Errorf("insert into the old table as the role: %v", err)
	}
	if n := count(t, pool, "SELECT total() + nextval('numbers') - 1"); n != 12 {
		t.Errorf("total() + first number - 1 = %d, want 12", n)
	}
}

func TestAdminThatIsNotSuperuser(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	super := superPool(t, dsn)
	ctx := ctxFor(t)
	// What the operator of an external database grants Seam's admin user: CREATEROLE, and CREATE on the
	// database.
	admin := "admin_" + strings.ToLower(rand.Text()[:10])
	var database string
	if err := super.QueryRow(ctx, "SELECT current_database()").Scan(&database); err != nil {
		t.Fatal(err)
	}
	if _, err := super.Exec(ctx, "CREATE ROLE "+admin+" LOGIN CREATEROLE PASSWORD 'admin-secret'; GRANT CREATE ON DATABASE "+
		pgx.Identifier{database}.Sanitize()+" TO "+admin); err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(admin, "admin-secret")
	cfg := config(u.String())
	d := start(t, cfg)
	if err := d.Migrate(ctx, "auth", authMigrations); err != nil {
		t.Fatal(err)
	}
	if err := d.Migrate(ctx, "billing", billingMigrations); err != nil {
		t.Fatal(err)
	}
	// Again from another process: the admin's membership and the role's password are set again.
	if err := start(t, cfg).Migrate(ctx, "billing", billingMigrations); err != nil {
		t.Fatalf("second provisioning by a non-superuser admin: %v", err)
	}
	_, err = modulePool(t, d, "billing").Exec(ctx, "SELECT * FROM auth.users")
	wantDenied(t, "billing selects auth.users", err, "schema auth")
	if s := strangers(t, super, "billing", cfg.RolePrefix+"billing"); len(s) != 0 {
		t.Errorf("objects in billing not owned by its role: %v", s)
	}
}

func TestRoleSecretIsRequiredWithoutAdminPassword(t *testing.T) {
	u, err := url.Parse(pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.User("postgres")
	d := db.New(config(u.String()), t.TempDir(), slog.New(slog.DiscardHandler))
	err = d.Start(ctxFor(t))
	if err == nil || !strings.Contains(err.Error(), "database.role_secret") {
		t.Fatalf("Start = %v, want an error naming database.role_secret", err)
	}
}

// derived is the documented password of role: hex HMAC-SHA256 of the role name keyed with key.
func derived(key, role string) string {
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(role))
	return hex.EncodeToString(m.Sum(nil))
}

// connectAs connects to dsn's database as user with password, closed when the test ends.
func connectAs(t *testing.T, dsn, user, password string) (*pgx.Conn, error) {
	t.Helper()
	cc, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cc.User, cc.Password = user, password
	conn, err := pgx.ConnectConfig(ctxFor(t), cc)
	if err == nil {
		t.Cleanup(func() { _ = conn.Close(context.Background()) })
	}
	return conn, err
}

func TestRolePasswordsDeriveFromTheDocumentedKey(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	ctx := ctxFor(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	adminPassword, _ := u.User.Password()

	// Without database.role_secret, the key is the admin connection's password.
	cfg := config(dsn)
	if err := start(t, cfg).Migrate(ctx, "billing", nil); err != nil {
		t.Fatal(err)
	}
	role := cfg.RolePrefix + "billing"
	if _, err := connectAs(t, dsn, role, derived(adminPassword, role)); err != nil {
		t.Errorf("connect with the password derived from the admin password: %v", err)
	}

	// With it, the key is database.role_secret, and the old password no longer works.
	cfg.RoleSecret = "a-secret-shared-by-all-instances"
	if err := start(t, cfg).Migrate(ctx, "billing", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := connectAs(t, dsn, role, derived(cfg.RoleSecret, role)); err != nil {
		t.Errorf("connect with the password derived from role_secret: %v", err)
	}
	if _, err := connectAs(t, dsn, role, derived(adminPassword, role)); err == nil {
		t.Error("the password derived from the admin password still works after role_secret was set")
	}
	// The server stores a SCRAM verifier, never the password.
	var stored string
	if err := superPool(t, dsn).QueryRow(ctx, "SELECT rolpassword FROM pg_authid WHERE rolname = $1", role).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(stored, "SCRAM-SHA-256$4096:") || strings.Contains(stored, derived(cfg.RoleSecret, role)) {
		t.Errorf("stored password = %q, want a SCRAM-SHA-256 verifier", stored)
	}
}

func TestConfigValidation(t *testing.T) {
	for prefix, ok := range map[string]bool{
		"seam_": true, "app1_": true, "_x": true,
		"Seam_": false, "1x_": false, "pg_": false, "a-b": false, strings.Repeat("a", 33): false,
	} {
		c := db.Config{RolePrefix: prefix}
		c.SetDefaults()
		err := c.Validate()
		if ok != (err == nil) {
			t.Errorf("role_prefix %q: Validate = %v", prefix, err)
		}
		if err != nil && !strings.Contains(err.Error(), "database.role_prefix") {
			t.Errorf("role_prefix %q: error %q does not name the key", prefix, err)
		}
	}
	c := db.Config{}
	c.SetDefaults()
	if c.RolePrefix != db.DefaultRolePrefix {
		t.Errorf("default role_prefix = %q", c.RolePrefix)
	}
}

func TestRoleNames(t *testing.T) {
	d := db.New(db.Config{}, t.TempDir(), slog.New(slog.DiscardHandler))
	if role, err := d.Role("billing"); err != nil || role != "seam_billing" {
		t.Errorf("Role(billing) = %q, %v", role, err)
	}
	for _, bad := range []string{"Billing", "bill-ing", "", strings.Repeat("a", 60)} {
		if _, err := d.Role(bad); err == nil {
			t.Errorf("Role(%q) succeeded", bad)
		}
	}
	if _, err := d.ModulePool("bad name"); err == nil {
		t.Error("ModulePool(bad name) succeeded")
	}
}
