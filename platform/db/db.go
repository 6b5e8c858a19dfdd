// Package db gives each module its own PostgreSQL connection pool and applies its migrations into its own
// schema, on an external database or on a local server that Seam starts and manages itself.
package db

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
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
}

// SetDefaults fills unset fields.
func (c *Config) SetDefaults() {
	if c.MaxConns == 0 {
		c.MaxConns = 10
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = 5 * time.Second
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
	return nil
}

// Database is the process's access to PostgreSQL. Pools can be made before Start: they connect lazily,
// with the address resolved when the first connection is opened.
type Database struct {
	cfg     Config
	dataDir string
	logger  *slog.Logger

	mu     sync.RWMutex
	conn   *pgx.ConnConfig
	local  *pgserver.Server
	admin  *pgxpool.Pool
	closed bool
}

// New prepares access to the configured database; dataDir holds the local server when no URL is set.
func New(cfg Config, dataDir string, logger *slog.Logger) *Database {
	return &Database{cfg: cfg, dataDir: dataDir, logger: logger}
}

// ErrNotStarted is returned when a connection is attempted before Start.
var ErrNotStarted = errors.New("db: database not started")

// Start starts the local server when no URL is configured, then checks the database answers.
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
	admin, err := d.newPool(conn, 2)
	if err != nil {
		return err
	}
	if err := admin.Ping(ctx); err != nil {
		admin.Close()
		return fmt.Errorf("db: connect to PostgreSQL at %s:%d: %w", conn.Host, conn.Port, err)
	}
	d.mu.Lock()
	d.conn, d.admin = conn, admin
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

// ModulePool returns a new pool for module; it connects lazily, so it may be made before Start. The caller
// closes it.
func (d *Database) ModulePool(module string) (*pgxpool.Pool, error) {
	pc, err := pgxpool.ParseConfig("")
	if err != nil {
		return nil, fmt.Errorf("db: pool config: %w", err)
	}
	pc.MaxConns = d.cfg.MaxConns
	pc.ConnConfig.RuntimeParams["application_name"] = "seam-" + module
	pc.BeforeConnect = func(_ context.Context, cc *pgx.ConnConfig) error {
		d.mu.RLock()
		defer d.mu.RUnlock()
		if d.conn == nil {
			return ErrNotStarted
		}
		cc.Host, cc.Port, cc.Database = d.conn.Host, d.conn.Port, d.conn.Database
		cc.User, cc.Password, cc.TLSConfig = d.conn.User, d.conn.Password, d.conn.TLSConfig
		cc.ConnectTimeout, cc.Fallbacks = d.conn.ConnectTimeout, d.conn.Fallbacks
		return nil
	}
	return pgxpool.NewWithConfig(context.Background(), pc)
}

// Migrate applies module's migrations (and the platform's outbox/inbox tables) into the schema named after it.
func (d *Database) Migrate(ctx context.Context, module string, migrations fs.FS) error {
	d.mu.RLock()
	admin := d.admin
	d.mu.RUnlock()
	if admin == nil {
		return ErrNotStarted
	}
	if err := migrate.Up(ctx, admin, module, migrations, d.logger); err != nil {
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
