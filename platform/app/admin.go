package app

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/seamkit/seam/platform/errs"
	"github.com/seamkit/seam/platform/httpx"
	"github.com/seamkit/seam/platform/identity"
	"github.com/seamkit/seam/platform/inbox"
	"github.com/seamkit/seam/platform/observe"
	"github.com/seamkit/seam/platform/route"
)

// AdminPrefix is where the admin API (dead letters, consumers, replay) is mounted; it serves admins only.
const AdminPrefix = "/api/admin"

var (
	// ErrBadDeadLetterID is returned for a dead-letter id that is not a UUID.
	ErrBadDeadLetterID = errs.New(errs.Invalid, "dlq.bad_id", "the dead-letter id must be a UUID")
	// ErrBadStatus is returned for a status filter other than pending, retried or discarded.
	ErrBadStatus = errs.New(errs.Invalid, "dlq.bad_status", "status must be pending, retried or discarded")
)

// DeadLetterView is a dead letter as the admin API shows it.
type DeadLetterView struct {
	ID            string              `json:"id"`
	Module        string              `json:"module"`
	Consumer      string              `json:"consumer"`
	EventID       string              `json:"event_id"`
	Subject       string              `json:"subject"`
	EventType     string              `json:"event_type"`
	Data          json.RawMessage     `json:"data"`
	Headers       map[string][]string `json:"headers"`
	Error         string              `json:"error"`
	Attempts      int                 `json:"attempts"`
	FirstFailedAt time.Time           `json:"first_failed_at"`
	LastFailedAt  time.Time           `json:"last_failed_at"`
	Status        string              `json:"status"`
	ResolvedAt    *time.Time          `json:"resolved_at"`
}

func deadLetterView(d ModuleDeadLetter) DeadLetterView {
	data := json.RawMessage(d.Data)
	if !json.Valid(data) {
		// Not JSON: show the bytes as a JSON string.
		data, _ = json.Marshal(string(d.Data))
	}
	return DeadLetterView{ID: d.ID.String(), Module: d.Module, Consumer: d.Consumer, EventID: d.EventID.String(),
		Subject: d.Subject, EventType: d.EventType, Data: data, Headers: d.Headers, Error: d.Error,
		Attempts: d.Attempts, FirstFailedAt: d.FirstFailedAt, LastFailedAt: d.LastFailedAt, Status: d.Status,
		ResolvedAt: d.ResolvedAt}
}

// adminRoutes serves the admin API at AdminPrefix: GET /dlq, GET /dlq/{module}/{id},
// POST /dlq/{module}/{id}/retry, POST /dlq/{module}/{id}/discard, GET /consumers, POST /replay/{module},
// the routing endpoints (routingRoutes) and the dashboard's data (GET /dashboard).
func adminRoutes(c *Consumers, t *route.Table, g *ModuleGraph, metrics *observe.Metrics, logger *slog.Logger) httpx.Routes {
	h := func(f httpx.HandlerFunc) http.HandlerFunc { return httpx.Errors(logger, f) }
	return httpx.Routes{Prefix: AdminPrefix, Mount: func(r chi.Router) {
		r.Use(httpx.RequireRole(identity.RoleAdmin, logger))
		routingRoutes(r, t, logger)
		dashboardDataRoute(r, t, c, g, metrics, logger)
		r.Get("/dlq", h(func(w http.ResponseWriter, r *http.Request) error {
			status := r.URL.Query().Get("status")
			switch status {
			case "", inbox.StatusPending, inbox.StatusRetried, inbox.StatusDiscarded:
			default:
				return ErrBadStatus
			}
			dls, err := c.DeadLetters(r.Context(), r.URL.Query().Get("module"), status)
			if err != nil {
				return err
			}
			views := make([]DeadLetterView, len(dls))
			for i, d := range dls {
				views[i] = deadLetterView(d)
			}
			return httpx.WriteJSON(w, http.StatusOK, map[string]any{"dead_letters": views})
		}))
		r.Get("/dlq/{module}/{id}", h(func(w http.ResponseWriter, r *http.Request) error {
			id, err := deadLetterID(r)
			if err != nil {
				return err
			}
			d, err := c.DeadLetter(r.Context(), chi.URLParam(r, "module"), id)
			if err != nil {
				return err
			}
			return httpx.WriteJSON(w, http.StatusOK, deadLetterView(d))
		}))
		r.Post("/dlq/{module}/{id}/retry", h(func(w http.ResponseWriter, r *http.Request) error {
			id, err := deadLetterID(r)
			if err != nil {
				return err
			}
			module := chi.URLParam(r, "module")
			applied, err := c.Retry(r.Context(), module, id)
			if err != nil {
				return err
			}
			d, err := c.DeadLetter(r.Context(), module, id)
			if err != nil {
				return err
			}
			return httpx.WriteJSON(w, http.StatusOK, map[string]any{"applied": applied, "dead_letter": deadLetterView(d)})
		}))
		r.Post("/dlq/{module}/{id}/discard", h(func(w http.ResponseWriter, r *http.Request) error {
			id, err := deadLetterID(r)
			if err != nil {
				return err
			}
			module := chi.URLParam(r, "module")
			if err := c.Discard(r.Context(), module, id); err != nil {
				return err
			}
			d, err := c.DeadLetter(r.Context(), module, id)
			if err != nil {
				return err
			}
			return httpx.WriteJSON(w, http.StatusOK, map[string]any{"dead_letter": deadLetterView(d)})
		}))
		r.Get("/consumers", h(func(w http.ResponseWriter, r *http.Request) error {
			st, err := c.Status(r.Context())
			if err != nil {
				return err
			}
			return httpx.WriteJSON(w, http.StatusOK, map[string]any{"consumers": st})
		}))
		r.Post("/replay/{module}", h(func(w http.ResponseWriter, r *http.Request) error {
			module := chi.URLParam(r, "module")
			forgotten, err := c.Replay(r.Context(), module)
			if err != nil {
				return err
			}
			return httpx.WriteJSON(w, http.StatusAccepted, map[string]any{"module": module, "status": "replaying",
				"events_to_reapply": forgotten})
		}))
	}}
}

func deadLetterID(r *http.Request) (uuid.UUID, error) {
	id, err := uuid.Parse(chi.URLParam(r, "id"))
	if err != nil {
		return uuid.UUID{}, ErrBadDeadLetterID
	}
	return id, nil
}
