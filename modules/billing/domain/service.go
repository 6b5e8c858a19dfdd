package billingdomain

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	authapi "github.com/seamkit/seam/modules/auth/api"
	billingapi "github.com/seamkit/seam/modules/billing/api"
	"github.com/seamkit/seam/platform/errs"
)

// Limits on what billing accepts.
const (
	// MaxDescriptionLength is the longest invoice description, in characters.
	MaxDescriptionLength = 500
	// DefaultListLimit is how many invoices a list returns when the caller does not say.
	DefaultListLimit = 50
	// MaxListLimit is the most invoices one list returns.
	MaxListLimit = 100
)

// DefaultPaymentTimeout bounds one payment: waiting for the invoice lock, the charge and recording it.
const DefaultPaymentTimeout = 30 * time.Second

// Options tunes a Service; zero fields take the defaults.
type Options struct {
	// PaymentTimeout bounds the processing of one pay request once its key is claimed, and so how long its
	// retries are answered billingapi.ErrIdempotencyKeyInUse while the request's process lives.
	PaymentTimeout time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Service is billing's business logic: it creates and lists invoices and pays them idempotently. It
// implements billingapi.Billing.
type Service struct {
	repo     Repository
	provider PaymentProvider
	auth     authapi.Auth
	logger   *slog.Logger
	opts     Options
}

var _ billingapi.Billing = (*Service)(nil)

// NewService returns a Service storing through repo, charging through provider and asking auth about users.
func NewService(repo Repository, provider PaymentProvider, auth authapi.Auth, logger *slog.Logger, opts Options) *Service {
	if opts.PaymentTimeout <= 0 {
		opts.PaymentTimeout = DefaultPaymentTimeout
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Service{repo: repo, provider: provider, auth: auth, logger: logger, opts: opts}
}

// now returns the current time as the database stores it (UTC, microseconds), so what a call returns equals
// what a later read returns, and a claim's UpdatedAt can serve as its fencing token.
func (s *Service) now() time.Time {
	return s.opts.Now().UTC().Truncate(time.Microsecond)
}

// NewInvoice is what a user asks to be invoiced.
type NewInvoice struct {
	AmountMinor int64
	Currency    string
	Description string
}

// Validate checks every field and reports all invalid ones in one errs validation error, named by their JSON
// fields (amount_minor, currency, description).
func (n NewInvoice) Validate() error {
	var c errs.Collector
	c.Check(n.AmountMinor > 0 && n.AmountMinor <= MaxAmountMinor, "amount_minor",
		"must be an integer between 1 and %d (minor units)", MaxAmountMinor)
	_, known := LookupCurrency(n.Currency)
	c.Check(known, "currency", "must be an active ISO 4217 code in upper case, such as EUR")
	switch {
	case strings.TrimSpace(n.Description) == "":
		c.Add("description", "is required")
	case utf8.RuneCountInString(n.Description) > MaxDescriptionLength:
		c.Add("description", "must be at most %d characters", MaxDescriptionLength)
	case strings.ContainsFunc(n.Description, isForbiddenControl):
		c.Add("description", "must not contain control characters other than tab and newline")
	}
	return c.Err()
}

// isForbiddenControl reports control characters a description may not hold (PostgreSQL text cannot hold NUL).
func isForbiddenControl(r rune) bool {
	return unicode.IsControl(r) && r != '\t' && r != '\n' && r != '\r'
}

// CreateInvoice validates in, creates an open invoice for userID and publishes InvoiceCreated with it.
func (s *Service) CreateInvoice(ctx context.Context, userID string, in NewInvoice) (billingapi.Invoice, error) {
	if err := in.Validate(); err != nil {
		return billingapi.Invoice{}, err
	}
	user, err := s.user(ctx, userID)
	if err != nil {
		return billingapi.Invoice{}, err
	}
	id, err := newID()
	if err != nil {
		return billingapi.Invoice{}, err
	}
	inv := billingapi.Invoice{
		ID:          id,
		UserID:      userID,
		AmountMinor: in.AmountMinor,
		Currency:    in.Currency,
		Description: in.Description,
		Status:      billingapi.StatusOpen,
		CreatedAt:   s.now(),
	}
	ev := Event{
		Subject: billingapi.SubjectInvoiceCreated,
		Type:    billingapi.EventInvoiceCreated,
		Key:     inv.ID,
		Payload: billingapi.InvoiceCreated{
			InvoiceID:   inv.ID,
			UserID:      inv.UserID,
			Email:       user.Email,
			AmountMinor: inv.AmountMinor,
			Currency:    inv.Currency,
			Description: inv.Description,
			CreatedAt:   inv.CreatedAt,
		},
	}
	if err := s.repo.CreateInvoice(ctx, inv, ev); err != nil {
		return billingapi.Invoice{}, fmt.Errorf("create invoice: %w", err)
	}
	return inv, nil
}

// GetInvoice returns one of userID's invoices, or billingapi.ErrInvoiceNotFound (also for another user's).
func (s *Service) GetInvoice(ctx context.Context, userID, invoiceID string) (billingapi.Invoice, error) {
	inv, err := s.repo.GetInvoice(ctx, userID, invoiceID)
	if err != nil {
		return billingapi.Invoice{}, fmt.Errorf("get invoice: %w", err)
	}
	return inv, nil
}

// ListInvoices returns up to limit (1..MaxListLimit) of userID's invoices, newest first.
func (s *Service) ListInvoices(ctx context.Context, userID string, limit int) ([]billingapi.Invoice, error) {
	if err := validateListLimit(limit); err != nil {
		return nil, err
	}
	invs, err := s.repo.ListInvoices(ctx, userID, limit)
	if err != nil {
		return nil, fmt.Errorf("list invoices: %w", err)
	}
	return invs, nil
}

// validateListLimit checks a list's limit, as a validation error on the field "limit".
func validateListLimit(limit int) error {
	var c errs.Collector
	c.Check(limit >= 1 && limit <= MaxListLimit, "limit", "must be an integer between 1 and %d", MaxListLimit)
	return c.Err()
}

// user confirms the caller's account exists and returns it (its email goes into events).
func (s *Service) user(ctx context.Context, userID string) (authapi.User, error) {
	u, err := s.auth.GetUser(ctx, userID)
	if errors.Is(err, authapi.ErrUserNotFound) {
		return authapi.User{}, fmt.Errorf("user %s: %w", userID, billingapi.ErrAccountNotFound)
	}
	if err != nil {
		return authapi.User{}, fmt.Errorf("look up user %s: %w", userID, err)
	}
	return u, nil
}

// newID returns a new time-ordered UUID (version 7), so ids sort roughly by creation.
func newID() (string, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return "", fmt.Errorf("new id: %w", err)
	}
	return id.String(), nil
}
