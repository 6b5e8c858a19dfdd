// Package reporting is the reporting module: a read model of daily signups, invoices, revenue and failed
// payments, built only from auth's and billing's events (never their tables) and served to admins at
// GET /api/reports/summary. Events count on the UTC day of their own timestamp, so replaying them rebuilds
// the same tables; each is applied once, in the same transaction as its inbox record.
package reporting

import (
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/fx"

	reportingapi "github.com/seamkit/seam/modules/reporting/api"
	reportingremote "github.com/seamkit/seam/modules/reporting/api/remote"
	reportingdata "github.com/seamkit/seam/modules/reporting/data"
	reportingdomain "github.com/seamkit/seam/modules/reporting/domain"
	"github.com/seamkit/seam/platform/app"
	"github.com/seamkit/seam/platform/bus"
	"github.com/seamkit/seam/platform/httpx"
	sqlfs "github.com/seamkit/seam/sql"
)

// Name is the module's name: its configuration section, schema, and consumer prefix.
const Name = "reporting"

// Config is the reporting section of the configuration (modules.reporting); the module has no settings yet,
// and an empty section keeps unknown keys an error.
type Config struct{}

// Module runs the reporting module in this process.
var Module = app.Module{Name: Name, Options: fx.Module(Name,
	app.Section[Config](Name),
	app.Storage(Name, sqlfs.Migrations(Name)),
	fx.Provide(fx.Private,
		fx.Annotate(reportingdata.NewRepository, fx.As(new(reportingdomain.Reader))),
	),
	fx.Provide(fx.Annotate(reportingdomain.NewService, fx.As(new(reportingapi.Reports)))),
	fx.Provide(httpx.AsRoutes(newRoutes)),
	app.ReadModel(Name, reportingdata.Reset),
	fx.Invoke(consume),
), Remote: app.RemoteAPI(reportingremote.NewReportsClientFunc, reportingremote.ServeReports,
	reportingremote.NewReportsRouter, reportingremote.ReportsMethods), HTTPPrefix: RoutePrefix}

// RoutePrefix is where the module's HTTP routes live (the reports, not the module, name the resource).
const RoutePrefix = "/api/reports"

// consume starts the module's durable consumers.
func consume(lc fx.Lifecycle, consumers *app.Consumers, pool *pgxpool.Pool, b *bus.Bus, logger *slog.Logger) {
	for _, sub := range subscriptions() {
		app.Consume(lc, consumers, Name, pool, b, logger, sub)
	}
}
