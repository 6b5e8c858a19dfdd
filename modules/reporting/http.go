package reporting

import (
	"log/slog"
	"net/http"

	"github.com/go-chi/chi/v5"

	reportingapi "github.com/seamkit/seam/modules/reporting/api"
	"github.com/seamkit/seam/platform/httpx"
	"github.com/seamkit/seam/platform/identity"
)

// newRoutes mounts the module's HTTP API at /api/reports; every route is for admins only.
func newRoutes(reports reportingapi.Reports, logger *slog.Logger) httpx.Routes {
	return httpx.Routes{Prefix: RoutePrefix, Mount: func(r chi.Router) {
		r.With(httpx.RequireRole(identity.RoleAdmin, logger)).Get("/summary", httpx.Errors(logger, summaryHandler(reports)))
	}}
}

// summaryHandler serves GET /api/reports/summary?from=YYYY-MM-DD&to=YYYY-MM-DD.
func summaryHandler(reports reportingapi.Reports) httpx.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		q := r.URL.Query()
		sum, err := reports.Summary(r.Context(), q.Get("from"), q.Get("to"))
		if err != nil {
			return err
		}
		return httpx.WriteJSON(w, http.StatusOK, sum)
	}
}
