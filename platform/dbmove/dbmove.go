// Package dbmove moves a module's data to another PostgreSQL database: it provisions and migrates the
// module's schema there as Seam does at start, copies every table of the schema from one consistent
// snapshot of the source within one transaction on the target, and verifies the copy table by table.
package dbmove

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/seamkit/seam/platform/db"
	"github.com/seamkit/seam/platform/migrate"
)

var (
	// ErrSameDatabase is returned when the source and the target are one and the same database.
	ErrSameDatabase = errors.New("dbmove: the source and the target are the same database")
	// ErrNoSchema is returned when a side holds no schema for the module.
	ErrNoSchema = errors.New("dbmove: no schema for the module")
	// ErrPrivileges is returned when an admin user lacks a privilege the move needs.
	ErrPrivileges = errors.New("dbmove: missing privileges")
	// ErrSchemaMismatch is returned when the module's schema differs between the source and the (migrated)
	// target: other tables, columns, column types or migration versions.
	ErrSchemaMismatch = errors.New("dbmove: the module's schema differs between the source and the target")
	// ErrVerification is returned when a table's row count or checksum, or a sequence's value, differs
	// between the source and the target.
	ErrVerification = errors.New("dbmove: verification failed")
)

const (
	// applicationName tags the move's sessions in pg_stat_activity.
	applicationName = "seam-db-move"
	// lockTimeout bounds how long the target transaction waits for the module's tables, which a process
	// still running the module on the target would hold.
	lockTimeout = "30s"
	// sqlstateInsufficientPrivilege is PostgreSQL's insufficient_privilege.
	sqlstateInsufficientPrivilege = "42501"
)

// Options says which module to move, from which database to which.
type Options struct {
	// Module names the module, and so its schema and its role (<role_prefix><module>).
	Module string
	// Migrations are the module's own goose migrations (sql/<module>/migrations), applied on the target
	// after the platform's, as at the module's start. Verify does not use them.
	Migrations fs.FS
	// From is the admin URL of the database the module's data is on now (like database.url).
	From string
	// To is the admin URL of the database to move it to: a user with CREATEROLE and CREATE on it, or a
	// superuser.
	To string
	// Database is the configuration the module runs with: its role prefix and role secret name and key
	// the module's role on the target, its connect timeout bounds each connection. Its URLs are ignored.
	Database db.Config
	// Logger receives progress; nil discards it.
	Logger *slog.Logger
}

// Move copies the module's schema from From to To and verifies it. On the target it provisions the
// module's role and schema and applies the migrations, then, in one transaction, empties the module's
// tables and copies every table from one REPEATABLE READ, READ ONLY snapshot of the source in foreign-key
// order, sets the sequences to the source's values, and compares each table's row count and checksum on
// both sides; it commits only when all of them match. Any failure, a failed verification included, leaves
// the target's tables as they were. The source is only read; no other schema is touched on either side.
// The report is returned when the move succeeded or its verification failed (the error then wraps
// ErrVerification).
func Move(ctx context.Context, o Options) (*Report, error) {
	p, err := open(ctx, o)
	if err != nil {
		return nil, err
	}
	defer p.close()
	if err := p.checkTargetPrivileges(ctx); err != nil {
		return nil, err
	}
	role, err := p.migrateTarget(ctx)
	if err != nil {
		return nil, err
	}
	src, dst, err := p.begin(ctx, pgx.TxOptions{})
	if err != nil {
		return nil, err
	}
	defer src.rollback()
	defer dst.rollback()
	if err := dst.prepare(ctx, role); err != nil {
		return nil, err
	}
	if _, err := dst.tx.Exec(ctx, "SET LOCAL lock_timeout = '"+lockTimeout+"'"); err != nil {
		return nil, fmt.Errorf("dbmove: target: %w", err)
	}
	s, err := p.compare(ctx, src, dst)
	if err != nil {
		return nil, err
	}
	order, err := copyOrder(ctx, dst, s)
	if err != nil {
		return nil, err
	}
	if err := p.copyAll(ctx, src, dst, s, order); err != nil {
		return nil, err
	}
	report, err := p.verify(ctx, src, dst, s)
	if err != nil {
		return report, err
	}
	if err := dst.tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("dbmove: target: commit (deferred constraints are checked now): %w", err)
	}
	p.logger.Info("module moved", slog.String("module", o.Module), slog.Int("tables", len(report.Tables)))
	return report, nil
}

// Verify compares the module's schema on From and To without writing to either: the same tables, columns
// and migration versions, and per table the same row count and checksum, each side read in one
// REPEATABLE READ, READ ONLY snapshot; and the same sequence values. The error wraps ErrVerification when
// something differs; the report says what.
func Verify(ctx context.Context, o Options) (*Report, error) {
	p, err := open(ctx, o)
	if err != nil {
		return nil, err
	}
	defer p.close()
	targetOwner, err := schemaOwner(ctx, p.target, o.Module, "target")
	if err != nil {
		return nil, err
	}
	src, dst, err := p.begin(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, err
	}
	defer src.rollback()
	defer dst.rollback()
	if err := dst.prepare(ctx, targetOwner); err != nil {
		return nil, err
	}
	s, err := p.compare(ctx, src, dst)
	if err != nil {
		return nil, err
	}
	return p.verify(ctx, src, dst, s)
}

// pair is an open move: admin connections to both databases, and the source schema's owner.
type pair struct {
	o              Options
	logger         *slog.Logger
	source, target *pgx.Conn
	sourceOwner    string
}

// open checks the options, connects to both databases as their admin users, makes sure they are two
// different databases and that the source holds the module's schema, readable by its admin user.
func open(ctx context.Context, o Options) (*pair, error) {
	if err := migrate.ValidateSchema(o.Module); err != nil {
		return nil, fmt.Errorf("dbmove: module %q: %w", o.Module, err)
	}
	o.Database.SetDefaults()
	logger := o.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	from, err := parse(o.From, "source", o.Database.ConnectTimeout)
	if err != nil {
		return nil, err
	}
	to, err := parse(o.To, "target", o.Database.ConnectTimeout)
	if err != nil {
		return nil, err
	}
	if address(from) == address(to) {
		return nil, fmt.Errorf("%w: both are %s", ErrSameDatabase, address(from))
	}
	p := &pair{o: o, logger: logger}
	if p.source, err = connect(ctx, from, "source"); err != nil {
		return nil, err
	}
	if p.target, err = connect(ctx, to, "target"); err != nil {
		p.close()
		return nil, err
	}
	if err := p.checkDistinct(ctx); err != nil {
		p.close()
		return nil, err
	}
	if p.sourceOwner, err = schemaOwner(ctx, p.source, o.Module, "source"); err != nil {
		p.close()
		return nil, err
	}
	return p, nil
}

// close closes both connections.
func (p *pair) close() {
	for _, c := range []*pgx.Conn{p.source, p.target} {
		if c != nil {
			_ = c.Close(context.Background())
		}
	}
}

// parse parses the admin URL of one side.
func parse(url, side string, timeout time.Duration) (*pgx.ConnConfig, error) {
	if url == "" {
		return nil, fmt.Errorf("dbmove: no %s database URL", side)
	}
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("dbmove: %s database URL: %w", side, err)
	}
	cfg.ConnectTimeout = timeout
	cfg.RuntimeParams["application_name"] = applicationName
	return cfg, nil
}

// address describes where cfg connects: host:port/database, never the password.
func address(cfg *pgx.ConnConfig) string {
	return fmt.Sprintf("%s:%d/%s", cfg.Host, cfg.Port, cfg.Database)
}

// connect opens the admin connection of one side.
func connect(ctx context.Context, cfg *pgx.ConnConfig, side string) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("dbmove: connect to the %s database %s: %w", side, address(cfg), err)
	}
	return conn, nil
}

// checkDistinct refuses two URLs that reach the same database under different names (localhost and
// 127.0.0.1, say): same server start time, database oid and name.
func (p *pair) checkDistinct(ctx context.Context) error {
	const identity = `SELECT extract(epoch FROM pg_postmaster_start_time())::text || '/' || d.oid::text || '/' || d.datname
		FROM pg_database d WHERE d.datname = current_database()`
	var source, target string
	if err := p.source.QueryRow(ctx, identity).Scan(&source); err != nil {
		return fmt.Errorf("dbmove: source: %w", err)
	}
	if err := p.target.QueryRow(ctx, identity).Scan(&target); err != nil {
		return fmt.Errorf("dbmove: target: %w", err)
	}
	if source == target {
		return fmt.Errorf("%w: both URLs reach database %s of one server", ErrSameDatabase, p.source.Config().Database)
	}
	return nil
}

// schemaOwner returns the owner of the module's schema on one side, after checking that side's admin user
// may act as it (SET ROLE), which the move does to read or write the schema with no more than the module's
// own privileges.
func schemaOwner(ctx context.Context, conn *pgx.Conn, module, side string) (string, error) {
	var owner, user string
	var member bool
	err := conn.QueryRow(ctx, `SELECT pg_get_userbyid(nspowner), current_user::text, pg_has_role(current_user, nspowner, 'MEMBER')
		FROM pg_namespace WHERE nspname = $1`, module).Scan(&owner, &user, &member)
	if errors.Is(err, pgx.ErrNoRows) {
		modules, lerr := moduleSchemas(ctx, conn)
		if lerr != nil {
			return "", fmt.Errorf("dbmove: %s: list module schemas: %w", side, lerr)
		}
		return "", fmt.Errorf("%w %s on the %s database %s (module schemas there: %s)",
			ErrNoSchema, module, side, conn.Config().Database, orNone(modules))
	}
	if err != nil {
		return "", fmt.Errorf("dbmove: %s: look up schema %s: %w", side, module, err)
	}
	if !member {
		return "", fmt.Errorf("%w: the %s user %s is neither a superuser nor a member of role %s, which owns schema %s (GRANT %s TO %s)",
			ErrPrivileges, side, user, owner, module, pgx.Identifier{owner}.Sanitize(), pgx.Identifier{user}.Sanitize())
	}
	return owner, nil
}

// moduleSchemas lists the schemas holding Seam's platform version table: the module schemas.
func moduleSchemas(ctx context.Context, conn *pgx.Conn) ([]string, error) {
	rows, err := conn.Query(ctx, `SELECT n.nspname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relname = $1 AND c.relkind = 'r' ORDER BY 1`, migrate.PlatformVersionTable)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// checkTargetPrivileges checks that the target's admin user may create the module's role and schema.
func (p *pair) checkTargetPrivileges(ctx context.Context) error {
	var user, database string
	var super, createRole, create bool
	err := p.target.QueryRow(ctx, `SELECT current_user::text, current_database()::text, rolsuper, rolcreaterole,
		has_database_privilege(current_database(), 'CREATE') FROM pg_roles WHERE rolname = current_user`).
		Scan(&user, &database, &super, &createRole, &create)
	if err != nil {
		return fmt.Errorf("dbmove: target: check privileges: %w", err)
	}
	if super || (createRole && create) {
		return nil
	}
	var missing []string
	if !createRole {
		missing = append(missing, "CREATEROLE (ALTER ROLE "+pgx.Identifier{user}.Sanitize()+" CREATEROLE)")
	}
	if !create {
		missing = append(missing, "CREATE on the database (GRANT CREATE ON DATABASE "+pgx.Identifier{database}.Sanitize()+
			" TO "+pgx.Identifier{user}.Sanitize()+")")
	}
	return fmt.Errorf("%w: the target user %s needs %s", ErrPrivileges, user, joinAnd(missing))
}

// migrateTarget provisions the module's role and schema on the target and applies its migrations, exactly
// as the module's start does, and returns the role.
func (p *pair) migrateTarget(ctx context.Context) (string, error) {
	cfg := p.o.Database
	cfg.URL, cfg.Modules, cfg.ModuleURLs = p.o.To, nil, ""
	d := db.New(cfg, "", p.logger)
	if err := d.Start(ctx); err != nil {
		return "", fmt.Errorf("dbmove: target: %w", err)
	}
	defer func() { _ = d.Stop(context.WithoutCancel(ctx)) }()
	if err := d.Migrate(ctx, p.o.Module, p.o.Migrations); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == sqlstateInsufficientPrivilege {
			return "", fmt.Errorf("%w on the target: %w", ErrPrivileges, err)
		}
		return "", fmt.Errorf("dbmove: target: %w", err)
	}
	return d.Role(p.o.Module)
}

// side is one database's transaction.
type side struct {
	name   string
	schema string
	tx     pgx.Tx
}

// begin opens the source's snapshot (REPEATABLE READ, READ ONLY) as the schema's owner, and the target's
// transaction with dstOpts; the target's still has to be prepared.
func (p *pair) begin(ctx context.Context, dstOpts pgx.TxOptions) (*side, *side, error) {
	stx, err := p.source.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, nil, fmt.Errorf("dbmove: source: begin snapshot: %w", err)
	}
	src := &side{name: "source", schema: p.o.Module, tx: stx}
	if err := src.prepare(ctx, p.sourceOwner); err != nil {
		src.rollback()
		return nil, nil, err
	}
	dtx, err := p.target.BeginTx(ctx, dstOpts)
	if err != nil {
		src.rollback()
		return nil, nil, fmt.Errorf("dbmove: target: begin: %w", err)
	}
	return src, &side{name: "target", schema: p.o.Module, tx: dtx}, nil
}

// sessionSettings make the text form of every value (in COPY and in the checksums) the same on both sides,
// whatever each server's or role's defaults, and make every name resolve only when schema-qualified.
var sessionSettings = []string{
	"SET LOCAL TimeZone = 'UTC'",
	"SET LOCAL DateStyle = 'ISO, YMD'",
	"SET LOCAL IntervalStyle = 'postgres'",
	"SET LOCAL extra_float_digits = 3",
	"SET LOCAL bytea_output = 'hex'",
	"SET LOCAL search_path = pg_catalog",
}

// prepare applies sessionSettings and becomes role for the rest of the transaction.
func (s *side) prepare(ctx context.Context, role string) error {
	for _, stmt := range append(sessionSettings, "SET LOCAL ROLE "+pgx.Identifier{role}.Sanitize()) {
		if _, err := s.tx.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("dbmove: %s: %s: %w", s.name, stmt, err)
		}
	}
	return nil
}

// rollback ends the transaction unless it was committed.
func (s *side) rollback() {
	_ = s.tx.Rollback(context.Background())
}

// qualified is the quoted name of table (or sequence) name in the module's schema.
func (s *side) qualified(name string) string {
	return pgx.Identifier{s.schema, name}.Sanitize()
}

// display is how messages and reports name table (or sequence) name: schema.name.
func (s *side) display(name string) string {
	return s.schema + "." + name
}

// orNone joins names with commas, or says "none".
func orNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return joinComma(names)
}
