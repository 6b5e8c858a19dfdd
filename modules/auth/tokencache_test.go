package auth

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	authapi "github.com/seamkit/seam/modules/auth/api"
	"github.com/seamkit/seam/platform/identity"
)

// clock is a settable test clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// countingAuth is an authapi.Auth whose VerifyToken accepts tokens in valid (each expiring at its time) and
// counts its calls.
type countingAuth struct {
	authapi.Auth
	clock *clock
	valid map[string]time.Time
	calls atomic.Int64
}

func (a *countingAuth) VerifyToken(_ context.Context, token string) (authapi.Identity, error) {
	a.calls.Add(1)
	exp, ok := a.valid[token]
	if !ok || !a.clock.Now().Before(exp) {
		return authapi.Identity{}, fmt.Errorf("%w: test", authapi.ErrInvalidToken)
	}
	return authapi.Identity{UserID: "u-" + token, Email: token + "@example.test", Role: identity.RoleUser, ExpiresAt: exp}, nil
}

func newTestVerifier(t *testing.T, ttl time.Duration, size int, valid map[string]time.Duration) (*TokenVerifier, *countingAuth, *clock) {
	t.Helper()
	clk := &clock{now: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)}
	a := &countingAuth{clock: clk, valid: map[string]time.Time{}}
	for tok, life := range valid {
		a.valid[tok] = clk.now.Add(life)
	}
	return NewTokenVerifier(a, TokenCacheOptions{TTL: ttl, Size: size, Now: clk.Now}), a, clk
}

func verify(t *testing.T, v *TokenVerifier, token string) (identity.Principal, error) {
	t.Helper()
	return v.VerifyToken(context.Background(), token)
}

func TestTokenCacheRemembersForTTL(t *testing.T) {
	v, a, clk := newTestVerifier(t, 30*time.Second, 10, map[string]time.Duration{"alice": time.Hour})
	for range 3 {
		p, err := verify(t, v, "alice")
		if err != nil || p.UserID != "u-alice" || p.Email != "alice@example.test" || p.Role != identity.RoleUser {
			t.Fatalf("verify: %+v %v", p, err)
		}
	}
	if n := a.calls.Load(); n != 1 {
		t.Fatalf("auth asked %d times for one token within the TTL, want 1", n)
	}
	clk.advance(29 * time.Second)
	if _, err := verify(t, v, "alice"); err != nil || a.calls.Load() != 1 {
		t.Fatalf("just before the TTL: %v, %d calls", err, a.calls.Load())
	}
	clk.advance(time.Second)
	if _, err := verify(t, v, "alice"); err != nil || a.calls.Load() != 2 {
		t.Fatalf("at the TTL: %v, %d calls, want auth asked again", err, a.calls.Load())
	}
}

func TestTokenCacheHonoursExpiry(t *testing.T) {
	v, a, clk := newTestVerifier(t, 30*time.Second, 10, map[string]time.Duration{"bob": 10 * time.Second})
	if _, err := verify(t, v, "bob"); err != nil {
		t.Fatalf("verify: %v", err)
	}
	clk.advance(9 * time.Second)
	if _, err := verify(t, v, "bob"); err != nil || a.calls.Load() != 1 {
		t.Fatalf("before expiry: %v, %d calls", err, a.calls.Load())
	}
	// The TTL has not run out, but the token has: the cache must not answer for it.
	clk.advance(time.Second)
	if _, err := verify(t, v, "bob"); !isInvalidToken(err) {
		t.Fatalf("expired token: %v, want ErrInvalidToken", err)
	}
	if n := a.calls.Load(); n != 2 {
		t.Fatalf("auth asked %d times, want 2", n)
	}
}

func TestTokenCacheNeverRemembersFailures(t *testing.T) {
	v, a, _ := newTestVerifier(t, 30*time.Second, 10, nil)
	for range 3 {
		if _, err := verify(t, v, "forged"); !isInvalidToken(err) {
			t.Fatalf("forged token: %v", err)
		}
	}
	if n := a.calls.Load(); n != 3 {
		t.Fatalf("auth asked %d times for three failures, want 3", n)
	}
	// A token that becomes valid (here: auth starts accepting it) is accepted at once.
	a.valid["forged"] = a.clock.Now().Add(time.Hour)
	if _, err := verify(t, v, "forged"); err != nil {
		t.Fatalf("after the failure: %v", err)
	}
}

func TestTokenCacheDoesNotRememberTokensWithoutExpiry(t *testing.T) {
	v, a, _ := newTestVerifier(t, 30*time.Second, 10, map[string]time.Duration{"noexp": time.Hour})
	v.auth = &noExpiryAuth{countingAuth: a}
	for range 2 {
		if _, err := verify(t, v, "noexp"); err != nil {
			t.Fatalf("verify: %v", err)
		}
	}
	if n := a.calls.Load(); n != 2 {
		t.Fatalf("auth asked %d times for a token without an expiry, want 2 (not cached)", n)
	}
}

// noExpiryAuth answers as countingAuth but without an expiry time.
type noExpiryAuth struct{ *countingAuth }

func (a *noExpiryAuth) VerifyToken(ctx context.Context, token string) (authapi.Identity, error) {
	id, err := a.countingAuth.VerifyToken(ctx, token)
	id.ExpiresAt = time.Time{}
	return id, err
}

func TestTokenCacheBound(t *testing.T) {
	const size = 4
	valid := map[string]time.Duration{}
	for i := range 3 * size {
		valid["t"+strconv.Itoa(i)] = time.Hour
	}
	v, a, _ := newTestVerifier(t, 30*time.Second, size, valid)
	for i := range 3 * size {
		if _, err := verify(t, v, "t"+strconv.Itoa(i)); err != nil {
			t.Fatalf("verify t%d: %v", i, err)
		}
		if n := len(v.cache.entries); n > size {
			t.Fatalf("%d entries after %d tokens, bound %d", n, i+1, size)
		}
	}
	// The last size tokens are remembered; the earliest were forgotten first.
	calls := a.calls.Load()
	for i := 2 * size; i < 3*size; i++ {
		if _, err := verify(t, v, "t"+strconv.Itoa(i)); err != nil {
			t.Fatalf("verify t%d: %v", i, err)
		}
	}
	if got := a.calls.Load(); got != calls {
		t.Fatalf("the %d most recent tokens cost %d calls, want none", size, got-calls)
	}
	if _, err := verify(t, v, "t0"); err != nil || a.calls.Load() != calls+1 {
		t.Fatalf("the earliest token: %v, %d calls, want it forgotten", err, a.calls.Load()-calls)
	}
}

func TestTokenCacheBoundAfterLapses(t *testing.T) {
	// Tokens that lapse and are learnt again must not let the cache grow past its bound, nor evict a
	// newer entry through a stale ring slot.
	const size = 3
	valid := map[string]time.Duration{"a": time.Hour, "b": time.Hour, "c": time.Hour, "d": time.Hour, "e": time.Hour}
	v, _, clk := newTestVerifier(t, time.Second, size, valid)
	for _, step := range []string{"a", "b", "c", "+", "a", "d", "e", "+", "b", "a", "c", "d", "e"} {
		if step == "+" {
			clk.advance(time.Second)
			continue
		}
		if _, err := verify(t, v, step); err != nil {
			t.Fatalf("verify %s: %v", step, err)
		}
		if n := len(v.cache.entries); n > size {
			t.Fatalf("%d entries, bound %d", n, size)
		}
		for k, e := range v.cache.entries {
			if v.cache.ring[e.slot] != k {
				t.Fatalf("entry in slot %d, which holds another key", e.slot)
			}
		}
	}
}

func TestTokenCacheOff(t *testing.T) {
	for _, o := range []TokenCacheOptions{{TTL: 0, Size: 10}, {TTL: time.Second, Size: 0}} {
		v, a, _ := newTestVerifier(t, o.TTL, o.Size, map[string]time.Duration{"alice": time.Hour})
		for range 2 {
			if _, err := verify(t, v, "alice"); err != nil {
				t.Fatalf("verify: %v", err)
			}
		}
		if n := a.calls.Load(); n != 2 {
			t.Fatalf("%+v: auth asked %d times, want 2", o, n)
		}
	}
}

func TestTokenCacheConcurrent(t *testing.T) {
	const tokens, size = 64, 16
	valid := map[string]time.Duration{}
	for i := range tokens {
		valid["t"+strconv.Itoa(i)] = time.Hour
	}
	v, _, clk := newTestVerifier(t, 30*time.Second, size, valid)
	var wg sync.WaitGroup
	errc := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := range 2000 {
				tok := "t" + strconv.Itoa((g*7+i)%tokens)
				p, err := v.VerifyToken(context.Background(), tok)
				if err != nil || p.UserID != "u-"+tok {
					errc <- fmt.Errorf("%s: %+v %w", tok, p, err)
					return
				}
				if i%100 == 0 {
					clk.advance(time.Second)
				}
			}
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	if n := len(v.cache.entries); n > size {
		t.Fatalf("%d entries, bound %d", n, size)
	}
}

func isInvalidToken(err error) bool { return errors.Is(err, authapi.ErrInvalidToken) }
