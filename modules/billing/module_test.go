package billing

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.uber.org/fx"

	authapi "github.com/seamkit/seam/modules/auth/api"
	billingapi "github.com/seamkit/seam/modules/billing/api"
	"github.com/seamkit/seam/platform/app"
	"github.com/seamkit/seam/platform/bus"
	"github.com/seamkit/seam/platform/db"
	"github.com/seamkit/seam/platform/httpx"
	"github.com/seamkit/seam/platform/observe"
)

func TestConfig(t *testing.T) {
	var c Config
	c.SetDefaults()
	if c.Provider != ProviderSimulated || c.PaymentTimeout <= 0 {
		t.Fatalf("defaults = %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	tests := []struct {
		name    string
		change  func(*Config)
		wantKey string
	}{
		{"unknown provider", func(c *Config) { c.Provider = "stripe" }, "provider:"},
		{"negative payment timeout", func(c *Config) { c.PaymentTimeout = -time.Second }, "payment_timeout:"},
		{"zero payment timeout", func(c *Config) { c.PaymentTimeout = 0 }, "payment_timeout:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := c
			tt.change(&c)
			err := c.Validate()
			if err == nil || !strings.HasPrefix(err.Error(), tt.wantKey) {
				t.Errorf("Validate() = %v, want an error starting %q", err, tt.wantKey)
			}
		})
	}
}

// noAuth stands in for the auth module's authapi.Auth.
type noAuth struct{}

func (noAuth) VerifyToken(context.Context, string) (authapi.Identity, error) {
	return authapi.Identity{}, authapi.ErrInvalidToken
}

func (noAuth) GetUser(context.Context, string) (authapi.User, error) {
	return authapi.User{}, authapi.ErrUserNotFound
}

func TestModuleGraph(t *testing.T) {
	err := fx.ValidateApp(
		fx.NopLogger,
		fx.Supply(&app.Config{}, slog.New(slog.DiscardHandler)),
		fx.Provide(
			func() *db.Database { return nil },
			func() *bus.Bus { return nil },
			func() *observe.Metrics { return nil },
			app.NewModulePools,
			func() authapi.Auth { return noAuth{} },
		),
		Module.Options,
		fx.Invoke(fx.Annotate(func(billingapi.Billing, []httpx.Routes) {}, fx.ParamTags(``, `group:"routes"`))),
	)
	if err != nil {
		t.Fatalf("the module's dependency graph is incomplete: %v", err)
	}
	if Module.Name != Name {
		t.Errorf("Module.Name = %q, want %q", Module.Name, Name)
	}
}
