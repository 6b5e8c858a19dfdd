// Package notifications is the notifications module: it writes to users about what happens to their account
// and invoices. It consumes auth's and billing's events (never their tables), renders a message from an
// embedded template for each, stores it in its own schema and hands it to a Sender (the log by default,
// SMTP when configured), and lists a user's messages at GET /api/notifications.
//
// Delivery semantics: the stored message commits in the same transaction as the event's inbox record, so it
// exists exactly once per event. Sending happens inside that transaction, before the commit: a temporary
// failure rolls everything back and the event is delivered again later, while a crash between sending and
// committing makes the message be sent again (at-least-once for the external side effect, such as an email).
package notifications

import (
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/fx"

	notificationsapi "github.com/seamkit/seam/modules/notifications/api"
	notificationsremote "github.com/seamkit/seam/modules/notifications/api/remote"
	notificationsdata "github.com/seamkit/seam/modules/notifications/data"
	notificationsdomain "github.com/seamkit/seam/modules/notifications/domain"
	"github.com/seamkit/seam/platform/app"
	"github.com/seamkit/seam/platform/bus"
	"github.com/seamkit/seam/platform/httpx"
	sqlfs "github.com/seamkit/seam/sql"
)

// Name is the module's name: its configuration section, schema, and HTTP and consumer prefix.
const Name = "notifications"

// Module runs the notifications module in this process.
var Module = app.Module{Name: Name, Options: fx.Module(Name,
	app.Section[Config](Name),
	app.Storage(Name, sqlfs.Migrations(Name)),
	fx.Provide(fx.Private,
		fx.Annotate(notificationsdata.NewRepository, fx.As(new(notificationsdomain.Reader))),
		newSender,
		notificationsdomain.NewService,
	),
	fx.Provide(func(s *notificationsdomain.Service) notificationsapi.Notifications { return s }),
	fx.Provide(httpx.AsRoutes(newRoutes)),
	fx.Invoke(consume),
), Remote: app.RemoteAPI(notificationsremote.NewNotificationsClientFunc, notificationsremote.ServeNotifications,
	notificationsremote.NewNotificationsRouter, notificationsremote.NotificationsMethods)}

// consume starts the module's durable consumers.
func consume(lc fx.Lifecycle, consumers *app.Consumers, pool *pgxpool.Pool, b *bus.Bus, logger *slog.Logger,
	svc *notificationsdomain.Service) {
	for _, sub := range subscriptions(&handlers{svc: svc}) {
		app.Consume(lc, consumers, Name, pool, b, logger, sub)
	}
}
