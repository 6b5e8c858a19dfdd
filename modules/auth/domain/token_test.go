package authdomain

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const (
	testIssuer   = "seam-auth"
	testAudience = "seam"
	testTTL      = 15 * time.Minute
)

// testClock is a settable time source for Tokens.
type testClock struct{ t time.Time }

func (c *testClock) now() time.Time { return c.t }

func newTestKey(t *testing.T) SigningKey {
	t.Helper()
	k, err := NewSigningKey(time.Now())
	if err != nil {
		t.Fatalf("NewSigningKey: %v", err)
	}
	return k
}

func newTestTokens(t *testing.T, active SigningKey, verify ...SigningKey) (*Tokens, *testClock) {
	t.Helper()
	clock := &testClock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
	tokens, err := NewTokens(testIssuer, testAudience, testTTL, active, verify, clock.now)
	if err != nil {
		t.Fatalf("NewTokens: %v", err)
	}
	return tokens, clock
}

// signRaw signs arbitrary claims and header fields with any method and key, for building hostile tokens.
func signRaw(t *testing.T, method jwt.SigningMethod, key any, header map[string]any, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	for k, v := range header {
		tok.Header[k] = v
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("sign %s token: %v", method.Alg(), err)
	}
	return s
}

// validClaims are claims Verify accepts at clock time now.
func validClaims(now time.Time) jwt.MapClaims {
	return jwt.MapClaims{
		"iss": testIssuer, "aud": testAudience, "sub": "user-1",
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Minute).Unix(), "jti": "x",
		"email": "a@example.com", "role": "admin",
	}
}

// mustInvalid fails the test unless Verify rejects token with ErrInvalidToken.
func mustInvalid(t *testing.T, tokens *Tokens, token string) {
	t.Helper()
	c, err := tokens.Verify(token)
	if !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("Verify = %+v, %v; want ErrInvalidToken", c, err)
	}
}

func TestTokenRoundTrip(t *testing.T) {
	key := newTestKey(t)
	tokens, clock := newTestTokens(t, key)
	clock.t = clock.t.Add(500 * time.Millisecond) // iat and exp are whole seconds
	token, expires, err := tokens.Issue("user-1", "a@example.com", "admin")
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	wantIssued := clock.t.Truncate(time.Second)
	if !expires.Equal(wantIssued.Add(testTTL)) {
		t.Fatalf("Issue expires = %s, want %s", expires, wantIssued.Add(testTTL))
	}
	got, err := tokens.Verify(token)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if got.UserID != "user-1" || got.Email != "a@example.com" || got.Role != "admin" || got.TokenID == "" ||
		!got.IssuedAt.Equal(wantIssued) || !got.ExpiresAt.Equal(expires) {
		t.Fatalf("Verify = %+v", got)
	}
	if got.ExpiresAt.Location() != time.UTC {
		t.Fatalf("ExpiresAt location = %s, want UTC", got.ExpiresAt.Location())
	}

	header, payload := decodeSegments(t, token)
	if header["alg"] != "EdDSA" || header["kid"] != key.ID || header["typ"] != "JWT" {
		t.Fatalf("header = %v", header)
	}
	for _, claim := range []string{"iss", "aud", "sub", "iat", "nbf", "exp", "jti", "email", "role"} {
		if _, ok := payload[claim]; !ok {
			t.Errorf("payload has no %q claim: %v", claim, payload)
		}
	}
	if payload["aud"] != testAudience {
		t.Errorf("aud = %#v, want the single string %q", payload["aud"], testAudience)
	}

	other, _, err := tokens.Issue("user-1", "a@example.com", "admin")
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	if _, p := decodeSegments(t, other); p["jti"] == payload["jti"] {
		t.Fatal("two tokens share a jti")
	}
}

// decodeSegments returns a token's header and payload as JSON objects.
func decodeSegments(t *testing.T, token string) (header, payload map[string]any) {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d segments", len(parts))
	}
	for i, dst := range []*map[string]any{&header, &payload} {
		raw, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatalf("decode segment %d: %v", i, err)
		}
		if err := json.Unmarshal(raw, dst); err != nil {
			t.Fatalf("unmarshal segment %d: %v", i, err)
		}
	}
	return header, payload
}

func TestTokenExpiry(t *testing.T) {
	tokens, clock := newTestTokens(t, newTestKey(t))
	token, expires, err := tokens.Issue("user-1", "a@example.com", "user")
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	clock.t = expires.Add(tokenLeeway - time.Second)
	if _, err := tokens.Verify(token); err != nil {
		t.Fatalf("Verify within leeway after exp: %v", err)
	}
	clock.t = expires.Add(tokenLeeway + time.Second)
	if _, err := tokens.Verify(token); !errors.Is(err, ErrInvalidToken) || !errors.Is(err, jwt.ErrTokenExpired) {
		t.Fatalf("Verify after exp+leeway = %v, want it to wrap ErrInvalidToken and jwt.ErrTokenExpired", err)
	}
}

func TestTokenNotYetValid(t *testing.T) {
	key := newTestKey(t)
	tokens, clock := newTestTokens(t, key)
	future := validClaims(clock.t.Add(time.Hour))
	mustInvalid(t, tokens, signRaw(t, jwt.SigningMethodEdDSA, key.Private, map[string]any{"kid": key.ID}, future))
}

func TestTokenWrongIssuerOrAudience(t *testing.T) {
	key := newTestKey(t)
	tokens, clock := newTestTokens(t, key)
	tests := map[string]func(jwt.MapClaims){
		"wrong issuer":     func(c jwt.MapClaims) { c["iss"] = "someone-else" },
		"no issuer":        func(c jwt.MapClaims) { delete(c, "iss") },
		"wrong audience":   func(c jwt.MapClaims) { c["aud"] = "billing" },
		"no audience":      func(c jwt.MapClaims) { delete(c, "aud") },
		"no subject":       func(c jwt.MapClaims) { delete(c, "sub") },
		"no issued-at":     func(c jwt.MapClaims) { delete(c, "iat") },
		"issued in future": func(c jwt.MapClaims) { c["iat"] = clock.t.Add(time.Hour).Unix() },
		"missing exp":      func(c jwt.MapClaims) { delete(c, "exp") },
		"exp not a number": func(c jwt.MapClaims) { c["exp"] = "tomorrow" },
	}
	for name, mutate := range tests {
		t.Run(name, func(t *testing.T) {
			c := validClaims(clock.t)
			mutate(c)
			mustInvalid(t, tokens, signRaw(t, jwt.SigningMethodEdDSA, key.Private, map[string]any{"kid": key.ID}, c))
		})
	}
}

func TestTokenAudienceArray(t *testing.T) {
	// RFC 7519 allows aud to be an array; a token is for us when the array contains our audience.
	key := newTestKey(t)
	tokens, clock := newTestTokens(t, key)
	c := validClaims(clock.t)
	c["aud"] = []string{"other", testAudience}
	if _, err := tokens.Verify(signRaw(t, jwt.SigningMethodEdDSA, key.Private, map[string]any{"kid": key.ID}, c)); err != nil {
		t.Fatalf("Verify: %v", err)
	}
}

func TestTokenTampered(t *testing.T) {
	tokens, _ := newTestTokens(t, newTestKey(t))
	token, _, err := tokens.Issue("user-1", "a@example.com", "user")
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	parts := strings.Split(token, ".")

	t.Run("payload", func(t *testing.T) {
		raw, err := base64.RawURLEncoding.DecodeString(parts[1])
		if err != nil {
			t.Fatal(err)
		}
		forged := strings.Replace(string(raw), `"role":"user"`, `"role":"admin"`, 1)
		if forged == string(raw) {
			t.Fatalf("payload %s has no role to forge", raw)
		}
		mustInvalid(t, tokens, parts[0]+"."+base64.RawURLEncoding.EncodeToString([]byte(forged))+"."+parts[2])
	})
	t.Run("signature", func(t *testing.T) {
		sig, err := base64.RawURLEncoding.DecodeString(parts[2])
		if err != nil {
			t.Fatal(err)
		}
		sig[0] ^= 1
		mustInvalid(t, tokens, parts[0]+"."+parts[1]+"."+base64.RawURLEncoding.EncodeToString(sig))
	})
	t.Run("signature dropped", func(t *testing.T) {
		mustInvalid(t, tokens, parts[0]+"."+parts[1]+".")
	})
	t.Run("garbage", func(t *testing.T) {
		for _, s := range []string{"", "a.b.c", "not-a-token", token + "."} {
			mustInvalid(t, tokens, s)
		}
	})
}

func TestTokenAlgNone(t *testing.T) {
	key := newTestKey(t)
	tokens, clock := newTestTokens(t, key)
	none := signRaw(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType,
		map[string]any{"kid": key.ID}, validClaims(clock.t))
	mustInvalid(t, tokens, none)
}

func TestTokenAlgorithmConfusion(t *testing.T) {
	// An attacker who knows the public key signs with HS256 using its bytes as the HMAC secret, hoping the
	// verifier hands the same bytes to an HMAC check.
	key := newTestKey(t)
	tokens, clock := newTestTokens(t, key)
	for _, secret := range [][]byte{key.Public(), []byte(base64.RawURLEncoding.EncodeToString(key.Public()))} {
		forged := signRaw(t, jwt.SigningMethodHS256, secret, map[string]any{"kid": key.ID}, validClaims(clock.t))
		mustInvalid(t, tokens, forged)
	}
}

func TestTokenOtherAsymmetricAlgorithms(t *testing.T) {
	key := newTestKey(t)
	tokens, clock := newTestTokens(t, key)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	mustInvalid(t, tokens, signRaw(t, jwt.SigningMethodRS256, rsaKey, map[string]any{"kid": key.ID}, validClaims(clock.t)))
	mustInvalid(t, tokens, signRaw(t, jwt.SigningMethodES256, ecKey, map[string]any{"kid": key.ID}, validClaims(clock.t)))
}

func TestTokenUnknownKid(t *testing.T) {
	key := newTestKey(t)
	tokens, clock := newTestTokens(t, key)
	stranger := newTestKey(t)
	tests := map[string]map[string]any{
		"unknown kid":          {"kid": stranger.ID},
		"known kid, wrong key": {"kid": key.ID},
		"no kid":               nil,
		"kid not a string":     {"kid": 42},
	}
	for name, header := range tests {
		t.Run(name, func(t *testing.T) {
			mustInvalid(t, tokens, signRaw(t, jwt.SigningMethodEdDSA, stranger.Private, header, validClaims(clock.t)))
		})
	}
}

func TestTokenKeyRotation(t *testing.T) {
	oldKey, newKey := newTestKey(t), newTestKey(t)
	before, _ := newTestTokens(t, oldKey)
	oldToken, _, err := before.Issue("user-1", "a@example.com", "user")
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}

	after, _ := newTestTokens(t, newKey, oldKey)
	if _, err := after.Verify(oldToken); err != nil {
		t.Fatalf("Verify(token from the old key) after rotation: %v", err)
	}
	newToken, _, err := after.Issue("user-1", "a@example.com", "user")
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	if h, _ := decodeSegments(t, newToken); h["kid"] != newKey.ID {
		t.Fatalf("kid = %v, want the active key %q", h["kid"], newKey.ID)
	}
	if _, err := after.Verify(newToken); err != nil {
		t.Fatalf("Verify(token from the active key): %v", err)
	}
	mustInvalid(t, before, newToken) // a verifier that never learned the new key rejects it

	retired, _ := newTestTokens(t, newKey)
	mustInvalid(t, retired, oldToken) // once the old key leaves the verify set, its tokens stop verifying
}

func TestTokenSigningKey(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	a, err := NewSigningKey(now)
	if err != nil {
		t.Fatalf("NewSigningKey: %v", err)
	}
	b := newTestKey(t)
	if a.ID == b.ID || len(a.ID) != 43 || !a.CreatedAt.Equal(now) {
		t.Fatalf("keys %q and %q: want distinct 43-character thumbprints; CreatedAt %s", a.ID, b.ID, a.CreatedAt)
	}
	// RFC 8037 appendix A.3: the JWK thumbprint of its example Ed25519 public key.
	pub, err := base64.RawURLEncoding.DecodeString("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := thumbprint(ed25519.PublicKey(pub)), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"; got != want {
		t.Fatalf("thumbprint = %q, want %q", got, want)
	}
	if (SigningKey{}).Public() != nil {
		t.Fatal("Public of an empty key is not nil")
	}
}

func TestTokenNewTokensRejectsBadConfig(t *testing.T) {
	key := newTestKey(t)
	twin := newTestKey(t)
	twin.ID = key.ID
	tests := map[string]func() (*Tokens, error){
		"no issuer":    func() (*Tokens, error) { return NewTokens("", testAudience, testTTL, key, nil, nil) },
		"no audience":  func() (*Tokens, error) { return NewTokens(testIssuer, "", testTTL, key, nil, nil) },
		"zero ttl":     func() (*Tokens, error) { return NewTokens(testIssuer, testAudience, 0, key, nil, nil) },
		"empty active": func() (*Tokens, error) { return NewTokens(testIssuer, testAudience, testTTL, SigningKey{}, nil, nil) },
		"no key id": func() (*Tokens, error) {
			return NewTokens(testIssuer, testAudience, testTTL, SigningKey{Private: key.Private}, nil, nil)
		},
		"short verify key": func() (*Tokens, error) {
			return NewTokens(testIssuer, testAudience, testTTL, key, []SigningKey{{ID: "x", Private: key.Private[:10]}}, nil)
		},
		"duplicate id": func() (*Tokens, error) {
			return NewTokens(testIssuer, testAudience, testTTL, key, []SigningKey{twin}, nil)
		},
	}
	for name, f := range tests {
		t.Run(name, func(t *testing.T) {
			if tokens, err := f(); err == nil {
				t.Fatalf("NewTokens = %v, nil; want an error", tokens)
			}
		})
	}
	if _, err := NewTokens(testIssuer, testAudience, testTTL, key, []SigningKey{key}, nil); err != nil {
		t.Fatalf("NewTokens with the active key also in the verify set: %v", err)
	}
	tokens, err := NewTokens(testIssuer, testAudience, testTTL, key, nil, nil)
	if err != nil {
		t.Fatalf("NewTokens with a nil clock: %v", err)
	}
	if _, _, err := tokens.Issue("", "a@example.com", "user"); err == nil {
		t.Fatal("Issue with no user id succeeded")
	}
	token, _, err := tokens.Issue("user-1", "a@example.com", "user")
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	if _, err := tokens.Verify(token); err != nil {
		t.Fatalf("Verify with the real clock: %v", err)
	}
}
