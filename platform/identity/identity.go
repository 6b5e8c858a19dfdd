// Package identity carries the authenticated caller through a request: who they are and what role they hold,
// as a plain value that travels in a context and across remote calls.
package identity

import "context"

// The roles Seam knows.
const (
	// RoleUser is an ordinary account.
	RoleUser = "user"
	// RoleAdmin may see reports and administer the system.
	RoleAdmin = "admin"
)

// Principal is the authenticated caller.
type Principal struct {
	UserID string `json:"user_id"`
	Email  string `json:"email"`
	Role   string `json:"role"`
}

// IsAdmin reports whether the principal holds the admin role.
func (p Principal) IsAdmin() bool { return p.Role == RoleAdmin }

type principalKey struct{}

// With returns a context carrying p.
func With(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// From returns the principal in ctx, if any.
func From(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok && p.UserID != ""
}
