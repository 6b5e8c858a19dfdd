package authdomain_test

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	authapi "github.com/seamkit/seam/modules/auth/api"
	authdomain "github.com/seamkit/seam/modules/auth/domain"
	"github.com/seamkit/seam/platform/errs"
	"github.com/seamkit/seam/platform/identity"
)

// fakeRepo is an in-memory authdomain.Repository.
type fakeRepo struct {
	mu       sync.Mutex
	users    map[string]authdomain.User // by id
	attempts map[string]authdomain.LoginAttempts
	keys     []authdomain.SigningKey // newest first
	events   []authapi.UserRegistered
	// failUpdates makes UpdatePasswordHash fail.
	failUpdates bool
	// vanished makes UpdateLoginAttempts act as if the account had just been deleted.
	vanished bool
	// grants are the plan grants by grant id.
	grants map[string]authdomain.PlanGrant
}

var _ authdomain.Repository = (*fakeRepo)(nil)

func newFakeRepo() *fakeRepo {
	return &fakeRepo{users: map[string]authdomain.User{}, attempts: map[string]authdomain.LoginAttempts{}}
}

func (f *fakeRepo) CreateUser(_ context.Context, u authdomain.NewUser) (authdomain.User, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.insert(u)
}

func (f *fakeRepo) insert(u authdomain.NewUser) (authdomain.User, error) {
	for _, existing := range f.users {
		if existing.Email == u.Email {
			return authdomain.User{}, authapi.ErrEmailTaken
		}
	}
	stored := authdomain.User{ID: u.ID, Email: u.Email, PasswordHash: u.PasswordHash, Role: u.Role,
		CreatedAt: u.CreatedAt, UpdatedAt: u.CreatedAt}
	f.users[u.ID] = stored
	f.events = append(f.events, authapi.UserRegistered{UserID: u.ID, Email: u.Email, Role: u.Role, RegisteredAt: u.CreatedAt})
	return stored, nil
}

func (f *fakeRepo) AdminExists(context.Context) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.adminExists(), nil
}

func (f *fakeRepo) adminExists() bool {
	for _, u := range f.users {
		if u.Role == identity.RoleAdmin {
			return true
		}
	}
	return false
}

func (f *fakeRepo) CreateFirstAdmin(ctx context.Context, u authdomain.NewUser, beforeCommit func(context.Context) error) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.adminExists() {
		return false, nil
	}
	if _, err := f.insert(u); err != nil {
		return false, err
	}
	if err := beforeCommit(ctx); err != nil {
		delete(f.users, u.ID)
		f.events = f.events[:len(f.events)-1]
		return false, err
	}
	return true, nil
}

func (f *fakeRepo) UserByID(_ context.Context, id string) (authdomain.User, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	u, ok := f.users[id]
	if !ok {
		return authdomain.User{}, authapi.ErrUserNotFound
	}
	return u, nil
}

func (f *fakeRepo) UserByEmail(_ context.Context, email string) (authdomain.User, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, u := range f.users {
		if u.Email == email {
			return u, nil
		}
	}
	return authdomain.User{}, authapi.ErrUserNotFound
}

func (f *fakeRepo) UpdatePasswordHash(_ context.Context, id, hash string, at time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failUpdates {
		return errors.New("fake: update failed")
	}
	u, ok := f.users[id]
	if !ok {
		return authapi.ErrUserNotFound
	}
	u.PasswordHash, u.UpdatedAt = hash, at
	f.users[id] = u
	return nil
}

func (f *fakeRepo) UpdateLoginAttempts(_ context.Context, userID string, fn func(authdomain.LoginAttempts) (authdomain.LoginAttempts, error)) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.users[userID]; !ok || f.vanished {
		return authapi.ErrUserNotFound
	}
	next, err := fn(f.attempts[userID])
	if err != nil {
		return err
	}
	if next == (authdomain.LoginAttempts{}) {
		delete(f.attempts, userID)
	} else {
		f.attempts[userID] = next
	}
	return nil
}

func (f *fakeRepo) ResetLoginAttempts(_ context.Context, userID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.attempts, userID)
	return nil
}

func (f *fakeRepo) SigningKeys(context.Context) ([]authdomain.SigningKey, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]authdomain.SigningKey(nil), f.keys...), nil
}

func (f *fakeRepo) EnsureSigningKey(_ context.Context, candidate authdomain.SigningKey) ([]authdomain.SigningKey, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.keys) == 0 {
		f.keys = []authdomain.SigningKey{candidate}
	}
	return append([]authdomain.SigningKey(nil), f.keys...), nil
}

func (f *fakeRepo) user(t *testing.T, email string) authdomain.User {
	t.Helper()
	u, err := f.UserByEmail(context.Background(), email)
	if err != nil {
		t.Fatalf("user %s: %v", email, err)
	}
	return u
}

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// cheapHasher keeps the tests fast; the service takes the parameters as given.
var cheapHasher = authdomain.PasswordHasher{Memory: 64, Time: 1, Threads: 1}

const goodPassword = "correct horse battery"

type fixture struct {
	svc   *authdomain.Service
	repo  *fakeRepo
	clock *clock
}

func newFixture(t *testing.T, mod func(*authdomain.Options)) fixture {
	t.Helper()
	repo := newFakeRepo()
	c := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	opts := authdomain.Options{Issuer: "seam", Audience: "seam", TokenTTL: time.Hour, Hasher: cheapHasher, Now: c.Now}
	if mod != nil {
		mod(&opts)
	}
	svc, err := authdomain.NewService(repo, opts, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("NewService: %v", err)
	}
	if err := svc.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	return fixture{svc: svc, repo: repo, clock: c}
}

func (f fixture) signup(t *testing.T, email string) authapi.User {
	t.Helper()
	u, err := f.svc.Signup(context.Background(), email, goodPassword)
	if err != nil {
		t.Fatalf("Signup(%q): %v", email, err)
	}
	return u
}

func validationFields(t *testing.T, err error) []string {
	t.Helper()
	if !errors.Is(err, errs.ErrValidation) {
		t.Fatalf("error %v is not a validation error", err)
	}
	e, _ := errs.As(err)
	var fields []string
	for _, f := range e.Fields {
		fields = append(fields, f.Field)
	}
	return fields
}

func TestNewServiceRejectsBadOptions(t *testing.T) {
	logger := slog.New(slog.DiscardHandler)
	valid := authdomain.Options{Issuer: "seam", Audience: "seam", TokenTTL: time.Hour}
	cases := map[string]func(*authdomain.Options){
		"no issuer":    func(o *authdomain.Options) { o.Issuer = " " },
		"no audience":  func(o *authdomain.Options) { o.Audience = "" },
		"short ttl":    func(o *authdomain.Options) { o.TokenTTL = time.Millisecond },
		"bad hasher":   func(o *authdomain.Options) { o.Hasher = authdomain.PasswordHasher{Memory: 64} },
		"bad throttle": func(o *authdomain.Options) { o.Throttle = authdomain.Throttle{MaxFailures: -1} },
		"bad pinned":   func(o *authdomain.Options) { o.PinnedKey = &authdomain.SigningKey{ID: "x"} },
	}
	for name, mod := range cases {
		t.Run(name, func(t *testing.T) {
			o := valid
			mod(&o)
			if _, err := authdomain.NewService(newFakeRepo(), o, logger); err == nil {
				t.Fatal("NewService accepted bad options")
			}
		})
	}
	if _, err := authdomain.NewService(nil, valid, logger); err == nil {
		t.Fatal("NewService accepted a nil repository")
	}
	if _, err := authdomain.NewService(newFakeRepo(), valid, logger); err != nil {
		t.Fatalf("NewService with valid options: %v", err)
	}
}

func TestSignupCreatesUserAndEvent(t *testing.T) {
	f := newFixture(t, nil)
	u := f.signup(t, "  Alice@Example.TEST ")
	if u.Email != "alice@example.test" || u.Role != identity.RoleUser || u.ID == "" || !u.CreatedAt.Equal(f.clock.Now()) {
		t.Fatalf("Signup returned %+v", u)
	}
	stored := f.repo.user(t, "alice@example.test")
	if ok, err := cheapHasher.Verify(goodPassword, stored.PasswordHash); err != nil || !ok {
		t.Fatalf("stored hash does not verify the password: %v %v", ok, err)
	}
	want := []authapi.UserRegistered{{UserID: u.ID, Email: u.Email, Role: identity.RoleUser, RegisteredAt: u.CreatedAt}}
	if diff := cmp.Diff(want, f.repo.events); diff != "" {
		t.Fatalf("events (-want +got):\n%s", diff)
	}
	got, err := f.svc.GetUser(context.Background(), u.ID)
	if err != nil || got != u {
		t.Fatalf("GetUser = %+v, %v; want %+v", got, err, u)
	}
}

func TestSignupDuplicateEmailIsCaseInsensitive(t *testing.T) {
	f := newFixture(t, nil)
	f.signup(t, "bob@example.test")
	_, err := f.svc.Signup(context.Background(), "BOB@example.test", goodPassword)
	if !errors.Is(err, authapi.ErrEmailTaken) {
		t.Fatalf("duplicate signup: %v, want ErrEmailTaken", err)
	}
}

func TestSignupValidation(t *testing.T) {
	f := newFixture(t, nil)
	cases := []struct {
		name, email, password string
		fields                []string
	}{
		{"missing both", "", "", []string{"email", "password"}},
		{"not an email", "not-an-email", goodPassword, []string{"email"}},
		{"display name", "Bob <bob@example.test>", goodPassword, []string{"email"}},
		{"angle brackets", "<bob@example.test>", goodPassword, []string{"email"}},
		{"two addresses", "a@example.test, b@example.test", goodPassword, []string{"email"}},
		{"too long", strings.Repeat("a", 250) + "@example.test", goodPassword, []string{"email"}},
		{"short password", "carol@example.test", "short", []string{"password"}},
		{"long password", "carol@example.test", strings.Repeat("p", authdomain.MaxPasswordLength+1), []string{"password"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.svc.Signup(context.Background(), tc.email, tc.password)
			if diff := cmp.Diff(tc.fields, validationFields(t, err)); diff != "" {
				t.Fatalf("fields (-want +got):\n%s", diff)
			}
		})
	}
	if len(f.repo.users) != 0 {
		t.Fatalf("invalid signups created %d users", len(f.repo.users))
	}
}

func TestNormalizeEmail(t *testing.T) {
	good := map[string]string{
		"a@example.test":         "a@example.test",
		" A.B+tag@Example.Test ": "a.b+tag@example.test",
		"admin@seam.local":       "admin@seam.local",
	}
	for in, want := range good {
		got, err := authdomain.NormalizeEmail(in)
		if err != nil || got != want {
			t.Errorf("NormalizeEmail(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "   ", "plain", "@example.test", "a@", "a b@example.test", "\"a b\"@example.test",
		"A <a@example.test>", "a@example.test (comment)", "a@example.test,b@example.test", "a@exa\nmple.test"} {
		if got, err := authdomain.NormalizeEmail(in); !errors.Is(err, authdomain.ErrInvalidEmail) {
			t.Errorf("NormalizeEmail(%q) = %q, %v; want ErrInvalidEmail", in, got, err)
		}
	}
}

func TestLoginIssuesVerifiableToken(t *testing.T) {
	f := newFixture(t, nil)
	u := f.signup(t, "dave@example.test")
	tok, err := f.svc.Login(context.Background(), " DAVE@example.test", goodPassword)
	if err != nil {
		t.Fatalf("Login: %v", err)
	}
	if tok.ExpiresIn != time.Hour || !tok.ExpiresAt.Equal(f.clock.Now().Add(time.Hour)) {
		t.Fatalf("token expiry %s / %s", tok.ExpiresAt, tok.ExpiresIn)
	}
	id, err := f.svc.VerifyToken(context.Background(), tok.Token)
	if err != nil {
		t.Fatalf("VerifyToken: %v", err)
	}
	want := authapi.Identity{UserID: u.ID, Email: u.Email, Role: identity.RoleUser, ExpiresAt: tok.ExpiresAt}
	if diff := cmp.Diff(want, id); diff != "" {
		t.Fatalf("identity (-want +got):\n%s", diff)
	}
	if len(f.repo.attempts) != 0 {
		t.Fatalf("a successful login left throttling state: %+v", f.repo.attempts)
	}
}

func TestLoginFailuresLookAlike(t *testing.T) {
	f := newFixture(t, nil)
	f.signup(t, "erin@example.test")
	_, wrong := f.svc.Login(context.Background(), "erin@example.test", "not the password")
	_, unknown := f.svc.Login(context.Background(), "nobody@example.test", "not the password")
	for _, err := range []error{wrong, unknown} {
		if !errors.Is(err, authapi.ErrInvalidCredentials) {
			t.Fatalf("failed login: %v, want ErrInvalidCredentials", err)
		}
		if err.Error() != authapi.ErrInvalidCredentials.Error() {
			t.Fatalf("failed login says %q, want exactly %q", err, authapi.ErrInvalidCredentials)
		}
	}
}

func TestLoginAccountDeletedMeanwhile(t *testing.T) {
	f := newFixture(t, nil)
	f.signup(t, "ken@example.test")
	f.repo.vanished = true
	if _, err := f.svc.Login(context.Background(), "ken@example.test", goodPassword); !errors.Is(err, authapi.ErrInvalidCredentials) {
		t.Fatalf("login for a vanished account: %v, want ErrInvalidCredentials", err)
	}
}

func TestLoginThrottlesPerAccount(t *testing.T) {
	f := newFixture(t, nil)
	f.signup(t, "frank@example.test")
	f.signup(t, "grace@example.test")
	ctx := context.Background()
	th := authdomain.DefaultThrottle()
	for i := range th.MaxFailures {
		if _, err := f.svc.Login(ctx, "frank@example.test", "wrong password"); !errors.Is(err, authapi.ErrInvalidCredentials) {
			t.Fatalf("failure %d: %v", i+1, err)
		}
		f.clock.Advance(time.Second)
	}
	// Locked now: even the right password is refused, with the time left to wait.
	_, err := f.svc.Login(ctx, "frank@example.test", goodPassword)
	if !errors.Is(err, authapi.ErrTooManyAttempts) {
		t.Fatalf("login while locked: %v, want ErrTooManyAttempts", err)
	}
	e, _ := errs.As(err)
	if want := th.Lockout - time.Second; e.RetryAfter != want {
		t.Fatalf("RetryAfter = %s, want %s", e.RetryAfter, want)
	}
	// Another account is unaffected.
	if _, err := f.svc.Login(ctx, "grace@example.test", goodPassword); err != nil {
		t.Fatalf("other account: %v", err)
	}
	// Once the lockout has passed, the right password works and clears the state.
	f.clock.Advance(th.Lockout)
	if _, err := f.svc.Login(ctx, "frank@example.test", goodPassword); err != nil {
		t.Fatalf("login after lockout: %v", err)
	}
	if len(f.repo.attempts) != 0 {
		t.Fatalf("state after success: %+v", f.repo.attempts)
	}
}

func TestLoginCountsConcurrentGuesses(t *testing.T) {
	f := newFixture(t, nil)
	f.signup(t, "heidi@example.test")
	const guesses = 20
	var wg sync.WaitGroup
	results := make(chan error, guesses)
	for range guesses {
		wg.Go(func() {
			_, err := f.svc.Login(context.Background(), "heidi@example.test", "wrong password")
			results <- err
		})
	}
	wg.Wait()
	close(results)
	var invalid, locked int
	for err := range results {
		switch {
		case errors.Is(err, authapi.ErrInvalidCredentials):
			invalid++
		case errors.Is(err, authapi.ErrTooManyAttempts):
			locked++
		default:
			t.Fatalf("unexpected error %v", err)
		}
	}
	if want := authdomain.DefaultThrottle().MaxFailures; invalid != want || locked != guesses-want {
		t.Fatalf("%d passwords checked and %d refused as locked; want %d and %d", invalid, locked, want, guesses-want)
	}
}

func TestLoginRehashesOutdatedHash(t *testing.T) {
	f := newFixture(t, nil)
	weak := authdomain.PasswordHasher{Memory: 32, Time: 1, Threads: 1}
	hash, err := weak.Hash(goodPassword)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.repo.CreateUser(context.Background(), authdomain.NewUser{ID: "0195f0a0-0000-7000-8000-000000000001",
		Email: "ivan@example.test", PasswordHash: hash, Role: identity.RoleUser, CreatedAt: f.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Login(context.Background(), "ivan@example.test", goodPassword); err != nil {
		t.Fatalf("Login: %v", err)
	}
	stored := f.repo.user(t, "ivan@example.test")
	if stored.PasswordHash == hash || cheapHasher.NeedsRehash(stored.PasswordHash) {
		t.Fatalf("hash not upgraded: %s", stored.PasswordHash)
	}
	if ok, err := cheapHasher.Verify(goodPassword, stored.PasswordHash); err != nil || !ok {
		t.Fatalf("new hash does not verify: %v %v", ok, err)
	}
}

func TestLoginSucceedsWhenRehashFails(t *testing.T) {
	f := newFixture(t, nil)
	weak := authdomain.PasswordHasher{Memory: 32, Time: 1, Threads: 1}
	hash, _ := weak.Hash(goodPassword)
	if _, err := f.repo.CreateUser(context.Background(), authdomain.NewUser{ID: "0195f0a0-0000-7000-8000-000000000002",
		Email: "judy@example.test", PasswordHash: hash, Role: identity.RoleUser, CreatedAt: f.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	f.repo.failUpdates = true
	if _, err := f.svc.Login(context.Background(), "judy@example.test", goodPassword); err != nil {
		t.Fatalf("Login: %v", err)
	}
}

func TestVerifyTokenRejects(t *testing.T) {
	f := newFixture(t, nil)
	f.signup(t, "kim@example.test")
	tok, err := f.svc.Login(context.Background(), "kim@example.test", goodPassword)
	if err != nil {
		t.Fatal(err)
	}
	other := newFixture(t, nil) // a different signing key
	cases := map[string]func() (authapi.Identity, error){
		"garbage":   func() (authapi.Identity, error) { return f.svc.VerifyToken(context.Background(), "not.a.token") },
		"empty":     func() (authapi.Identity, error) { return f.svc.VerifyToken(context.Background(), "") },
		"other key": func() (authapi.Identity, error) { return other.svc.VerifyToken(context.Background(), tok.Token) },
		"expired": func() (authapi.Identity, error) {
			f.clock.Advance(2 * time.Hour)
			defer f.clock.Advance(-2 * time.Hour)
			return f.svc.VerifyToken(context.Background(), tok.Token)
		},
	}
	for name, verify := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := verify(); !errors.Is(err, authapi.ErrInvalidToken) {
				t.Fatalf("VerifyToken: %v, want ErrInvalidToken", err)
			}
		})
	}
}

func TestNotStarted(t *testing.T) {
	svc, err := authdomain.NewService(newFakeRepo(), authdomain.Options{Issuer: "seam", Audience: "seam",
		TokenTTL: time.Hour, Hasher: cheapHasher}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.VerifyToken(context.Background(), "x"); !errors.Is(err, authapi.ErrInvalidToken) {
		t.Fatalf("VerifyToken before Start: %v", err)
	}
	if _, err := svc.Login(context.Background(), "a@example.test", goodPassword); !errors.Is(err, authdomain.ErrNotStarted) {
		t.Fatalf("Login before Start: %v", err)
	}
}

func TestStartSharesStoredKey(t *testing.T) {
	f := newFixture(t, nil)
	f.signup(t, "leo@example.test")
	tok, err := f.svc.Login(context.Background(), "leo@example.test", goodPassword)
	if err != nil {
		t.Fatal(err)
	}
	// A second instance on the same storage signs with the same key, so it accepts the first one's tokens.
	second, err := authdomain.NewService(f.repo, authdomain.Options{Issuer: "seam", Audience: "seam",
		TokenTTL: time.Hour, Hasher: cheapHasher, Now: f.clock.Now}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := second.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(f.repo.keys) != 1 {
		t.Fatalf("%d keys stored, want 1", len(f.repo.keys))
	}
	if _, err := second.VerifyToken(context.Background(), tok.Token); err != nil {
		t.Fatalf("second instance rejects the first one's token: %v", err)
	}
}

func TestStartWithPinnedKey(t *testing.T) {
	seed := make([]byte, ed25519.SeedSize)
	for i := range seed {
		seed[i] = byte(i)
	}
	pinned, err := authdomain.SigningKeyFromSeed(seed, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	again, _ := authdomain.SigningKeyFromSeed(seed, time.Now())
	if pinned.ID != again.ID || len(pinned.ID) != 43 {
		t.Fatalf("kid %q is not a stable thumbprint (%q)", pinned.ID, again.ID)
	}
	if _, err := authdomain.SigningKeyFromSeed(seed[:31], time.Now()); err == nil {
		t.Fatal("SigningKeyFromSeed accepted a short seed")
	}

	// A key stored earlier keeps verifying next to the pinned one.
	old := newFixture(t, nil)
	old.signup(t, "mia@example.test")
	oldToken, err := old.svc.Login(context.Background(), "mia@example.test", goodPassword)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := authdomain.NewService(old.repo, authdomain.Options{Issuer: "seam", Audience: "seam", TokenTTL: time.Hour,
		Hasher: cheapHasher, Now: old.clock.Now, PinnedKey: &pinned}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.VerifyToken(context.Background(), oldToken.Token); err != nil {
		t.Fatalf("stored key no longer verifies: %v", err)
	}
	tok, err := svc.Login(context.Background(), "mia@example.test", goodPassword)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(decodeHeader(t, tok.Token), pinned.ID) {
		t.Fatalf("token not signed with the pinned key %s", pinned.ID)
	}
	if len(old.repo.keys) != 1 {
		t.Fatalf("pinned start stored a key: %d keys", len(old.repo.keys))
	}
}

func decodeHeader(t *testing.T, token string) string {
	t.Helper()
	h, _, _ := strings.Cut(token, ".")
	raw, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		t.Fatalf("token header: %v", err)
	}
	return string(raw)
}

func TestGetUserUnknown(t *testing.T) {
	f := newFixture(t, nil)
	for _, id := range []string{"not-a-uuid", "", "0195f0a0-0000-7000-8000-00000000ffff"} {
		if _, err := f.svc.GetUser(context.Background(), id); !errors.Is(err, authapi.ErrUserNotFound) {
			t.Errorf("GetUser(%q): %v, want ErrUserNotFound", id, err)
		}
	}
}

func TestEnsureAdminWithGeneratedPassword(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	var revealed []string
	reveal := func(_ context.Context, pw string) error { revealed = append(revealed, pw); return nil }
	created, err := f.svc.EnsureAdmin(ctx, "Admin@Seam.local", "", reveal)
	if err != nil || !created {
		t.Fatalf("EnsureAdmin = %v, %v", created, err)
	}
	if len(revealed) != 1 || len(revealed[0]) != authdomain.GeneratedPasswordLength {
		t.Fatalf("revealed %q", revealed)
	}
	admin := f.repo.user(t, "admin@seam.local")
	if admin.Role != identity.RoleAdmin || len(f.repo.events) != 1 || f.repo.events[0].Role != identity.RoleAdmin {
		t.Fatalf("admin %+v, events %+v", admin, f.repo.events)
	}
	if _, err := f.svc.Login(ctx, "admin@seam.local", revealed[0]); err != nil {
		t.Fatalf("login with the generated password: %v", err)
	}
	// A second start finds the admin and does nothing.
	created, err = f.svc.EnsureAdmin(ctx, "other-admin@seam.local", "", reveal)
	if err != nil || created || len(revealed) != 1 || len(f.repo.users) != 1 {
		t.Fatalf("second EnsureAdmin = %v, %v; %d reveals, %d users", created, err, len(revealed), len(f.repo.users))
	}
}

func TestEnsureAdminWithConfiguredPassword(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	created, err := f.svc.EnsureAdmin(ctx, "root@example.test", "configured password", nil)
	if err != nil || !created {
		t.Fatalf("EnsureAdmin = %v, %v", created, err)
	}
	tok, err := f.svc.Login(ctx, "root@example.test", "configured password")
	if err != nil {
		t.Fatal(err)
	}
	id, err := f.svc.VerifyToken(ctx, tok.Token)
	if err != nil || id.Role != identity.RoleAdmin {
		t.Fatalf("admin identity %+v, %v", id, err)
	}
}

func TestEnsureAdminFailures(t *testing.T) {
	ctx := context.Background()
	t.Run("reveal fails", func(t *testing.T) {
		f := newFixture(t, nil)
		boom := errors.New("disk full")
		_, err := f.svc.EnsureAdmin(ctx, "admin@seam.local", "", func(context.Context, string) error { return boom })
		if !errors.Is(err, boom) || len(f.repo.users) != 0 || len(f.repo.events) != 0 {
			t.Fatalf("EnsureAdmin: %v; %d users, %d events", err, len(f.repo.users), len(f.repo.events))
		}
	})
	t.Run("email taken by a user", func(t *testing.T) {
		f := newFixture(t, nil)
		f.signup(t, "admin@seam.local")
		if _, err := f.svc.EnsureAdmin(ctx, "admin@seam.local", "configured password", nil); !errors.Is(err, authapi.ErrEmailTaken) {
			t.Fatalf("EnsureAdmin: %v, want ErrEmailTaken", err)
		}
	})
	t.Run("bad input", func(t *testing.T) {
		f := newFixture(t, nil)
		for _, tc := range []struct{ email, password string }{{"nope", "configured password"}, {"a@example.test", "short"}, {"a@example.test", ""}} {
			if _, err := f.svc.EnsureAdmin(ctx, tc.email, tc.password, nil); err == nil {
				t.Errorf("EnsureAdmin(%q, %q) succeeded", tc.email, tc.password)
			}
		}
		if len(f.repo.users) != 0 {
			t.Fatalf("%d users created", len(f.repo.users))
		}
	})
}

func TestGeneratePassword(t *testing.T) {
	seen := map[string]bool{}
	for range 50 {
		pw, err := authdomain.GeneratePassword()
		if err != nil {
			t.Fatal(err)
		}
		if len(pw) != authdomain.GeneratedPasswordLength || authdomain.ValidatePassword(pw) != nil {
			t.Fatalf("bad password %q", pw)
		}
		for _, r := range pw {
			if !strings.ContainsRune("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", r) {
				t.Fatalf("password %q has %q", pw, r)
			}
		}
		if seen[pw] {
			t.Fatalf("repeated password %q", pw)
		}
		seen[pw] = true
	}
}

func TestUserAPIHidesHash(t *testing.T) {
	u := authdomain.User{ID: "id", Email: "e@example.test", PasswordHash: "secret", Role: identity.RoleUser}
	if s := fmt.Sprintf("%+v", u.API()); strings.Contains(s, "secret") {
		t.Fatalf("API() leaks the hash: %s", s)
	}
}
