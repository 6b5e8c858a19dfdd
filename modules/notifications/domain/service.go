// Package notificationsdomain is the notifications module's business logic: it turns events into messages
// from embedded templates, records them, and hands them to a Sender.
package notificationsdomain

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"

	notificationsapi "github.com/seamkit/seam/modules/notifications/api"
	"github.com/seamkit/seam/platform/errs"
)

// Message is one rendered message and its delivery record.
type Message struct {
	ID        string
	UserID    string
	Recipient string
	Template  string
	Subject   string
	Body      string
	EventID   string
	Channel   string
	Status    string
	CreatedAt time.Time
	SentAt    *time.Time
}

// Recipient is the last address known for a user, and when (by event time) it was learned.
type Recipient struct {
	UserID    string
	Email     string
	UpdatedAt time.Time
}

// ErrUndeliverable is wrapped by a Sender's error when the message can never be delivered (e.g. the mail
// server refused the address); the message is kept with status failed instead of being retried.
var ErrUndeliverable = errors.New("notifications: message undeliverable")

// ErrRecipientNotFound means no address is known for a user.
var ErrRecipientNotFound = errors.New("notifications: recipient not found")

// Sender delivers messages over one channel.
type Sender interface {
	// Channel names the delivery channel, recorded with each message ("log", "smtp").
	Channel() string
	// Send delivers m. An error wrapping ErrUndeliverable means retrying cannot help; any other error
	// is temporary.
	Send(ctx context.Context, m Message) error
}

// Store is what delivering a notice writes, bound to the transaction that also records the event as handled.
type Store interface {
	// SaveRecipient records r's address unless a newer one (by UpdatedAt) is known.
	SaveRecipient(ctx context.Context, r Recipient) error
	// Recipient returns the address known for userID, or ErrRecipientNotFound.
	Recipient(ctx context.Context, userID string) (Recipient, error)
	// InsertMessage stores m and reports false, storing nothing, when a message for m.EventID exists.
	InsertMessage(ctx context.Context, m Message) (bool, error)
	// MarkFailed records that message id could not be delivered.
	MarkFailed(ctx context.Context, id string) error
}

// Reader reads stored messages.
type Reader interface {
	// ListMessages returns userID's messages, newest first, at most limit.
	ListMessages(ctx context.Context, userID string, limit int) ([]Message, error)
}

// Service delivers notices and lists users' messages; it implements notificationsapi.Notifications.
type Service struct {
	reader    Reader
	sender    Sender
	templates *templateSet
	logger    *slog.Logger
	now       func() time.Time
}

var _ notificationsapi.Notifications = (*Service)(nil)

// NewService returns a Service reading messages through reader and delivering them through sender.
func NewService(reader Reader, sender Sender, logger *slog.Logger) (*Service, error) {
	templates, err := loadTemplates()
	if err != nil {
		return nil, err
	}
	return &Service{reader: reader, sender: sender, templates: templates, logger: logger, now: time.Now}, nil
}

// List returns userID's notifications, newest first; limit must be 1..notificationsapi.MaxLimit.
func (s *Service) List(ctx context.Context, userID string, limit int) ([]notificationsapi.Notification, error) {
	if limit < 1 || limit > notificationsapi.MaxLimit {
		return nil, errs.Validation(errs.Field("limit", "must be an integer from 1 to %d", notificationsapi.MaxLimit))
	}
	msgs, err := s.reader.ListMessages(ctx, userID, limit)
	if err != nil {
		return nil, fmt.Errorf("list notifications: %w", err)
	}
	out := make([]notificationsapi.Notification, len(msgs))
	for i, m := range msgs {
		out[i] = notificationsapi.Notification{ID: m.ID, Template: m.Template, Subject: m.Subject, Body: m.Body,
			CreatedAt: m.CreatedAt, Status: m.Status}
	}
	return out, nil
}

// Deliver renders n, stores the message through store, then sends it — in that order, inside the caller's
// transaction. A temporary send failure is returned so that the transaction (message included) rolls back
// and the event is delivered again later; a message that can never be delivered (no address, refused
// address) is kept with status failed and nil is returned.
//
// The stored message is exactly-once: it commits together with the event's inbox record. Sending is
// at-least-once: if the process dies after Send but before the commit, the event is handled again and the
// message sent again (by SMTP, say) while only one copy is stored.
//
// An ErrInvalidEvent error means n lacks what a message needs; retrying it cannot help.
func (s *Service) Deliver(ctx context.Context, store Store, n Notice) error {
	if err := n.validate(); err != nil {
		return err
	}
	recipient, err := s.recipient(ctx, store, n)
	if err != nil {
		return err
	}
	subject, body, err := s.templates.render(n.Template, n.data)
	if err != nil {
		return err
	}
	now := s.now().UTC()
	m := Message{
		ID:        MessageID(n.EventID),
		UserID:    n.UserID,
		Recipient: recipient,
		Template:  n.Template,
		Subject:   subject,
		Body:      body,
		EventID:   n.EventID,
		Channel:   s.sender.Channel(),
		Status:    notificationsapi.StatusSent,
		CreatedAt: now,
		SentAt:    &now,
	}
	logger := s.logger.With(slog.String("event_id", n.EventID), slog.String("message_id", m.ID),
		slog.String("template", n.Template))
	if recipient == "" {
		m.Status, m.SentAt = notificationsapi.StatusFailed, nil
	}
	inserted, err := store.InsertMessage(ctx, m)
	if err != nil {
		return fmt.Errorf("store %s message: %w", n.Template, err)
	}
	switch {
	case !inserted:
		logger.DebugContext(ctx, "message for this event already stored")
		return nil
	case recipient == "":
		logger.WarnContext(ctx, "no address known for the user; message kept as failed", slog.String("user_id", n.UserID))
		return nil
	}
	if err := s.sender.Send(ctx, m); err != nil {
		if !errors.Is(err, ErrUndeliverable) {
			return fmt.Errorf("send %s message: %w", n.Template, err)
		}
		logger.WarnContext(ctx, "message undeliverable; kept as failed", slog.Any("error", err))
		if err := store.MarkFailed(ctx, m.ID); err != nil {
			return fmt.Errorf("mark %s message failed: %w", n.Template, err)
		}
	}
	return nil
}

// recipient records the address n carries, or looks up the last one known when it carries none ("" when
// there is none).
func (s *Service) recipient(ctx context.Context, store Store, n Notice) (string, error) {
	if n.Email != "" {
		if err := store.SaveRecipient(ctx, Recipient{UserID: n.UserID, Email: n.Email, UpdatedAt: n.OccurredAt}); err != nil {
			return "", fmt.Errorf("save recipient: %w", err)
		}
		return n.Email, nil
	}
	r, err := store.Recipient(ctx, n.UserID)
	switch {
	case errors.Is(err, ErrRecipientNotFound):
		return "", nil
	case err != nil:
		return "", fmt.Errorf("look up recipient: %w", err)
	}
	return r.Email, nil
}

// messageNamespace scopes the name-based UUIDs of messages.
var messageNamespace = uuid.NewSHA1(uuid.NameSpaceURL, []byte("urn:seam:notifications:message"))

// MessageID is the id of the message written for event eventID: derived from it, so handling the same event
// again yields the same message.
func MessageID(eventID string) string {
	return uuid.NewSHA1(messageNamespace, []byte(eventID)).String()
}
