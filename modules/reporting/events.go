package reporting

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	authapi "github.com/seamkit/seam/modules/auth/api"
	billingapi "github.com/seamkit/seam/modules/billing/api"
	reportingdata "github.com/seamkit/seam/modules/reporting/data"
	reportingdomain "github.com/seamkit/seam/modules/reporting/domain"
	"github.com/seamkit/seam/platform/bus"
	"github.com/seamkit/seam/platform/inbox"
)

// subscriptions are the durable consumers of the module: auth's registrations and billing's invoices and
// payments, each added to the read model by handle in the inbox's transaction.
func subscriptions() []inbox.Subscription {
	return []inbox.Subscription{
		{
			Name:     Name + "-auth",
			Stream:   bus.StreamName("auth"),
			Subjects: []string{authapi.SubjectUserRegistered},
			Handler:  handle,
		},
		{
			Name:   Name + "-billing",
			Stream: bus.StreamName("billing"),
			Subjects: []string{billingapi.SubjectInvoiceCreated, billingapi.SubjectPaymentCompleted,
				billingapi.SubjectPaymentFailed},
			Handler: handle,
		},
	}
}

// handle decodes m by its subject and adds it to the read model inside tx; an event that cannot be decoded
// or lacks what the read model needs is a permanent failure.
func handle(ctx context.Context, tx pgx.Tx, m inbox.Message) error {
	err := record(ctx, reportingdata.InTx(tx), m)
	if errors.Is(err, reportingdomain.ErrInvalidEvent) || errors.Is(err, errUnreadable) {
		return inbox.Permanent(err)
	}
	return err
}

// errUnreadable means an event does not decode, or arrived on a subject the module does not handle.
var errUnreadable = errors.New("reporting: unreadable event")

// record applies the event in m to rec.
func record(ctx context.Context, rec reportingdomain.Recorder, m inbox.Message) error {
	switch m.Subject {
	case authapi.SubjectUserRegistered:
		var ev authapi.UserRegistered
		if err := decode(m, &ev); err != nil {
			return err
		}
		return reportingdomain.RecordUserRegistered(ctx, rec, ev)
	case billingapi.SubjectInvoiceCreated:
		var ev billingapi.InvoiceCreated
		if err := decode(m, &ev); err != nil {
			return err
		}
		return reportingdomain.RecordInvoiceCreated(ctx, rec, ev)
	case billingapi.SubjectPaymentCompleted:
		var ev billingapi.PaymentCompleted
		if err := decode(m, &ev); err != nil {
			return err
		}
		return reportingdomain.RecordPaymentCompleted(ctx, rec, ev)
	case billingapi.SubjectPaymentFailed:
		var ev billingapi.PaymentFailed
		if err := decode(m, &ev); err != nil {
			return err
		}
		return reportingdomain.RecordPaymentFailed(ctx, rec, ev)
	default:
		return fmt.Errorf("%w: no handler for subject %q", errUnreadable, m.Subject)
	}
}

// decode unmarshals m's JSON payload into ev.
func decode(m inbox.Message, ev any) error {
	if err := json.Unmarshal(m.Data, ev); err != nil {
		return fmt.Errorf("%w: decode %s event %s: %w", errUnreadable, m.Subject, m.ID, err)
	}
	return nil
}
