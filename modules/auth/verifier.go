package auth

import (
	"context"

	authapi "github.com/seamkit/seam/modules/auth/api"
	"github.com/seamkit/seam/platform/identity"
)

// TokenVerifier adapts authapi.Auth to httpx.TokenVerifier, so the HTTP layer authenticates bearer tokens
// through whichever Auth the process has: the local service or a remote client.
type TokenVerifier struct {
	auth authapi.Auth
}

// NewTokenVerifier returns a TokenVerifier asking a.
func NewTokenVerifier(a authapi.Auth) *TokenVerifier {
	return &TokenVerifier{auth: a}
}

// VerifyToken checks token with Auth.VerifyToken and returns its bearer as a principal; failures are
// authapi.ErrInvalidToken.
func (v *TokenVerifier) VerifyToken(ctx context.Context, token string) (identity.Principal, error) {
	id, err := v.auth.VerifyToken(ctx, token)
	if err != nil {
		return identity.Principal{}, err
	}
	return identity.Principal{UserID: id.UserID, Email: id.Email, Role: id.Role}, nil
}
