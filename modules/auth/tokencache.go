package auth

import (
	"crypto/sha256"
	"sync"
	"time"

	authapi "github.com/seamkit/seam/modules/auth/api"
)

// Defaults of the token cache (modules.auth.token_cache_ttl and token_cache_size).
const (
	// DefaultTokenCacheTTL is how long a verified token is trusted without asking auth again.
	DefaultTokenCacheTTL = 30 * time.Second
	// DefaultTokenCacheSize is how many verified tokens a process remembers.
	DefaultTokenCacheSize = 10_000
)

// TokenCacheOptions bound what a TokenVerifier remembers of the tokens it verified.
type TokenCacheOptions struct {
	// TTL is the longest a verified token is trusted without asking auth again, and never past the token's
	// expiry; zero or less turns the cache off.
	TTL time.Duration
	// Size is the most tokens remembered, the earliest remembered forgotten first; zero or less turns the
	// cache off.
	Size int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// tokenKey is what the cache knows a token by: its SHA-256, so the cache never holds a usable token and two
// tokens cannot share an entry.
type tokenKey [sha256.Size]byte

// keyOf returns token's key.
func keyOf(token string) tokenKey { return sha256.Sum256([]byte(token)) }

// cachedToken is a verified token's identity, trusted until until; slot is its place in the eviction ring.
type cachedToken struct {
	id    authapi.Identity
	until time.Time
	slot  int
}

// tokenCache remembers the identities of verified tokens, at most size of them, each until the earlier of
// its expiry and ttl after it was verified. When full, it forgets in the order it learnt (a ring of keys),
// which, as every entry lives at most ttl, is close to forgetting the soonest to lapse. It is safe for
// concurrent use.
type tokenCache struct {
	ttl  time.Duration
	size int
	now  func() time.Time

	mu      sync.Mutex
	entries map[tokenKey]cachedToken
	ring    []tokenKey
	next    int
}

// newTokenCache returns a cache as o says, or nil when o turns it off.
func newTokenCache(o TokenCacheOptions) *tokenCache {
	if o.TTL <= 0 || o.Size <= 0 {
		return nil
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &tokenCache{ttl: o.TTL, size: o.Size, now: o.Now, entries: make(map[tokenKey]cachedToken)}
}

// get returns the identity remembered for the token with key, if it is still to be trusted now.
func (c *tokenCache) get(key tokenKey) (authapi.Identity, bool) {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok {
		return authapi.Identity{}, false
	}
	if !now.Before(e.until) {
		delete(c.entries, key)
		return authapi.Identity{}, false
	}
	return e.id, true
}

// put remembers that the token with key, just verified, speaks for id: until ttl from now or id's expiry,
// whichever is earlier. A token without an expiry, or already past it, is not remembered.
func (c *tokenCache) put(key tokenKey, id authapi.Identity) {
	now := c.now()
	until := now.Add(c.ttl)
	if id.ExpiresAt.Before(until) {
		until = id.ExpiresAt
	}
	if !now.Before(until) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[key]; ok {
		c.entries[key] = cachedToken{id: id, until: until, slot: e.slot}
		return
	}
	slot := len(c.ring)
	if slot < c.size {
		c.ring = append(c.ring, key)
	} else {
		slot = c.next
		c.next = (c.next + 1) % len(c.ring)
		// The slot's old key may have been forgotten (lapsed) and learnt again elsewhere in the ring since.
		if old, ok := c.entries[c.ring[slot]]; ok && old.slot == slot {
			delete(c.entries, c.ring[slot])
		}
		c.ring[slot] = key
	}
	c.entries[key] = cachedToken{id: id, until: until, slot: slot}
}
