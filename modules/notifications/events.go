package notifications

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	authapi "github.com/seamkit/seam/modules/auth/api"
	billingapi "github.com/seamkit/seam/modules/billing/api"
	notificationsdata "github.com/seamkit/seam/modules/notifications/data"
	notificationsdomain "github.com/seamkit/seam/modules/notifications/domain"
	"github.com/seamkit/seam/platform/bus"
	"github.com/seamkit/seam/platform/inbox"
)

// subscriptions are the durable consumers of the module: auth's registrations and billing's invoices and
// payments, each applied by handlers in the inbox's transaction.
func subscriptions(h *handlers) []inbox.Subscription {
	return []inbox.Subscription{
		{
			Name:     Name + "-auth",
			Stream:   bus.StreamName("auth"),
			Subjects: []string{authapi.SubjectUserRegistered},
			Handler:  h.handle,
		},
		{
			Name:   Name + "-billing",
			Stream: bus.StreamName("billing"),
			Subjects: []string{billingapi.SubjectInvoiceCreated, billingapi.SubjectPaymentCompleted,
				billingapi.SubjectPaymentFailed, billingapi.SubjectPaymentRefunded},
			Handler: h.handle,
		},
	}
}

// handlers turn events into notices and deliver them.
type handlers struct {
	svc *notificationsdomain.Service
}

// handle decodes m by its subject and delivers the notice inside tx; an event that cannot be decoded or
// lacks what a message needs is a permanent failure.
func (h *handlers) handle(ctx context.Context, tx pgx.Tx, m inbox.Message) error {
	notice, err := noticeOf(m)
	if err != nil {
		return inbox.Permanent(err)
	}
	err = h.svc.Deliver(ctx, notificationsdata.InTx(tx), notice)
	if errors.Is(err, notificationsdomain.ErrInvalidEvent) {
		return inbox.Permanent(err)
	}
	return err
}

// noticeOf decodes the event in m into the notice it gives.
func noticeOf(m inbox.Message) (notificationsdomain.Notice, error) {
	switch m.Subject {
	case authapi.SubjectUserRegistered:
		ev, err := decode[authapi.UserRegistered](m)
		return notificationsdomain.WelcomeNotice(m.ID, ev), err
	case billingapi.SubjectInvoiceCreated:
		ev, err := decode[billingapi.InvoiceCreated](m)
		return notificationsdomain.InvoiceCreatedNotice(m.ID, ev), err
	case billingapi.SubjectPaymentCompleted:
		ev, err := decode[billingapi.PaymentCompleted](m)
		return notificationsdomain.PaymentReceivedNotice(m.ID, ev), err
	case billingapi.SubjectPaymentFailed:
		ev, err := decode[billingapi.PaymentFailed](m)
		return notificationsdomain.PaymentFailedNotice(m.ID, ev), err
	case billingapi.SubjectPaymentRefunded:
		ev, err := decode[billingapi.PaymentRefunded](m)
		return notificationsdomain.PaymentRefundedNotice(m.ID, ev), err
	default:
		return notificationsdomain.Notice{}, fmt.Errorf("notifications: no handler for subject %q", m.Subject)
	}
}

// decode unmarshals m's JSON payload into an event of type E.
func decode[E any](m inbox.Message) (E, error) {
	var ev E
	if err := json.Unmarshal(m.Data, &ev); err != nil {
		return ev, fmt.Errorf("notifications: decode %s event %s: %w", m.Subject, m.ID, err)
	}
	return ev, nil
}
