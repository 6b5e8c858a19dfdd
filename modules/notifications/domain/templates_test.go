package notificationsdomain

import (
	"strings"
	"testing"
)

func TestEveryTemplateRenders(t *testing.T) {
	tmpl, err := loadTemplates()
	if err != nil {
		t.Fatal(err)
	}
	data := templateData{Email: "a@example.com", InvoiceID: "inv-1", Amount: "12.50 EUR", Description: "Hosting",
		DeclineCode: "card_declined"}
	for _, name := range templateNames {
		subject, body, err := tmpl.render(name, data)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if subject == "" || strings.ContainsAny(subject, "\r\n") || body == "" {
			t.Errorf("%s: subject %q body %q", name, subject, body)
		}
		if body != strings.TrimSpace(body) {
			t.Errorf("%s: body has surrounding space: %q", name, body)
		}
	}
}

func TestRenderUnknownTemplate(t *testing.T) {
	tmpl, err := loadTemplates()
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := tmpl.render("nope", templateData{}); err == nil {
		t.Fatal("want an error for an unknown template")
	}
}

func TestPaymentFailedWithoutDeclineCode(t *testing.T) {
	tmpl, err := loadTemplates()
	if err != nil {
		t.Fatal(err)
	}
	_, body, err := tmpl.render("payment_failed", templateData{InvoiceID: "inv-1", Amount: "1.00 USD"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(body, "Your payment of 1.00 USD for invoice inv-1 was declined.") {
		t.Errorf("body = %q", body)
	}
}
