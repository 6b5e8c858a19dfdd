// Package authapi is the auth module's public contract: the only package of auth that other modules may
// import. It holds the Auth interface, its types, sentinel errors and the events auth publishes.
package authapi

import (
	"context"
	"time"

	"github.com/seamkit/seam/platform/errs"
)

// Auth is what other modules may ask of the auth module. Every method is remotable: ctx first, error last,
// plain serialisable types.
type Auth interface {
	// VerifyToken checks a bearer token and returns who it identifies; any failure is ErrInvalidToken.
	//seam:readonly
	//seam:key token
	VerifyToken(ctx context.Context, token string) (Identity, error)
	// GetUser returns a user by id, or ErrUserNotFound.
	//seam:readonly
	//seam:key userID
	GetUser(ctx context.Context, userID string) (User, error)
	// GrantPlan puts userID on plan (PlanPro or PlanTeam), once per grantID: a retry with the same grantID,
	// user and plan succeeds without granting again (billing's plan-upgrade saga passes its saga id).
	// ErrUserNotFound for an unknown user, ErrInvalidPlan for a plan that cannot be granted, and
	// ErrGrantConflict when grantID was used for another user or plan.
	//seam:idempotent
	//seam:key userID
	GrantPlan(ctx context.Context, userID, plan, grantID string) error
}

// Plans an account can be on.
const (
	// PlanFree is every account's plan until another is granted.
	PlanFree = "free"
	// PlanPro is the paid plan for individuals.
	PlanPro = "pro"
	// PlanTeam is the paid plan for teams.
	PlanTeam = "team"
)

// Identity is who a verified token speaks for.
type Identity struct {
	UserID    string    `json:"user_id"`
	Email     string    `json:"email"`
	Role      string    `json:"role"`
	ExpiresAt time.Time `json:"expires_at"`
}

// User is an account as other modules see it (never its password hash).
type User struct {
	ID        string    `json:"id"`
	Email     string    `json:"email"`
	Role      string    `json:"role"`
	Plan      string    `json:"plan"`
	CreatedAt time.Time `json:"created_at"`
}

// The errors auth returns to callers; match them with errors.Is.
var (
	// ErrInvalidToken means the token is missing, malformed, expired, or not signed by auth.
	ErrInvalidToken = errs.New(errs.Unauthenticated, "auth.invalid_token", "the token is invalid or expired")
	// ErrUserNotFound means no user has that id.
	ErrUserNotFound = errs.New(errs.NotFound, "auth.user_not_found", "user not found")
	// ErrEmailTaken means an account with that email already exists.
	ErrEmailTaken = errs.New(errs.Conflict, "auth.email_taken", "an account with this email already exists")
	// ErrInvalidCredentials is the one answer to every failed login, whatever the reason.
	ErrInvalidCredentials = errs.New(errs.Unauthenticated, "auth.invalid_credentials", "invalid email or password")
	// ErrTooManyAttempts means the account is temporarily locked after repeated failed logins.
	ErrTooManyAttempts = errs.New(errs.TooManyRequests, "auth.too_many_attempts", "too many failed logins; try again later")
	// ErrInvalidPlan means a plan that cannot be granted (not PlanPro or PlanTeam).
	ErrInvalidPlan = errs.New(errs.Invalid, "auth.invalid_plan", "the plan cannot be granted")
	// ErrGrantConflict means a grant id was used before for another user or plan.
	ErrGrantConflict = errs.New(errs.Conflict, "auth.grant_conflict", "the grant id was used for another grant")
)

// SubjectUserRegistered is the subject of UserRegistered events.
const SubjectUserRegistered = "auth.events.user_registered"

// EventUserRegistered is the event type of UserRegistered.
const EventUserRegistered = "user_registered"

// UserRegistered is published once for every new account.
type UserRegistered struct {
	UserID       string    `json:"user_id"`
	Email        string    `json:"email"`
	Role         string    `json:"role"`
	RegisteredAt time.Time `json:"registered_at"`
}
