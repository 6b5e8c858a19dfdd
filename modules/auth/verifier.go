package auth

import (
	"context"

	authapi "github.com/seamkit/seam/modules/auth/api"
	"github.com/seamkit/seam/platform/identity"
)

// TokenVerifier adapts authapi.Auth to httpx.TokenVerifier, so the HTTP layer authenticates bearer tokens
// through whichever Auth the process has: the local service or a remote client. It remembers the tokens it
// verified for a short while (TokenCacheOptions), so a client's every request does not cost a signature
// check, or, with auth remote, a call over the bus; failures are never remembered.
type TokenVerifier struct {
	auth  authapi.Auth
	cache *tokenCache
}

// NewTokenVerifier returns a TokenVerifier asking a, remembering verified tokens as cache says.
func NewTokenVerifier(a authapi.Auth, cache TokenCacheOptions) *TokenVerifier {
	return &TokenVerifier{auth: a, cache: newTokenCache(cache)}
}

// newTokenVerifier is NewTokenVerifier configured by the auth section, whether auth runs here or not.
func newTokenVerifier(a authapi.Auth, cfg Config) *TokenVerifier {
	return NewTokenVerifier(a, TokenCacheOptions{TTL: cfg.TokenCacheTTL, Size: cfg.TokenCacheSize})
}

// VerifyToken checks token with Auth.VerifyToken, unless it did so within the cache's TTL and the token has
// not expired since, and returns its bearer as a principal; failures are authapi.ErrInvalidToken.
func (v *TokenVerifier) VerifyToken(ctx context.Context, token string) (identity.Principal, error) {
	var key tokenKey
	if v.cache != nil {
		key = keyOf(token)
		if id, ok := v.cache.get(key); ok {
			return principal(id), nil
		}
	}
	id, err := v.auth.VerifyToken(ctx, token)
	if err != nil {
		return identity.Principal{}, err
	}
	if v.cache != nil {
		v.cache.put(key, id)
	}
	return principal(id), nil
}

// principal is the identity a verified token speaks for, as the HTTP layer knows it.
func principal(id authapi.Identity) identity.Principal {
	return identity.Principal{UserID: id.UserID, Email: id.Email, Role: id.Role}
}
