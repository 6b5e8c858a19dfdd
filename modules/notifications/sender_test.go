package notifications

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"

	notificationsdomain "github.com/seamkit/seam/modules/notifications/domain"
)

// received is one mail transaction the test server accepted.
type received struct {
	auth string
	from string
	to   []string
	data []byte
}

// smtpServer is a minimal SMTP server on loopback: enough of RFC 5321 for net/smtp's client.
type smtpServer struct {
	ln         net.Listener
	rcptReply  string
	dataReply  string
	silent     bool
	mu         sync.Mutex
	mails      []received
	wg         sync.WaitGroup
	closedConn chan struct{}
}

func startSMTPServer(t *testing.T, configure func(*smtpServer)) *smtpServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &smtpServer{ln: ln, rcptReply: "250 OK", dataReply: "250 queued", closedConn: make(chan struct{})}
	if configure != nil {
		configure(s)
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.serve(conn)
			}()
		}
	}()
	t.Cleanup(func() {
		close(s.closedConn)
		_ = ln.Close()
		s.wg.Wait()
	})
	return s
}

func (s *smtpServer) port() int { return s.ln.Addr().(*net.TCPAddr).Port }

func (s *smtpServer) serve(conn net.Conn) {
	defer conn.Close()
	if s.silent {
		<-s.closedConn
		return
	}
	tp := textproto.NewConn(conn)
	var cur received
	reply := func(line string) { _ = tp.PrintfLine("%s", line) }
	reply("220 test ESMTP")
	for {
		line, err := tp.ReadLine()
		if err != nil {
			return
		}
		verb, arg, _ := strings.Cut(line, " ")
		switch strings.ToUpper(verb) {
		case "EHLO":
			reply("250-test")
			reply("250 AUTH PLAIN")
		case "HELO", "NOOP", "RSET":
			reply("250 OK")
		case "AUTH":
			_, cred, _ := strings.Cut(arg, " ")
			raw, _ := base64.StdEncoding.DecodeString(cred)
			cur.auth = string(raw)
			reply("235 authenticated")
		case "MAIL":
			cur.from = arg
			reply("250 OK")
		case "RCPT":
			cur.to = append(cur.to, arg)
			reply(s.rcptReply)
		case "DATA":
			reply("354 go ahead")
			data, err := tp.ReadDotBytes()
			if err != nil {
				return
			}
			cur.data = data
			if strings.HasPrefix(s.dataReply, "250") {
				s.mu.Lock()
				s.mails = append(s.mails, cur)
				s.mu.Unlock()
			}
			reply(s.dataReply)
		case "QUIT":
			reply("221 bye")
			return
		default:
			reply("502 not implemented")
		}
	}
}

func (s *smtpServer) received() []received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]received(nil), s.mails...)
}

func testMessage() notificationsdomain.Message {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	return notificationsdomain.Message{ID: "0b6f8f0e-1d5c-4d8e-9f3a-5a0f6c1d2e3f", UserID: "u1", Recipient: "alice@example.com",
		Template: "payment_received", Subject: "Payment received: 12.50 EUR",
		Body: "We received your payment of 12.50 EUR for invoice 42.\n\nThank you.", CreatedAt: at, SentAt: &at}
}

func smtpSender(port int, mutate func(*SMTPConfig)) *SMTPSender {
	cfg := SMTPConfig{Host: "127.0.0.1", Port: port, From: "Seam <no-reply@example.com>", Timeout: 5 * time.Second}
	if mutate != nil {
		mutate(&cfg)
	}
	return NewSMTPSender(cfg, slog.New(slog.DiscardHandler))
}

func TestSMTPSenderDelivers(t *testing.T) {
	srv := startSMTPServer(t, nil)
	m := testMessage()
	m.Subject = "Paiement reçu: 12.50 EUR"
	m.Body += "\n.\nA line that is much longer than seventy-six characters, so quoted-printable has to wrap it somewhere."
	s := smtpSender(srv.port(), func(c *SMTPConfig) { c.Username, c.Password = "seam", "hunter2" })
	if s.Channel() != SenderSMTP {
		t.Fatalf("channel = %q", s.Channel())
	}
	if err := s.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	mails := srv.received()
	if len(mails) != 1 {
		t.Fatalf("server received %d mails", len(mails))
	}
	got := mails[0]
	if got.auth != "\x00seam\x00hunter2" || got.from != "FROM:<no-reply@example.com>" ||
		len(got.to) != 1 || got.to[0] != "TO:<alice@example.com>" {
		t.Fatalf("envelope = %+v", got)
	}
	msg, err := mail.ReadMessage(bytes.NewReader(got.data))
	if err != nil {
		t.Fatal(err)
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if err != nil || subject != m.Subject {
		t.Errorf("subject = %q (%v), want %q", subject, err, m.Subject)
	}
	if to := msg.Header.Get("To"); to != "<alice@example.com>" {
		t.Errorf("To = %q", to)
	}
	if id := msg.Header.Get("Message-ID"); !strings.Contains(id, m.ID) {
		t.Errorf("Message-ID = %q", id)
	}
	body, err := io.ReadAll(quotedprintable.NewReader(msg.Body))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.ReplaceAll(string(body), "\r\n", "\n"); got != m.Body+"\n" {
		t.Errorf("body = %q, want %q", got, m.Body+"\n")
	}
}

func TestSMTPSenderClassifiesFailures(t *testing.T) {
	tests := []struct {
		name          string
		configure     func(*smtpServer)
		message       func(*notificationsdomain.Message)
		undeliverable bool
	}{
		{"recipient refused", func(s *smtpServer) { s.rcptReply = "550 no such user" }, nil, true},
		{"content refused", func(s *smtpServer) { s.dataReply = "554 rejected as spam" }, nil, true},
		{"recipient deferred", func(s *smtpServer) { s.rcptReply = "451 try again later" }, nil, false},
		{"bad recipient address", nil, func(m *notificationsdomain.Message) { m.Recipient = "not an address" }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startSMTPServer(t, tt.configure)
			m := testMessage()
			if tt.message != nil {
				tt.message(&m)
			}
			err := smtpSender(srv.port(), nil).Send(context.Background(), m)
			if err == nil {
				t.Fatal("want an error")
			}
			if got := errors.Is(err, notificationsdomain.ErrUndeliverable); got != tt.undeliverable {
				t.Fatalf("undeliverable = %v, want %v (err %v)", got, tt.undeliverable, err)
			}
			if n := len(srv.received()); n != 0 {
				t.Fatalf("server kept %d mails", n)
			}
		})
	}
}

func TestSMTPSenderServerDownIsTemporary(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	err = smtpSender(port, nil).Send(context.Background(), testMessage())
	if err == nil || errors.Is(err, notificationsdomain.ErrUndeliverable) {
		t.Fatalf("err = %v, want a temporary error", err)
	}
}

func TestSMTPSenderGivesUpAtTheTimeout(t *testing.T) {
	srv := startSMTPServer(t, func(s *smtpServer) { s.silent = true })
	start := time.Now()
	err := smtpSender(srv.port(), func(c *SMTPConfig) { c.Timeout = 300 * time.Millisecond }).Send(context.Background(), testMessage())
	if err == nil || errors.Is(err, notificationsdomain.ErrUndeliverable) {
		t.Fatalf("err = %v, want a temporary error", err)
	}
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Fatalf("Send took %s despite a 300ms timeout", elapsed)
	}
}

func TestLogSenderLogsRecipientAndSubject(t *testing.T) {
	var buf bytes.Buffer
	s := NewLogSender(slog.New(slog.NewJSONHandler(&buf, nil)))
	if s.Channel() != SenderLog {
		t.Fatalf("channel = %q", s.Channel())
	}
	m := testMessage()
	if err := s.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatal(err)
	}
	if line["level"] != "INFO" || line["recipient"] != m.Recipient || line["subject"] != m.Subject {
		t.Fatalf("log line = %v", line)
	}
}

func TestNewSenderFollowsTheConfig(t *testing.T) {
	logger := slog.New(slog.DiscardHandler)
	if _, ok := newSender(Config{Sender: SenderLog}, logger).(*LogSender); !ok {
		t.Error("sender: log did not give a LogSender")
	}
	smtp := Config{Sender: SenderSMTP, SMTP: SMTPConfig{Host: "127.0.0.1", Port: 25, From: "a@example.com", Timeout: time.Second}}
	if _, ok := newSender(smtp, logger).(*SMTPSender); !ok {
		t.Error("sender: smtp did not give an SMTPSender")
	}
}
