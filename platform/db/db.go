// Package db gives each module its own PostgreSQL role, schema and connection pool, and applies the module's
// migrations as that role, on an external database or on a local server that Seam starts and manages itself.
package db

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
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
	// Modules puts single modules on a database of their own (database.modules.<module>.url), keyed by
	// module name; the other modules stay on URL (or the local server).
	Modules map[string]ModuleConfig `yaml:"modules"`
	// ModuleURLs is the form of Modules for the environment (SEAM_DATABASE_MODULE_URLS), where map entries
	// cannot be set: "<module>=<url>" entries separated by commas. An entry wins over the module's entry in
	// Modules.
	ModuleURLs string `yaml:"module_urls" secret:"true"`
}

// ModuleConfig is a module's entry under database.modules.
type ModuleConfig struct {
	// URL of the PostgreSQL database the module runs on, as an admin user like database.url's: Seam
	// provisions the module's role and schema there and migrates it, as it does on the main database.
	URL string `yaml:"url" secret:"url"`
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
	if c.URL != "" && !validURL(c.URL) {
		return errors.New("database.url: not a valid PostgreSQL URL")
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
	for _, module := range slices.Sorted(maps.Keys(c.Modules)) {
		key := "database.modules." + module
		if err := migrate.ValidateSchema(module); err != nil {
			return fmt.Errorf("%s: not a module name: %w", key, err)
		}
		url := c.Modules[module].URL
		if url == "" {
			return fmt.Errorf("%s.url: must be set", key)
		}
		if !validURL(url) {
			return fmt.Errorf("%s.url: not a valid PostgreSQL URL", key)
		}
	}
	_, err := parseModuleURLs(c.ModuleURLs)
	return err
}

// ModuleDatabases returns the admin URL of every module that runs on a database of its own, keyed by
// module: database.modules.<module>.url, overridden by the module's entry in database.module_urls.
func (c Config) ModuleDatabases() (map[string]string, error) {
	fromEnv, err := parseModuleURLs(c.ModuleURLs)
	if err != nil {
		return nil, err
	}
	urls := make(map[string]string, len(c.Modules)+len(fromEnv))
	for module, m := range c.Modules {
		urls[module] = m.URL
	}
	maps.Copy(urls, fromEnv)
	return urls, nil
}

// moduleURLEntry finds where an entry of database.module_urls starts: a module name and '=' at the start
// or after a comma. A comma followed by anything else (as between the hosts of a multi-host URL) belongs
// to the URL.
var moduleURLEntry = regexp.MustCompile(`(?:^|,)\s*([a-z][a-z0-9_]*)\s*=`)

// parseModuleURLs parses database.module_urls ("billing=postgres://...,notifications=postgres://...").
func parseModuleURLs(raw string) (map[string]string, error) {
	const key = "database.module_urls"
	if strings.TrimSpace(raw) == "" {
		return nil, nil
	}
	starts := moduleURLEntry.FindAllStringSubmatchIndex(raw, -1)
	if len(starts) == 0 || strings.TrimSpace(raw[:starts[0][0]]) != "" {
		return nil, fmt.Errorf("%s: want <module>=<url> entries separated by commas", key)
	}
	urls := make(map[string]string, len(starts))
	for i, m := range starts {
		end := len(raw)
		if i+1 < len(starts) {
			end = starts[i+1][0]
		}
		module, url := raw[m[2]:m[3]], strings.TrimSpace(raw[m[1]:end])
		if err := migrate.ValidateSchema(module); err != nil {
			return nil, fmt.Errorf("%s: entry %s: not a module name: %w", key, module, err)
		}
		if _, dup := urls[module]; dup {
			return nil, fmt.Errorf("%s: module %s appears twice", key, module)
		}
		if !validURL(url) {
			return nil, fmt.Errorf("%s: entry %s: not a valid PostgreSQL URL", key, module)
		}
		urls[module] = url
	}
	return urls, nil
}

// validURL reports whether url is a PostgreSQL connection string pgx accepts.
func validURL(url string) bool {
	_, err := pgx.ParseConfig(url)
	return err == nil
}

// Database is the process's access to PostgreSQL: an admin connection (the local server's superuser, or
// database.url) that provisions one role and schema per module, and module pools that connect as those
// roles. A module listed under database.modules is provisioned, migrated and connected on its own database
// instead, through that database's admin connection. Pools can be made before Start: they connect lazily,
// with the address resolved (and the module provisioned) when the first connection is opened.
type Database struct {
	cfg     Config
	dataDir string
	logger  *slog.Logger

	mu     sync.RWMutex
	main   *server
	own    map[string]*server // the modules on a database of their own
	local  *pgserver.Server
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

// server is one database modules are provisioned on: its admin pool, its address, and the key the module
// roles' passwords derive from there.
type server struct {
	conn  *pgx.ConnConfig
	key   []byte
	admin *pgxpool.Pool
}

// ErrNotStarted is returned when a connection is attempted before Start.
var ErrNotStarted = errors.New("db: database not started")

// ErrNoLocalServer is returned by LocalServerURL when the data directory holds no local server.
var ErrNoLocalServer = errors.New("db: no local PostgreSQL server in the data directory")

// localOptions are the options of the local server Seam manages in dataDir.
func localOptions(cfg Config, dataDir string, logger *slog.Logger) pgserver.Options {
	return pgserver.Options{Dir: filepath.Join(dataDir, "postgres"), BinDir: cfg.BinDir, Port: cfg.LocalPort, Logger: logger}
}

// LocalServerURL returns the superuser URL of the local server Seam manages in dataDir (the database of a
// configuration without database.url), for tools such as `seam db move`: it starts the server when it is
// not running and leaves it running. It never creates a cluster: without one it returns ErrNoLocalServer.
func LocalServerURL(ctx context.Context, cfg Config, dataDir string, logger *slog.Logger) (string, error) {
	o := localOptions(cfg, dataDir, logger)
	if _, err := os.Stat(o.Dir); err != nil {
		return "", fmt.Errorf("%w (%s): %w", ErrNoLocalServer, o.Dir, err)
	}
	srv, err := pgserver.Start(ctx, o)
	if err != nil {
		return "", fmt.Errorf("db: start local PostgreSQL: %w", err)
	}
	return srv.URL("seam"), nil
}

// Start starts the local server when no URL is configured, then checks the database answers. It fails
// when neither database.role_secret nor the admin connection's password is set, as module role passwords
// derive from one of them. The admin pools of the modules on a database of their own (database.modules)
// are made too; they connect when such a module is first provisioned.
func (d *Database) Start(ctx context.Context) error {
	own, err := d.cfg.ModuleDatabases()
	if err != nil {
		return fmt.Errorf("db: %w", err)
	}
	url := d.cfg.URL
	if url == "" {
		o := localOptions(d.cfg, d.dataDir, d.logger)
		srv, err := pgserver.Start(ctx, o)
		if err != nil {
			return fmt.Errorf("db: start local PostgreSQL: %w", err)
		}
		d.mu.Lock()
		d.local = srv
		d.mu.Unlock()
		url = srv.URL("seam")
		d.logger.Info("local PostgreSQL running", slog.Int("port", srv.Port()), slog.String("dir", o.Dir))
	}
	main, err := d.newServer(url, "the database URL")
	if err != nil {
		return err
	}
	if err := main.admin.Ping(ctx); err != nil {
		main.admin.Close()
		return fmt.Errorf("db: connect to PostgreSQL at %s: %w", address(main.conn), err)
	}
	servers := make(map[string]*server, len(own))
	for _, module := range slices.Sorted(maps.Keys(own)) {
		s, err := d.newServer(own[module], "database.modules."+module+".url")
		if err != nil {
			main.admin.Close()
			for _, s := range servers {
				s.admin.Close()
			}
			return err
		}
		servers[module] = s
		d.logger.Info("module on a database of its own", slog.String("module", module), slog.String("database", address(s.conn)))
	}
	d.mu.Lock()
	d.main, d.own = main, servers
	d.mu.Unlock()
	return nil
}

// newServer parses the admin URL of a database (described by what, for error messages) and makes its
// admin pool, which connects lazily.
func (d *Database) newServer(url, what string) (*server, error) {
	conn, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("db: parse %s: %w", what, err)
	}
	conn.ConnectTimeout = d.cfg.ConnectTimeout
	key := []byte(d.cfg.RoleSecret)
	if len(key) == 0 {
		key = []byte(conn.Password)
	}
	if len(key) == 0 {
		return nil, fmt.Errorf("db: database.role_secret: must be set when %s has no password "+
			"(the module roles' passwords derive from one of them)", what)
	}
	admin, err := d.newPool(conn, 2)
	if err != nil {
		return nil, err
	}
	return &server{conn: conn, key: key, admin: admin}, nil
}

// address describes where conn connects, for messages: host:port/database, never the password.
func address(conn *pgx.ConnConfig) string {
	return fmt.Sprintf("%s:%d/%s", conn.Host, conn.Port, conn.Database)
}

// serverOf returns the database module runs on.
func (d *Database) serverOf(module string) (*server, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.main == nil {
		return nil, ErrNotStarted
	}
	if s, ok := d.own[module]; ok {
		return s, nil
	}
	return d.main, nil
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
	if d.main != nil {
		d.main.admin.Close()
	}
	for _, s := range d.own {
		s.admin.Close()
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
		s, err := d.serverOf(module)
		if err != nil {
			return err
		}
		if err := d.ensureProvisioned(ctx, module); err != nil {
			return err
		}
		conn := s.conn
		cc.Host, cc.Port, cc.Database = conn.Host, conn.Port, conn.Database
		cc.User, cc.Password, cc.TLSConfig = role, rolePassword(s.key, role), conn.TLSConfig
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

// Ping checks the database answers (used by /readyz), and so do the databases of their own of the modules
// this process has provisioned.
func (d *Database) Ping(ctx context.Context) error {
	d.mu.RLock()
	main, own := d.main, d.own
	d.mu.RUnlock()
	if main == nil {
		return ErrNotStarted
	}
	if err := main.admin.Ping(ctx); err != nil {
		return err
	}
	d.provisionMu.Lock()
	var used []string
	for module := range own {
		if d.provisioned[module] {
			used = append(used, module)
		}
	}
	d.provisionMu.Unlock()
	slices.Sort(used)
	for _, module := range used {
		if err := own[module].admin.Ping(ctx); err != nil {
			return fmt.Errorf("db: database of module %s: %w", module, err)
		}
	}
	return nil
}
