package db

import (
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/seamkit/seam/platform/migrate"
)

const (
	// maxRolePrefix bounds database.role_prefix, leaving room for module names in PostgreSQL's 63 bytes.
	maxRolePrefix = 32
	// maxIdentifierLength is PostgreSQL's limit on identifiers (NAMEDATALEN-1).
	maxIdentifierLength = 63
	// scramIterations is the PBKDF2 iteration count of the stored SCRAM-SHA-256 verifiers (PostgreSQL's
	// default).
	scramIterations = 4096
	// SQLSTATEs tolerated when another session creates the same role at the same moment.
	sqlstateDuplicateObject = "42710"
	sqlstateUniqueViolation = "23505"
)

// ErrUnsafeRole is returned when a module's role exists with an attribute Seam will not run a module
// with (SUPERUSER, REPLICATION, BYPASSRLS) and the admin connection cannot remove it.
var ErrUnsafeRole = errors.New("db: module role has privileges a module must not have")

// Role returns the name of module's PostgreSQL role: database.role_prefix followed by the module's name.
func (d *Database) Role(module string) (string, error) {
	if err := migrate.ValidateSchema(module); err != nil {
		return "", fmt.Errorf("db: module %q: %w", module, err)
	}
	role := d.cfg.RolePrefix + module
	if len(role) > maxIdentifierLength {
		return "", fmt.Errorf("db: role name %q for module %q is longer than PostgreSQL's %d bytes; shorten database.role_prefix",
			role, module, maxIdentifierLength)
	}
	return role, nil
}

// rolePassword is role's password: hex HMAC-SHA256 of the role name keyed with key, so that every
// instance of a module computes the same password without storing it.
func rolePassword(key []byte, role string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(role))
	return hex.EncodeToString(m.Sum(nil))
}

// scramVerifier returns the SCRAM-SHA-256 verifier PostgreSQL stores for password (RFC 5803 form), so the
// password itself is never sent to the server, its logs or its statistics.
func scramVerifier(password string) (string, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("db: salt: %w", err)
	}
	salted, err := pbkdf2.Key(sha256.New, password, salt, scramIterations, sha256.Size)
	if err != nil {
		return "", fmt.Errorf("db: derive SCRAM key: %w", err)
	}
	mac := func(msg string) []byte {
		m := hmac.New(sha256.New, salted)
		m.Write([]byte(msg))
		return m.Sum(nil)
	}
	stored := sha256.Sum256(mac("Client Key"))
	b64 := base64.StdEncoding.EncodeToString
	return fmt.Sprintf("SCRAM-SHA-256$%d:%s$%s:%s", scramIterations, b64(salt), b64(stored[:]), b64(mac("Server Key"))), nil
}

// quoteLiteral quotes s as an SQL string literal (standard_conforming_strings on).
func quoteLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// ensureProvisioned provisions module unless this Database already did.
func (d *Database) ensureProvisioned(ctx context.Context, module string) error {
	d.provisionMu.Lock()
	done := d.provisioned[module]
	d.provisionMu.Unlock()
	if done {
		return nil
	}
	return d.Provision(ctx, module)
}

// Provision sets up module's role and schema through the admin connection; it is idempotent and safe to
// run from several processes at once. It
//   - revokes CREATE on schema public from PUBLIC, when granted;
//   - creates the LOGIN role <role_prefix><module> (NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT
//     NOREPLICATION NOBYPASSRLS) if missing and sets its derived password;
//   - creates schema <module> owned by the role, or hands an existing schema and the objects in it to the
//     role (data directories from before module roles);
//   - grants the role CONNECT on the database if it lacks it, and nothing else.
func (d *Database) Provision(ctx context.Context, module string) error {
	role, err := d.Role(module)
	if err != nil {
		return err
	}
	s, err := d.serverOf(module)
	if err != nil {
		return err
	}
	d.provisionMu.Lock()
	defer d.provisionMu.Unlock()
	if err := provision(ctx, s.admin, module, role, rolePassword(s.key, role)); err != nil {
		return fmt.Errorf("db: provision module %s (role %s): %w", module, role, err)
	}
	d.provisioned[module] = true
	d.logger.Debug("module role provisioned", slog.String("module", module), slog.String("role", role))
	return nil
}

// provision does Provision's work on one admin connection holding an advisory lock for the schema.
func provision(ctx context.Context, admin *pgxpool.Pool, schema, role, password string) error {
	conn, err := admin.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("connect to %s as the admin user: %w", address(admin.Config().ConnConfig), err)
	}
	defer conn.Release()
	lockKey := provisionLockKey(schema)
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", lockKey); err != nil {
		return fmt.Errorf("take provisioning lock: %w", err)
	}
	defer func() {
		if _, err := conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", lockKey); err != nil {
			_ = conn.Conn().Close(context.WithoutCancel(ctx))
		}
	}()
	c := conn.Conn()
	for _, step := range []func(context.Context, *pgx.Conn, string, string, string) error{
		revokePublicCreate, ensureRole, ensureSchema, reassignObjects, ensureConnect,
	} {
		if err := step(ctx, c, schema, role, password); err != nil {
			return err
		}
	}
	return nil
}

// provisionLockKey is the advisory lock key for provisioning schema.
func provisionLockKey(schema string) int64 {
	h := fnv.New64a()
	h.Write([]byte("seam/provision/" + schema))
	return int64(h.Sum64())
}

// revokePublicCreate removes PostgreSQL's pre-15 default that lets every role create objects in public.
func revokePublicCreate(ctx context.Context, c *pgx.Conn, _, _, _ string) error {
	var granted bool
	err := c.QueryRow(ctx, `SELECT to_regnamespace('public') IS NOT NULL
		AND has_schema_privilege('public', 'public', 'CREATE')`).Scan(&granted)
	if err != nil {
		return fmt.Errorf("check CREATE on schema public: %w", err)
	}
	if !granted {
		return nil
	}
	if _, err := c.Exec(ctx, "REVOKE CREATE ON SCHEMA public FROM PUBLIC"); err != nil {
		return fmt.Errorf("REVOKE CREATE ON SCHEMA public FROM PUBLIC (run it as the database owner): %w", err)
	}
	return nil
}

// ensureRole creates role if missing, then sets its attributes and password.
func ensureRole(ctx context.Context, c *pgx.Conn, _, role, password string) error {
	verifier, err := scramVerifier(password)
	if err != nil {
		return err
	}
	name := pgx.Identifier{role}.Sanitize()
	var exists bool
	if err := c.QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = $1)", role).Scan(&exists); err != nil {
		return fmt.Errorf("look up role: %w", err)
	}
	if !exists {
		_, err := c.Exec(ctx, "CREATE ROLE "+name+
			" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION NOBYPASSRLS PASSWORD "+quoteLiteral(verifier))
		if err == nil {
			return nil
		}
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || (pgErr.Code != sqlstateDuplicateObject && pgErr.Code != sqlstateUniqueViolation) {
			return fmt.Errorf("create role: %w", err)
		}
	}
	var super, replication, bypassRLS bool
	err = c.QueryRow(ctx, "SELECT rolsuper, rolreplication, rolbypassrls FROM pg_roles WHERE rolname = $1", role).
		Scan(&super, &replication, &bypassRLS)
	if err != nil {
		return fmt.Errorf("look up role: %w", err)
	}
	if super || replication || bypassRLS {
		return fmt.Errorf("%w: %s has SUPERUSER=%t REPLICATION=%t BYPASSRLS=%t; run ALTER ROLE %s NOSUPERUSER NOREPLICATION NOBYPASSRLS as a superuser",
			ErrUnsafeRole, role, super, replication, bypassRLS, name)
	}
	// NOSUPERUSER/NOREPLICATION/NOBYPASSRLS are left out: naming them at all needs a superuser.
	if _, err := c.Exec(ctx, "ALTER ROLE "+name+" WITH LOGIN NOCREATEDB NOCREATEROLE NOINHERIT PASSWORD "+quoteLiteral(verifier)); err != nil {
		return fmt.Errorf("alter role: %w", err)
	}
	return nil
}

// ensureSchema creates schema owned by role, or makes role the owner of the existing schema. An admin that
// is not a superuser must be a member of role (allowed to SET ROLE to it, on PostgreSQL 16 and later) to do
// either, so it grants itself that membership; granting it again is harmless.
func ensureSchema(ctx context.Context, c *pgx.Conn, schema, role, _ string) error {
	var super bool
	if err := c.QueryRow(ctx, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user").Scan(&super); err != nil {
		return fmt.Errorf("check whether the admin user is a superuser: %w", err)
	}
	roleName := pgx.Identifier{role}.Sanitize()
	if !super {
		if _, err := c.Exec(ctx, "GRANT "+roleName+" TO CURRENT_USER"); err != nil {
			return fmt.Errorf("grant the module role to the admin user: %w", err)
		}
	}
	var owner string
	err := c.QueryRow(ctx, "SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = $1", schema).Scan(&owner)
	schemaName := pgx.Identifier{schema}.Sanitize()
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		if _, err := c.Exec(ctx, "CREATE SCHEMA "+schemaName+" AUTHORIZATION "+roleName); err != nil {
			return fmt.Errorf("create schema: %w", err)
		}
	case err != nil:
		return fmt.Errorf("look up schema: %w", err)
	case owner != role:
		if _, err := c.Exec(ctx, "ALTER SCHEMA "+schemaName+" OWNER TO "+roleName); err != nil {
			return fmt.Errorf("hand schema owned by %s to the role: %w", owner, err)
		}
	}
	return nil
}

// reassignObjects hands to role the objects in schema that another role owns (tables, views, standalone
// sequences, routines and types made before module roles existed). Indexes, and sequences owned by a
// column, follow their table; extension members are left alone.
func reassignObjects(ctx context.Context, c *pgx.Conn, schema, role, _ string) error {
	rows, err := c.Query(ctx, `
SELECT format('ALTER %s %s OWNER TO %I', kind, name, $2::text) FROM (
  SELECT CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'f' THEN 'FOREIGN TABLE'
           WHEN 'S' THEN 'SEQUENCE' WHEN 'c' THEN 'TYPE' ELSE 'TABLE' END AS kind,
         format('%I.%I', n.nspname, c.relname) AS name, CASE c.relkind WHEN 'S' THEN 2 ELSE 1 END AS ord
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE n.nspname = $1 AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S', 'c')
    AND c.relowner <> (SELECT oid FROM pg_roles WHERE rolname = $2)
    AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                    AND d.deptype IN ('a', 'i', 'e'))
  UNION ALL
  SELECT CASE p.prokind WHEN 'p' THEN 'PROCEDURE' WHEN 'a' THEN 'AGGREGATE' ELSE 'FUNCTION' END,
         p.oid::regprocedure::text, 3
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
  WHERE n.nspname = $1 AND p.proowner <> (SELECT oid FROM pg_roles WHERE rolname = $2)
    AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
  UNION ALL
  SELECT CASE t.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END, format('%I.%I', n.nspname, t.typname), 0
  FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
  WHERE n.nspname = $1 AND t.typtype IN ('e', 'd', 'r')
    AND t.typowner <> (SELECT oid FROM pg_roles WHERE rolname = $2)
    AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_type'::regclass AND d.objid = t.oid AND d.deptype = 'e')
) objects ORDER BY ord, name`, schema, role)
	if err != nil {
		return fmt.Errorf("list objects to hand to the role: %w", err)
	}
	statements, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("list objects to hand to the role: %w", err)
	}
	for _, stmt := range statements {
		if _, err := c.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("%s: %w", stmt, err)
		}
	}
	return nil
}

// ensureConnect grants role CONNECT on the current database when it lacks it (PUBLIC normally has it).
func ensureConnect(ctx context.Context, c *pgx.Conn, _, role, _ string) error {
	var ok bool
	if err := c.QueryRow(ctx, "SELECT has_database_privilege($1, current_database(), 'CONNECT')", role).Scan(&ok); err != nil {
		return fmt.Errorf("check CONNECT on the database: %w", err)
	}
	if ok {
		return nil
	}
	var database string
	if err := c.QueryRow(ctx, "SELECT current_database()").Scan(&database); err != nil {
		return fmt.Errorf("current database: %w", err)
	}
	if _, err := c.Exec(ctx, "GRANT CONNECT ON DATABASE "+pgx.Identifier{database}.Sanitize()+" TO "+pgx.Identifier{role}.Sanitize()); err != nil {
		return fmt.Errorf("grant CONNECT on the database: %w", err)
	}
	return nil
}
