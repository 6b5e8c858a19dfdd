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
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/seamkit/seam/platform/errs"
	"github.com/seamkit/seam/platform/failpoint"
	"github.com/seamkit/seam/platform/observe"
	"github.com/seamkit/seam/platform/rpc"
)

// Headers of a forwarded request or response on the bus, besides the HTTP headers it carries as they are.
const (
	// HeaderForwardMethod carries the HTTP method of a forwarded request.
	HeaderForwardMethod = "Seam-Http-Method"
	// HeaderForwardTarget carries the request target (path and query) of a forwarded request.
	HeaderForwardTarget = "Seam-Http-Target"
	// HeaderForwardRemoteAddr carries the address of the client the gateway received the request from.
	HeaderForwardRemoteAddr = "Seam-Http-Remote-Addr"
	// HeaderForwardAcceptBy carries the time (Unix nanoseconds) by which an instance must take the request;
	// an instance that receives it later drops it, because the gateway has sent it to another one by then.
	HeaderForwardAcceptBy = "Seam-Http-Accept-By"
	// HeaderForwardProgress marks an interim reply: ProgressAccepted when an instance takes the request,
	// ProgressWorking every ForwardHeartbeat while it serves it.
	HeaderForwardProgress = "Seam-Http-Progress"
	// HeaderForwardStatus carries the status code of a forwarded response.
	HeaderForwardStatus = "Seam-Http-Status"
)

// Values of HeaderForwardProgress.
const (
	// ProgressAccepted is the first interim reply: an instance took the request.
	ProgressAccepted = "accepted"
	// ProgressWorking is a heartbeat: the instance is still serving the request.
	ProgressWorking = "working"
)

// Timing of the forwarding protocol. An instance answers ProgressAccepted at once and ProgressWorking every
// ForwardHeartbeat until the response; the gateway resends a request no instance accepted within
// ForwardAcceptTimeout (+ forwardAcceptGrace) to another instance, and declares the instance serving it lost
// after ForwardLostAfter without a word from it (its process died mid-request).
const (
	ForwardHeartbeat     = 500 * time.Millisecond
	ForwardAcceptTimeout = 2 * time.Second
	ForwardLostAfter     = 10 * ForwardHeartbeat
	forwardAcceptGrace   = time.Second
	// maxForwardAttempts bounds how often one request is sent: after no instance accepted it, or (only
	// when it is safe to repeat) after the instance serving it was lost.
	maxForwardAttempts = 3
)

var (
	// ErrModuleUnavailable is what a client sees when a gateway finds no process serving the module a request
	// is for (none running, or none answering in time).
	ErrModuleUnavailable = errs.New(errs.Unavailable, "http.module_unavailable",
		"the service handling this request is unavailable; try again later")
	// ErrModuleInstanceLost is what a client sees when the process serving its request died before answering
	// and the request is not safe to send again (not GET, HEAD, OPTIONS, PUT or DELETE, and without an
	// Idempotency-Key): whether it took effect is unknown.
	ErrModuleInstanceLost = errs.New(errs.Unavailable, "http.module_instance_lost",
		"the service instance handling this request stopped before answering; the request may or may not have been applied")
)

// Internal outcomes of one forwarding attempt.
var (
	errNotAccepted  = errors.New("no instance accepted the request in time")
	errInstanceLost = errors.New("the instance serving the request went silent")
	errNoInstances  = errors.New("no instance serves the module")
)

// hopByHop are the headers that describe one HTTP connection, not the request; they are not forwarded.
var hopByHop = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// Gateway forwards HTTP requests over NATS to the processes that run a module elsewhere (they serve them
// with ServeNATS) and writes their responses back. The serving process re-verifies the caller's
// Authorization header, so the caller's identity is preserved without trusting the gateway.
//
// The exchange survives the death of a serving process: instances acknowledge a request when they take it
// and send heartbeats while they serve it, so the gateway resends a request nobody took and, when the
// instance serving it dies, resends it if it is safe to repeat (RetrySafe) or answers ErrModuleInstanceLost
// within ForwardLostAfter, instead of waiting for its timeout.
type Gateway struct {
	conn    func() *nats.Conn
	subject string
	timeout time.Duration
	logger  *slog.Logger
	replies replyMux
	// lanes, when set, carry requests to module's instances whenever one is open (see LaneEndpoint).
	lanes  *rpc.Lanes
	module string
}

// GatewayOption adjusts a Gateway.
type GatewayOption func(*Gateway)

// OverLanes makes the gateway send each request on one of lanes' direct lanes to module's instances when
// one is open (instances serve them with LaneEndpoint), and over NATS otherwise.
func OverLanes(lanes *rpc.Lanes, module string) GatewayOption {
	return func(g *Gateway) { g.lanes, g.module = lanes, module }
}

// NewGateway returns a Gateway forwarding to subject over the connection conn returns at each request (nil
// until the process is connected), waiting at most timeout for each response.
func NewGateway(conn func() *nats.Conn, subject string, timeout time.Duration, logger *slog.Logger, opts ...GatewayOption) *Gateway {
	g := &Gateway{conn: conn, subject: subject, timeout: timeout, logger: logger}
	for _, opt := range opts {
		opt(g)
	}
	return g
}

// ForwardedResponse is a response of the processes serving a module.
type ForwardedResponse struct {
	Status int
	Header http.Header
	Body   []byte
}

// ServeHTTP forwards r and writes the response; it answers 503 problem+json at once when no process serves
// the module, and when none answers within the timeout.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	Errors(g.logger, g.forward)(w, r)
}

func (g *Gateway) forward(w http.ResponseWriter, r *http.Request) error {
	body, err := ReadBody(r)
	if err != nil {
		return err
	}
	resp, err := g.Do(r, body)
	if err != nil {
		return err
	}
	resp.Write(w, g.logger)
	return nil
}

// ReadBody reads r's whole body, reporting one over the body limit as ErrBodyTooLarge.
func ReadBody(r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, ErrBodyTooLarge
		}
		return nil, fmt.Errorf("read request body: %w", err)
	}
	return body, nil
}

// Write writes the response to w.
func (f ForwardedResponse) Write(w http.ResponseWriter, logger *slog.Logger) {
	for k, vs := range f.Header {
		w.Header()[k] = vs
	}
	w.WriteHeader(f.Status)
	if _, err := w.Write(f.Body); err != nil {
		logger.Debug("gateway: write response", slog.Any("error", err))
	}
}

// RetrySafe reports whether r may be sent again after the instance serving it died: its method is
// idempotent (RFC 9110: GET, HEAD, OPTIONS, PUT, DELETE) or it carries an Idempotency-Key.
func RetrySafe(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodPut, http.MethodDelete:
		return true
	}
	return r.Header.Get("Idempotency-Key") != ""
}

// Do forwards r, whose body has been read into body, and returns the module's response. It never waits past
// the gateway's timeout or r's context. With tracing on, the exchange runs in a client span whose trace
// context the forwarded message carries, so the serving process's spans are its children.
func (g *Gateway) Do(r *http.Request, body []byte) (ForwardedResponse, error) {
	conn := g.conn()
	if conn == nil {
		return ForwardedResponse{}, fmt.Errorf("gateway: %s: not connected to the bus: %w", g.subject, ErrModuleUnavailable)
	}
	ctx, span := g.startSpan(r)
	resp, err := g.send(ctx, conn, r, body)
	g.endSpan(span, resp, err)
	return resp, err
}

// send forwards r until an instance answers, resending it as the protocol allows.
func (g *Gateway) send(ctx context.Context, conn *nats.Conn, r *http.Request, body []byte) (ForwardedResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	for attempt := 1; ; attempt++ {
		if span := trace.SpanFromContext(ctx); attempt > 1 && span.IsRecording() {
			span.AddEvent("resend", trace.WithAttributes(attribute.Int("seam.attempt", attempt)))
		}
		resp, err := g.exchange(ctx, conn, r, body)
		switch {
		case err == nil:
			return resp, nil
		case r.Context().Err() != nil:
			return ForwardedResponse{}, fmt.Errorf("gateway: %s: %w", g.subject, r.Context().Err())
		case errors.Is(err, ErrBodyTooLarge):
			return ForwardedResponse{}, err
		case errors.Is(err, errNotAccepted) && attempt < maxForwardAttempts:
			g.logger.WarnContext(ctx, "gateway: no instance accepted a request in time; sending it again",
				slog.String("subject", g.subject), slog.Int("attempt", attempt))
			continue
		case errors.Is(err, errInstanceLost) && RetrySafe(r) && attempt < maxForwardAttempts:
			g.logger.WarnContext(ctx, "gateway: the instance serving a request was lost; sending it again",
				slog.String("subject", g.subject), slog.String("method", r.Method), slog.Int("attempt", attempt))
			continue
		case errors.Is(err, errInstanceLost):
			return ForwardedResponse{}, fmt.Errorf("gateway: %s: %w: %w", g.subject, ErrModuleInstanceLost, err)
		default:
			return ForwardedResponse{}, fmt.Errorf("gateway: %s: %w: %w", g.subject, ErrModuleUnavailable, err)
		}
	}
}

// startSpan starts the client span of a forwarded request (a no-op span with tracing off).
func (g *Gateway) startSpan(r *http.Request) (context.Context, trace.Span) {
	if !observe.TracingEnabled() {
		return r.Context(), noop.Span{}
	}
	ctx, span := observe.StartSpan(r.Context(), "forward "+r.Method+" "+g.subject, trace.SpanKindClient)
	if span.IsRecording() {
		span.SetAttributes(
			semconv.HTTPRequestMethodKey.String(r.Method),
			semconv.URLPath(r.URL.Path),
			semconv.MessagingSystemKey.String(messagingSystem),
			semconv.MessagingDestinationName(g.subject),
		)
	}
	return ctx, span
}

// endSpan ends the client span of a forwarded request with its outcome.
func (g *Gateway) endSpan(span trace.Span, resp ForwardedResponse, err error) {
	if !span.IsRecording() {
		return
	}
	if err == nil {
		span.SetAttributes(semconv.HTTPResponseStatusCode(resp.Status))
		if resp.Status >= http.StatusInternalServerError {
			span.SetStatus(codes.Error, http.StatusText(resp.Status))
		}
	}
	observe.EndSpan(span, err)
}

// messagingSystem is the messaging.system attribute of spans about NATS messages.
const messagingSystem = "nats"

// exchange sends r once: on a lane when one is open, else over NATS.
func (g *Gateway) exchange(ctx context.Context, conn *nats.Conn, r *http.Request, body []byte) (ForwardedResponse, error) {
	if g.lanes != nil {
		resp, err := g.overLane(ctx, conn, r, body)
		if !errors.Is(err, rpc.ErrNoLane) {
			return resp, err
		}
	}
	return g.overNATS(ctx, conn, r, body)
}

// overLane sends r on a lane to an instance; rpc.ErrNoLane means it was not sent.
func (g *Gateway) overLane(ctx context.Context, conn *nats.Conn, r *http.Request, body []byte) (ForwardedResponse, error) {
	header := forwardedHeader(r)
	observe.InjectTrace(ctx, propagation.HeaderCarrier(header))
	req := forwardedRequest{method: r.Method, target: r.URL.RequestURI(), remoteAddr: r.RemoteAddr, header: header, body: body}
	answer, err := g.lanes.Send(ctx, conn, g.module, LaneMethod, appendForwardedRequest(make([]byte, 0, 512+len(body)), req))
	switch {
	case errors.Is(err, rpc.ErrLaneLost):
		return ForwardedResponse{}, fmt.Errorf("%w: %w", errInstanceLost, err)
	case err != nil:
		return ForwardedResponse{}, err
	}
	return parseForwardedResponse(answer)
}

// overNATS sends r once over NATS and follows the instance's interim replies to its response.
func (g *Gateway) overNATS(ctx context.Context, conn *nats.Conn, r *http.Request, body []byte) (ForwardedResponse, error) {
	inbox, replies, done, err := g.replies.register(conn)
	if err != nil {
		return ForwardedResponse{}, err
	}
	defer done()
	msg := g.message(r, body)
	// HTTP's canonical names (Traceparent), as the serving process reads them back into an http.Header.
	observe.InjectTrace(ctx, propagation.HeaderCarrier(msg.Header))
	msg.Reply = inbox
	msg.Header.Set(HeaderForwardAcceptBy, strconv.FormatInt(time.Now().Add(ForwardAcceptTimeout).UnixNano(), 10))
	if err := conn.PublishMsg(msg); err != nil {
		if errors.Is(err, nats.ErrMaxPayload) {
			return ForwardedResponse{}, ErrBodyTooLarge
		}
		return ForwardedResponse{}, fmt.Errorf("publish: %w", err)
	}
	accepted := false
	wait := time.NewTimer(ForwardAcceptTimeout + forwardAcceptGrace)
	defer wait.Stop()
	for {
		select {
		case <-ctx.Done():
			return ForwardedResponse{}, ctx.Err()
		case <-wait.C:
			if accepted {
				return ForwardedResponse{}, errInstanceLost
			}
			return ForwardedResponse{}, errNotAccepted
		case m := <-replies:
			if m.Header.Get("Status") == "503" && len(m.Data) == 0 {
				return ForwardedResponse{}, errNoInstances
			}
			if m.Header.Get(HeaderForwardProgress) != "" {
				accepted = true
				wait.Reset(ForwardLostAfter)
				continue
			}
			return forwardedResponse(m)
		}
	}
}

// message builds the bus message carrying r.
func (g *Gateway) message(r *http.Request, body []byte) *nats.Msg {
	msg := &nats.Msg{Subject: g.subject, Data: body, Header: nats.Header(forwardedHeader(r))}
	msg.Header.Set(HeaderForwardMethod, r.Method)
	msg.Header.Set(HeaderForwardTarget, r.URL.RequestURI())
	msg.Header.Set(HeaderForwardRemoteAddr, r.RemoteAddr)
	return msg
}

// forwardedHeader returns a copy of r's headers as they are forwarded: without the hop-by-hop ones, with the
// request id.
func forwardedHeader(r *http.Request) http.Header {
	h := make(http.Header, len(r.Header)+2)
	for k, vs := range r.Header {
		h[k] = append([]string(nil), vs...)
	}
	for _, k := range hopByHop {
		h.Del(k)
	}
	if id := observe.RequestID(r.Context()); id != "" {
		h.Set(RequestIDHeader, id)
	}
	return h
}

func forwardedResponse(m *nats.Msg) (ForwardedResponse, error) {
	status, err := strconv.Atoi(m.Header.Get(HeaderForwardStatus))
	if err != nil || status < 100 || status > 999 {
		return ForwardedResponse{}, fmt.Errorf("reply without a valid status %q", m.Header.Get(HeaderForwardStatus))
	}
	h := http.Header{}
	for k, vs := range m.Header {
		if k != HeaderForwardStatus {
			h[k] = vs
		}
	}
	return ForwardedResponse{Status: status, Header: h, Body: m.Data}, nil
}

// replyMux receives the replies of every exchange of a gateway on one wildcard subscription (as nats.go's
// request/reply does), handing each to the exchange whose inbox token it is addressed to.
type replyMux struct {
	mu      sync.Mutex
	conn    *nats.Conn
	prefix  string
	sub     *nats.Subscription
	waiting map[string]*replyWaiter
	next    uint64
}

type replyWaiter struct {
	ch   chan *nats.Msg
	done chan struct{}
}

// register returns a fresh inbox on conn, the channel its replies arrive on, and the function that forgets it.
func (m *replyMux) register(conn *nats.Conn) (string, <-chan *nats.Msg, func(), error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.conn != conn || m.sub == nil || !m.sub.IsValid() {
		m.prefix = conn.NewInbox()
		sub, err := conn.Subscribe(m.prefix+".*", m.dispatch)
		if err != nil {
			return "", nil, nil, fmt.Errorf("subscribe to replies: %w", err)
		}
		if m.sub != nil {
			_ = m.sub.Unsubscribe()
		}
		m.conn, m.sub, m.waiting = conn, sub, map[string]*replyWaiter{}
	}
	m.next++
	token := strconv.FormatUint(m.next, 36)
	w := &replyWaiter{ch: make(chan *nats.Msg, 4), done: make(chan struct{})}
	m.waiting[token] = w
	waiting := m.waiting
	return m.prefix + "." + token, w.ch, func() {
		m.mu.Lock()
		delete(waiting, token)
		m.mu.Unlock()
		close(w.done)
	}, nil
}

func (m *replyMux) dispatch(msg *nats.Msg) {
	token := msg.Subject[strings.LastIndexByte(msg.Subject, '.')+1:]
	m.mu.Lock()
	w := m.waiting[token]
	m.mu.Unlock()
	if w == nil {
		return
	}
	select {
	case w.ch <- msg:
	case <-w.done:
	}
}

// FailpointServeForwarded names the failpoint (platform/failpoint) that fails a forwarded request in the
// process serving it, before its handler runs: fault tests inject remote errors with it.
const FailpointServeForwarded = "httpx.serve_forwarded"

// maxConcurrentForwarded bounds how many forwarded requests one ServeNATS subscription handles at once.
const maxConcurrentForwarded = 128

// NATSServer serves forwarded HTTP requests from the bus; see ServeNATS.
type NATSServer struct {
	sub      *nats.Subscription
	inflight sync.WaitGroup
}

// ServeNATS serves the HTTP requests gateways forward to subject with h, in the queue group subject (so
// each request reaches one of the processes serving it), each bounded by timeout. It acknowledges each
// request it takes and sends heartbeats while serving it (see Gateway); a request that waited for a free
// slot past its accept-by time is dropped, the gateway having sent it elsewhere. Stop it with Stop.
func ServeNATS(conn *nats.Conn, subject string, h http.Handler, timeout time.Duration, logger *slog.Logger) (*NATSServer, error) {
	s := &NATSServer{}
	slots := make(chan struct{}, maxConcurrentForwarded)
	sub, err := conn.QueueSubscribe(subject, subject, func(m *nats.Msg) {
		slots <- struct{}{}
		if late(m) {
			<-slots
			logger.Warn("dropping a forwarded request received after its accept-by time", slog.String("subject", subject))
			return
		}
		progress(m, ProgressAccepted, logger)
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
	// Once ServeNATS returns, the NATS server knows the subscription: the next forwarded request finds it.
	if err := conn.FlushTimeout(rpc.RegisterTimeout); err != nil {
		_ = sub.Unsubscribe()
		return nil, fmt.Errorf("httpx: serve %s on the bus: register: %w", subject, err)
	}
	return s, nil
}

// late reports whether m's accept-by time has passed.
func late(m *nats.Msg) bool {
	v := m.Header.Get(HeaderForwardAcceptBy)
	if v == "" {
		return false
	}
	by, err := strconv.ParseInt(v, 10, 64)
	return err == nil && time.Now().UnixNano() > by
}

// progress sends an interim reply to m's gateway.
func progress(m *nats.Msg, state string, logger *slog.Logger) {
	if m.Reply == "" {
		return
	}
	reply := nats.NewMsg(m.Reply)
	reply.Header.Set(HeaderForwardProgress, state)
	if err := m.RespondMsg(reply); err != nil {
		logger.Warn("acknowledge a forwarded request", slog.String("subject", m.Subject), slog.Any("error", err))
	}
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

// serveForwarded runs one forwarded request through h, sending heartbeats meanwhile, and replies with its
// response.
func serveForwarded(m *nats.Msg, h http.Handler, timeout time.Duration, logger *slog.Logger) {
	// The gateway's trace context, for what is logged here; h (the whole handler chain, Trace included)
	// reads it again from the request's headers and serves the request in a child span of the gateway's.
	ctx := observe.ExtractTrace(context.Background(), propagation.HeaderCarrier(m.Header))
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	stopBeats := heartbeats(m, logger)
	rec := serveRequest(ctx, forwardedRequest{method: m.Header.Get(HeaderForwardMethod), target: m.Header.Get(HeaderForwardTarget),
		remoteAddr: m.Header.Get(HeaderForwardRemoteAddr), header: http.Header(m.Header), body: m.Data}, h, logger)
	stopBeats()
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

// heartbeats sends ProgressWorking to m's gateway every ForwardHeartbeat until the returned function is
// called; it returns once the last heartbeat is sent, so none follows the response.
func heartbeats(m *nats.Msg, logger *slog.Logger) func() {
	stop := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(ForwardHeartbeat)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				progress(m, ProgressWorking, logger)
			}
		}
	}()
	return func() { close(stop); <-stopped }
}

// serveRequest runs one forwarded request through h in ctx and returns its whole response.
func serveRequest(ctx context.Context, req forwardedRequest, h http.Handler, logger *slog.Logger) *bufferedResponse {
	rec := &bufferedResponse{header: http.Header{}}
	r, err := http.NewRequestWithContext(ctx, req.method, req.target, bytes.NewReader(req.body))
	if err != nil {
		WriteError(rec, httpRequestFallback(ctx), logger, fmt.Errorf("%w: %w", ErrMalformedBody, err))
	} else {
		for k, vs := range req.header {
			switch k {
			case HeaderForwardMethod, HeaderForwardTarget, HeaderForwardRemoteAddr, HeaderForwardAcceptBy:
			default:
				r.Header[k] = vs
			}
		}
		r.RemoteAddr = req.remoteAddr
		r.Host = r.Header.Get("Host")
		r.ContentLength = int64(len(req.body))
		if err := failpoint.Inject(FailpointServeForwarded); err != nil {
			WriteError(rec, r, logger, err)
		} else {
			h.ServeHTTP(rec, r)
		}
	}
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	return rec
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
