package notificationsdomain

import (
	"bytes"
	"embed"
	"fmt"
	"strings"
	"text/template"

	notificationsapi "github.com/seamkit/seam/modules/notifications/api"
)

//go:embed templates/*.tmpl
var templateFiles embed.FS

// templateNames are the templates the module renders, one per event; each file defines "subject" and "body".
var templateNames = []string{
	notificationsapi.TemplateWelcome,
	notificationsapi.TemplateInvoiceCreated,
	notificationsapi.TemplatePaymentReceived,
	notificationsapi.TemplatePaymentFailed,
	notificationsapi.TemplatePaymentRefunded,
}

// templateData is what a template may refer to; fields an event does not carry are empty.
type templateData struct {
	Email       string
	InvoiceID   string
	Amount      string
	Description string
	DeclineCode string
	RefundRef   string
}

// templateSet renders the embedded message templates.
type templateSet struct {
	byName map[string]*template.Template
}

// loadTemplates parses the embedded templates.
func loadTemplates() (*templateSet, error) {
	t := &templateSet{byName: make(map[string]*template.Template, len(templateNames))}
	for _, name := range templateNames {
		parsed, err := template.New(name).Option("missingkey=error").ParseFS(templateFiles, "templates/"+name+".tmpl")
		if err != nil {
			return nil, fmt.Errorf("notifications: template %s: %w", name, err)
		}
		for _, part := range []string{"subject", "body"} {
			if parsed.Lookup(part) == nil {
				return nil, fmt.Errorf("notifications: template %s defines no %q", name, part)
			}
		}
		t.byName[name] = parsed
	}
	return t, nil
}

// render returns the subject (on one line) and body of template name for data.
func (t *templateSet) render(name string, data templateData) (subject, body string, err error) {
	tmpl, ok := t.byName[name]
	if !ok {
		return "", "", fmt.Errorf("notifications: no template %q", name)
	}
	var buf bytes.Buffer
	if err := tmpl.ExecuteTemplate(&buf, "subject", data); err != nil {
		return "", "", fmt.Errorf("notifications: render %s subject: %w", name, err)
	}
	subject = strings.Join(strings.Fields(buf.String()), " ")
	buf.Reset()
	if err := tmpl.ExecuteTemplate(&buf, "body", data); err != nil {
		return "", "", fmt.Errorf("notifications: render %s body: %w", name, err)
	}
	body = strings.TrimSpace(buf.String())
	return subject, body, nil
}
