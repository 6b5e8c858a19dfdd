package dbmove_test

import (
	"context"
	"crypto/rand"
	"errors"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/seamkit/seam/platform/db"
	"github.com/seamkit/seam/platform/dbmove"
	"github.com/seamkit/seam/platform/pgserver"
	"github.com/seamkit/seam/platform/pgtest"
	sqlfs "github.com/seamkit/seam/sql"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func ctxFor(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// fixture is a source database with a module migrated on it by Seam itself, and an empty target database.
type fixture struct {
	module         string
	migrations     fs.FS
	cfg            db.Config // the module's database section (its role prefix is the test's own)
	source, target string
	// pool is the module's pool on the source, connected as the module's role.
	pool *pgxpool.Pool
}

// newFixture migrates module with migrations on a fresh source database; both databases are on the shared
// test cluster, where roles are cluster-wide, so the role prefix is the test's own.
func newFixture(t *testing.T, module string, migrations fs.FS) *fixture {
	t.Helper()
	f := &fixture{
		module:     module,
		migrations: migrations,
		cfg:        db.Config{RolePrefix: "t" + strings.ToLower(rand.Text()[:10]) + "_"},
		source:     pgtest.NewDatabase(t),
		target:     pgtest.NewDatabase(t),
	}
	f.cfg.SetDefaults()
	d := start(t, f.cfg, f.source)
	if err := d.Migrate(ctxFor(t), module, migrations); err != nil {
		t.Fatal(err)
	}
	f.pool = modulePool(t, d, module)
	return f
}

// billingFixture is newFixture with billing's real migrations.
func billingFixture(t *testing.T) *fixture {
	t.Helper()
	return newFixture(t, "billing", sqlfs.Migrations("billing"))
}

func (f *fixture) options() dbmove.Options {
	return dbmove.Options{Module: f.module, Migrations: f.migrations, From: f.source, To: f.target, Database: f.cfg}
}

// start starts a Database for url with cfg's settings, stopped when the test ends.
func start(t *testing.T, cfg db.Config, url string) *db.Database {
	t.Helper()
	cfg.URL = url
	d := db.New(cfg, t.TempDir(), slog.New(slog.DiscardHandler))
	if err := d.Start(ctxFor(t)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Stop(context.Background()) })
	return d
}

func modulePool(t *testing.T, d *db.Database, module string) *pgxpool.Pool {
	t.Helper()
	pool, err := d.ModulePool(module)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// superPool is a superuser pool on url.
func superPool(t *testing.T, url string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(ctxFor(t), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func exec(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) {
	t.Helper()
	if _, err := pool.Exec(ctxFor(t), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func count(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := pool.QueryRow(ctxFor(t), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// addBilling writes, as billing's role, one paid invoice with its payment, its idempotency key and an
// outbox row; the description holds characters COPY's text format must escape.
func addBilling(t *testing.T, pool *pgxpool.Pool, label string) {
	t.Helper()
	exec(t, pool, `
WITH i AS (
  INSERT INTO invoices (id, user_id, amount_minor, currency, description, status, created_at, paid_at)
  VALUES (gen_random_uuid(), gen_random_uuid(), 1250, 'EUR', $1, 'paid', clock_timestamp(), clock_timestamp())
  RETURNING id, user_id, amount_minor),
p AS (
  INSERT INTO payments (id, invoice_id, user_id, amount_minor, currency, status, provider_ref, created_at)
  SELECT gen_random_uuid(), id, user_id, amount_minor, 'EUR', 'succeeded', 'ref ' || $1, clock_timestamp() FROM i
  RETURNING id, user_id)
INSERT INTO idempotency_keys (user_id, key, request_hash, payment_id, state, response_status, response_body, created_at, updated_at)
SELECT user_id, 'key-' || $1, sha256(convert_to($1, 'UTF8')), id, 'done', 201, convert_to('{"ok":true}', 'UTF8'),
       clock_timestamp(), clock_timestamp() FROM p`,
		label+" \t\\ \"quoted\"\nsecond line, ünïcödé ✓")
	exec(t, pool, `INSERT INTO outbox (id, subject, event_type, payload) VALUES (gen_random_uuid(), 'billing.events.invoice_paid', 'invoice_paid', jsonb_build_object('label', $1::text))`, label)
}

// tableResult finds name in the report.
func tableResult(t *testing.T, r *dbmove.Report, name string) dbmove.TableResult {
	t.Helper()
	for _, tr := range r.Tables {
		if tr.Name == name {
			return tr
		}
	}
	t.Fatalf("report has no table %s: %+v", name, r.Tables)
	return dbmove.TableResult{}
}

func TestMoveCopiesVerifiesAndCanRunAgain(t *testing.T) {
	f := billingFixture(t)
	for _, label := range []string{"one", "two", "three"} {
		addBilling(t, f.pool, label)
	}
	exec(t, f.pool, "UPDATE outbox SET sent_at = now() WHERE payload->>'label' = 'one'")
	// Another schema on the target, which the move must leave alone.
	target := superPool(t, f.target)
	exec(t, target, "CREATE SCHEMA other; CREATE TABLE other.things (id int); INSERT INTO other.things VALUES (1), (2)")

	report, err := dbmove.Move(ctxFor(t), f.options())
	if err != nil {
		t.Fatal(err)
	}
	if !report.OK() {
		t.Fatalf("report not ok: %+v", report)
	}
	for name, rows := range map[string]int64{
		`billing.invoices`: 3, `billing.payments`: 3, `billing.idempotency_keys`: 3, `billing.outbox`: 3,
		`billing.inbox`: 0, `billing.goose_db_version`: 3,
	} {
		if tr := tableResult(t, report, name); tr.Target.Rows != rows || tr.Source != tr.Target {
			t.Errorf("%s: %+v, want %d rows on both sides", name, tr, rows)
		}
	}
	if got := count(t, target, "SELECT count(*) FROM billing.payments p JOIN billing.invoices i ON i.id = p.invoice_id"); got != 3 {
		t.Errorf("payments joined to invoices on the target = %d, want 3", got)
	}
	if got := count(t, target, "SELECT count(*) FROM billing.outbox WHERE sent_at IS NULL"); got != 2 {
		t.Errorf("unsent outbox rows on the target = %d, want 2", got)
	}
	if got := count(t, target, "SELECT count(*) FROM other.things"); got != 2 {
		t.Errorf("other.things on the target has %d rows, want 2 (untouched)", got)
	}
	var seq string
	for _, s := range report.Sequences {
		if s.Name == `billing.outbox_seq_seq` {
			seq = s.Target.String()
		}
	}
	if seq != "3" {
		t.Errorf("outbox sequence on the target = %q, want 3 (report %+v)", seq, report.Sequences)
	}

	// Writes on the source in between are picked up by a second run, which replaces the copy.
	addBilling(t, f.pool, "four")
	exec(t, f.pool, "DELETE FROM outbox WHERE payload->>'label' = 'one'")
	report, err = dbmove.Move(ctxFor(t), f.options())
	if err != nil {
		t.Fatal(err)
	}
	if tr := tableResult(t, report, `billing.invoices`); tr.Target.Rows != 4 || !tr.OK() {
		t.Errorf("invoices after the second run: %+v, want 4 rows", tr)
	}
	if tr := tableResult(t, report, `billing.outbox`); tr.Target.Rows != 3 || !tr.OK() {
		t.Errorf("outbox after the second run: %+v, want 3 rows", tr)
	}
	if _, err := dbmove.Verify(ctxFor(t), f.options()); err != nil {
		t.Errorf("Verify after the move: %v", err)
	}

	// The per-module URL runs billing on the target: its pool sees the moved rows, and the sequences
	// continue after the source's values.
	cfg := f.cfg
	cfg.Modules = map[string]db.ModuleConfig{"billing": {URL: f.target}}
	d := start(t, cfg, f.source)
	if err := d.Migrate(ctxFor(t), "billing", f.migrations); err != nil {
		t.Fatal(err)
	}
	pool := modulePool(t, d, "billing")
	if got := count(t, pool, "SELECT count(*) FROM invoices"); got != 4 {
		t.Errorf("billing's pool sees %d invoices, want 4", got)
	}
	var database, user string
	if err := pool.QueryRow(ctxFor(t), "SELECT current_database(), current_user").Scan(&database, &user); err != nil {
		t.Fatal(err)
	}
	if want := strings.TrimPrefix(must(url.Parse(f.target)).Path, "/"); database != want || user != f.cfg.RolePrefix+"billing" {
		t.Errorf("billing's pool is on %s as %s, want %s as %sbilling", database, user, want, f.cfg.RolePrefix)
	}
	if got := count(t, pool, "INSERT INTO outbox (id, subject, event_type, payload) VALUES (gen_random_uuid(), 's', 't', '{}') RETURNING seq"); got != 5 {
		t.Errorf("next outbox seq on the target = %d, want 5", got)
	}
	if err := d.Ping(ctxFor(t)); err != nil {
		t.Errorf("Ping: %v", err)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestVerifyDetectsATamperedTarget(t *testing.T) {
	f := billingFixture(t)
	addBilling(t, f.pool, "one")
	addBilling(t, f.pool, "two")
	if _, err := dbmove.Move(ctxFor(t), f.options()); err != nil {
		t.Fatal(err)
	}
	target := superPool(t, f.target)
	exec(t, target, "UPDATE billing.invoices SET description = 'tampered' WHERE description LIKE 'one%'")
	exec(t, target, "DELETE FROM billing.outbox WHERE payload->>'label' = 'two'")
	exec(t, target, "SELECT setval('billing.outbox_seq_seq', 100)")

	report, err := dbmove.Verify(ctxFor(t), f.options())
	if !errors.Is(err, dbmove.ErrVerification) {
		t.Fatalf("Verify = %v, want ErrVerification", err)
	}
	invoices := tableResult(t, report, `billing.invoices`)
	if invoices.OK() || invoices.Source.Rows != invoices.Target.Rows || invoices.Source.Checksum == invoices.Target.Checksum {
		t.Errorf("invoices: %+v, want the same count and another checksum", invoices)
	}
	if outbox := tableResult(t, report, `billing.outbox`); outbox.OK() || outbox.Target.Rows != 1 {
		t.Errorf("outbox: %+v, want 1 row on the target", outbox)
	}
	if payments := tableResult(t, report, `billing.payments`); !payments.OK() {
		t.Errorf("payments: %+v, want ok", payments)
	}
	for _, want := range []string{`billing.invoices has the same number of rows (2) but other content`,
		`billing.outbox has 2 rows on the source, 1 on the target`, `sequence billing.outbox_seq_seq is at 2 on the source, 100 on the target`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	var out strings.Builder
	if err := report.WriteText(&out); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); strings.Count(got, "DIFFERS") != 3 || !strings.Contains(got, "(target 1)") {
		t.Errorf("report:\n%s\nwant 3 DIFFERS lines and the target's row count", got)
	}
	t.Logf("report of a tampered target:\n%s", out.String())
}

func TestFailedMoveLeavesTheTargetAsItWas(t *testing.T) {
	f := billingFixture(t)
	addBilling(t, f.pool, "one")
	if _, err := dbmove.Move(ctxFor(t), f.options()); err != nil {
		t.Fatal(err)
	}
	addBilling(t, f.pool, "reject-me")
	target := superPool(t, f.target)
	// A constraint only the target has makes the copy of invoices fail, after tables copied before it.
	exec(t, target, "ALTER TABLE billing.invoices ADD CONSTRAINT planted CHECK (description NOT LIKE 'reject-me%')")
	_, err := dbmove.Move(ctxFor(t), f.options())
	if err == nil || !strings.Contains(err.Error(), "planted") {
		t.Fatalf("Move = %v, want the planted constraint's violation", err)
	}
	for _, table := range []string{"invoices", "payments", "idempotency_keys", "outbox"} {
		if got := count(t, target, "SELECT count(*) FROM billing."+table); got != 1 {
			t.Errorf("billing.%s on the target has %d rows after the failed move, want its previous 1", table, got)
		}
	}
	exec(t, target, "ALTER TABLE billing.invoices DROP CONSTRAINT planted")

	// A deferred constraint only the target has fails the commit, after the sequences were set.
	exec(t, target, "ALTER TABLE billing.outbox ADD CONSTRAINT planted_unique UNIQUE (subject) DEFERRABLE INITIALLY DEFERRED")
	_, err = dbmove.Move(ctxFor(t), f.options())
	if err == nil || !strings.Contains(err.Error(), "planted_unique") {
		t.Fatalf("Move = %v, want the deferred constraint's violation at commit", err)
	}
	if got := count(t, target, "SELECT count(*) FROM billing.outbox"); got != 1 {
		t.Errorf("billing.outbox on the target has %d rows after the failed commit, want its previous 1", got)
	}
	if got := count(t, target, "SELECT last_value FROM billing.outbox_seq_seq"); got != 1 {
		t.Errorf("the target's outbox sequence is at %d after the failed commit, want its previous 1", got)
	}
	exec(t, target, "ALTER TABLE billing.outbox DROP CONSTRAINT planted_unique")
	if report, err := dbmove.Move(ctxFor(t), f.options()); err != nil || tableResult(t, report, `billing.invoices`).Target.Rows != 2 {
		t.Fatalf("Move after removing the constraints = %v", err)
	}
}

// shopMigrations is a module whose tables exercise the copy: foreign keys against the alphabetical order,
// a self-reference, a cycle of deferrable foreign keys, an identity and a generated column, odd column
// names and types, and a trigger that must not fire again while copying.
var shopMigrations = fstest.MapFS{
	"00001_init.sql": {Data: []byte(`-- +goose Up
CREATE TABLE shop.z_customers (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name text NOT NULL,
  name_upper text GENERATED ALWAYS AS (upper(name)) STORED,
  referrer bigint REFERENCES shop.z_customers (id)
);
CREATE TABLE shop.m_orders (
  id bigserial PRIMARY KEY,
  customer_id bigint NOT NULL REFERENCES shop.z_customers (id),
  total numeric(12, 2) NOT NULL,
  placed_at timestamptz NOT NULL,
  tags text[] NOT NULL DEFAULT '{}',
  meta jsonb,
  span interval,
  ratio double precision,
  "CamelCase" text,
  "odd name" boolean
);
CREATE TABLE shop.a_lines (
  order_id bigint NOT NULL REFERENCES shop.m_orders (id),
  n int NOT NULL,
  sku text NOT NULL,
  PRIMARY KEY (order_id, n)
);
CREATE TABLE shop.audit (id bigserial PRIMARY KEY, what text NOT NULL);
-- +goose StatementBegin
CREATE FUNCTION shop.audit_order() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO shop.audit (what) VALUES ('order ' || NEW.id);
  RETURN NEW;
END $$;
-- +goose StatementEnd
CREATE TRIGGER m_orders_audit AFTER INSERT ON shop.m_orders FOR EACH ROW EXECUTE FUNCTION shop.audit_order();
CREATE TABLE shop.b_left (id int PRIMARY KEY, right_id int);
CREATE TABLE shop.c_right (id int PRIMARY KEY, left_id int REFERENCES shop.b_left (id) DEFERRABLE);
ALTER TABLE shop.b_left ADD FOREIGN KEY (right_id) REFERENCES shop.c_right (id) DEFERRABLE INITIALLY DEFERRED;
CREATE MATERIALIZED VIEW shop.order_totals AS SELECT customer_id, sum(total) AS total FROM shop.m_orders GROUP BY 1;
`)},
}

func TestMoveOrdersForeignKeysAndKeepsTriggersOut(t *testing.T) {
	f := newFixture(t, "shop", shopMigrations)
	exec(t, f.pool, "INSERT INTO z_customers (name) VALUES ('ada')")
	exec(t, f.pool, "INSERT INTO z_customers (name, referrer) SELECT 'grace', id FROM z_customers WHERE name = 'ada'")
	exec(t, f.pool, `INSERT INTO m_orders (customer_id, total, placed_at, tags, meta, span, ratio, "CamelCase", "odd name")
		SELECT id, 12.5 * id, '2026-03-01 12:34:56.789012+02', ARRAY['a,b', 'c"d', NULL], '{"x": [1, 2.50]}', '1 day 02:03:04.5', 1.0 / 3, 'Mixed', id = 1
		FROM z_customers`)
	exec(t, f.pool, "INSERT INTO a_lines SELECT o.id, n, 'sku-' || n FROM m_orders o, generate_series(1, 3) n")
	exec(t, f.pool, "BEGIN; INSERT INTO b_left VALUES (1, 10); INSERT INTO c_right VALUES (10, 1); COMMIT")
	exec(t, f.pool, "REFRESH MATERIALIZED VIEW order_totals")

	report, err := dbmove.Move(ctxFor(t), f.options())
	if err != nil {
		t.Fatal(err)
	}
	if tr := tableResult(t, report, `shop.audit`); tr.Target.Rows != 2 || !tr.OK() {
		t.Errorf("audit: %+v, want the source's 2 rows (the trigger must not fire while copying)", tr)
	}
	if tr := tableResult(t, report, `shop.a_lines`); tr.Target.Rows != 6 || !tr.OK() {
		t.Errorf("a_lines: %+v, want 6 rows", tr)
	}
	target := superPool(t, f.target)
	var enabled string
	if err := target.QueryRow(ctxFor(t), "SELECT tgenabled::text FROM pg_trigger WHERE tgname = 'm_orders_audit'").Scan(&enabled); err != nil || enabled != "O" {
		t.Errorf("trigger on the target: enabled = %q, %v; want O (enabled as before)", enabled, err)
	}
	// The identity and bigserial sequences continue after the copied rows; the trigger works again.
	cfg := f.cfg
	cfg.Modules = map[string]db.ModuleConfig{"shop": {URL: f.target}}
	pool := modulePool(t, start(t, cfg, f.source), "shop")
	if id := count(t, pool, "INSERT INTO z_customers (name) VALUES ('linus') RETURNING id"); id != 3 {
		t.Errorf("next customer id on the target = %d, want 3", id)
	}
	exec(t, pool, "INSERT INTO m_orders (customer_id, total, placed_at) VALUES (3, 1, now())")
	if got := count(t, pool, "SELECT count(*) FROM audit"); got != 3 {
		t.Errorf("audit rows after an insert on the target = %d, want 3", got)
	}
	if got := count(t, target, "SELECT count(*) FROM shop.order_totals"); got != 2 {
		t.Errorf("the materialized view on the target has %d rows, want 2 (refreshed from the copied orders)", got)
	}
	if got := count(t, pool, "SELECT count(*) FROM z_customers WHERE name_upper = upper(name)"); got != 3 {
		t.Errorf("generated column computed for %d customers, want 3", got)
	}
}

func TestMoveRefusesASourceAtOtherMigrations(t *testing.T) {
	f := newFixture(t, "shop", shopMigrations)
	newer := fstest.MapFS{"00002_more.sql": {Data: []byte("-- +goose Up\nALTER TABLE shop.audit ADD COLUMN at timestamptz;\n")}}
	newer["00001_init.sql"] = shopMigrations["00001_init.sql"]
	opts := f.options()
	opts.Migrations = newer
	_, err := dbmove.Move(ctxFor(t), opts)
	if !errors.Is(err, dbmove.ErrSchemaMismatch) {
		t.Fatalf("Move = %v, want ErrSchemaMismatch", err)
	}
	for _, want := range []string{`shop.goose_db_version: version 1 on the source, 2 on the target`, `table shop.audit: columns`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

func TestMoveRefusesBadInput(t *testing.T) {
	f := billingFixture(t)
	ctx := ctxFor(t)
	with := func(change func(*dbmove.Options)) dbmove.Options {
		o := f.options()
		change(&o)
		return o
	}
	otherHost := must(url.Parse(f.source))
	otherHost.Host = "localhost:" + otherHost.Port()
	weak := must(url.Parse(f.target))
	weak.User = url.UserPassword(f.cfg.RolePrefix+"weak", "weak-password")
	exec(t, superPool(t, f.target), "CREATE ROLE "+f.cfg.RolePrefix+"weak LOGIN PASSWORD 'weak-password'")

	for name, tc := range map[string]struct {
		opts dbmove.Options
		is   error
		want string
	}{
		"invalid module":        {opts: with(func(o *dbmove.Options) { o.Module = "Bill-ing" }), want: `module "Bill-ing"`},
		"unknown module":        {opts: with(func(o *dbmove.Options) { o.Module = "nosuch" }), is: dbmove.ErrNoSchema, want: "module schemas there: billing"},
		"same URL":              {opts: with(func(o *dbmove.Options) { o.To = o.From }), is: dbmove.ErrSameDatabase},
		"same database":         {opts: with(func(o *dbmove.Options) { o.To = otherHost.String() }), is: dbmove.ErrSameDatabase, want: "one server"},
		"unreachable target":    {opts: with(func(o *dbmove.Options) { o.To = "postgres://postgres:pw@127.0.0.1:1/nowhere?sslmode=disable" }), want: "connect to the target database 127.0.0.1:1/nowhere"},
		"target without rights": {opts: with(func(o *dbmove.Options) { o.To = weak.String() }), is: dbmove.ErrPrivileges, want: "needs CREATEROLE"},
		"no target":             {opts: with(func(o *dbmove.Options) { o.To = "" }), want: "no target database URL"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := dbmove.Move(ctx, tc.opts)
			if err == nil || (tc.is != nil && !errors.Is(err, tc.is)) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Move = %v, want %v saying %q", err, tc.is, tc.want)
			}
			if strings.Contains(err.Error(), "weak-password") || strings.Contains(err.Error(), must(url.Parse(f.source)).User.String()) {
				t.Errorf("error %q shows a password", err)
			}
		})
	}
	if got := count(t, superPool(t, f.target), "SELECT count(*) FROM pg_namespace WHERE nspname = 'billing'"); got != 0 {
		t.Errorf("refused moves created schema billing on the target")
	}
}

func TestMoveToASeparateServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a PostgreSQL server")
	}
	f := billingFixture(t)
	addBilling(t, f.pool, "one")
	parent, err := os.MkdirTemp("", "seam-dbmove-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(parent) })
	if err := os.Chmod(parent, 0o755); err != nil { // the server may run as another OS user
		t.Fatal(err)
	}
	srv, err := pgserver.Start(ctxFor(t), pgserver.Options{Dir: filepath.Join(parent, "cluster"), Ephemeral: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop(context.Background()) })
	opts := f.options()
	opts.To = srv.URL("seam")
	report, err := dbmove.Move(ctxFor(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	if tr := tableResult(t, report, `billing.invoices`); tr.Target.Rows != 1 || !tr.OK() {
		t.Errorf("invoices on the other server: %+v", tr)
	}
}

func TestMoveWithAdminsThatAreNotSuperusers(t *testing.T) {
	f := billingFixture(t)
	addBilling(t, f.pool, "one")
	// The documented external-database admin: CREATEROLE and CREATE on the database, nothing more.
	admin := f.cfg.RolePrefix + "admin"
	exec(t, superPool(t, f.source), "CREATE ROLE "+admin+" LOGIN CREATEROLE PASSWORD 'admin-password'")
	for _, u := range []string{f.source, f.target} {
		name := strings.TrimPrefix(must(url.Parse(u)).Path, "/")
		exec(t, superPool(t, u), "GRANT CREATE ON DATABASE "+name+" TO "+admin)
	}
	as := func(raw string) string {
		u := must(url.Parse(raw))
		u.User = url.UserPassword(admin, "admin-password")
		return u.String()
	}
	opts := f.options()
	opts.From, opts.To = as(f.source), as(f.target)
	// The source's schema was provisioned by a superuser, so this admin may not act as its role yet.
	_, err := dbmove.Move(ctxFor(t), opts)
	if !errors.Is(err, dbmove.ErrPrivileges) || !strings.Contains(err.Error(), `GRANT "`+f.cfg.RolePrefix+`billing" TO "`+admin+`"`) {
		t.Fatalf("Move = %v, want ErrPrivileges with the GRANT to run", err)
	}
	exec(t, superPool(t, f.source), "GRANT "+f.cfg.RolePrefix+"billing TO "+admin)
	if _, err := dbmove.Move(ctxFor(t), opts); err != nil {
		t.Fatal(err)
	}
	if _, err := dbmove.Verify(ctxFor(t), opts); err != nil {
		t.Fatal(err)
	}
}
