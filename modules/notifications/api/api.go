// Package notificationsapi is the notifications module's public contract: the messages it keeps for each
// user, as the module's HTTP API and any remote caller see them.
package notificationsapi

import (
	"context"
	"time"
)

// Notifications is what may be asked of the notifications module. Every method is remotable: ctx first,
// error last, plain serialisable types.
type Notifications interface {
	// List returns userID's notifications, newest first, at most limit of them (1..MaxLimit); another
	// limit is a validation error.
	//seam:readonly
	//seam:key userID
	List(ctx context.Context, userID string, limit int) ([]Notification, error)
}

// Limits of List.
const (
	// DefaultLimit is how many notifications a listing returns when the caller does not say.
	DefaultLimit = 50
	// MaxLimit is the most notifications one listing returns.
	MaxLimit = 100
)

// Templates: one per event the module writes to users about.
const (
	// TemplateWelcome greets a newly registered user.
	TemplateWelcome = "welcome"
	// TemplateInvoiceCreated tells a user a new invoice is waiting.
	TemplateInvoiceCreated = "invoice_created"
	// TemplatePaymentReceived confirms a payment.
	TemplatePaymentReceived = "payment_received"
	// TemplatePaymentFailed tells a user a payment was declined.
	TemplatePaymentFailed = "payment_failed"
	// TemplatePaymentRefunded tells a user a payment was refunded.
	TemplatePaymentRefunded = "payment_refunded"
)

// Delivery statuses of a notification.
const (
	// StatusSent means the message was handed to the delivery channel.
	StatusSent = "sent"
	// StatusFailed means the message could not be delivered (no address known, or the address was refused).
	StatusFailed = "failed"
)

// Notification is one message written to a user.
type Notification struct {
	ID        string    `json:"id"`
	Template  string    `json:"template"`
	Subject   string    `json:"subject"`
	Body      string    `json:"body"`
	CreatedAt time.Time `json:"created_at"`
	Status    string    `json:"status"`
}
