// Package authdata stores the auth module's accounts, login throttling state and signing keys in the auth
// schema of PostgreSQL: sqlc-generated queries plus the Repository adapter the domain service uses.
package authdata

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	authapi "github.com/seamkit/seam/modules/auth/api"
	authdomain "github.com/seamkit/seam/modules/auth/domain"
	"github.com/seamkit/seam/platform/outbox"
)

// Schema is the PostgreSQL schema the auth module owns; its outbox lives there too.
const Schema = "auth"

// PostgreSQL error codes and constraint names the adapter maps to domain errors.
const (
	uniqueViolation     = "23505"
	foreignKeyViolation = "23503"
	emailConstraint     = "users_email_key"
)

// Advisory lock keys (transaction-scoped) that serialise the check-then-insert steps across processes.
var (
	lockFirstAdmin = lockKey("seam/auth/first_admin")
	lockSigningKey = lockKey("seam/auth/signing_key")
)

func lockKey(name string) int64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return int64(h.Sum64())
}

// Repository implements authdomain.Repository on a PostgreSQL pool.
type Repository struct {
	pool *pgxpool.Pool
	q    *Queries
}

var _ authdomain.Repository = (*Repository)(nil)

// NewRepository returns a Repository using pool, whose database holds the migrated auth schema.
func NewRepository(pool *pgxpool.Pool) *Repository {
	return &Repository{pool: pool, q: New(pool)}
}

// CreateUser stores u and enqueues its UserRegistered event in one transaction.
func (r *Repository) CreateUser(ctx context.Context, u authdomain.NewUser) (authdomain.User, error) {
	var created authdomain.User
	err := pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
		var err error
		created, err = r.insertUser(ctx, tx, u)
		return err
	})
	if err == nil {
		outbox.WakeRelays(Schema)
	}
	return created, err
}

// AdminExists reports whether any account holds the admin role.
func (r *Repository) AdminExists(ctx context.Context) (bool, error) {
	exists, err := r.q.AdminExists(ctx)
	if err != nil {
		return false, fmt.Errorf("auth data: admin exists: %w", err)
	}
	return exists, nil
}

// CreateFirstAdmin creates u with its event unless an admin exists, holding a transaction-level advisory
// lock so that concurrent starters create at most one admin.
func (r *Repository) CreateFirstAdmin(ctx context.Context, u authdomain.NewUser, beforeCommit func(context.Context) error) (bool, error) {
	created := false
	err := pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
		q := r.q.WithTx(tx)
		if err := q.AdvisoryXactLock(ctx, lockFirstAdmin); err != nil {
			return fmt.Errorf("auth data: first admin lock: %w", err)
		}
		exists, err := q.AdminExists(ctx)
		if err != nil {
			return fmt.Errorf("auth data: admin exists: %w", err)
		}
		if exists {
			return nil
		}
		if _, err := r.insertUser(ctx, tx, u); err != nil {
			return err
		}
		if beforeCommit != nil {
			if err := beforeCommit(ctx); err != nil {
				return err
			}
		}
		created = true
		return nil
	})
	if err != nil {
		return false, err
	}
	if created {
		outbox.WakeRelays(Schema)
	}
	return created, nil
}

// insertUser inserts u and enqueues its UserRegistered event in tx.
func (r *Repository) insertUser(ctx context.Context, tx pgx.Tx, u authdomain.NewUser) (authdomain.User, error) {
	id, err := toUUID(u.ID)
	if err != nil {
		return authdomain.User{}, fmt.Errorf("auth data: insert user: %w", err)
	}
	row, err := r.q.WithTx(tx).InsertUser(ctx, InsertUserParams{
		ID:           id,
		Email:        u.Email,
		PasswordHash: u.PasswordHash,
		Role:         u.Role,
		CreatedAt:    u.CreatedAt,
	})
	if err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == uniqueViolation && pgErr.ConstraintName == emailConstraint {
			return authdomain.User{}, authapi.ErrEmailTaken
		}
		return authdomain.User{}, fmt.Errorf("auth data: insert user: %w", err)
	}
	user := toUser(row)
	_, err = outbox.Enqueue(ctx, tx, Schema, outbox.Event{
		Subject: authapi.SubjectUserRegistered,
		Type:    authapi.EventUserRegistered,
		Key:     user.ID,
		Payload: authapi.UserRegistered{UserID: user.ID, Email: user.Email, Role: user.Role, RegisteredAt: user.CreatedAt},
	})
	if err != nil {
		return authdomain.User{}, fmt.Errorf("auth data: %w", err)
	}
	return user, nil
}

// UserByID returns the account with id, or authapi.ErrUserNotFound.
func (r *Repository) UserByID(ctx context.Context, id string) (authdomain.User, error) {
	uid, err := toUUID(id)
	if err != nil {
		return authdomain.User{}, authapi.ErrUserNotFound
	}
	row, err := r.q.GetUserByID(ctx, uid)
	if errors.Is(err, pgx.ErrNoRows) {
		return authdomain.User{}, authapi.ErrUserNotFound
	}
	if err != nil {
		return authdomain.User{}, fmt.Errorf("auth data: user by id: %w", err)
	}
	return toUser(row), nil
}

// UserByEmail returns the account with that normalized email, or authapi.ErrUserNotFound.
func (r *Repository) UserByEmail(ctx context.Context, email string) (authdomain.User, error) {
	row, err := r.q.GetUserByEmail(ctx, email)
	if errors.Is(err, pgx.ErrNoRows) {
		return authdomain.User{}, authapi.ErrUserNotFound
	}
	if err != nil {
		return authdomain.User{}, fmt.Errorf("auth data: user by email: %w", err)
	}
	return toUser(row), nil
}

// UpdatePasswordHash replaces an account's password hash, or returns authapi.ErrUserNotFound.
func (r *Repository) UpdatePasswordHash(ctx context.Context, id, hash string, at time.Time) error {
	uid, err := toUUID(id)
	if err != nil {
		return authapi.ErrUserNotFound
	}
	n, err := r.q.UpdatePasswordHash(ctx, UpdatePasswordHashParams{ID: uid, PasswordHash: hash, UpdatedAt: at})
	if err != nil {
		return fmt.Errorf("auth data: update password hash: %w", err)
	}
	if n == 0 {
		return authapi.ErrUserNotFound
	}
	return nil
}

// UpdateLoginAttempts replaces the account's throttling state by fn's result under a row lock, so
// concurrent updates for one account apply one after the other.
func (r *Repository) UpdateLoginAttempts(ctx context.Context, userID string, fn func(authdomain.LoginAttempts) (authdomain.LoginAttempts, error)) error {
	uid, err := toUUID(userID)
	if err != nil {
		return authapi.ErrUserNotFound
	}
	return pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
		q := r.q.WithTx(tx)
		// A row with no failures stands for "nothing stored", so that there is always a row to lock.
		if err := q.EnsureLoginAttempts(ctx, uid); err != nil {
			var pgErr *pgconn.PgError
			if errors.As(err, &pgErr) && pgErr.Code == foreignKeyViolation {
				return authapi.ErrUserNotFound
			}
			return fmt.Errorf("auth data: login attempts: %w", err)
		}
		row, err := q.GetLoginAttemptsForUpdate(ctx, uid)
		if err != nil {
			return fmt.Errorf("auth data: login attempts: %w", err)
		}
		next, err := fn(toLoginAttempts(row))
		if err != nil {
			return err
		}
		if next == (authdomain.LoginAttempts{}) {
			if err := q.DeleteLoginAttempts(ctx, uid); err != nil {
				return fmt.Errorf("auth data: delete login attempts: %w", err)
			}
			return nil
		}
		err = q.UpdateLoginAttempts(ctx, UpdateLoginAttemptsParams{
			UserID:       uid,
			Failures:     int32(min(max(next.Failures, 0), math.MaxInt32)),
			FirstFailure: next.FirstFailure,
			LockedUntil:  optionalTime(next.LockedUntil),
		})
		if err != nil {
			return fmt.Errorf("auth data: update login attempts: %w", err)
		}
		return nil
	})
}

// ResetLoginAttempts forgets the account's failed logins.
func (r *Repository) ResetLoginAttempts(ctx context.Context, userID string) error {
	uid, err := toUUID(userID)
	if err != nil {
		return authapi.ErrUserNotFound
	}
	if err := r.q.DeleteLoginAttempts(ctx, uid); err != nil {
		return fmt.Errorf("auth data: reset login attempts: %w", err)
	}
	return nil
}

// SigningKeys returns every signing key not retired, newest first.
func (r *Repository) SigningKeys(ctx context.Context) ([]authdomain.SigningKey, error) {
	return r.signingKeys(ctx, r.q)
}

// EnsureSigningKey stores candidate when no key is active, holding a transaction-level advisory lock so
// that concurrent starters all end up with the one key the first of them stored, then returns the active
// keys, newest first.
func (r *Repository) EnsureSigningKey(ctx context.Context, candidate authdomain.SigningKey) ([]authdomain.SigningKey, error) {
	if len(candidate.Private) != ed25519.PrivateKeySize || candidate.ID == "" {
		return nil, errors.New("auth data: candidate signing key is not a complete Ed25519 key")
	}
	var keys []authdomain.SigningKey
	err := pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
		q := r.q.WithTx(tx)
		if err := q.AdvisoryXactLock(ctx, lockSigningKey); err != nil {
			return fmt.Errorf("auth data: signing key lock: %w", err)
		}
		var err error
		if keys, err = r.signingKeys(ctx, q); err != nil || len(keys) > 0 {
			return err
		}
		err = q.InsertSigningKey(ctx, InsertSigningKeyParams{
			Kid:        candidate.ID,
			PrivateKey: candidate.Private.Seed(),
			CreatedAt:  candidate.CreatedAt,
		})
		if err != nil {
			return fmt.Errorf("auth data: insert signing key: %w", err)
		}
		keys, err = r.signingKeys(ctx, q)
		return err
	})
	if err != nil {
		return nil, err
	}
	return keys, nil
}

func (r *Repository) signingKeys(ctx context.Context, q *Queries) ([]authdomain.SigningKey, error) {
	rows, err := q.ListActiveSigningKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("auth data: list signing keys: %w", err)
	}
	keys := make([]authdomain.SigningKey, 0, len(rows))
	for _, row := range rows {
		if len(row.PrivateKey) != ed25519.SeedSize {
			return nil, fmt.Errorf("auth data: signing key %q: stored seed is %d bytes, want %d", row.Kid, len(row.PrivateKey), ed25519.SeedSize)
		}
		keys = append(keys, authdomain.SigningKey{
			ID:        row.Kid,
			Private:   ed25519.NewKeyFromSeed(row.PrivateKey),
			CreatedAt: row.CreatedAt.UTC(),
		})
	}
	return keys, nil
}

func toUUID(s string) (pgtype.UUID, error) {
	u, err := uuid.Parse(s)
	if err != nil {
		return pgtype.UUID{}, fmt.Errorf("id %q is not a UUID", s)
	}
	return pgtype.UUID{Bytes: u, Valid: true}, nil
}

func fromUUID(u pgtype.UUID) string {
	return uuid.UUID(u.Bytes).String()
}

func toUser(row User) authdomain.User {
	return authdomain.User{
		ID:           fromUUID(row.ID),
		Email:        row.Email,
		PasswordHash: row.PasswordHash,
		Role:         row.Role,
		Plan:         row.Plan,
		CreatedAt:    row.CreatedAt.UTC(),
		UpdatedAt:    row.UpdatedAt.UTC(),
	}
}

func toLoginAttempts(row LoginAttempt) authdomain.LoginAttempts {
	if row.Failures <= 0 && row.LockedUntil == nil {
		return authdomain.LoginAttempts{}
	}
	a := authdomain.LoginAttempts{Failures: int(row.Failures), FirstFailure: row.FirstFailure.UTC()}
	if row.LockedUntil != nil {
		a.LockedUntil = row.LockedUntil.UTC()
	}
	return a
}

func optionalTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}
