// Package db gives each module its own PostgreSQL role, schema and connection pool, and applies the module's
// migrations as that role, on an external database or on a local server that Seam starts and manages itself.
package db

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/seamkit/seam/platform/migrate"
	"github.com/seamkit/seam/platform/pgserver"
)

// Config is the database section of the configuration.
type Config struct {
	// URL of an existing PostgreSQL database; empty means Seam runs a local server in the data directory.
	URL string `yaml:"url" secret:"url"`
	// BinDir holds the PostgreSQL server binaries for the local server; empty searches the usual places.
	BinDir string `yaml:"bin_dir"`
	// LocalPort is the local server's port; 0 picks a free one on first start and keeps it.
	LocalPort int `yaml:"local_port"`
	// MaxConns caps each module's pool.
	MaxConns int32 `yaml:"max_conns"`
	// ConnectTimeout bounds how long opening one connection may take.
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	// RolePrefix starts the name of each module's PostgreSQL role (<prefix><module>). Roles are shared by
	// every database of a cluster: give each Seam database on one cluster its own prefix.
	RolePrefix string `yaml:"role_prefix"`
	// RoleSecret is the key the module roles' passwords derive from; empty uses the password of the admin
	// connection (database.url's, or the local server's superuser's).
	RoleSecret string `yaml:"role_secret" secret:"true"`
}

// DefaultRolePrefix is the default of Config.RolePrefix.
const DefaultRolePrefix = "seam_"

// rolePrefixPattern is what a role prefix may hold; names starting "pg_" are reserved by PostgreSQL.
var rolePrefixPattern = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// SetDefaults fills unset fields.
func (c *Config) SetDefaults() {
	if c.MaxConns == 0 {
		c.MaxConns = 10
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = 5 * time.Second
	}
	if c.RolePrefix == "" {
		c.RolePrefix = DefaultRolePrefix
	}
}

// Validate checks the section; errors name the key.
func (c Config) Validate() error {
	if c.URL != "" {
		if _, err := pgx.ParseConfig(c.URL); err != nil {
			return errors.New("database.url: not a valid PostgreSQL URL")
		}
	}
	if c.LocalPort < 0 || c.LocalPort > 65535 {
		return fmt.Errorf("database.local_port: must be between 0 and 65535, got %d", c.LocalPort)
	}
	if c.MaxConns < 1 {
		return fmt.Errorf("database.max_conns: must be at least 1, got %d", c.MaxConns)
	}
	if c.ConnectTimeout <= 0 {
		return fmt.Errorf("database.connect_timeout: must be positive, got %s", c.ConnectTimeout)
	}
	if !rolePrefixPattern.MatchString(c.RolePrefix) || strings.HasPrefix(c.RolePrefix, "pg_") || len(c.RolePrefix) > maxRolePrefix {
		return fmt.Errorf("database.role_prefix: want lower-case letters, digits or '_' (not starting with a digit or \"pg_\"), at most %d bytes, got %q",
			maxRolePrefix, c.RolePrefix)
	}
	return nil
}

// Database is the process's access to PostgreSQL: an admin connection (the local server's superuser, or
// database.url) that provisions one role and schema per module, and module pools that connect as those
// roles. Pools can be made before Start: they connect lazily, with the address resolved (and the module
// provisioned) when the first connection is opened.
type Database struct {
	cfg     Config
	dataDir string
	logger  *slog.Logger

	mu     sync.RWMutex
	conn   *pgx.ConnConfig
	key    []byte
	local  *pgserver.Server
	admin  *pgxpool.Pool
	closed bool

	// provisionMu serialises provisioning in this process; provisioned records the modules done.
	provisionMu sync.Mutex
	provisioned map[string]bool
}

// New prepares access to the configured database; dataDir holds the local server when no URL is set.
// Unset fields of cfg take their defaults.
func New(cfg Config, dataDir string, logger *slog.Logger) *Database {
	cfg.SetDefaults()
	return &Database{cfg: cfg, dataDir: dataDir, logger: logger, provisioned: map[string]bool{}}
}

// ErrNotStarted is returned when a connection is attempted before Start.
var ErrNotStarted = errors.New("db: database not started")

// Start starts the local server when no URL is configured, then checks the database answers. It fails
// when neither database.role_secret nor the admin connection's password is set, as module role passwords
// derive from one of them.
func (d *Database) Start(ctx context.Context) error {
	url := d.cfg.URL
	if url == "" {
		srv, err := pgserver.Start(ctx, pgserver.Options{
			Dir:    filepath.Join(d.dataDir, "postgres"),
			BinDir: d.cfg.BinDir,
			Port:   d.cfg.LocalPort,
			Logger: d.logger,
		})
		if err != nil {
			return fmt.Errorf("db: start local PostgreSQL: %w", err)
		}
		d.mu.Lock()
		d.local = srv
		d.mu.Unlock()
		url = srv.URL("seam")
		d.logger.Info("local PostgreSQL running", slog.Int("port", srv.Port()), slog.String("dir", filepath.Join(d.dataDir, "postgres")))
	}
	conn, err := pgx.ParseConfig(url)
	if err != nil {
		return fmt.Errorf("db: parse database URL: %w", err)
	}
	conn.ConnectTimeout = d.cfg.ConnectTimeout
	key := []byte(d.cfg.RoleSecret)
	if len(key) == 0 {
		key = []byte(conn.Password)
	}
	if len(key) == 0 {
		return errors.New("db: database.role_secret: must be set when the database URL has no password " +
			"(the module roles' passwords derive from one of them)")
	}
	admin, err := d.newPool(conn, 2)
	if err != nil {
		return err
	}
	if err := admin.Ping(ctx); err != nil {
		admin.Close()
		return fmt.Errorf("db: connect to PostgreSQL at %s:%d: %w", conn.Host, conn.Port, err)
	}
	d.mu.Lock()
	d.conn, d.admin, d.key = conn, admin, key
	d.mu.Unlock()
	return nil
}

// Stop closes the admin pool and stops the local server, if Seam started one. Module pools are closed by
// their modules first.
func (d *Database) Stop(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	if d.admin != nil {
		d.admin.Close()
	}
	if d.local != nil {
		if err := d.local.Stop(ctx); err != nil {
			return fmt.Errorf("db: stop local PostgreSQL: %w", err)
		}
	}
	return nil
}

func (d *Database) newPool(conn *pgx.ConnConfig, maxConns int32) (*pgxpool.Pool, error) {
	pc, err := pgxpool.ParseConfig("")
	if err != nil {
		return nil, fmt.Errorf("db: pool config: %w", err)
	}
	pc.ConnConfig = conn.Copy()
	pc.MaxConns = maxConns
	return pgxpool.NewWithConfig(context.Background(), pc)
}

// ModulePool returns a new pool for module that connects as the module's role, with search_path set to
// the module's schema only. It connects lazily, so it may be made before Start; its first connection
// provisions the module (see Provision) unless that was done already. The caller closes it.
func (d *Database) ModulePool(module string) (*pgxpool.Pool, error) {
	return d.rolePool(module, d.cfg.MaxConns)
}

func (d *Database) rolePool(module string, maxConns int32) (*pgxpool.Pool, error) {
	role, err := d.Role(module)
	if err != nil {
		return nil, err
	}
	pc, err := pgxpool.ParseConfig("")
	if err != nil {
		return nil, fmt.Errorf("db: pool config: %w", err)
	}
	pc.MaxConns = maxConns
	pc.ConnConfig.RuntimeParams["application_name"] = "seam-" + module
	pc.ConnConfig.RuntimeParams["search_path"] = module // a plain identifier: Role validated it
	pc.BeforeConnect = func(ctx context.Context, cc *pgx.ConnConfig) error {
		d.mu.RLock()
		conn, key := d.conn, d.key
		d.mu.RUnlock()
		if conn == nil {
			return ErrNotStarted
		}
		if err := d.ensureProvisioned(ctx, module); err != nil {
			return err
		}
		cc.Host, cc.Port, cc.Database = conn.Host, conn.Port, conn.Database
		cc.User, cc.Password, cc.TLSConfig = role, rolePassword(key, role), conn.TLSConfig
		cc.ConnectTimeout, cc.Fallbacks = conn.ConnectTimeout, conn.Fallbacks
		return nil
	}
	return pgxpool.NewWithConfig(context.Background(), pc)
}

// Migrate provisions module (see Provision), then applies its migrations (and the platform's outbox/inbox
// tables) into the schema named after it, connected as the module's role so that the role owns every
// object they create.
func (d *Database) Migrate(ctx context.Context, module string, migrations fs.FS) error {
	if err := d.Provision(ctx, module); err != nil {
		return err
	}
	pool, err := d.rolePool(module, 2)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := migrate.Up(ctx, pool, module, migrations, d.logger); err != nil {
		return fmt.Errorf("db: migrate %s: %w", module, err)
	}
	return nil
}

// Ping checks the database answers (used by /readyz).
func (d *Database) Ping(ctx context.Context) error {
	d.mu.RLock()
	admin := d.admin
	d.mu.RUnlock()
	if admin == nil {
		return ErrNotStarted
	}
	return admin.Ping(ctx)
}
