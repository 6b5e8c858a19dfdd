package notifications

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/seamkit/seam/platform/config"
)

func decodeConfig(t *testing.T, yamlText string, environ ...string) (Config, error) {
	t.Helper()
	node, err := config.ParseYAML([]byte(yamlText))
	if err != nil {
		t.Fatal(err)
	}
	var c Config
	err = config.Decode(node, &c, config.EnvName(config.EnvPrefix, Name), "modules."+Name, environ)
	return c, err
}

func TestConfigDefaultsToTheLog(t *testing.T) {
	c, err := decodeConfig(t, "")
	if err != nil {
		t.Fatal(err)
	}
	if c.Sender != SenderLog || c.SMTP.Port != 587 || c.SMTP.Timeout != 10*time.Second {
		t.Fatalf("defaults = %+v", c)
	}
}

func TestConfigSMTPFromYAMLAndEnvironment(t *testing.T) {
	c, err := decodeConfig(t, "sender: smtp\nsmtp:\n  host: mail.example.com\n  from: Seam <no-reply@example.com>\n",
		"SEAM_NOTIFICATIONS_SMTP_PORT=2525", "SEAM_NOTIFICATIONS_SMTP_USERNAME=seam", "SEAM_NOTIFICATIONS_SMTP_PASSWORD=hunter2")
	if err != nil {
		t.Fatal(err)
	}
	if c.SMTP.Host != "mail.example.com" || c.SMTP.Port != 2525 || c.SMTP.Username != "seam" || c.SMTP.Password != "hunter2" {
		t.Fatalf("config = %+v", c)
	}
	if logged := fmt.Sprint(config.Redacted(c)); strings.Contains(logged, "hunter2") {
		t.Fatalf("the password is logged: %s", logged)
	}
}

func TestConfigValidation(t *testing.T) {
	const smtpOK = "sender: smtp\nsmtp:\n  host: mail.example.com\n  from: no-reply@example.com\n"
	tests := []struct {
		name, yaml, wantPrefix string
	}{
		{"unknown sender", "sender: pigeon\n", "modules.notifications.sender:"},
		{"host without sender smtp", "smtp:\n  host: mail.example.com\n", "modules.notifications.sender:"},
		{"smtp without host", "sender: smtp\nsmtp:\n  from: no-reply@example.com\n", "modules.notifications.smtp.host:"},
		{"host with port", "sender: smtp\nsmtp:\n  host: mail.example.com:25\n  from: a@example.com\n", "modules.notifications.smtp.host:"},
		{"bad port", smtpOK + "  port: 70000\n", "modules.notifications.smtp.port:"},
		{"no from", "sender: smtp\nsmtp:\n  host: mail.example.com\n", "modules.notifications.smtp.from:"},
		{"bad from", "sender: smtp\nsmtp:\n  host: mail.example.com\n  from: nobody\n", "modules.notifications.smtp.from:"},
		{"password without username", smtpOK + "  password: x\n", "modules.notifications.smtp.username:"},
		{"username without password", smtpOK + "  username: x\n", "modules.notifications.smtp.password:"},
		{"negative timeout", smtpOK + "  timeout: -1s\n", "modules.notifications.smtp.timeout:"},
		{"unknown key", "senders: log\n", "modules.notifications:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodeConfig(t, tt.yaml)
			if err == nil || !strings.HasPrefix(err.Error(), tt.wantPrefix) {
				t.Fatalf("err = %v, want one starting %q", err, tt.wantPrefix)
			}
		})
	}
	for _, ok := range []string{smtpOK, "sender: smtp\nsmtp:\n  host: ::1\n  from: a@example.com\n"} {
		if _, err := decodeConfig(t, ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
}
