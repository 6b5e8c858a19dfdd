package notifications

import (
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	notificationsapi "github.com/seamkit/seam/modules/notifications/api"
	"github.com/seamkit/seam/platform/errs"
	"github.com/seamkit/seam/platform/httpx"
)

// newRoutes mounts the module's HTTP API at /api/notifications.
func newRoutes(svc notificationsapi.Notifications, logger *slog.Logger) httpx.Routes {
	return httpx.Routes{Prefix: "/api/notifications", Mount: func(r chi.Router) {
		r.With(httpx.RequireUser(logger)).Get("/", httpx.Errors(logger, listHandler(svc)))
	}}
}

// notificationJSON is one notification in a response.
type notificationJSON struct {
	ID        string    `json:"id"`
	Template  string    `json:"template"`
	Subject   string    `json:"subject"`
	Body      string    `json:"body"`
	CreatedAt time.Time `json:"created_at"`
	Status    string    `json:"status"`
}

// listHandler serves GET /api/notifications?limit=N: the caller's notifications, newest first.
func listHandler(svc notificationsapi.Notifications) httpx.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		caller, err := httpx.Caller(r)
		if err != nil {
			return err
		}
		limit, err := parseLimit(r)
		if err != nil {
			return err
		}
		list, err := svc.List(r.Context(), caller.UserID, limit)
		if err != nil {
			return err
		}
		out := make([]notificationJSON, len(list))
		for i, n := range list {
			out[i] = notificationJSON{ID: n.ID, Template: n.Template, Subject: n.Subject, Body: n.Body,
				CreatedAt: n.CreatedAt.UTC(), Status: n.Status}
		}
		return httpx.WriteJSON(w, http.StatusOK, map[string]any{"notifications": out})
	}
}

// parseLimit reads ?limit=, which is optional but, when present, must be one integer from 1 to MaxLimit.
func parseLimit(r *http.Request) (int, error) {
	values, present := r.URL.Query()["limit"]
	if !present {
		return notificationsapi.DefaultLimit, nil
	}
	var c errs.Collector
	n, err := strconv.Atoi(values[0])
	c.Check(len(values) == 1 && err == nil && n >= 1 && n <= notificationsapi.MaxLimit,
		"limit", "must be one integer from 1 to %d", notificationsapi.MaxLimit)
	return n, c.Err()
}
