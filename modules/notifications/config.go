package notifications

import (
	"errors"
	"fmt"
	"net"
	"net/mail"
	"strings"
	"time"
)

// Delivery channels a Config may choose.
const (
	// SenderLog stores and logs messages without sending them anywhere (the default).
	SenderLog = "log"
	// SenderSMTP sends messages through the SMTP server of the smtp section.
	SenderSMTP = "smtp"
)

// Config is the notifications section of the configuration (modules.notifications, SEAM_NOTIFICATIONS_*).
type Config struct {
	// Sender chooses the delivery channel: "log" (default) or "smtp".
	Sender string `yaml:"sender"`
	// SMTP configures the mail server used when Sender is "smtp".
	SMTP SMTPConfig `yaml:"smtp"`
}

// SMTPConfig is how to reach the mail server that delivers messages.
type SMTPConfig struct {
	// Host is the mail server's host name; setting it requires sender: smtp.
	Host string `yaml:"host"`
	// Port is the mail server's submission port (default 587).
	Port int `yaml:"port"`
	// Username, when set, authenticates with PLAIN auth (over TLS, or to a server on localhost).
	Username string `yaml:"username"`
	// Password goes with Username.
	Password string `yaml:"password" secret:"true"`
	// From is the sender address of every message, e.g. "Seam <no-reply@example.com>".
	From string `yaml:"from"`
	// Timeout bounds delivering one message, from connecting to the final reply (default 10s).
	Timeout time.Duration `yaml:"timeout"`
}

// SetDefaults fills unset fields.
func (c *Config) SetDefaults() {
	if c.Sender == "" {
		c.Sender = SenderLog
	}
	if c.SMTP.Port == 0 {
		c.SMTP.Port = 587
	}
	if c.SMTP.Timeout == 0 {
		c.SMTP.Timeout = 10 * time.Second
	}
}

// Validate checks the section; errors name the key.
func (c Config) Validate() error {
	switch c.Sender {
	case SenderLog:
		if c.SMTP.Host != "" {
			return errors.New("sender: is log, but smtp.host is set; set sender: smtp to deliver by SMTP, or unset smtp.host")
		}
		return nil
	case SenderSMTP:
		return c.SMTP.validate()
	default:
		return fmt.Errorf("sender: want log or smtp, got %q", c.Sender)
	}
}

func (c SMTPConfig) validate() error {
	badHost := strings.TrimSpace(c.Host) == "" || strings.ContainsAny(c.Host, " \t\r\n/[]@")
	if strings.Contains(c.Host, ":") && net.ParseIP(c.Host) == nil {
		badHost = true
	}
	if badHost {
		return fmt.Errorf("smtp.host: want a host name or IP address (without port) for sender: smtp, got %q", c.Host)
	}
	if c.Port < 1 || c.Port > 65535 {
		return fmt.Errorf("smtp.port: want 1..65535, got %d", c.Port)
	}
	if c.Password != "" && c.Username == "" {
		return errors.New("smtp.username: must be set when smtp.password is")
	}
	if c.Username != "" && c.Password == "" {
		return errors.New("smtp.password: must be set when smtp.username is")
	}
	if strings.ContainsAny(c.Username+c.Password, "\r\n") {
		return errors.New("smtp.username: must not contain line breaks (nor may smtp.password)")
	}
	if _, err := mail.ParseAddress(c.From); err != nil {
		return fmt.Errorf("smtp.from: want an address like no-reply@example.com, got %q", c.From)
	}
	if c.Timeout <= 0 {
		return fmt.Errorf("smtp.timeout: must be positive, got %s", c.Timeout)
	}
	return nil
}
