package app

import (
	"log/slog"
	"net/http"
	"strconv"

	"github.com/go-chi/chi/v5"

	"github.com/seamkit/seam/platform/errs"
	"github.com/seamkit/seam/platform/httpx"
	"github.com/seamkit/seam/platform/identity"
	"github.com/seamkit/seam/platform/route"
)

// ErrUnknownRoutedModule is returned by the routing admin API for a module this process does not route.
var ErrUnknownRoutedModule = errs.New(errs.NotFound, "route.unknown_module", "this process routes no module of that name")

// RolloutRequest is the body of PUT /api/admin/routes/{module}: the remote share of the module (or, with
// method, of one of its methods), optionally whether to shadow, and why.
type RolloutRequest struct {
	Percent *float64 `json:"percent"`
	// Shadow keeps the current setting when absent.
	Shadow *bool  `json:"shadow"`
	Method string `json:"method"`
	Reason string `json:"reason"`
}

// routingRoutes serves the routing part of the admin API under AdminPrefix: GET /routes, GET and PUT
// /routes/{module}, GET /routes/{module}/audit and GET /routes/{module}/discrepancies.
func routingRoutes(r chi.Router, t *route.Table, logger *slog.Logger) {
	h := func(f httpx.HandlerFunc) http.HandlerFunc { return httpx.Errors(logger, f) }
	module := func(r *http.Request) (*route.Module, error) {
		mod := t.Module(chi.URLParam(r, "module"))
		if mod == nil {
			return nil, ErrUnknownRoutedModule
		}
		return mod, nil
	}
	r.Get("/routes", h(func(w http.ResponseWriter, r *http.Request) error {
		mods := t.Modules()
		snaps := make([]route.ModuleSnapshot, len(mods))
		for i, m := range mods {
			snaps[i] = m.Snapshot()
		}
		return httpx.WriteJSON(w, http.StatusOK, map[string]any{"modules": snaps})
	}))
	r.Get("/routes/{module}", h(func(w http.ResponseWriter, r *http.Request) error {
		mod, err := module(r)
		if err != nil {
			return err
		}
		return httpx.WriteJSON(w, http.StatusOK, mod.Snapshot())
	}))
	r.Put("/routes/{module}", h(func(w http.ResponseWriter, r *http.Request) error {
		mod, err := module(r)
		if err != nil {
			return err
		}
		var req RolloutRequest
		if err := httpx.DecodeJSON(r, &req); err != nil {
			return err
		}
		change, err := rolloutChange(r, mod, req)
		if err != nil {
			return err
		}
		if _, _, err := t.Change(r.Context(), change); err != nil {
			return err
		}
		return httpx.WriteJSON(w, http.StatusOK, mod.Snapshot())
	}))
	r.Get("/routes/{module}/audit", h(func(w http.ResponseWriter, r *http.Request) error {
		mod, limit, err := moduleList(r, module)
		if err != nil {
			return err
		}
		return writeList[route.AuditEntry](w, "audit")(mod.Audit(r.Context(), limit))
	}))
	r.Get("/routes/{module}/discrepancies", h(func(w http.ResponseWriter, r *http.Request) error {
		mod, limit, err := moduleList(r, module)
		if err != nil {
			return err
		}
		return writeList[route.Discrepancy](w, "discrepancies")(mod.Discrepancies(r.Context(), limit))
	}))
}

// moduleList reads the module and the ?limit= of a listing request.
func moduleList(r *http.Request, module func(*http.Request) (*route.Module, error)) (*route.Module, int, error) {
	mod, err := module(r)
	if err != nil {
		return nil, 0, err
	}
	limit, err := listLimit(r)
	return mod, limit, err
}

// writeList returns a function writing a listing as {"<key>": [...]}, or returning the error that reading
// it failed with.
func writeList[T any](w http.ResponseWriter, key string) func([]T, error) error {
	return func(items []T, err error) error {
		if err != nil {
			return err
		}
		return httpx.WriteJSON(w, http.StatusOK, map[string]any{key: nonNil(items)})
	}
}

// rolloutChange validates req and turns it into the change it asks for, made by the caller.
func rolloutChange(r *http.Request, mod *route.Module, req RolloutRequest) (route.Change, error) {
	var c errs.Collector
	c.Check(req.Percent != nil, "percent", "is required: the remote share, 0 to 100")
	var bp int
	if req.Percent != nil {
		var err error
		bp, err = route.PercentBP(*req.Percent)
		c.Check(err == nil, "percent", "must be between 0 and 100 with at most two decimals")
	}
	n := len([]rune(req.Reason))
	c.Check(n > 0 && n <= 500, "reason", "is required, at most 500 characters: say why the rollout changes")
	if err := c.Err(); err != nil {
		return route.Change{}, err
	}
	def, overrides := mod.State()
	shadow := def.Shadow
	if st, ok := overrides[req.Method]; ok && req.Method != "" {
		shadow = st.Shadow
	}
	if req.Shadow != nil {
		shadow = *req.Shadow
	}
	p, _ := identity.From(r.Context())
	actor := p.Email
	if actor == "" {
		actor = p.UserID
	}
	return route.Change{Module: mod.Name(), Method: req.Method, RemoteBP: bp, Shadow: shadow, Actor: actor,
		Reason: req.Reason}, nil
}

// ErrBadListLimit is returned for a limit that is not 1 to 1000.
var ErrBadListLimit = errs.New(errs.Invalid, "admin.bad_limit", "limit must be an integer from 1 to 1000")

func listLimit(r *http.Request) (int, error) {
	raw := r.URL.Query().Get("limit")
	if raw == "" {
		return 100, nil
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < 1 || n > 1000 {
		return 0, ErrBadListLimit
	}
	return n, nil
}

// nonNil turns a nil slice into an empty one, so it encodes as [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
