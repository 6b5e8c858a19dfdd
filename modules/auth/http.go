package auth

import (
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	authapi "github.com/seamkit/seam/modules/auth/api"
	authdomain "github.com/seamkit/seam/modules/auth/domain"
	"github.com/seamkit/seam/platform/errs"
	"github.com/seamkit/seam/platform/httpx"
)

// RoutePrefix is where the auth routes are mounted.
const RoutePrefix = "/api/auth"

// signupRequest is the body of POST /signup; the service validates the email and password policy.
type signupRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

// loginRequest is the body of POST /login.
type loginRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

// Validate checks both credentials are present; whether they are right is the service's answer.
func (r loginRequest) Validate() error {
	var c errs.Collector
	c.Check(r.Email != "", "email", "is required")
	c.Check(r.Password != "", "password", "is required")
	return c.Err()
}

// tokenResponse is the body of a successful login (RFC 6749 section 5.1 style).
type tokenResponse struct {
	AccessToken string    `json:"access_token"`
	TokenType   string    `json:"token_type"`
	ExpiresAt   time.Time `json:"expires_at"`
	ExpiresIn   int64     `json:"expires_in"`
}

// handlers serves the auth routes.
type handlers struct {
	svc    *authdomain.Service
	logger *slog.Logger
}

// newRoutes returns the auth routes: sign-up, login and the caller's own account.
func newRoutes(svc *authdomain.Service, logger *slog.Logger) httpx.Routes {
	h := handlers{svc: svc, logger: logger}
	return httpx.Routes{Prefix: RoutePrefix, Mount: func(r chi.Router) {
		r.Post("/signup", httpx.Errors(logger, h.signup))
		r.Post("/login", httpx.Errors(logger, h.login))
		r.With(httpx.RequireUser(logger)).Get("/me", httpx.Errors(logger, h.me))
	}}
}

// signup creates an account: 201 with the account, 409 when the email is taken.
func (h handlers) signup(w http.ResponseWriter, r *http.Request) error {
	var req signupRequest
	if err := httpx.DecodeJSON(r, &req); err != nil {
		return err
	}
	u, err := h.svc.Signup(r.Context(), req.Email, req.Password)
	if err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusCreated, u)
}

// login issues an access token: 401 for any wrong credentials, 429 with Retry-After while locked.
func (h handlers) login(w http.ResponseWriter, r *http.Request) error {
	var req loginRequest
	if err := httpx.DecodeJSON(r, &req); err != nil {
		return err
	}
	tok, err := h.svc.Login(r.Context(), req.Email, req.Password)
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	return httpx.WriteJSON(w, http.StatusOK, tokenResponse{
		AccessToken: tok.Token,
		TokenType:   "Bearer",
		ExpiresAt:   tok.ExpiresAt,
		ExpiresIn:   int64(tok.ExpiresIn / time.Second),
	})
}

// me returns the caller's account as stored now; a token whose account is gone is refused as invalid.
func (h handlers) me(w http.ResponseWriter, r *http.Request) error {
	caller, err := httpx.Caller(r)
	if err != nil {
		return err
	}
	u, err := h.svc.GetUser(r.Context(), caller.UserID)
	if errors.Is(err, authapi.ErrUserNotFound) {
		return authapi.ErrInvalidToken
	}
	if err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusOK, u)
}
