// Package billing is the billing module: invoices and their idempotent payment, behind the billingapi
// contract, with its HTTP API under /api/billing and its events published through its outbox.
package billing

import (
	"fmt"
	"log/slog"
	"time"

	"go.uber.org/fx"

	authapi "github.com/seamkit/seam/modules/auth/api"
	billingapi "github.com/seamkit/seam/modules/billing/api"
	billingremote "github.com/seamkit/seam/modules/billing/api/remote"
	billingdata "github.com/seamkit/seam/modules/billing/data"
	billingdomain "github.com/seamkit/seam/modules/billing/domain"
	"github.com/seamkit/seam/platform/app"
	"github.com/seamkit/seam/platform/httpx"
	sqlfs "github.com/seamkit/seam/sql"
)

// Name is the module's name: its config section, schema, stream and route prefix derive from it.
const Name = "billing"

// ProviderSimulated selects billingdomain.SimulatedProvider, which moves no money.
const ProviderSimulated = "simulated"

// Config is billing's section of the configuration (modules.billing).
type Config struct {
	// Provider selects the payment provider; "simulated" is the only one for now.
	Provider string `yaml:"provider"`
	// PaymentTimeout bounds one payment once its idempotency key is claimed: waiting for the invoice lock,
	// the charge and recording it.
	PaymentTimeout time.Duration `yaml:"payment_timeout"`
}

// SetDefaults fills unset fields.
func (c *Config) SetDefaults() {
	if c.Provider == "" {
		c.Provider = ProviderSimulated
	}
	if c.PaymentTimeout == 0 {
		c.PaymentTimeout = billingdomain.DefaultPaymentTimeout
	}
}

// Validate checks the section; errors start with the bad key.
func (c Config) Validate() error {
	if c.Provider != ProviderSimulated {
		return fmt.Errorf("provider: must be %q, got %q", ProviderSimulated, c.Provider)
	}
	if c.PaymentTimeout <= 0 {
		return fmt.Errorf("payment_timeout: must be positive, got %s", c.PaymentTimeout)
	}
	return nil
}

// Module runs the billing module in this process.
var Module = app.Module{Name: Name, Options: fx.Module(Name,
	app.Section[Config](Name),
	app.Storage(Name, sqlfs.Migrations(Name)),
	app.Publisher(Name),
	fx.Provide(
		fx.Private,
		fx.Annotate(billingdata.NewRepository, fx.As(new(billingdomain.Repository))),
		newProvider,
		newService,
	),
	upgrades,
	fx.Provide(func(s *billingdomain.Service) billingapi.Billing { return s }),
	fx.Provide(httpx.AsRoutes(newRoutes)),
), Remote: app.RemoteAPI(billingremote.NewBillingClientFunc, billingremote.ServeBilling,
	billingremote.NewBillingRouter, billingremote.BillingMethods)}

// newProvider returns the configured payment provider.
func newProvider(cfg Config) (billingdomain.PaymentProvider, error) {
	switch cfg.Provider {
	case ProviderSimulated:
		return billingdomain.SimulatedProvider{}, nil
	default:
		return nil, fmt.Errorf("modules.billing.provider: unknown provider %q", cfg.Provider)
	}
}

func newService(repo billingdomain.Repository, provider billingdomain.PaymentProvider, auth authapi.Auth,
	logger *slog.Logger, cfg Config) *billingdomain.Service {
	return billingdomain.NewService(repo, provider, auth, logger, billingdomain.Options{
		PaymentTimeout: cfg.PaymentTimeout,
	})
}
