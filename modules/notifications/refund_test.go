package notifications

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	billingapi "github.com/seamkit/seam/modules/billing/api"
	notificationsapi "github.com/seamkit/seam/modules/notifications/api"
)

func TestRefundBecomesAMessage(t *testing.T) {
	f := newFixture(t)
	user, invoice := uuid.NewString(), uuid.NewString()
	m := event(t, billingapi.SubjectPaymentRefunded, billingapi.PaymentRefunded{PaymentID: uuid.NewString(), InvoiceID: invoice,
		UserID: user, Email: "alice@example.com", AmountMinor: 1900, Currency: "EUR", RefundRef: "sim_re_p1_1900",
		Reason: "plan_not_granted", RefundedAt: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)})
	if err := f.apply(t, m); err != nil {
		t.Fatal(err)
	}
	if err := f.apply(t, m); err != nil { // redelivered: applied once
		t.Fatal(err)
	}
	got, err := f.repo.ListMessages(context.Background(), user, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Template != notificationsapi.TemplatePaymentRefunded {
		t.Fatalf("messages = %+v, want one refund message", got)
	}
	if got[0].Subject != "Refund issued: 19.00 EUR" || !strings.Contains(got[0].Body, "sim_re_p1_1900") ||
		!strings.Contains(got[0].Body, invoice) {
		t.Errorf("message = %q / %q", got[0].Subject, got[0].Body)
	}
}
