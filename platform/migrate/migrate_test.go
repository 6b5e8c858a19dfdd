package migrate_test

import (
	"context"
	"crypto/rand"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/seamkit/seam/platform/migrate"
	"github.com/seamkit/seam/platform/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func ctxFor(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func migrations(files map[string]string) fstest.MapFS {
	fsys := fstest.MapFS{}
	for name, body := range files {
		fsys[name] = &fstest.MapFile{Data: []byte(body)}
	}
	return fsys
}

func table(schema, name string) string {
	return "-- +goose Up\nCREATE TABLE " + schema + "." + name + " (id bigint PRIMARY KEY);\n" +
		"-- +goose Down\nDROP TABLE " + schema + "." + name + ";\n"
}

func tables(t *testing.T, pool *pgxpool.Pool, schema string) []string {
	t.Helper()
	rows, err := pool.Query(ctxFor(t),
		"SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name", schema)
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
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return names
}

func version(t *testing.T, pool *pgxpool.Pool, versionTable string) int64 {
	t.Helper()
	var v int64
	if err := pool.QueryRow(ctxFor(t), "SELECT max(version_id) FROM "+versionTable).Scan(&v); err != nil {
		t.Fatalf("version of %s: %v", versionTable, err)
	}
	return v
}

func TestUpIsIdempotentAndCreatesTablesInSchema(t *testing.T) {
	pool := pgtest.NewPool(t)
	ctx := ctxFor(t)
	fsys := migrations(map[string]string{"00001_items.sql": table("billing", "items")})
	for i := range 2 {
		if err := migrate.Up(ctx, pool, "billing", fsys, nil); err != nil {
			t.Fatalf("Up #%d: %v", i+1, err)
		}
	}
	want := []string{"dead_letters", "goose_db_version", "inbox", "items", "outbox", "route_audit", "route_discrepancies",
		"route_state", "saga_steps", "sagas", "seam_platform_version"}
	if got := tables(t, pool, "billing"); !slices.Equal(got, want) {
		t.Errorf("tables in billing = %v, want %v", got, want)
	}
	if got := tables(t, pool, "public"); len(got) != 0 {
		t.Errorf("tables in public = %v, want none", got)
	}
	if v := version(t, pool, "billing.seam_platform_version"); v != 4 {
		t.Errorf("platform version = %d, want 4", v)
	}
	if v := version(t, pool, "billing.goose_db_version"); v != 1 {
		t.Errorf("module version = %d, want 1", v)
	}
	var applied int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM billing.goose_db_version WHERE version_id = 1").Scan(&applied); err != nil || applied != 1 {
		t.Errorf("version 1 recorded %d times, %v", applied, err)
	}

	// The outbox takes a row with its defaults, and only unsent rows are indexed for the relay.
	var headers string
	err := pool.QueryRow(ctx, `INSERT INTO billing.outbox (id, subject, event_type, payload)
		VALUES (gen_random_uuid(), 'billing.invoice.paid', 'InvoicePaid', '{"n":1}') RETURNING headers::text`).Scan(&headers)
	if err != nil || headers != "{}" {
		t.Errorf("outbox insert: headers = %q, %v", headers, err)
	}
	var indexed bool
	if err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_indexes
		WHERE schemaname = 'billing' AND indexname = 'outbox_unsent_idx')`).Scan(&indexed); err != nil || !indexed {
		t.Errorf("outbox_unsent_idx in billing: %v, %v", indexed, err)
	}
}

func TestSchemasKeepSeparateVersionTables(t *testing.T) {
	pool := pgtest.NewPool(t)
	ctx := ctxFor(t)
	if err := migrate.Up(ctx, pool, "billing", migrations(map[string]string{
		"00001_invoices.sql": table("billing", "invoices"),
	}), nil); err != nil {
		t.Fatal(err)
	}
	if err := migrate.Up(ctx, pool, "notifications", migrations(map[string]string{
		"00001_messages.sql":  table("notifications", "messages"),
		"00002_templates.sql": table("notifications", "templates"),
	}), nil); err != nil {
		t.Fatal(err)
	}
	if v := version(t, pool, "billing.goose_db_version"); v != 1 {
		t.Errorf("billing version = %d, want 1", v)
	}
	if v := version(t, pool, "notifications.goose_db_version"); v != 2 {
		t.Errorf("notifications version = %d, want 2", v)
	}
	for _, schema := range []string{"billing", "notifications"} {
		got := tables(t, pool, schema)
		for _, want := range []string{"outbox", "inbox", "seam_platform_version", "goose_db_version"} {
			if !slices.Contains(got, want) {
				t.Errorf("%s lacks %s: %v", schema, want, got)
			}
		}
	}
}

func TestUpWithoutModuleMigrations(t *testing.T) {
	pool := pgtest.NewPool(t)
	ctx := ctxFor(t)
	if err := migrate.Up(ctx, pool, "reporting", nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := migrate.Up(ctx, pool, "auth", fstest.MapFS{}, nil); err != nil {
		t.Fatal(err)
	}
	if got, want := tables(t, pool, "reporting"), []string{"dead_letters", "inbox", "outbox",
		"route_audit", "route_discrepancies", "route_state", "saga_steps", "sagas", "seam_platform_version"}; !slices.Equal(got, want) {
		t.Errorf("tables in reporting = %v, want %v", got, want)
	}
}

func TestBadSchemaNameIsRefused(t *testing.T) {
	for _, name := range []string{"", "Billing", "1billing", "bill-ing", "billing;drop", `bill"ing`, "_billing", strings.Repeat("a", 64)} {
		err := migrate.Up(context.Background(), nil, name, nil, nil)
		if !errors.Is(err, migrate.ErrInvalidSchema) {
			t.Errorf("Up(%q) = %v, want ErrInvalidSchema", name, err)
		}
	}
}

func TestFailingMigrationNamesTheFile(t *testing.T) {
	pool := pgtest.NewPool(t)
	ctx := ctxFor(t)
	err := migrate.Up(ctx, pool, "billing", migrations(map[string]string{
		"00001_ok.sql":     table("billing", "ok"),
		"00002_broken.sql": "-- +goose Up\nCREAT TABLE billing.broken (id int);\n",
	}), nil)
	if err == nil || !strings.Contains(err.Error(), "00002_broken.sql") {
		t.Fatalf("err = %v, want one naming 00002_broken.sql", err)
	}
	if v := version(t, pool, "billing.goose_db_version"); v != 1 {
		t.Errorf("version after failure = %d, want 1 (the good migration kept)", v)
	}
	if got := tables(t, pool, "billing"); slices.Contains(got, "broken") {
		t.Errorf("broken table exists: %v", got)
	}
}

func TestConcurrentUpsAreSerialised(t *testing.T) {
	url := pgtest.NewDatabase(t)
	ctx := ctxFor(t)
	fsys := migrations(map[string]string{
		"00001_a.sql": table("billing", "a"),
		"00002_b.sql": table("billing", "b"),
	})
	// One pool per "process", as when several instances of a module start at once.
	const instances = 4
	errs := make([]error, instances)
	pools := make([]*pgxpool.Pool, instances)
	var wg sync.WaitGroup
	for i := range instances {
		pool, err := pgxpool.New(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pool.Close)
		pools[i] = pool
		wg.Go(func() { errs[i] = migrate.Up(ctx, pool, "billing", fsys, nil) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("instance %d: %v", i, err)
		}
	}
	for table, want := range map[string]int{"billing.goose_db_version": 2, "billing.seam_platform_version": 4} {
		var n int
		if err := pools[0].QueryRow(ctx, "SELECT count(*) FROM "+table+" WHERE version_id > 0").Scan(&n); err != nil || n != want {
			t.Errorf("%s holds %d applied versions, %v; want %d", table, n, err, want)
		}
	}
}

func TestPoolOfOneConnectionIsRefused(t *testing.T) {
	url := pgtest.NewDatabase(t)
	pool, err := pgxpool.New(ctxFor(t), url+"&pool_max_conns=1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if err := migrate.Up(ctxFor(t), pool, "billing", nil, nil); err == nil {
		t.Fatal("Up on a one-connection pool succeeded; it would deadlock once the lock is held")
	}
}

func TestUpAsTheSchemaOwnerWithoutCreateOnTheDatabase(t *testing.T) {
	url := pgtest.NewDatabase(t)
	super, err := pgxpool.New(ctxFor(t), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(super.Close)
	ctx := ctxFor(t)
	role := "owner_" + strings.ToLower(rand.Text()[:10])
	if _, err := super.Exec(ctx, "CREATE ROLE "+role+" LOGIN PASSWORD 'pw'; CREATE SCHEMA billing AUTHORIZATION "+role); err != nil {
		t.Fatal(err)
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.User, cfg.ConnConfig.Password = role, "pw"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if err := migrate.Up(ctx, pool, "billing", migrations(map[string]string{"00001_items.sql": table("billing", "items")}), nil); err != nil {
		t.Fatalf("Up as the schema's owner: %v", err)
	}
	var owner string
	if err := super.QueryRow(ctx, "SELECT tableowner FROM pg_tables WHERE schemaname = 'billing' AND tablename = 'items'").Scan(&owner); err != nil || owner != role {
		t.Errorf("billing.items owned by %q (%v), want %q", owner, err, role)
	}
	if err := migrate.Up(ctx, pool, "reporting", nil, nil); err == nil {
		t.Error("Up created schema reporting for a role without CREATE on the database")
	}
}
