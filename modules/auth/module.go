// Package auth runs the auth module: accounts, login and the access tokens every other module trusts. It
// provides authapi.Auth and the httpx.TokenVerifier the HTTP layer authenticates requests with.
package auth

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.uber.org/fx"

	authapi "github.com/seamkit/seam/modules/auth/api"
	authremote "github.com/seamkit/seam/modules/auth/api/remote"
	authdata "github.com/seamkit/seam/modules/auth/data"
	authdomain "github.com/seamkit/seam/modules/auth/domain"
	"github.com/seamkit/seam/platform/app"
	"github.com/seamkit/seam/platform/httpx"
	sqlfs "github.com/seamkit/seam/sql"
)

// Name is the module's name: its configuration section, database schema, bus stream and route prefix.
const Name = "auth"

// InitialAdminPasswordFile is the file, in the data directory, that receives a generated first admin
// password.
const InitialAdminPasswordFile = "initial-admin-password"

// Bounds on token_ttl.
const (
	// MinTokenTTL is the shortest access token lifetime the configuration accepts.
	MinTokenTTL = time.Minute
	// MaxTokenTTL is the longest access token lifetime the configuration accepts.
	MaxTokenTTL = 24 * time.Hour
	// MaxTokenCacheTTL is the longest token_cache_ttl the configuration accepts.
	MaxTokenCacheTTL = 5 * time.Minute
	// MaxTokenCacheSize is the largest token_cache_size the configuration accepts.
	MaxTokenCacheSize = 1_000_000
)

// Config is the auth module's configuration section (modules.auth, SEAM_AUTH_*).
type Config struct {
	// Issuer is the iss claim of access tokens.
	Issuer string `yaml:"issuer"`
	// Audience is the aud claim of access tokens.
	Audience string `yaml:"audience"`
	// TokenTTL is how long an access token is valid.
	TokenTTL time.Duration `yaml:"token_ttl"`
	// SigningKeySeed, when set, pins the signing key: the standard base64 of a 32-byte Ed25519 seed. Without
	// it the key is generated once and shared through the database.
	SigningKeySeed string `yaml:"signing_key_seed" secret:"true"`
	// AdminEmail is the email of the admin account created on first start.
	AdminEmail string `yaml:"admin_email"`
	// AdminPassword is that admin's password; empty means a random one, written to
	// <data_dir>/initial-admin-password.
	AdminPassword string `yaml:"admin_password" secret:"true"`
	// TokenCacheTTL is how long every process's HTTP layer trusts a token it verified before verifying it
	// again (never past the token's expiry), whether auth runs in the process or not.
	TokenCacheTTL time.Duration `yaml:"token_cache_ttl"`
	// TokenCacheSize is how many verified tokens each process remembers.
	TokenCacheSize int `yaml:"token_cache_size"`
}

// SetDefaults fills unset fields.
func (c *Config) SetDefaults() {
	if c.Issuer == "" {
		c.Issuer = "seam"
	}
	if c.Audience == "" {
		c.Audience = "seam"
	}
	if c.TokenTTL == 0 {
		c.TokenTTL = time.Hour
	}
	if c.AdminEmail == "" {
		c.AdminEmail = "admin@seam.local"
	}
	if c.TokenCacheTTL == 0 {
		c.TokenCacheTTL = DefaultTokenCacheTTL
	}
	if c.TokenCacheSize == 0 {
		c.TokenCacheSize = DefaultTokenCacheSize
	}
}

// Validate checks the section; the error names the first bad key.
func (c Config) Validate() error {
	if strings.TrimSpace(c.Issuer) == "" {
		return errors.New("issuer: must not be empty")
	}
	if strings.TrimSpace(c.Audience) == "" {
		return errors.New("audience: must not be empty")
	}
	if c.TokenTTL < MinTokenTTL || c.TokenTTL > MaxTokenTTL {
		return fmt.Errorf("token_ttl: must be between %s and %s, got %s", MinTokenTTL, MaxTokenTTL, c.TokenTTL)
	}
	if c.SigningKeySeed != "" {
		if _, err := c.seed(); err != nil {
			return fmt.Errorf("signing_key_seed: %w", err)
		}
	}
	if _, err := authdomain.NormalizeEmail(c.AdminEmail); err != nil {
		return fmt.Errorf("admin_email: %w", err)
	}
	if c.AdminPassword != "" {
		if err := authdomain.ValidatePassword(c.AdminPassword); err != nil {
			return fmt.Errorf("admin_password: %w", err)
		}
	}
	if c.TokenCacheTTL < time.Second || c.TokenCacheTTL > MaxTokenCacheTTL {
		return fmt.Errorf("token_cache_ttl: must be between 1s and %s, got %s", MaxTokenCacheTTL, c.TokenCacheTTL)
	}
	if c.TokenCacheSize < 1 || c.TokenCacheSize > MaxTokenCacheSize {
		return fmt.Errorf("token_cache_size: must be between 1 and %d, got %d", MaxTokenCacheSize, c.TokenCacheSize)
	}
	return nil
}

// seed decodes SigningKeySeed; it never echoes the secret in errors.
func (c Config) seed() ([]byte, error) {
	seed, err := base64.StdEncoding.Strict().DecodeString(strings.TrimSpace(c.SigningKeySeed))
	if err != nil {
		return nil, errors.New("must be standard base64 (with padding)")
	}
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("must decode to %d bytes, got %d", ed25519.SeedSize, len(seed))
	}
	return seed, nil
}

// Module runs the auth module in this process.
var Module = app.Module{Name: Name, Options: fx.Module(Name,
	app.Section[Config](Name),
	app.Storage(Name, sqlfs.Migrations(Name)),
	app.Publisher(Name),
	fx.Provide(
		fx.Private,
		authdata.NewRepository,
		newService,
	),
	fx.Provide(
		func(s *authdomain.Service) authapi.Auth { return s },
		fx.Annotate(newTokenVerifier, fx.As(new(httpx.TokenVerifier))),
	),
	fx.Provide(httpx.AsRoutes(newRoutes)),
), Remote: app.RemoteAPI(authremote.NewAuthClientFunc, authremote.ServeAuth,
	authremote.NewAuthRouter, authremote.AuthMethods,
	app.Section[Config](Name),
	fx.Provide(fx.Annotate(newTokenVerifier, fx.As(new(httpx.TokenVerifier)))))}

// serviceParams is what newService needs from the application.
type serviceParams struct {
	fx.In
	Lifecycle fx.Lifecycle
	Config    Config
	App       *app.Config
	Repo      *authdata.Repository
	Logger    *slog.Logger
}

// newService builds the domain service and, at start (after the module's migrations), loads the signing
// keys and creates the first admin.
func newService(p serviceParams) (*authdomain.Service, error) {
	opts := authdomain.Options{Issuer: p.Config.Issuer, Audience: p.Config.Audience, TokenTTL: p.Config.TokenTTL}
	if p.Config.SigningKeySeed != "" {
		seed, err := p.Config.seed()
		if err != nil {
			return nil, fmt.Errorf("modules.auth.signing_key_seed: %w", err)
		}
		key, err := authdomain.SigningKeyFromSeed(seed, time.Now())
		if err != nil {
			return nil, fmt.Errorf("modules.auth.signing_key_seed: %w", err)
		}
		opts.PinnedKey = &key
	}
	svc, err := authdomain.NewService(p.Repo, opts, p.Logger)
	if err != nil {
		return nil, err
	}
	p.Lifecycle.Append(fx.Hook{OnStart: func(ctx context.Context) error {
		if err := svc.Start(ctx); err != nil {
			return err
		}
		return ensureAdmin(ctx, svc, p.Config, p.App.DataDir, p.Logger)
	}})
	return svc, nil
}

// ensureAdmin creates the first admin when there is none; a generated password goes to a file in dataDir
// (written before the account commits, so it is never lost), and only the file's path is logged.
func ensureAdmin(ctx context.Context, svc *authdomain.Service, cfg Config, dataDir string, logger *slog.Logger) error {
	path := filepath.Join(dataDir, InitialAdminPasswordFile)
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	created, err := svc.EnsureAdmin(ctx, cfg.AdminEmail, cfg.AdminPassword, func(_ context.Context, password string) error {
		return writeSecretFile(path, password+"\n")
	})
	if err != nil {
		return err
	}
	if !created {
		return nil
	}
	logger.InfoContext(ctx, "first admin created", slog.String("email", cfg.AdminEmail))
	if cfg.AdminPassword == "" {
		logger.WarnContext(ctx, "initial admin password written to "+path)
	}
	return nil
}

// writeSecretFile replaces path with content, readable by the owner only; it writes a temporary file and
// renames it, so a reader never sees a partial secret.
func writeSecretFile(path, content string) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+"-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.WriteString(content); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
