package httpx

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/seamkit/seam/platform/errs"
	"github.com/seamkit/seam/platform/observe"
)

// Headers of a forwarded request or response on the bus, besides the HTTP headers it carries as they are.
const (
	// HeaderForwardMethod carries the HTTP method of a forwarded request.
	HeaderForwardMethod = "Seam-Http-Method"
	// HeaderForwardTarget carries the request target (path and query) of a forwarded request.
	HeaderForwardTarget = "Seam-Http-Target"
	// HeaderForwardRemoteAddr carries the address of the client the gateway received the request from.
	HeaderForwardRemoteAddr = "Seam-Http-Remote-Addr"
	// HeaderForwardStatus carries the status code of a forwarded response.
	HeaderForwardStatus = "Seam-Http-Status"
)

// ErrModuleUnavailable is what a client sees when a gateway finds no process serving the module a request
// is for (none running, or none answering in time).
var ErrModuleUnavailable = errs.New(errs.Unavailable, "http.module_unavailable",
	"the service handling this request is unavailable; try again later")

// hopByHop are the headers that describe one HTTP connection, not the request; they are not forwarded.
var hopByHop = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// Gateway forwards HTTP requests over NATS request/reply to the processes that run a module elsewhere (they
// serve them with ServeNATS) and writes their responses back. The serving process re-verifies the caller's
// Authorization header, so the caller's identity is preserved without trusting the gateway.
type Gateway struct {
	conn    func() *nats.Conn
	subject string
	timeout time.Duration
	logger  *slog.Logger
}

// NewGateway returns a Gateway forwarding to subject over the connection conn returns at each request (nil
// until the process is connected), waiting at most timeout for each response.
func NewGateway(conn func() *nats.Conn, subject string, timeout time.Duration, logger *slog.Logger) *Gateway {
	return &Gateway{conn: conn, subject: subject, timeout: timeout, logger: logger}
}

// ServeHTTP forwards r and writes the response; it answers 503 problem+json at once when no process serves
// the module, and when none answers within the timeout.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	Errors(g.logger, g.forward)(w, r)
}

func (g *Gateway) forward(w http.ResponseWriter, r *http.Request) error {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return ErrBodyTooLarge
		}
		return fmt.Errorf("gateway: read request body: %w", err)
	}
	msg := nats.NewMsg(g.subject)
	msg.Data = body
	for k, vs := range r.Header {
		msg.Header[k] = append([]string(nil), vs...)
	}
	for _, k := range hopByHop {
		msg.Header.Del(k)
	}
	msg.Header.Set(HeaderForwardMethod, r.Method)
	msg.Header.Set(HeaderForwardTarget, r.URL.RequestURI())
	msg.Header.Set(HeaderForwardRemoteAddr, r.RemoteAddr)
	if id := observe.RequestID(r.Context()); id != "" {
		msg.Header.Set(RequestIDHeader, id)
	}
	conn := g.conn()
	if conn == nil {
		return fmt.Errorf("gateway: %s: not connected to the bus: %w", g.subject, ErrModuleUnavailable)
	}
	ctx, cancel := context.WithTimeout(r.Context(), g.timeout)
	defer cancel()
	reply, err := conn.RequestMsgWithContext(ctx, msg)
	switch {
	case errors.Is(err, nats.ErrMaxPayload):
		return ErrBodyTooLarge
	case err != nil && r.Context().Err() != nil:
		return fmt.Errorf("gateway: %s: %w", g.subject, r.Context().Err())
	case err != nil:
		return fmt.Errorf("gateway: %s: %w: %w", g.subject, ErrModuleUnavailable, err)
	}
	status, err := strconv.Atoi(reply.Header.Get(HeaderForwardStatus))
	if err != nil || status < 100 || status > 999 {
		return fmt.Errorf("gateway: %s: reply without a valid status %q", g.subject, reply.Header.Get(HeaderForwardStatus))
	}
	for k, vs := range reply.Header {
		if k != HeaderForwardStatus {
			w.Header()[k] = vs
		}
	}
	w.WriteHeader(status)
	if _, err := w.Write(reply.Data); err != nil {
		g.logger.Debug("gateway: write response", slog.Any("error", err))
	}
	return nil
}

// maxConcurrentForwarded bounds how many forwarded requests one ServeNATS subscription handles at once.
const maxConcurrentForwarded = 128

// NATSServer serves forwarded HTTP requests from the bus; see ServeNATS.
type NATSServer struct {
	sub      *nats.Subscription
	inflight sync.WaitGroup
}

// ServeNATS serves the HTTP requests gateways forward to subject with h, in the queue group subject (so
// each request reaches one of the processes serving it), each bounded by timeout. Stop it with Stop.
func ServeNATS(conn *nats.Conn, subject string, h http.Handler, timeout time.Duration, logger *slog.Logger) (*NATSServer, error) {
	s := &NATSServer{}
	slots := make(chan struct{}, maxConcurrentForwarded)
	sub, err := conn.QueueSubscribe(subject, subject, func(m *nats.Msg) {
		slots <- struct{}{}
		s.inflight.Add(1)
		go func() {
			defer func() { <-slots; s.inflight.Done() }()
			serveForwarded(m, h, timeout, logger)
		}()
	})
	if err != nil {
		return nil, fmt.Errorf("httpx: serve %s on the bus: %w", subject, err)
	}
	s.sub = sub
	return s, nil
}

// Stop stops taking requests and waits (until ctx ends) for those in flight.
func (s *NATSServer) Stop(ctx context.Context) error {
	if err := s.sub.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		return fmt.Errorf("httpx: stop serving %s: %w", s.sub.Subject, err)
	}
	done := make(chan struct{})
	go func() { s.inflight.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("httpx: stop serving %s: %w", s.sub.Subject, ctx.Err())
	}
}

// serveForwarded runs one forwarded request through h and replies with its response.
func serveForwarded(m *nats.Msg, h http.Handler, timeout time.Duration, logger *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	rec := &bufferedResponse{header: http.Header{}}
	r, err := http.NewRequestWithContext(ctx, m.Header.Get(HeaderForwardMethod), m.Header.Get(HeaderForwardTarget), bytes.NewReader(m.Data))
	if err != nil {
		WriteError(rec, httpRequestFallback(ctx), logger, fmt.Errorf("%w: %w", ErrMalformedBody, err))
	} else {
		for k, vs := range m.Header {
			switch k {
			case HeaderForwardMethod, HeaderForwardTarget, HeaderForwardRemoteAddr:
			default:
				r.Header[k] = vs
			}
		}
		r.RemoteAddr = m.Header.Get(HeaderForwardRemoteAddr)
		r.Host = r.Header.Get("Host")
		r.ContentLength = int64(len(m.Data))
		h.ServeHTTP(rec, r)
	}
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	reply := nats.NewMsg(m.Reply)
	for k, vs := range rec.header {
		reply.Header[k] = vs
	}
	reply.Header.Set(HeaderForwardStatus, strconv.Itoa(rec.status))
	reply.Data = rec.body.Bytes()
	if err := m.RespondMsg(reply); err != nil {
		logger.Warn("reply to a forwarded request", slog.String("subject", m.Subject), slog.Any("error", err))
	}
}

// httpRequestFallback is the request problem+json is rendered for when the forwarded one is malformed.
func httpRequestFallback(ctx context.Context) *http.Request {
	r, _ := http.NewRequestWithContext(ctx, http.MethodGet, "/", http.NoBody)
	return r
}

// bufferedResponse is an http.ResponseWriter that keeps the whole response, to send it back as one reply.
type bufferedResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *bufferedResponse) Header() http.Header { return b.header }

func (b *bufferedResponse) WriteHeader(status int) {
	if b.status == 0 {
		b.status = status
	}
}

func (b *bufferedResponse) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	return b.body.Write(p)
}
