package authdomain

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// tokenLeeway is the clock skew tolerated on exp, nbf and iat.
const tokenLeeway = 30 * time.Second

// ErrInvalidToken is wrapped by every Verify failure: malformed, badly signed, expired, wrong issuer or
// audience, unknown key. The jwt library's own error is wrapped too (e.g. jwt.ErrTokenExpired).
var ErrInvalidToken = errors.New("invalid token")

// SigningKey is one Ed25519 key the auth module signs access tokens with; ID goes into each token's kid
// header so verifiers can pick the key during rotation.
type SigningKey struct {
	// ID names the key in the kid header; NewSigningKey sets it to the key's RFC 7638 JWK thumbprint.
	ID string
	// Private is the Ed25519 private key.
	Private ed25519.PrivateKey
	// CreatedAt is when the key was made, for rotation policy.
	CreatedAt time.Time
}

// NewSigningKey makes a random Ed25519 key whose ID is its RFC 7638 JWK thumbprint (43 base64url characters).
func NewSigningKey(now time.Time) (SigningKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return SigningKey{}, fmt.Errorf("generate signing key: %w", err)
	}
	return SigningKey{ID: thumbprint(pub), Private: priv, CreatedAt: now}, nil
}

// Public returns the key's public half, the one verifiers (and a JWKS document) need; nil if Private is not
// an Ed25519 private key.
func (k SigningKey) Public() ed25519.PublicKey {
	if len(k.Private) != ed25519.PrivateKeySize {
		return nil
	}
	return k.Private.Public().(ed25519.PublicKey)
}

// validate reports whether k can sign or verify.
func (k SigningKey) validate() error {
	if k.ID == "" {
		return errors.New("signing key has no ID")
	}
	if len(k.Private) != ed25519.PrivateKeySize {
		return fmt.Errorf("signing key %q: private key is %d bytes, want %d", k.ID, len(k.Private), ed25519.PrivateKeySize)
	}
	return nil
}

// thumbprint is the RFC 7638 JWK thumbprint of an Ed25519 public key (RFC 8037 OKP key type).
func thumbprint(pub ed25519.PublicKey) string {
	jwk := `{"crv":"Ed25519","kty":"OKP","x":"` + base64.RawURLEncoding.EncodeToString(pub) + `"}`
	sum := sha256.Sum256([]byte(jwk))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// Claims is what a verified access token says about its bearer.
type Claims struct {
	// UserID is the account id (the sub claim).
	UserID string
	// Email is the account's email when the token was issued.
	Email string
	// Role is the account's role when the token was issued.
	Role string
	// TokenID is the token's unique id (the jti claim), for revocation lists and audit logs.
	TokenID string
	// IssuedAt is when the token was issued, in UTC.
	IssuedAt time.Time
	// ExpiresAt is when the token stops being valid, in UTC.
	ExpiresAt time.Time
}

// tokenClaims is the JWT payload as parsed. Issue writes the same fields through jwt.MapClaims so that aud
// is a single string rather than the library's default one-element array.
type tokenClaims struct {
	jwt.RegisteredClaims
	Email string `json:"email"`
	Role  string `json:"role"`
}

// Tokens issues and verifies the auth module's access tokens: EdDSA (Ed25519) JWTs with a kid header.
type Tokens struct {
	issuer   string
	audience string
	ttl      time.Duration
	active   SigningKey
	keys     map[string]ed25519.PublicKey
	now      func() time.Time
	parser   *jwt.Parser
}

// NewTokens returns a Tokens that signs with active and accepts tokens signed by active or any of verifyKeys
// (keys being rotated out). Tokens carry issuer and audience and live for ttl. now is the clock for issuing
// and verifying; nil means time.Now.
func NewTokens(issuer, audience string, ttl time.Duration, active SigningKey, verifyKeys []SigningKey, now func() time.Time) (*Tokens, error) {
	if issuer == "" {
		return nil, errors.New("tokens: issuer is required")
	}
	if audience == "" {
		return nil, errors.New("tokens: audience is required")
	}
	if ttl < time.Second {
		return nil, fmt.Errorf("tokens: ttl must be at least 1s, got %s", ttl)
	}
	if now == nil {
		now = time.Now
	}
	keys := make(map[string]ed25519.PublicKey, len(verifyKeys)+1)
	for _, k := range append([]SigningKey{active}, verifyKeys...) {
		if err := k.validate(); err != nil {
			return nil, fmt.Errorf("tokens: %w", err)
		}
		pub := k.Public()
		if existing, ok := keys[k.ID]; ok && !existing.Equal(pub) {
			return nil, fmt.Errorf("tokens: two different keys share the ID %q", k.ID)
		}
		keys[k.ID] = pub
	}
	return &Tokens{
		issuer:   issuer,
		audience: audience,
		ttl:      ttl,
		active:   active,
		keys:     keys,
		now:      now,
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
			jwt.WithIssuer(issuer),
			jwt.WithAudience(audience),
			jwt.WithExpirationRequired(),
			jwt.WithIssuedAt(),
			jwt.WithLeeway(tokenLeeway),
			jwt.WithTimeFunc(now),
			jwt.WithStrictDecoding(),
		),
	}, nil
}

// Issue signs a token for the given account with the active key and returns it with its expiry time
// (whole seconds, as encoded in the token).
func (t *Tokens) Issue(userID, email, role string) (token string, expires time.Time, err error) {
	if userID == "" {
		return "", time.Time{}, errors.New("issue token: user id is required")
	}
	issued := jwt.NewNumericDate(t.now())
	exp := jwt.NewNumericDate(issued.Add(t.ttl))
	claims := jwt.MapClaims{
		"iss":   t.issuer,
		"aud":   t.audience,
		"sub":   userID,
		"iat":   issued,
		"nbf":   issued,
		"exp":   exp,
		"jti":   rand.Text(),
		"email": email,
		"role":  role,
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
	tok.Header["kid"] = t.active.ID
	signed, err := tok.SignedString(t.active.Private)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("issue token: %w", err)
	}
	return signed, exp.UTC(), nil
}

// Verify checks token's signature (EdDSA only, key chosen by kid), issuer, audience, exp (required), nbf and
// iat against the clock with 30s leeway, and returns its claims. Every failure wraps ErrInvalidToken.
func (t *Tokens) Verify(token string) (Claims, error) {
	var c tokenClaims
	if _, err := t.parser.ParseWithClaims(token, &c, t.key); err != nil {
		return Claims{}, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	if c.Subject == "" {
		return Claims{}, fmt.Errorf("%w: no subject", ErrInvalidToken)
	}
	if c.IssuedAt == nil {
		return Claims{}, fmt.Errorf("%w: no issued-at time", ErrInvalidToken)
	}
	return Claims{
		UserID:    c.Subject,
		Email:     c.Email,
		Role:      c.Role,
		TokenID:   c.ID,
		IssuedAt:  c.IssuedAt.UTC(),
		ExpiresAt: c.ExpiresAt.UTC(),
	}, nil
}

// key is the jwt.Keyfunc: it returns the public key named by the token's kid header.
func (t *Tokens) key(tok *jwt.Token) (any, error) {
	if tok.Method != jwt.SigningMethodEdDSA {
		return nil, fmt.Errorf("unexpected signing method %v", tok.Header["alg"])
	}
	kid, ok := tok.Header["kid"].(string)
	if !ok || kid == "" {
		return nil, errors.New("kid header missing or not a string")
	}
	pub, ok := t.keys[kid]
	if !ok {
		return nil, fmt.Errorf("unknown kid %q", kid)
	}
	return pub, nil
}
