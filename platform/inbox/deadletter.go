package inbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"

	"github.com/seamkit/seam/platform/bus"
	"github.com/seamkit/seam/platform/errs"
)

// Dead-letter statuses: a dead letter waits for an operator (pending) until it is retried or discarded.
const (
	StatusPending   = "pending"
	StatusRetried   = "retried"
	StatusDiscarded = "discarded"
)

var (
	// ErrDeadLetterNotFound is returned for a dead-letter id the module does not hold.
	ErrDeadLetterNotFound = errs.New(errs.NotFound, "dlq.not_found", "no such dead letter")
	// ErrAlreadyResolved is returned when retrying or discarding a dead letter that was already retried or
	// discarded.
	ErrAlreadyResolved = errs.New(errs.Conflict, "dlq.already_resolved", "the dead letter was already retried or discarded")
	// ErrRetryFailed is returned when the handler fails again on a retried dead letter; the dead letter stays
	// pending with the new error.
	ErrRetryFailed = errs.New(errs.Conflict, "dlq.retry_failed", "the event failed again; the dead letter stays pending")
)

// DeadLetter is an event a consumer gave up on, kept with its payload and last error until an operator
// retries or discards it.
type DeadLetter struct {
	ID            uuid.UUID
	Consumer      string
	EventID       uuid.UUID
	Subject       string
	EventType     string
	Data          []byte
	Headers       nats.Header
	Error         string
	Attempts      int
	FirstFailedAt time.Time
	LastFailedAt  time.Time
	Status        string
	ResolvedAt    *time.Time
}

const deadLetterColumns = `id, consumer, event_id, subject, event_type, data, headers, error, attempts,
first_failed_at, last_failed_at, status, resolved_at`

func deadLetterTable(schema string) string { return pgx.Identifier{schema, "dead_letters"}.Sanitize() }

func scanDeadLetter(row pgx.Row) (DeadLetter, error) {
	var d DeadLetter
	var headers []byte
	err := row.Scan(&d.ID, &d.Consumer, &d.EventID, &d.Subject, &d.EventType, &d.Data, &headers, &d.Error,
		&d.Attempts, &d.FirstFailedAt, &d.LastFailedAt, &d.Status, &d.ResolvedAt)
	if err != nil {
		return DeadLetter{}, err
	}
	if err := json.Unmarshal(headers, &d.Headers); err != nil {
		return DeadLetter{}, fmt.Errorf("dead letter %s: headers: %w", d.ID, err)
	}
	return d, nil
}

// ListDeadLetters returns the dead letters of the module with the given schema, newest failure first,
// those with status only unless status is empty.
func ListDeadLetters(ctx context.Context, pool *pgxpool.Pool, schema, status string) ([]DeadLetter, error) {
	rows, err := pool.Query(ctx, `SELECT `+deadLetterColumns+` FROM `+deadLetterTable(schema)+`
WHERE $1 = '' OR status = $1 ORDER BY last_failed_at DESC, id`, status)
	if err != nil {
		return nil, fmt.Errorf("inbox: list dead letters of %s: %w", schema, err)
	}
	defer rows.Close()
	var out []DeadLetter
	for rows.Next() {
		d, err := scanDeadLetter(rows)
		if err != nil {
			return nil, fmt.Errorf("inbox: list dead letters of %s: %w", schema, err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("inbox: list dead letters of %s: %w", schema, err)
	}
	return out, nil
}

// GetDeadLetter returns one dead letter of the module with the given schema, or ErrDeadLetterNotFound.
func GetDeadLetter(ctx context.Context, pool *pgxpool.Pool, schema string, id uuid.UUID) (DeadLetter, error) {
	return getDeadLetter(ctx, pool, schema, id, "")
}

func getDeadLetter(ctx context.Context, q interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}, schema string, id uuid.UUID, suffix string, args ...any) (DeadLetter, error) {
	d, err := scanDeadLetter(q.QueryRow(ctx, `SELECT `+deadLetterColumns+` FROM `+deadLetterTable(schema)+
		` WHERE id = $1`+suffix, append([]any{id}, args...)...))
	if errors.Is(err, pgx.ErrNoRows) {
		return DeadLetter{}, ErrDeadLetterNotFound
	}
	if err != nil {
		return DeadLetter{}, fmt.Errorf("inbox: dead letter %s: %w", id, err)
	}
	return d, nil
}

// DiscardDeadLetter marks a pending dead letter of the module with the given schema discarded: the event
// is given up on for good. It returns ErrDeadLetterNotFound or ErrAlreadyResolved.
func DiscardDeadLetter(ctx context.Context, pool *pgxpool.Pool, schema string, id uuid.UUID) error {
	tag, err := pool.Exec(ctx, `UPDATE `+deadLetterTable(schema)+`
SET status = 'discarded', resolved_at = now() WHERE id = $1 AND status = 'pending'`, id)
	if err != nil {
		return fmt.Errorf("inbox: discard dead letter %s: %w", id, err)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	if _, err := GetDeadLetter(ctx, pool, schema, id); err != nil {
		return err
	}
	return ErrAlreadyResolved
}

// Name returns the consumer's durable name.
func (c *Consumer) Name() string { return c.sub.Name }

// Subscription returns the consumer's subscription, with defaults filled in.
func (c *Consumer) Subscription() Subscription { return c.sub }

// Retry applies a pending dead letter of this consumer with the consumer's handler, in one transaction with
// the inbox record (so the event is applied once even if the bus delivers it again) and marks it retried.
// It returns ErrDeadLetterNotFound, ErrAlreadyResolved, or ErrRetryFailed wrapping the handler's error
// (the dead letter then stays pending with that error). Applied is false when the inbox already held the
// event: the dead letter is marked retried without running the handler again.
func (c *Consumer) Retry(ctx context.Context, id uuid.UUID) (applied bool, err error) {
	table := deadLetterTable(c.schema)
	tx, err := c.pool.Begin(ctx)
	if err != nil {
		return false, fmt.Errorf("inbox: retry dead letter %s: %w", id, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // a no-op after Commit
	d, err := getDeadLetter(ctx, tx, c.schema, id, ` AND consumer = $2 FOR UPDATE`, c.sub.Name)
	if err != nil {
		return false, err
	}
	if d.Status != StatusPending {
		return false, ErrAlreadyResolved
	}
	m := Message{ID: d.EventID.String(), Subject: d.Subject, Type: d.EventType, Key: d.Headers.Get(bus.HeaderEventKey),
		OccurredAt: d.FirstFailedAt, Data: d.Data, Headers: d.Headers}
	if t, err := time.Parse(time.RFC3339Nano, d.Headers.Get(bus.HeaderOccurredAt)); err == nil {
		m.OccurredAt = t
	}
	tag, err := tx.Exec(ctx, `INSERT INTO `+c.table+` (consumer, event_id, subject) VALUES ($1, $2, $3)
ON CONFLICT DO NOTHING`, c.sub.Name, m.ID, m.Subject)
	if err != nil {
		return false, fmt.Errorf("inbox: retry dead letter %s: record in inbox: %w", id, err)
	}
	logger := c.logger.With(slog.String("subject", m.Subject), slog.String("event_id", m.ID), slog.String("dead_letter", id.String()))
	applied = tag.RowsAffected() == 1
	if applied {
		if herr := c.runHandler(ctx, tx, m, logger); herr != nil {
			_ = tx.Rollback(ctx)
			if err := c.recordFailure(ctx, id, herr); err != nil {
				logger.Warn("record the failed retry", slog.Any("error", err))
			}
			logger.Warn("dead letter retry failed", slog.Any("error", herr))
			return false, fmt.Errorf("%w: %w", ErrRetryFailed, herr)
		}
	}
	if _, err := tx.Exec(ctx, `UPDATE `+table+` SET status = 'retried', resolved_at = now() WHERE id = $1`, id); err != nil {
		return false, fmt.Errorf("inbox: retry dead letter %s: %w", id, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return false, fmt.Errorf("inbox: retry dead letter %s: commit: %w", id, err)
	}
	logger.Info("dead letter retried", slog.Bool("applied", applied))
	return applied, nil
}

// recordFailure notes one more failed attempt of a dead letter and its error.
func (c *Consumer) recordFailure(ctx context.Context, id uuid.UUID, cause error) error {
	_, err := c.pool.Exec(context.WithoutCancel(ctx), `UPDATE `+deadLetterTable(c.schema)+`
SET attempts = attempts + 1, error = $2, last_failed_at = now() WHERE id = $1`, id, cause.Error())
	return err
}

// deadLetter stores m, which failed with cause after attempts deliveries, as a pending dead letter (in its
// own transaction); an event already dead-lettered by this consumer is reopened with the new error.
func (c *Consumer) deadLetter(ctx context.Context, m Message, cause error, attempts int) error {
	headers, err := json.Marshal(m.Headers)
	if err != nil {
		return fmt.Errorf("encode headers: %w", err)
	}
	if m.Headers == nil {
		headers = []byte("{}")
	}
	data := m.Data
	if data == nil {
		data = []byte{}
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ackTimeout)
	defer cancel()
	_, err = c.pool.Exec(ctx, `INSERT INTO `+deadLetterTable(c.schema)+` AS d
  (id, consumer, event_id, subject, event_type, data, headers, error, attempts)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
ON CONFLICT (consumer, event_id) DO UPDATE SET subject = EXCLUDED.subject, error = EXCLUDED.error,
  attempts = d.attempts + EXCLUDED.attempts, last_failed_at = now(), status = 'pending', resolved_at = NULL`,
		uuid.New(), c.sub.Name, m.ID, m.Subject, m.Type, data, headers, cause.Error(), attempts)
	if err != nil {
		return fmt.Errorf("store dead letter: %w", err)
	}
	return nil
}

// CountDeadLetters returns how many dead letters the module with the given schema holds, by status.
func CountDeadLetters(ctx context.Context, pool *pgxpool.Pool, schema string) (map[string]int64, error) {
	rows, err := pool.Query(ctx, `SELECT status, count(*) FROM `+deadLetterTable(schema)+` GROUP BY status`)
	if err != nil {
		return nil, fmt.Errorf("inbox: count dead letters of %s: %w", schema, err)
	}
	counts, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (struct {
		status string
		n      int64
	}, error) {
		var c struct {
			status string
			n      int64
		}
		err := row.Scan(&c.status, &c.n)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("inbox: count dead letters of %s: %w", schema, err)
	}
	out := map[string]int64{StatusPending: 0, StatusRetried: 0, StatusDiscarded: 0}
	for _, c := range counts {
		out[c.status] = c.n
	}
	return out, nil
}
