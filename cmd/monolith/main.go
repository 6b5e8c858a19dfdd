// Command monolith runs every Seam module in one process: auth, billing, notifications and reporting, on an
// embedded NATS server and (unless a database URL is configured) a local PostgreSQL it manages itself.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/seamkit/seam/modules/auth"
	"github.com/seamkit/seam/modules/billing"
	"github.com/seamkit/seam/modules/notifications"
	"github.com/seamkit/seam/modules/reporting"
	"github.com/seamkit/seam/platform/app"
)

func main() {
	configPath := flag.String("config", os.Getenv(app.ConfigEnv), "YAML configuration file (optional; SEAM_* variables override it)")
	flag.Parse()
	cfg, err := app.LoadConfig(*configPath, os.Environ())
	if err != nil {
		fmt.Fprintln(os.Stderr, "seam:", err)
		os.Exit(2)
	}
	err = app.Run(context.Background(), cfg, os.Stdout,
		auth.Module, billing.Module, notifications.Module, reporting.Module)
	if err != nil {
		fmt.Fprintln(os.Stderr, "seam:", err)
		os.Exit(1)
	}
}
