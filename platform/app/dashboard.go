package app

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/seamkit/seam/platform/dashboard"
	"github.com/seamkit/seam/platform/httpx"
	"github.com/seamkit/seam/platform/inbox"
	"github.com/seamkit/seam/platform/observe"
	"github.com/seamkit/seam/platform/route"
)

// DashboardPrefix is where the admin dashboard's page is served; its data comes from the admin API.
const DashboardPrefix = "/admin"

// DeadLetterCounts is a module's dead letters by status.
type DeadLetterCounts struct {
	Module    string `json:"module"`
	Pending   int64  `json:"pending"`
	Retried   int64  `json:"retried"`
	Discarded int64  `json:"discarded"`
}

// DashboardView is everything the dashboard shows, in one answer of GET /api/admin/dashboard.
type DashboardView struct {
	GeneratedAt   time.Time               `json:"generated_at"`
	Modules       []route.ModuleSnapshot  `json:"modules"`
	Discrepancies []route.Discrepancy     `json:"discrepancies"`
	Outboxes      []observe.OutboxBacklog `json:"outboxes"`
	DeadLetters   []DeadLetterCounts      `json:"dead_letters"`
	Consumers     []ConsumerStatus        `json:"consumers"`
	Graph         struct {
		Nodes []GraphNode `json:"nodes"`
		Edges []GraphEdge `json:"edges"`
	} `json:"graph"`
	// Problems lists what could not be read (the bus or a database being down), for the page to show.
	Problems []string `json:"problems"`
}

// maxDashboardDiscrepancies is how many of each module's newest discrepancies the dashboard shows.
const maxDashboardDiscrepancies = 20

// dashboardView gathers the dashboard's data; parts that cannot be read are reported in Problems.
func dashboardView(r *http.Request, t *route.Table, c *Consumers, g *ModuleGraph, metrics *observe.Metrics) DashboardView {
	ctx := r.Context()
	v := DashboardView{GeneratedAt: time.Now().UTC(), Outboxes: metrics.Outboxes(), Discrepancies: []route.Discrepancy{},
		DeadLetters: []DeadLetterCounts{}, Consumers: []ConsumerStatus{}, Problems: []string{}}
	for _, mod := range t.Modules() {
		v.Modules = append(v.Modules, mod.Snapshot())
		if mod.Mode() != route.ModeSplit {
			continue
		}
		ds, err := mod.Discrepancies(ctx, maxDashboardDiscrepancies)
		if err != nil {
			v.Problems = append(v.Problems, "discrepancies of "+mod.Name()+": unavailable")
		}
		v.Discrepancies = append(v.Discrepancies, ds...)
	}
	for _, name := range c.names() {
		m, err := c.lookup(name)
		if err != nil {
			continue
		}
		counts, err := inbox.CountDeadLetters(ctx, m.pool, name)
		if err != nil {
			v.Problems = append(v.Problems, "dead letters of "+name+": unavailable")
			continue
		}
		v.DeadLetters = append(v.DeadLetters, DeadLetterCounts{Module: name, Pending: counts[inbox.StatusPending],
			Retried: counts[inbox.StatusRetried], Discarded: counts[inbox.StatusDiscarded]})
	}
	if st, err := c.Status(ctx); err == nil {
		v.Consumers = st
	} else {
		v.Problems = append(v.Problems, "consumers: the bus is unavailable")
	}
	v.Graph.Nodes, v.Graph.Edges = g.Nodes(), g.Edges()
	return v
}

// dashboardRoutes serves the dashboard's page at DashboardPrefix: a page without data (it asks an admin to
// log in and then reads the admin API with the admin's token), so it needs no authentication itself.
func dashboardRoutes() httpx.Routes {
	return httpx.Routes{Prefix: DashboardPrefix, Mount: func(r chi.Router) {
		r.Get("/", dashboard.Handler().ServeHTTP)
	}}
}

// dashboardDataRoute serves GET /dashboard under the admin API.
func dashboardDataRoute(r chi.Router, t *route.Table, c *Consumers, g *ModuleGraph, metrics *observe.Metrics, logger *slog.Logger) {
	r.Get("/dashboard", httpx.Errors(logger, func(w http.ResponseWriter, r *http.Request) error {
		return httpx.WriteJSON(w, http.StatusOK, dashboardView(r, t, c, g, metrics))
	}))
}
