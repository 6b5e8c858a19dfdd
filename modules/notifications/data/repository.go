// Package notificationsdata stores the notifications module's recipients and messages in its own schema:
// sqlc-generated queries and the adapter that implements notificationsdomain's ports.
package notificationsdata

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	notificationsdomain "github.com/seamkit/seam/modules/notifications/domain"
)

// Repository implements notificationsdomain.Reader on a pool and notificationsdomain.Store on a
// transaction.
type Repository struct {
	q *Queries
}

var (
	_ notificationsdomain.Reader = (*Repository)(nil)
	_ notificationsdomain.Store  = (*Repository)(nil)
)

// NewRepository returns a Repository that runs each query on pool.
func NewRepository(pool *pgxpool.Pool) *Repository {
	return &Repository{q: New(pool)}
}

// InTx returns a Repository whose queries run inside tx, so their effect commits or rolls back with it.
func InTx(tx pgx.Tx) *Repository {
	return &Repository{q: New(tx)}
}

// SaveRecipient records r's address unless a newer one is known.
func (r *Repository) SaveRecipient(ctx context.Context, rec notificationsdomain.Recipient) error {
	id, err := parseUUID(rec.UserID)
	if err != nil {
		return fmt.Errorf("recipient user id: %w", err)
	}
	return r.q.UpsertRecipient(ctx, UpsertRecipientParams{UserID: id, Email: rec.Email, UpdatedAt: rec.UpdatedAt})
}

// Recipient returns the address known for userID, or notificationsdomain.ErrRecipientNotFound.
func (r *Repository) Recipient(ctx context.Context, userID string) (notificationsdomain.Recipient, error) {
	id, err := parseUUID(userID)
	if err != nil {
		return notificationsdomain.Recipient{}, notificationsdomain.ErrRecipientNotFound
	}
	row, err := r.q.GetRecipient(ctx, id)
	if errors.Is(err, pgx.ErrNoRows) {
		return notificationsdomain.Recipient{}, notificationsdomain.ErrRecipientNotFound
	}
	if err != nil {
		return notificationsdomain.Recipient{}, err
	}
	return notificationsdomain.Recipient{UserID: row.UserID.String(), Email: row.Email, UpdatedAt: row.UpdatedAt}, nil
}

// InsertMessage stores m, reporting false when a message for m.EventID exists already.
func (r *Repository) InsertMessage(ctx context.Context, m notificationsdomain.Message) (bool, error) {
	var p InsertMessageParams
	var err error
	if p.ID, err = parseUUID(m.ID); err != nil {
		return false, fmt.Errorf("message id: %w", err)
	}
	if p.UserID, err = parseUUID(m.UserID); err != nil {
		return false, fmt.Errorf("message user id: %w", err)
	}
	if p.EventID, err = parseUUID(m.EventID); err != nil {
		return false, fmt.Errorf("message event id: %w", err)
	}
	p.Recipient, p.Template, p.Subject, p.Body = m.Recipient, m.Template, m.Subject, m.Body
	p.Channel, p.Status, p.CreatedAt, p.SentAt = m.Channel, m.Status, m.CreatedAt, m.SentAt
	n, err := r.q.InsertMessage(ctx, p)
	if err != nil {
		return false, err
	}
	return n == 1, nil
}

// MarkFailed records that message id could not be delivered.
func (r *Repository) MarkFailed(ctx context.Context, id string) error {
	mid, err := parseUUID(id)
	if err != nil {
		return fmt.Errorf("message id: %w", err)
	}
	n, err := r.q.MarkMessageFailed(ctx, mid)
	if err != nil {
		return err
	}
	if n != 1 {
		return fmt.Errorf("mark message %s failed: no such message", id)
	}
	return nil
}

// ListMessages returns userID's messages, newest first, at most limit; none for an id that is not a UUID.
func (r *Repository) ListMessages(ctx context.Context, userID string, limit int) ([]notificationsdomain.Message, error) {
	id, parseErr := parseUUID(userID)
	if parseErr != nil {
		return []notificationsdomain.Message{}, nil //nolint:nilerr // no user has a malformed id, so none has messages
	}
	rows, err := r.q.ListMessagesByUser(ctx, ListMessagesByUserParams{UserID: id, MaxRows: int32(min(max(limit, 0), 1<<30))})
	if err != nil {
		return nil, err
	}
	out := make([]notificationsdomain.Message, len(rows))
	for i, row := range rows {
		out[i] = notificationsdomain.Message{
			ID:        row.ID.String(),
			UserID:    row.UserID.String(),
			Recipient: row.Recipient,
			Template:  row.Template,
			Subject:   row.Subject,
			Body:      row.Body,
			EventID:   row.EventID.String(),
			Channel:   row.Channel,
			Status:    row.Status,
			CreatedAt: row.CreatedAt.UTC(),
			SentAt:    utcPtr(row.SentAt),
		}
	}
	return out, nil
}

func parseUUID(s string) (pgtype.UUID, error) {
	var u pgtype.UUID
	if err := u.Scan(s); err != nil {
		return u, fmt.Errorf("invalid uuid %q: %w", s, err)
	}
	return u, nil
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}
