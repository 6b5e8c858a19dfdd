package authdomain

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	authapi "github.com/seamkit/seam/modules/auth/api"
	"github.com/seamkit/seam/platform/errs"
	"github.com/seamkit/seam/platform/identity"
)

// MaxEmailLength is the longest email address accepted, in bytes (RFC 5321's limit on a forward path).
const MaxEmailLength = 254

// GeneratedPasswordLength is the length of the first admin's password when the configuration gives none.
const GeneratedPasswordLength = 24

// passwordAlphabet is what generated passwords are drawn from: 62 symbols, so 24 of them carry 142 bits.
const passwordAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// ErrInvalidEmail is wrapped by every NormalizeEmail failure.
var ErrInvalidEmail = errors.New("invalid email address")

// ErrNotStarted is returned by token operations before Start has loaded the signing keys.
var ErrNotStarted = errors.New("auth service: signing keys not loaded (Start has not run)")

// NewUser is an account to create.
type NewUser struct {
	// ID is the account id, a UUID.
	ID string
	// Email is the normalized (trimmed, lower-cased) address.
	Email string
	// PasswordHash is the PHC string PasswordHasher.Hash made.
	PasswordHash string
	// Role is identity.RoleUser or identity.RoleAdmin.
	Role string
	// CreatedAt is when the account was made.
	CreatedAt time.Time
}

// User is a stored account, password hash included; it never leaves the module.
type User struct {
	// ID is the account id, a UUID.
	ID string
	// Email is the normalized address.
	Email string
	// PasswordHash is the account's PHC password hash.
	PasswordHash string
	// Role is identity.RoleUser or identity.RoleAdmin.
	Role string
	// Plan is authapi.PlanFree, PlanPro or PlanTeam.
	Plan string
	// CreatedAt is when the account was made.
	CreatedAt time.Time
	// UpdatedAt is when the account last changed.
	UpdatedAt time.Time
}

// API returns the account as other modules see it, without its password hash.
func (u User) API() authapi.User {
	return authapi.User{ID: u.ID, Email: u.Email, Role: u.Role, Plan: u.Plan, CreatedAt: u.CreatedAt}
}

// Repository is the storage the Service needs; the data layer implements it on PostgreSQL.
type Repository interface {
	// CreateUser stores u and records its authapi.UserRegistered event in the same transaction. It returns
	// authapi.ErrEmailTaken when an account already has u.Email.
	CreateUser(ctx context.Context, u NewUser) (User, error)
	// AdminExists reports whether any account holds the admin role.
	AdminExists(ctx context.Context) (bool, error)
	// CreateFirstAdmin creates u with its authapi.UserRegistered event unless an admin exists already,
	// serialised against every concurrent caller, in any process. beforeCommit runs inside the transaction
	// after the insert; an error from it aborts the creation. It reports whether it created u, and returns
	// authapi.ErrEmailTaken when a non-admin account already has u.Email.
	CreateFirstAdmin(ctx context.Context, u NewUser, beforeCommit func(context.Context) error) (bool, error)
	// UserByID returns the account with that id, or authapi.ErrUserNotFound.
	UserByID(ctx context.Context, id string) (User, error)
	// UserByEmail returns the account with that normalized email, or authapi.ErrUserNotFound.
	UserByEmail(ctx context.Context, email string) (User, error)
	// UpdatePasswordHash replaces an account's password hash, or returns authapi.ErrUserNotFound.
	UpdatePasswordHash(ctx context.Context, id, hash string, at time.Time) error
	// UpdateLoginAttempts atomically replaces the account's throttling state by fn's result, with every
	// concurrent update for the account waiting its turn. fn receives the zero value when nothing is stored;
	// returning the zero value deletes the state; an error from fn is returned and nothing changes.
	UpdateLoginAttempts(ctx context.Context, userID string, fn func(LoginAttempts) (LoginAttempts, error)) error
	// ResetLoginAttempts forgets the account's failed logins.
	ResetLoginAttempts(ctx context.Context, userID string) error
	// SigningKeys returns every signing key not retired, newest first.
	SigningKeys(ctx context.Context) ([]SigningKey, error)
	// EnsureSigningKey stores candidate when no key is active (serialised against every concurrent caller,
	// so all of them end up with the same key), then returns every signing key not retired, newest first.
	EnsureSigningKey(ctx context.Context, candidate SigningKey) ([]SigningKey, error)
	// GrantPlan records g and puts its user on its plan, in one transaction, unless a grant with g.GrantID
	// exists: then it changes nothing and returns nil when that grant is for the same user and plan,
	// authapi.ErrGrantConflict otherwise. authapi.ErrUserNotFound when the user does not exist.
	GrantPlan(ctx context.Context, g PlanGrant) error
}

// Options configures a Service. Issuer, Audience and TokenTTL are required; the rest have defaults.
type Options struct {
	// Issuer is the iss claim of every token.
	Issuer string
	// Audience is the aud claim of every token.
	Audience string
	// TokenTTL is how long an access token is valid.
	TokenTTL time.Duration
	// PinnedKey, when set, signs every token instead of a key from the repository (whose active keys still
	// verify).
	PinnedKey *SigningKey
	// Hasher hashes passwords; the zero value means DefaultPasswordHasher.
	Hasher PasswordHasher
	// Throttle limits failed logins per account; the zero value means DefaultThrottle.
	Throttle Throttle
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Service is the auth module's business logic: sign-up, login with throttling, token verification and the
// first admin. It implements authapi.Auth.
type Service struct {
	repo     Repository
	logger   *slog.Logger
	issuer   string
	audience string
	ttl      time.Duration
	pinned   *SigningKey
	hasher   PasswordHasher
	throttle Throttle
	now      func() time.Time
	tokens   atomic.Pointer[Tokens]
	// hashSlots bounds concurrent argon2id computations (19 MiB each by default), so a burst of logins
	// queues instead of exhausting memory.
	hashSlots chan struct{}
}

var _ authapi.Auth = (*Service)(nil)

// NewService returns a Service over repo. Tokens can be issued and verified once Start has loaded the
// signing keys.
func NewService(repo Repository, opts Options, logger *slog.Logger) (*Service, error) {
	if repo == nil {
		return nil, errors.New("auth service: repository is required")
	}
	if logger == nil {
		return nil, errors.New("auth service: logger is required")
	}
	if strings.TrimSpace(opts.Issuer) == "" {
		return nil, errors.New("auth service: issuer is required")
	}
	if strings.TrimSpace(opts.Audience) == "" {
		return nil, errors.New("auth service: audience is required")
	}
	if opts.TokenTTL < time.Second {
		return nil, fmt.Errorf("auth service: token ttl must be at least 1s, got %s", opts.TokenTTL)
	}
	if opts.PinnedKey != nil {
		if err := opts.PinnedKey.validate(); err != nil {
			return nil, fmt.Errorf("auth service: pinned key: %w", err)
		}
	}
	if opts.Hasher == (PasswordHasher{}) {
		opts.Hasher = DefaultPasswordHasher()
	}
	if err := opts.Hasher.validate(); err != nil {
		return nil, fmt.Errorf("auth service: %w", err)
	}
	if opts.Throttle == (Throttle{}) {
		opts.Throttle = DefaultThrottle()
	}
	if err := opts.Throttle.Validate(); err != nil {
		return nil, fmt.Errorf("auth service: %w", err)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Service{
		repo:      repo,
		logger:    logger,
		issuer:    opts.Issuer,
		audience:  opts.Audience,
		ttl:       opts.TokenTTL,
		pinned:    opts.PinnedKey,
		hasher:    opts.Hasher,
		throttle:  opts.Throttle,
		now:       opts.Now,
		hashSlots: make(chan struct{}, max(2, 2*runtime.GOMAXPROCS(0))),
	}, nil
}

// Start loads the signing keys. Without a pinned key it signs with the newest active key in the
// repository, storing a fresh one first when there is none; every active key verifies. Call it once the
// storage is migrated, before serving.
func (s *Service) Start(ctx context.Context) error {
	var (
		active SigningKey
		keys   []SigningKey
		err    error
	)
	if s.pinned != nil {
		active = *s.pinned
		if keys, err = s.repo.SigningKeys(ctx); err != nil {
			return fmt.Errorf("auth service: load signing keys: %w", err)
		}
	} else {
		candidate, err := NewSigningKey(s.now())
		if err != nil {
			return fmt.Errorf("auth service: %w", err)
		}
		if keys, err = s.repo.EnsureSigningKey(ctx, candidate); err != nil {
			return fmt.Errorf("auth service: load signing keys: %w", err)
		}
		if len(keys) == 0 {
			return errors.New("auth service: no active signing key after storing one")
		}
		active = keys[0]
	}
	tokens, err := NewTokens(s.issuer, s.audience, s.ttl, active, keys, s.now)
	if err != nil {
		return fmt.Errorf("auth service: %w", err)
	}
	s.tokens.Store(tokens)
	s.logger.InfoContext(ctx, "signing keys loaded", slog.String("kid", active.ID),
		slog.Bool("pinned", s.pinned != nil), slog.Int("verify_keys", len(keys)))
	return nil
}

// Signup creates an account with role user for email (normalized) and password, publishing
// authapi.UserRegistered with it. Invalid input is an errs validation error naming the fields; a taken
// email is authapi.ErrEmailTaken.
func (s *Service) Signup(ctx context.Context, email, password string) (authapi.User, error) {
	var c errs.Collector
	norm, err := NormalizeEmail(email)
	if err != nil {
		c.Add("email", "%s", fieldDetail(err, ErrInvalidEmail))
	}
	if password == "" {
		c.Add("password", "is required")
	} else if err := ValidatePassword(password); err != nil {
		c.Add("password", "%s", fieldDetail(err, ErrPasswordPolicy))
	}
	if err := c.Err(); err != nil {
		return authapi.User{}, err
	}
	u, err := s.newUser(ctx, norm, password, identity.RoleUser)
	if err != nil {
		return authapi.User{}, fmt.Errorf("signup: %w", err)
	}
	created, err := s.repo.CreateUser(ctx, u)
	if err != nil {
		return authapi.User{}, fmt.Errorf("signup: %w", err)
	}
	return created.API(), nil
}

// AccessToken is a signed bearer token and when it stops being valid.
type AccessToken struct {
	// Token is the signed JWT.
	Token string
	// ExpiresAt is when the token expires (whole seconds).
	ExpiresAt time.Time
	// ExpiresIn is the token's remaining lifetime when issued.
	ExpiresIn time.Duration
}

// Login checks email and password and issues an access token. Every failure to authenticate is
// authapi.ErrInvalidCredentials, taking about as long for an unknown email as for a wrong password. An
// account locked by the throttle gets authapi.ErrTooManyAttempts with the time to wait; each attempt is
// counted as a failure before the password is checked, so concurrent guesses cannot overrun the limit, and
// a success clears the count. A hash made with outdated parameters is replaced.
func (s *Service) Login(ctx context.Context, email, password string) (AccessToken, error) {
	tokens := s.tokens.Load()
	if tokens == nil {
		return AccessToken{}, fmt.Errorf("login: %w", ErrNotStarted)
	}
	u, err := s.repo.UserByEmail(ctx, strings.ToLower(strings.TrimSpace(email)))
	if errors.Is(err, authapi.ErrUserNotFound) {
		if err := s.withHashSlot(ctx, func() { s.hasher.Equalize(password) }); err != nil {
			return AccessToken{}, fmt.Errorf("login: %w", err)
		}
		return AccessToken{}, authapi.ErrInvalidCredentials
	}
	if err != nil {
		return AccessToken{}, fmt.Errorf("login: %w", err)
	}
	now := s.now()
	err = s.repo.UpdateLoginAttempts(ctx, u.ID, func(a LoginAttempts) (LoginAttempts, error) {
		if ok, wait := s.throttle.Allowed(a, now); !ok {
			return a, authapi.ErrTooManyAttempts.WithRetryAfter(wait)
		}
		return s.throttle.RecordFailure(a, now), nil
	})
	if errors.Is(err, authapi.ErrUserNotFound) {
		// The account was deleted since it was looked up: a failed login like any other.
		return AccessToken{}, authapi.ErrInvalidCredentials
	}
	if err != nil {
		return AccessToken{}, fmt.Errorf("login: %w", err)
	}
	var match bool
	var verifyErr error
	if err := s.withHashSlot(ctx, func() { match, verifyErr = s.hasher.Verify(password, u.PasswordHash) }); err != nil {
		return AccessToken{}, fmt.Errorf("login: %w", err)
	}
	if verifyErr != nil {
		return AccessToken{}, fmt.Errorf("login: stored password hash of user %s: %w", u.ID, verifyErr)
	}
	if !match {
		return AccessToken{}, authapi.ErrInvalidCredentials
	}
	if err := s.repo.ResetLoginAttempts(ctx, u.ID); err != nil {
		return AccessToken{}, fmt.Errorf("login: reset failed attempts: %w", err)
	}
	if s.hasher.NeedsRehash(u.PasswordHash) {
		s.rehash(ctx, u.ID, password)
	}
	token, expires, err := tokens.Issue(u.ID, u.Email, u.Role)
	if err != nil {
		return AccessToken{}, fmt.Errorf("login: %w", err)
	}
	return AccessToken{Token: token, ExpiresAt: expires, ExpiresIn: max(0, expires.Sub(now))}, nil
}

// rehash replaces a password hash made with outdated parameters. A failure only costs the upgrade, not the
// login, so it is logged rather than returned.
func (s *Service) rehash(ctx context.Context, userID, password string) {
	var hash string
	var err error
	if slotErr := s.withHashSlot(ctx, func() { hash, err = s.hasher.Hash(password) }); slotErr != nil {
		err = slotErr
	}
	if err == nil {
		err = s.repo.UpdatePasswordHash(ctx, userID, hash, s.now())
	}
	if err != nil {
		s.logger.WarnContext(ctx, "password rehash failed", slog.String("user_id", userID), slog.Any("error", err))
	}
}

// VerifyToken checks a bearer token and returns who it speaks for. It is stateless: the signature, issuer,
// audience and validity times are checked, but the database is not consulted, so a token stays valid for
// its (short) lifetime even if the account changes meanwhile; callers needing the current account state
// call GetUser. Every failure matches authapi.ErrInvalidToken.
func (s *Service) VerifyToken(_ context.Context, token string) (authapi.Identity, error) {
	tokens := s.tokens.Load()
	if tokens == nil {
		return authapi.Identity{}, fmt.Errorf("%w: %w", authapi.ErrInvalidToken, ErrNotStarted)
	}
	c, err := tokens.Verify(token)
	if err != nil {
		return authapi.Identity{}, fmt.Errorf("%w: %w", authapi.ErrInvalidToken, err)
	}
	if c.Role != identity.RoleUser && c.Role != identity.RoleAdmin {
		return authapi.Identity{}, fmt.Errorf("%w: unknown role %q", authapi.ErrInvalidToken, c.Role)
	}
	return authapi.Identity{UserID: c.UserID, Email: c.Email, Role: c.Role, ExpiresAt: c.ExpiresAt}, nil
}

// GetUser returns the account with id, or authapi.ErrUserNotFound (also for an id that is not a UUID).
func (s *Service) GetUser(ctx context.Context, id string) (authapi.User, error) {
	if _, err := uuid.Parse(id); err != nil {
		return authapi.User{}, authapi.ErrUserNotFound
	}
	u, err := s.repo.UserByID(ctx, id)
	if err != nil {
		return authapi.User{}, fmt.Errorf("get user: %w", err)
	}
	return u.API(), nil
}

// EnsureAdmin creates the first admin account with email when no admin exists, publishing
// authapi.UserRegistered with it; concurrent callers create at most one. An empty password means a random
// one of GeneratedPasswordLength characters, handed to reveal inside the creating transaction (so an error
// from reveal, e.g. failing to store it, creates nothing). It reports whether it created the account.
func (s *Service) EnsureAdmin(ctx context.Context, email, password string, reveal func(ctx context.Context, password string) error) (bool, error) {
	exists, err := s.repo.AdminExists(ctx)
	if err != nil {
		return false, fmt.Errorf("first admin: %w", err)
	}
	if exists {
		return false, nil
	}
	norm, err := NormalizeEmail(email)
	if err != nil {
		return false, fmt.Errorf("first admin: %w", err)
	}
	generated := password == ""
	if generated {
		if reveal == nil {
			return false, errors.New("first admin: no password given and nowhere to reveal a generated one")
		}
		if password, err = GeneratePassword(); err != nil {
			return false, fmt.Errorf("first admin: %w", err)
		}
	} else if err := ValidatePassword(password); err != nil {
		return false, fmt.Errorf("first admin: %w", err)
	}
	u, err := s.newUser(ctx, norm, password, identity.RoleAdmin)
	if err != nil {
		return false, fmt.Errorf("first admin: %w", err)
	}
	created, err := s.repo.CreateFirstAdmin(ctx, u, func(ctx context.Context) error {
		if generated {
			return reveal(ctx, password)
		}
		return nil
	})
	if errors.Is(err, authapi.ErrEmailTaken) {
		return false, fmt.Errorf("first admin: %s already belongs to an account that is not an admin: %w", norm, err)
	}
	if err != nil {
		return false, fmt.Errorf("first admin: %w", err)
	}
	return created, nil
}

// newUser hashes password and builds an account with a fresh time-ordered id.
func (s *Service) newUser(ctx context.Context, email, password, role string) (NewUser, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return NewUser{}, fmt.Errorf("user id: %w", err)
	}
	var hash string
	var hashErr error
	if err := s.withHashSlot(ctx, func() { hash, hashErr = s.hasher.Hash(password) }); err != nil {
		return NewUser{}, err
	}
	if hashErr != nil {
		return NewUser{}, hashErr
	}
	return NewUser{ID: id.String(), Email: email, PasswordHash: hash, Role: role, CreatedAt: s.now().UTC()}, nil
}

// withHashSlot runs f, an argon2id computation, once one of the bounded slots is free or fails with
// ctx's error.
func (s *Service) withHashSlot(ctx context.Context, f func()) error {
	select {
	case s.hashSlots <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("waiting to hash a password: %w", context.Cause(ctx))
	}
	defer func() { <-s.hashSlots }()
	f()
	return nil
}

// NormalizeEmail trims and lower-cases an email address and checks it is one plain address (addr-spec,
// as net/mail parses it) of at most MaxEmailLength bytes, without a display name or angle brackets. Errors
// wrap ErrInvalidEmail and say what is wrong.
func NormalizeEmail(email string) (string, error) {
	norm := strings.ToLower(strings.TrimSpace(email))
	switch {
	case norm == "":
		return "", fmt.Errorf("%w: is required", ErrInvalidEmail)
	case len(norm) > MaxEmailLength:
		return "", fmt.Errorf("%w: must be at most %d characters", ErrInvalidEmail, MaxEmailLength)
	}
	addr, err := mail.ParseAddress(norm)
	if err != nil || addr.Name != "" || addr.Address != norm {
		return "", fmt.Errorf("%w: must be a single plain email address like name@example.com", ErrInvalidEmail)
	}
	return norm, nil
}

// GeneratePassword returns a random password of GeneratedPasswordLength letters and digits.
func GeneratePassword() (string, error) {
	// Bytes at or above the largest multiple of the alphabet size are skipped, so every symbol is equally
	// likely.
	const limit = 256 - 256%len(passwordAlphabet)
	out := make([]byte, 0, GeneratedPasswordLength)
	buf := make([]byte, 2*GeneratedPasswordLength)
	for len(out) < GeneratedPasswordLength {
		if _, err := rand.Read(buf); err != nil {
			return "", fmt.Errorf("generate password: %w", err)
		}
		for _, b := range buf {
			if int(b) < limit && len(out) < GeneratedPasswordLength {
				out = append(out, passwordAlphabet[int(b)%len(passwordAlphabet)])
			}
		}
	}
	return string(out), nil
}

// SigningKeyFromSeed returns the Ed25519 signing key made from a 32-byte RFC 8032 seed, identified like
// NewSigningKey's keys by its RFC 7638 JWK thumbprint, so every process given the same seed signs with the
// same key and kid.
func SigningKeyFromSeed(seed []byte, now time.Time) (SigningKey, error) {
	if len(seed) != ed25519.SeedSize {
		return SigningKey{}, fmt.Errorf("signing key seed is %d bytes, want %d", len(seed), ed25519.SeedSize)
	}
	priv := ed25519.NewKeyFromSeed(seed)
	return SigningKey{ID: thumbprint(priv.Public().(ed25519.PublicKey)), Private: priv, CreatedAt: now}, nil
}

// fieldDetail strips the sentinel's text from err's message, leaving the rule that was broken.
func fieldDetail(err, sentinel error) string {
	return strings.TrimPrefix(err.Error(), sentinel.Error()+": ")
}
