package notificationsdomain

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/google/uuid"

	authapi "github.com/seamkit/seam/modules/auth/api"
	billingapi "github.com/seamkit/seam/modules/billing/api"
	notificationsapi "github.com/seamkit/seam/modules/notifications/api"
)

// ErrInvalidEvent means an event lacks what a message needs (ids, timestamp, amount); retrying cannot help.
var ErrInvalidEvent = errors.New("notifications: invalid event")

// Notice is an event a user is written to about, reduced to what a message needs.
type Notice struct {
	// EventID is the id of the event; a notice gives at most one message.
	EventID string
	// UserID is who the message is for.
	UserID string
	// Email is the address the event carries; empty means the last address known for UserID.
	Email string
	// Template names the message's template (notificationsapi.Template*).
	Template string
	// OccurredAt is when the event happened.
	OccurredAt time.Time
	data       templateData
}

// WelcomeNotice greets a user who registered.
func WelcomeNotice(eventID string, ev authapi.UserRegistered) Notice {
	return Notice{EventID: eventID, UserID: ev.UserID, Email: ev.Email, Template: notificationsapi.TemplateWelcome,
		OccurredAt: ev.RegisteredAt, data: templateData{Email: ev.Email}}
}

// InvoiceCreatedNotice tells a user about a new invoice.
func InvoiceCreatedNotice(eventID string, ev billingapi.InvoiceCreated) Notice {
	return Notice{EventID: eventID, UserID: ev.UserID, Email: ev.Email, Template: notificationsapi.TemplateInvoiceCreated,
		OccurredAt: ev.CreatedAt, data: templateData{Email: ev.Email, InvoiceID: ev.InvoiceID,
			Amount: money(ev.AmountMinor, ev.Currency), Description: ev.Description}}
}

// PaymentReceivedNotice confirms a payment.
func PaymentReceivedNotice(eventID string, ev billingapi.PaymentCompleted) Notice {
	return Notice{EventID: eventID, UserID: ev.UserID, Email: ev.Email, Template: notificationsapi.TemplatePaymentReceived,
		OccurredAt: ev.PaidAt, data: templateData{Email: ev.Email, InvoiceID: ev.InvoiceID,
			Amount: money(ev.AmountMinor, ev.Currency)}}
}

// PaymentFailedNotice tells a user a payment was declined.
func PaymentFailedNotice(eventID string, ev billingapi.PaymentFailed) Notice {
	return Notice{EventID: eventID, UserID: ev.UserID, Email: ev.Email, Template: notificationsapi.TemplatePaymentFailed,
		OccurredAt: ev.FailedAt, data: templateData{Email: ev.Email, InvoiceID: ev.InvoiceID,
			Amount: money(ev.AmountMinor, ev.Currency), DeclineCode: ev.DeclineCode}}
}

// PaymentRefundedNotice tells a user a payment was refunded (e.g. a plan upgrade that could not be
// completed).
func PaymentRefundedNotice(eventID string, ev billingapi.PaymentRefunded) Notice {
	return Notice{EventID: eventID, UserID: ev.UserID, Email: ev.Email, Template: notificationsapi.TemplatePaymentRefunded,
		OccurredAt: ev.RefundedAt, data: templateData{Email: ev.Email, InvoiceID: ev.InvoiceID,
			Amount: money(ev.AmountMinor, ev.Currency), RefundRef: ev.RefundRef}}
}

// maxEmailLength is the longest address kept (RFC 5321 allows 64 + 1 + 255 octets).
const maxEmailLength = 320

var currencyCode = regexp.MustCompile(`^[A-Z]{3}$`)

// money formats an amount, or gives "" for a nonsensical one so that validate refuses the notice.
func money(amountMinor int64, currency string) string {
	if amountMinor <= 0 || !currencyCode.MatchString(currency) {
		return ""
	}
	return FormatMoney(amountMinor, currency)
}

// validate checks the notice has what its message needs.
func (n Notice) validate() error {
	var problems []string
	if _, err := uuid.Parse(n.EventID); err != nil {
		problems = append(problems, "event id is not a UUID")
	}
	if _, err := uuid.Parse(n.UserID); err != nil {
		problems = append(problems, "user_id is not a UUID")
	}
	if len(n.Email) > maxEmailLength {
		problems = append(problems, "email is too long")
	}
	if n.OccurredAt.IsZero() {
		problems = append(problems, "no timestamp")
	}
	if n.Template != notificationsapi.TemplateWelcome {
		if _, err := uuid.Parse(n.data.InvoiceID); err != nil {
			problems = append(problems, "invoice_id is not a UUID")
		}
		if n.data.Amount == "" {
			problems = append(problems, "amount_minor must be positive and currency an ISO 4217 code")
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s %s: %s", ErrInvalidEvent, n.Template, n.EventID, strings.Join(problems, "; "))
	}
	return nil
}
