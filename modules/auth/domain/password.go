package authdomain

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// Password policy bounds, counted in Unicode code points (runes).
const (
	// MinPasswordLength is the shortest password ValidatePassword accepts.
	MinPasswordLength = 8
	// MaxPasswordLength is the longest password ValidatePassword accepts.
	MaxPasswordLength = 128
)

// OWASP's recommended argon2id parameters (memory in KiB), plus the salt and key sizes Hash produces.
const (
	defaultMemory  = 19456
	defaultTime    = 2
	defaultThreads = 1
	saltLength     = 16
	keyLength      = 32
)

// Bounds on parameters read back from an encoded hash, so a corrupted or hostile row cannot make Verify
// allocate unbounded memory or spin for minutes, and cannot reach the panics inside argon2.
const (
	maxMemory     = 1 << 20 // KiB, i.e. 1 GiB
	maxTime       = 64
	minSaltLength = 8
	minKeyLength  = 16
	maxKeyLength  = 128
	maxSaltLength = 64
)

// phcAlgorithmName is the PHC identifier of the only algorithm Hash writes and Verify reads.
const phcAlgorithmName = "argon2id"

// ErrPasswordPolicy is wrapped by every ValidatePassword failure, so callers can map it to one client error.
var ErrPasswordPolicy = errors.New("password does not meet the policy")

// ErrMalformedHash is wrapped by every error about an encoded hash that cannot be parsed.
var ErrMalformedHash = errors.New("malformed password hash")

// dummySalt is the fixed salt Equalize hashes with; it only needs to have the real salt length.
var dummySalt = make([]byte, saltLength)

// PasswordHasher hashes and verifies passwords with argon2id, encoding results as PHC strings.
// The zero value is unusable (Hash returns an error); use DefaultPasswordHasher.
type PasswordHasher struct {
	// Memory is the argon2id memory cost in KiB.
	Memory uint32
	// Time is the argon2id number of passes.
	Time uint32
	// Threads is the argon2id degree of parallelism.
	Threads uint8
}

// DefaultPasswordHasher returns a hasher with OWASP's argon2id parameters: m=19456 KiB, t=2, p=1.
func DefaultPasswordHasher() PasswordHasher {
	return PasswordHasher{Memory: defaultMemory, Time: defaultTime, Threads: defaultThreads}
}

// argonParams is one parsed PHC string.
type argonParams struct {
	memory  uint32
	time    uint32
	threads uint8
	salt    []byte
	key     []byte
}

// validate reports whether the hasher's parameters can be used to hash.
func (h PasswordHasher) validate() error {
	switch {
	case h.Memory == 0 || h.Memory > maxMemory:
		return fmt.Errorf("password hasher: memory must be in 1..%d KiB, got %d", maxMemory, h.Memory)
	case h.Time == 0 || h.Time > maxTime:
		return fmt.Errorf("password hasher: time must be in 1..%d, got %d", maxTime, h.Time)
	case h.Threads == 0:
		return errors.New("password hasher: threads must be at least 1")
	}
	return nil
}

// Hash derives an argon2id key from password with a fresh random salt and returns it as a PHC string:
// $argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>, both base64 (standard alphabet, no padding).
func (h PasswordHasher) Hash(password string) (string, error) {
	if err := h.validate(); err != nil {
		return "", err
	}
	salt := make([]byte, saltLength)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("password hasher: read salt: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, h.Time, h.Memory, h.Threads, keyLength)
	return fmt.Sprintf("$%s$v=%d$m=%d,t=%d,p=%d$%s$%s",
		phcAlgorithmName, argon2.Version, h.Memory, h.Time, h.Threads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key)), nil
}

// Verify reports whether password matches encoded, a PHC string made by Hash. The argon2id parameters come
// from encoded, not from h, so hashes made with older parameters keep verifying. The comparison runs in
// constant time. A malformed encoded string is an error wrapping ErrMalformedHash.
func (h PasswordHasher) Verify(password, encoded string) (bool, error) {
	p, err := parseHash(encoded)
	if err != nil {
		return false, err
	}
	key := argon2.IDKey([]byte(password), p.salt, p.time, p.memory, p.threads, uint32(len(p.key)))
	return subtle.ConstantTimeCompare(key, p.key) == 1, nil
}

// NeedsRehash reports whether encoded should be replaced by a fresh Hash after a successful login: it is
// malformed, or was made with parameters, salt or key sizes other than h's.
func (h PasswordHasher) NeedsRehash(encoded string) bool {
	p, err := parseHash(encoded)
	if err != nil {
		return true
	}
	return p.memory != h.Memory || p.time != h.Time || p.threads != h.Threads ||
		len(p.salt) != saltLength || len(p.key) != keyLength
}

// Equalize spends the same time as Verify of a hash made by h, and discards the result. Call it when a login
// names an unknown account so that response timing does not reveal which emails are registered.
// A hasher with unusable parameters falls back to the defaults rather than failing.
func (h PasswordHasher) Equalize(password string) {
	if h.validate() != nil {
		h = DefaultPasswordHasher()
	}
	argon2.IDKey([]byte(password), dummySalt, h.Time, h.Memory, h.Threads, keyLength)
}

// parseHash decodes a PHC argon2id string strictly, rejecting anything Hash would not produce in shape and
// any parameter outside the bounds above.
func parseHash(encoded string) (argonParams, error) {
	var p argonParams
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[0] != "" {
		return p, fmt.Errorf("%w: want 5 $-separated fields", ErrMalformedHash)
	}
	if parts[1] != phcAlgorithmName {
		return p, fmt.Errorf("%w: algorithm %q is not %s", ErrMalformedHash, parts[1], phcAlgorithmName)
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return p, fmt.Errorf("%w: unsupported version %q", ErrMalformedHash, parts[2])
	}
	params := strings.Split(parts[3], ",")
	if len(params) != 3 {
		return p, fmt.Errorf("%w: want parameters m,t,p", ErrMalformedHash)
	}
	memory, err := parseParam(params[0], "m", 32)
	if err != nil {
		return p, err
	}
	passes, err := parseParam(params[1], "t", 32)
	if err != nil {
		return p, err
	}
	threads, err := parseParam(params[2], "p", 8)
	if err != nil {
		return p, err
	}
	if memory == 0 || memory > maxMemory || passes == 0 || passes > maxTime || threads == 0 {
		return p, fmt.Errorf("%w: parameters m=%d,t=%d,p=%d out of range", ErrMalformedHash, memory, passes, threads)
	}
	p.memory, p.time, p.threads = uint32(memory), uint32(passes), uint8(threads)
	if p.salt, err = base64.RawStdEncoding.Strict().DecodeString(parts[4]); err != nil {
		return p, fmt.Errorf("%w: salt: %w", ErrMalformedHash, err)
	}
	if len(p.salt) < minSaltLength || len(p.salt) > maxSaltLength {
		return p, fmt.Errorf("%w: salt length %d out of range", ErrMalformedHash, len(p.salt))
	}
	if p.key, err = base64.RawStdEncoding.Strict().DecodeString(parts[5]); err != nil {
		return p, fmt.Errorf("%w: hash: %w", ErrMalformedHash, err)
	}
	if len(p.key) < minKeyLength || len(p.key) > maxKeyLength {
		return p, fmt.Errorf("%w: hash length %d out of range", ErrMalformedHash, len(p.key))
	}
	return p, nil
}

// parseParam parses one "name=decimal" field of a PHC parameter list.
func parseParam(field, name string, bits int) (uint64, error) {
	value, ok := strings.CutPrefix(field, name+"=")
	if !ok {
		return 0, fmt.Errorf("%w: want parameter %s, got %q", ErrMalformedHash, name, field)
	}
	// ParseUint rejects signs and empty strings but accepts leading zeros; reject those so that every hash
	// has exactly one spelling.
	if len(value) > 1 && value[0] == '0' {
		return 0, fmt.Errorf("%w: parameter %s has a leading zero", ErrMalformedHash, name)
	}
	n, err := strconv.ParseUint(value, 10, bits)
	if err != nil {
		return 0, fmt.Errorf("%w: parameter %s: %w", ErrMalformedHash, name, err)
	}
	return n, nil
}

// ValidatePassword checks a new password against the policy: valid UTF-8, MinPasswordLength to
// MaxPasswordLength characters. Errors wrap ErrPasswordPolicy and name the rule broken.
func ValidatePassword(p string) error {
	if !utf8.ValidString(p) {
		return fmt.Errorf("%w: must be valid UTF-8 text", ErrPasswordPolicy)
	}
	n := utf8.RuneCountInString(p)
	if n < MinPasswordLength {
		return fmt.Errorf("%w: must be at least %d characters", ErrPasswordPolicy, MinPasswordLength)
	}
	if n > MaxPasswordLength {
		return fmt.Errorf("%w: must be at most %d characters", ErrPasswordPolicy, MaxPasswordLength)
	}
	return nil
}
