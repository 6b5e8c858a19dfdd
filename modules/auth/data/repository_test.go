package authdata_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	authapi "github.com/seamkit/seam/modules/auth/api"
	authdata "github.com/seamkit/seam/modules/auth/data"
	authdomain "github.com/seamkit/seam/modules/auth/domain"
	"github.com/seamkit/seam/platform/identity"
	"github.com/seamkit/seam/platform/migrate"
	"github.com/seamkit/seam/platform/pgtest"
	sqlfs "github.com/seamkit/seam/sql"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// newDatabase returns the URL of a fresh database with the auth schema migrated.
func newDatabase(t *testing.T) string {
	t.Helper()
	url := pgtest.NewDatabase(t)
	pool := openPool(t, url)
	if err := migrate.Up(context.Background(), pool, authdata.Schema, sqlfs.Migrations("auth"), slog.New(slog.DiscardHandler)); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return url
}

// openPool opens a pool on url, as one more process would, closed when the test ends.
func openPool(t *testing.T, url string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatalf("open pool: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// warmPool is openPool with a connection already open, so that concurrent callers start together.
func warmPool(t *testing.T, url string) *pgxpool.Pool {
	t.Helper()
	pool := openPool(t, url)
	if err := pool.Ping(context.Background()); err != nil {
		t.Fatalf("ping: %v", err)
	}
	return pool
}

func newRepo(t *testing.T) (*authdata.Repository, *pgxpool.Pool) {
	t.Helper()
	pool := openPool(t, newDatabase(t))
	return authdata.NewRepository(pool), pool
}

var testTime = time.Date(2026, 3, 1, 12, 0, 0, 123456000, time.UTC)

func newUser(email, role string) authdomain.NewUser {
	return authdomain.NewUser{ID: uuid.Must(uuid.NewV7()).String(), Email: email,
		PasswordHash: "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", Role: role, CreatedAt: testTime}
}

type outboxRow struct {
	Subject, Type, Key string
	Payload            authapi.UserRegistered
}

func outboxRows(t *testing.T, pool *pgxpool.Pool) []outboxRow {
	t.Helper()
	rows, err := pool.Query(context.Background(), "SELECT subject, event_type, aggregate_key, payload FROM auth.outbox ORDER BY seq")
	if err != nil {
		t.Fatalf("read outbox: %v", err)
	}
	defer rows.Close()
	var out []outboxRow
	for rows.Next() {
		var r outboxRow
		var payload []byte
		if err := rows.Scan(&r.Subject, &r.Type, &r.Key, &payload); err != nil {
			t.Fatalf("scan outbox: %v", err)
		}
		if err := json.Unmarshal(payload, &r.Payload); err != nil {
			t.Fatalf("outbox payload %s: %v", payload, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("read outbox: %v", err)
	}
	return out
}

func count(t *testing.T, pool *pgxpool.Pool, query string, args ...any) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

func TestCreateUserWritesUserAndEvent(t *testing.T) {
	repo, pool := newRepo(t)
	ctx := context.Background()
	nu := newUser("alice@example.test", identity.RoleUser)
	got, err := repo.CreateUser(ctx, nu)
	if err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	want := authdomain.User{ID: nu.ID, Email: nu.Email, PasswordHash: nu.PasswordHash, Role: nu.Role,
		Plan: authapi.PlanFree, CreatedAt: testTime, UpdatedAt: testTime}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("created user (-want +got):\n%s", diff)
	}
	for name, lookup := range map[string]func() (authdomain.User, error){
		"by id":    func() (authdomain.User, error) { return repo.UserByID(ctx, nu.ID) },
		"by email": func() (authdomain.User, error) { return repo.UserByEmail(ctx, nu.Email) },
	} {
		u, err := lookup()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if diff := cmp.Diff(want, u); diff != "" {
			t.Fatalf("%s (-want +got):\n%s", name, diff)
		}
	}
	wantEvents := []outboxRow{{Subject: authapi.SubjectUserRegistered, Type: authapi.EventUserRegistered, Key: nu.ID,
		Payload: authapi.UserRegistered{UserID: nu.ID, Email: nu.Email, Role: nu.Role, RegisteredAt: testTime}}}
	if diff := cmp.Diff(wantEvents, outboxRows(t, pool)); diff != "" {
		t.Fatalf("outbox (-want +got):\n%s", diff)
	}
}

func TestCreateUserEventIsInTheSameTransaction(t *testing.T) {
	repo, pool := newRepo(t)
	ctx := context.Background()
	// Make every outbox insert fail: the user insert that preceded it must be rolled back with it.
	_, err := pool.Exec(ctx, `
CREATE FUNCTION auth.refuse_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'outbox refused by test'; END $$;
CREATE TRIGGER refuse_outbox BEFORE INSERT ON auth.outbox FOR EACH ROW EXECUTE FUNCTION auth.refuse_outbox();`)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := repo.CreateUser(ctx, newUser("bob@example.test", identity.RoleUser)); err == nil {
		t.Fatal("CreateUser succeeded although its event could not be written")
	}
	if n := count(t, pool, "SELECT count(*) FROM auth.users"); n != 0 {
		t.Fatalf("%d users committed without their event", n)
	}
}

func TestUsersEmailIsUnique(t *testing.T) {
	repo, pool := newRepo(t)
	ctx := context.Background()
	if _, err := repo.CreateUser(ctx, newUser("carol@example.test", identity.RoleUser)); err != nil {
		t.Fatal(err)
	}
	if _, err := repo.CreateUser(ctx, newUser("carol@example.test", identity.RoleAdmin)); !errors.Is(err, authapi.ErrEmailTaken) {
		t.Fatalf("duplicate email: %v, want ErrEmailTaken", err)
	}
	if n := len(outboxRows(t, pool)); n != 1 {
		t.Fatalf("%d events, want 1: the refused insert must not publish", n)
	}
}

func TestUsersConstraints(t *testing.T) {
	repo, pool := newRepo(t)
	ctx := context.Background()
	cases := map[string]authdomain.NewUser{
		"upper-case email": newUser("Dave@example.test", identity.RoleUser),
		"padded email":     newUser(" dave@example.test", identity.RoleUser),
		"empty email":      newUser("", identity.RoleUser),
		"unknown role":     newUser("dave@example.test", "root"),
		"empty hash": func() authdomain.NewUser {
			u := newUser("dave@example.test", identity.RoleUser)
			u.PasswordHash = ""
			return u
		}(),
	}
	for name, u := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := repo.CreateUser(ctx, u)
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) || pgErr.Code != "23514" {
				t.Fatalf("CreateUser: %v, want a check violation", err)
			}
		})
	}
	if n := count(t, pool, "SELECT count(*) FROM auth.users"); n != 0 {
		t.Fatalf("%d invalid users stored", n)
	}
}

func TestUserNotFound(t *testing.T) {
	repo, _ := newRepo(t)
	ctx := context.Background()
	missing := uuid.Must(uuid.NewV7()).String()
	checks := map[string]error{}
	_, checks["by id"] = repo.UserByID(ctx, missing)
	_, checks["by malformed id"] = repo.UserByID(ctx, "nope")
	_, checks["by email"] = repo.UserByEmail(ctx, "nobody@example.test")
	checks["update hash"] = repo.UpdatePasswordHash(ctx, missing, "x", testTime)
	checks["attempts"] = repo.UpdateLoginAttempts(ctx, missing, func(a authdomain.LoginAttempts) (authdomain.LoginAttempts, error) {
		return authdomain.LoginAttempts{Failures: 1, FirstFailure: testTime}, nil
	})
	for name, err := range checks {
		if !errors.Is(err, authapi.ErrUserNotFound) {
			t.Errorf("%s: %v, want ErrUserNotFound", name, err)
		}
	}
}

func TestUpdatePasswordHash(t *testing.T) {
	repo, _ := newRepo(t)
	ctx := context.Background()
	nu := newUser("erin@example.test", identity.RoleUser)
	if _, err := repo.CreateUser(ctx, nu); err != nil {
		t.Fatal(err)
	}
	later := testTime.Add(time.Hour)
	if err := repo.UpdatePasswordHash(ctx, nu.ID, "$argon2id$new", later); err != nil {
		t.Fatal(err)
	}
	u, err := repo.UserByID(ctx, nu.ID)
	if err != nil || u.PasswordHash != "$argon2id$new" || !u.UpdatedAt.Equal(later) || !u.CreatedAt.Equal(testTime) {
		t.Fatalf("after update: %+v, %v", u, err)
	}
}

// attempts reads the stored state through UpdateLoginAttempts without changing it.
func attempts(t *testing.T, repo *authdata.Repository, userID string) authdomain.LoginAttempts {
	t.Helper()
	var got authdomain.LoginAttempts
	err := repo.UpdateLoginAttempts(context.Background(), userID, func(a authdomain.LoginAttempts) (authdomain.LoginAttempts, error) {
		got = a
		return a, nil
	})
	if err != nil {
		t.Fatalf("read attempts: %v", err)
	}
	return got
}

func TestLoginAttemptsRoundTrip(t *testing.T) {
	repo, pool := newRepo(t)
	ctx := context.Background()
	nu := newUser("frank@example.test", identity.RoleUser)
	if _, err := repo.CreateUser(ctx, nu); err != nil {
		t.Fatal(err)
	}
	if got := attempts(t, repo, nu.ID); got != (authdomain.LoginAttempts{}) {
		t.Fatalf("fresh account has state %+v", got)
	}
	if n := count(t, pool, "SELECT count(*) FROM auth.login_attempts"); n != 0 {
		t.Fatalf("reading the zero state left %d rows", n)
	}

	th := authdomain.DefaultThrottle()
	state := authdomain.LoginAttempts{}
	for i := range th.MaxFailures {
		now := testTime.Add(time.Duration(i) * time.Second)
		err := repo.UpdateLoginAttempts(ctx, nu.ID, func(a authdomain.LoginAttempts) (authdomain.LoginAttempts, error) {
			if diff := cmp.Diff(state, a); diff != "" {
				t.Fatalf("stored state (-want +got):\n%s", diff)
			}
			state = th.RecordFailure(a, now)
			return state, nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	got := attempts(t, repo, nu.ID)
	want := authdomain.LoginAttempts{Failures: th.MaxFailures, FirstFailure: testTime,
		LockedUntil: testTime.Add(time.Duration(th.MaxFailures-1)*time.Second + th.Lockout)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("locked state (-want +got):\n%s", diff)
	}

	// An error from fn changes nothing and is returned as is.
	boom := errors.New("refused")
	err := repo.UpdateLoginAttempts(ctx, nu.ID, func(authdomain.LoginAttempts) (authdomain.LoginAttempts, error) {
		return authdomain.LoginAttempts{Failures: 99, FirstFailure: testTime}, boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("UpdateLoginAttempts: %v, want the fn's error", err)
	}
	if diff := cmp.Diff(want, attempts(t, repo, nu.ID)); diff != "" {
		t.Fatalf("state after refused update (-want +got):\n%s", diff)
	}

	if err := repo.ResetLoginAttempts(ctx, nu.ID); err != nil {
		t.Fatal(err)
	}
	if got := attempts(t, repo, nu.ID); got != (authdomain.LoginAttempts{}) {
		t.Fatalf("state after reset: %+v", got)
	}
	if n := count(t, pool, "SELECT count(*) FROM auth.login_attempts"); n != 0 {
		t.Fatalf("%d rows after reset", n)
	}
}

func TestLoginAttemptsConcurrentUpdatesSerialise(t *testing.T) {
	url := newDatabase(t)
	repo := authdata.NewRepository(openPool(t, url))
	other := authdata.NewRepository(openPool(t, url))
	ctx := context.Background()
	nu := newUser("grace@example.test", identity.RoleUser)
	if _, err := repo.CreateUser(ctx, nu); err != nil {
		t.Fatal(err)
	}
	const updates = 16
	var wg sync.WaitGroup
	errc := make(chan error, updates)
	for i := range updates {
		r := repo
		if i%2 == 1 {
			r = other
		}
		wg.Go(func() {
			errc <- r.UpdateLoginAttempts(ctx, nu.ID, func(a authdomain.LoginAttempts) (authdomain.LoginAttempts, error) {
				return authdomain.LoginAttempts{Failures: a.Failures + 1, FirstFailure: testTime}, nil
			})
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := attempts(t, repo, nu.ID); got.Failures != updates {
		t.Fatalf("%d failures recorded, want %d: concurrent updates were lost", got.Failures, updates)
	}
}

func TestSigningKeySharedByConcurrentLoaders(t *testing.T) {
	url := newDatabase(t)
	const loaders = 6
	ctx := context.Background()
	repos := make([]*authdata.Repository, loaders)
	candidates := make([]authdomain.SigningKey, loaders)
	for i := range repos {
		repos[i] = authdata.NewRepository(warmPool(t, url))
		var err error
		if candidates[i], err = authdomain.NewSigningKey(testTime); err != nil {
			t.Fatal(err)
		}
	}
	results := make([][]authdomain.SigningKey, loaders)
	errs := make([]error, loaders)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range loaders {
		wg.Go(func() {
			<-start
			results[i], errs[i] = repos[i].EnsureSigningKey(ctx, candidates[i])
		})
	}
	close(start)
	wg.Wait()
	for i := range loaders {
		if errs[i] != nil {
			t.Fatalf("loader %d: %v", i, errs[i])
		}
		if len(results[i]) != 1 {
			t.Fatalf("loader %d got %d keys, want 1", i, len(results[i]))
		}
		if results[i][0].ID != results[0][0].ID || !results[i][0].Private.Equal(results[0][0].Private) {
			t.Fatalf("loader %d got key %s, loader 0 got %s", i, results[i][0].ID, results[0][0].ID)
		}
	}
	pool := openPool(t, url)
	if n := count(t, pool, "SELECT count(*) FROM auth.signing_keys"); n != 1 {
		t.Fatalf("%d keys stored, want 1", n)
	}
	stored, err := repos[0].SigningKeys(ctx)
	if err != nil || len(stored) != 1 || stored[0].ID != results[0][0].ID || !stored[0].CreatedAt.Equal(testTime) {
		t.Fatalf("SigningKeys = %+v, %v", stored, err)
	}

	// Two services started on the key accept each other's tokens.
	svcs := make([]*authdomain.Service, 2)
	for i := range svcs {
		svc, err := authdomain.NewService(repos[i], authdomain.Options{Issuer: "seam", Audience: "seam", TokenTTL: time.Hour},
			slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		if err := svc.Start(ctx); err != nil {
			t.Fatal(err)
		}
		svcs[i] = svc
	}
	if _, err := svcs[0].Signup(ctx, "heidi@example.test", "correct horse battery"); err != nil {
		t.Fatal(err)
	}
	tok, err := svcs[0].Login(ctx, "heidi@example.test", "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svcs[1].VerifyToken(ctx, tok.Token); err != nil {
		t.Fatalf("second instance rejects the first one's token: %v", err)
	}
}

func TestSigningKeysSkipRetiredAndOrderNewestFirst(t *testing.T) {
	repo, pool := newRepo(t)
	ctx := context.Background()
	var ids []string
	for i := range 3 {
		k, err := authdomain.NewSigningKey(testTime.Add(time.Duration(i) * time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		retired := any(nil)
		if i == 0 {
			retired = testTime.Add(10 * time.Hour)
		}
		if _, err := pool.Exec(ctx, "INSERT INTO auth.signing_keys (kid, private_key, created_at, retired_at) VALUES ($1, $2, $3, $4)",
			k.ID, k.Private.Seed(), k.CreatedAt, retired); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, k.ID)
	}
	candidate, err := authdomain.NewSigningKey(testTime)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := repo.EnsureSigningKey(ctx, candidate)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, k := range keys {
		got = append(got, k.ID)
	}
	if diff := cmp.Diff([]string{ids[2], ids[1]}, got); diff != "" {
		t.Fatalf("active keys (-want +got):\n%s", diff)
	}
}

func TestFirstAdminCreatedOnceUnderConcurrency(t *testing.T) {
	url := newDatabase(t)
	const starters = 6
	ctx := context.Background()
	var wg sync.WaitGroup
	created := make([]bool, starters)
	errs := make([]error, starters)
	start := make(chan struct{})
	for i := range starters {
		repo := authdata.NewRepository(warmPool(t, url))
		u := newUser(fmt.Sprintf("admin%d@example.test", i), identity.RoleAdmin)
		wg.Go(func() {
			<-start
			created[i], errs[i] = repo.CreateFirstAdmin(ctx, u, func(context.Context) error { return nil })
		})
	}
	close(start)
	wg.Wait()
	n := 0
	for i := range starters {
		if errs[i] != nil {
			t.Fatalf("starter %d: %v", i, errs[i])
		}
		if created[i] {
			n++
		}
	}
	pool := openPool(t, url)
	if n != 1 {
		t.Fatalf("%d starters created an admin, want 1", n)
	}
	if c := count(t, pool, "SELECT count(*) FROM auth.users WHERE role = 'admin'"); c != 1 {
		t.Fatalf("%d admins stored, want 1", c)
	}
	events := outboxRows(t, pool)
	if len(events) != 1 || events[0].Payload.Role != identity.RoleAdmin {
		t.Fatalf("events %+v, want one admin UserRegistered", events)
	}
	exists, err := authdata.NewRepository(pool).AdminExists(ctx)
	if err != nil || !exists {
		t.Fatalf("AdminExists = %v, %v", exists, err)
	}
}

func TestFirstAdminRollsBackWhenBeforeCommitFails(t *testing.T) {
	repo, pool := newRepo(t)
	ctx := context.Background()
	boom := errors.New("cannot write the password file")
	created, err := repo.CreateFirstAdmin(ctx, newUser("admin@seam.local", identity.RoleAdmin), func(context.Context) error { return boom })
	if !errors.Is(err, boom) || created {
		t.Fatalf("CreateFirstAdmin = %v, %v; want the hook's error", created, err)
	}
	if n := count(t, pool, "SELECT count(*) FROM auth.users"); n != 0 {
		t.Fatalf("%d users after a failed hook", n)
	}
	if n := len(outboxRows(t, pool)); n != 0 {
		t.Fatalf("%d events after a failed hook", n)
	}
	if exists, err := repo.AdminExists(ctx); err != nil || exists {
		t.Fatalf("AdminExists = %v, %v", exists, err)
	}
}

func TestFirstAdminEmailTakenByUser(t *testing.T) {
	repo, _ := newRepo(t)
	ctx := context.Background()
	if _, err := repo.CreateUser(ctx, newUser("admin@seam.local", identity.RoleUser)); err != nil {
		t.Fatal(err)
	}
	_, err := repo.CreateFirstAdmin(ctx, newUser("admin@seam.local", identity.RoleAdmin), nil)
	if !errors.Is(err, authapi.ErrEmailTaken) {
		t.Fatalf("CreateFirstAdmin: %v, want ErrEmailTaken", err)
	}
}
