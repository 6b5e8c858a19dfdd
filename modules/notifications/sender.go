package notifications

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	notificationsdomain "github.com/seamkit/seam/modules/notifications/domain"
)

// newSender returns the Sender cfg chooses.
func newSender(cfg Config, logger *slog.Logger) notificationsdomain.Sender {
	if cfg.Sender == SenderSMTP {
		return NewSMTPSender(cfg.SMTP, logger)
	}
	return NewLogSender(logger)
}

// LogSender delivers nothing: it logs each message (recipient and subject) at INFO, for development and for
// deployments that only need messages listed in the API.
type LogSender struct {
	logger *slog.Logger
}

// NewLogSender returns a LogSender writing to logger.
func NewLogSender(logger *slog.Logger) *LogSender {
	return &LogSender{logger: logger}
}

// Channel names the channel recorded with messages: "log".
func (s *LogSender) Channel() string { return SenderLog }

// Send logs m.
func (s *LogSender) Send(ctx context.Context, m notificationsdomain.Message) error {
	s.logger.InfoContext(ctx, "notification sent", slog.String("channel", SenderLog),
		slog.String("message_id", m.ID), slog.String("user_id", m.UserID), slog.String("template", m.Template),
		slog.String("recipient", m.Recipient), slog.String("subject", m.Subject))
	return nil
}

// SMTPSender delivers messages by SMTP (net/smtp): STARTTLS whenever the server offers it, PLAIN auth when a
// username is configured. The server refusing the recipient or the content (a 5xx reply) makes the message
// undeliverable; anything else (connection, authentication, 4xx) is temporary and retried.
type SMTPSender struct {
	cfg    SMTPConfig
	logger *slog.Logger
	dialer net.Dialer
	tls    *tls.Config
}

// NewSMTPSender returns an SMTPSender for the server cfg describes (validated by Config.Validate).
func NewSMTPSender(cfg SMTPConfig, logger *slog.Logger) *SMTPSender {
	return &SMTPSender{cfg: cfg, logger: logger, tls: &tls.Config{ServerName: cfg.Host, MinVersion: tls.VersionTLS12}}
}

// Channel names the channel recorded with messages: "smtp".
func (s *SMTPSender) Channel() string { return SenderSMTP }

// Send delivers m to m.Recipient within the configured timeout (or ctx's end, if sooner).
func (s *SMTPSender) Send(ctx context.Context, m notificationsdomain.Message) error {
	to, err := mail.ParseAddress(m.Recipient)
	if err != nil {
		return fmt.Errorf("%w: recipient address: %w", notificationsdomain.ErrUndeliverable, err)
	}
	from, err := mail.ParseAddress(s.cfg.From)
	if err != nil {
		return fmt.Errorf("smtp.from: %w", err)
	}
	msg, err := compose(from, to, m)
	if err != nil {
		return fmt.Errorf("%w: %w", notificationsdomain.ErrUndeliverable, err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	conn, err := s.dialer.DialContext(ctx, "tcp", net.JoinHostPort(s.cfg.Host, strconv.Itoa(s.cfg.Port)))
	if err != nil {
		return fmt.Errorf("smtp: connect: %w", err)
	}
	// The whole conversation ends when ctx does: net/smtp takes no context.
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	c, err := smtp.NewClient(conn, s.cfg.Host)
	if err != nil {
		_ = conn.Close()
		return fmt.Errorf("smtp: greeting: %w", err)
	}
	defer func() { _ = c.Close() }() // after QUIT this only reports that the connection is closed
	if err := s.deliver(c, from.Address, to.Address, msg); err != nil {
		return err
	}
	s.logger.InfoContext(ctx, "notification sent", slog.String("channel", SenderSMTP),
		slog.String("message_id", m.ID), slog.String("user_id", m.UserID), slog.String("template", m.Template),
		slog.String("recipient", to.Address), slog.String("subject", m.Subject))
	return nil
}

// deliver runs one mail transaction on c.
func (s *SMTPSender) deliver(c *smtp.Client, from, to string, msg []byte) error {
	if ok, _ := c.Extension("STARTTLS"); ok {
		if err := c.StartTLS(s.tls); err != nil {
			return fmt.Errorf("smtp: starttls: %w", err)
		}
	}
	if s.cfg.Username != "" {
		if err := c.Auth(smtp.PlainAuth("", s.cfg.Username, s.cfg.Password, s.cfg.Host)); err != nil {
			return fmt.Errorf("smtp: auth: %w", err)
		}
	}
	if err := c.Mail(from); err != nil {
		return fmt.Errorf("smtp: MAIL FROM: %w", err)
	}
	if err := c.Rcpt(to); err != nil {
		return refused("RCPT TO", err)
	}
	w, err := c.Data()
	if err != nil {
		return refused("DATA", err)
	}
	if _, err := w.Write(msg); err != nil {
		return fmt.Errorf("smtp: write message: %w", err)
	}
	if err := w.Close(); err != nil {
		return refused("end of data", err)
	}
	if err := c.Quit(); err != nil {
		// The message was accepted at the end of DATA; a failing QUIT does not undo that.
		s.logger.Debug("smtp: QUIT failed after the message was accepted", slog.Any("error", err))
	}
	return nil
}

// refused classifies a reply to a step of the mail transaction: a permanent (5xx) refusal makes the message
// undeliverable, anything else is temporary.
func refused(step string, err error) error {
	var reply *textproto.Error
	if errors.As(err, &reply) && reply.Code >= 500 && reply.Code < 600 {
		return fmt.Errorf("%w: smtp: %s refused: %w", notificationsdomain.ErrUndeliverable, step, err)
	}
	return fmt.Errorf("smtp: %s: %w", step, err)
}

// compose builds the RFC 5322 message: a plain UTF-8 text body in quoted-printable, the subject encoded
// when it is not plain ASCII.
func compose(from, to *mail.Address, m notificationsdomain.Message) ([]byte, error) {
	if strings.ContainsAny(m.Subject, "\r\n") {
		return nil, errors.New("subject contains a line break")
	}
	var b strings.Builder
	header := func(name, value string) { b.WriteString(name + ": " + value + "\r\n") }
	header("From", from.String())
	header("To", to.String())
	header("Subject", mime.QEncoding.Encode("utf-8", m.Subject))
	header("Date", m.CreatedAt.Format(time.RFC1123Z))
	header("Message-ID", "<"+m.ID+"@seam.notifications>")
	header("MIME-Version", "1.0")
	header("Content-Type", "text/plain; charset=utf-8")
	header("Content-Transfer-Encoding", "quoted-printable")
	b.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&b)
	if _, err := qp.Write([]byte(m.Body + "\n")); err != nil {
		return nil, err
	}
	if err := qp.Close(); err != nil {
		return nil, err
	}
	return []byte(b.String()), nil
}
