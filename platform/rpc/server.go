package rpc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/seamkit/seam/platform/identity"
	"github.com/seamkit/seam/platform/observe"
)

// Handler serves one method: it decodes the request body, calls the implementation and returns the
// response to encode, or its error.
type Handler func(ctx context.Context, body []byte) (any, error)

// Handle adapts a typed method call to a Handler: the body is decoded as JSON into a new Req (a failure is
// ErrBadRequest) and fn's response is sent back as JSON.
func Handle[Req, Resp any](fn func(ctx context.Context, req *Req) (Resp, error)) Handler {
	return func(ctx context.Context, body []byte) (any, error) {
		req := new(Req)
		if err := decodeBody(body, req); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadRequest, err)
		}
		return fn(ctx, req)
	}
}

// Endpoint is one method of a served interface.
type Endpoint struct {
	// Method is the Go method name; the endpoint listens on Subject(module, Method).
	Method string
	// Handler serves it.
	Handler Handler
	// Raw makes the endpoint take and give bodies as they are, not as JSON: Handler gets the request's
	// bytes and returns a []byte. A raw endpoint is served on lanes only and starts no span of its own: it is
	// for payloads that carry their own protocol and trace context, such as forwarded HTTP requests.
	Raw bool
}

// Service describes a module's interface served over NATS.
type Service struct {
	// Module names the module: the service is seam-<module>, its subjects seam.rpc.<module>.<Method>.
	Module string
	// Version is the service's SemVer version as `nats micro ls` shows it; default 1.0.0.
	Version string
	// Description is shown by `nats micro info`.
	Description string
	// Endpoints are the methods served.
	Endpoints []Endpoint
	// Logger receives failures that are not client-safe errors (their text never leaves the server).
	Logger *slog.Logger
	// MaxInFlight bounds the requests handled at once by this instance (default 256); further requests wait
	// in NATS's pending buffer.
	MaxInFlight int
}

// ServeOption adjusts how Serve serves.
type ServeOption func(*serveOptions)

type serveOptions struct {
	lanes Config
	extra []Endpoint
}

// ServeLanes makes the server accept direct lanes as cfg says (nothing when cfg.Lanes is off), and announce
// them on seam.rpc.<module>._lanes to callers whose calls use lanes (OverLanes).
func ServeLanes(cfg Config) ServeOption { return func(o *serveOptions) { o.lanes = cfg } }

// AlsoServe adds endpoints to the served interface's own: what the process serves besides its api, on the
// same service and lanes.
func AlsoServe(eps ...Endpoint) ServeOption {
	return func(o *serveOptions) { o.extra = append(o.extra, eps...) }
}

// Serve starts s on conn as a NATS micro service in queue group seam-<module>, so instances share the load,
// and, with ServeLanes, on direct lanes too. Every request runs in its own goroutine with a context carrying
// the caller's deadline, request id, principal and trace context (in a server span when tracing is on),
// cancelled when the caller cancels the call (its cause ErrCallerCanceled). Answers over NATS are published
// on the request's reply subject, so the micro service's stats count requests but not their errors or
// processing time. Stop on the returned service stops taking requests and waits for those in flight.
func Serve(conn *nats.Conn, s Service, opts ...ServeOption) (micro.Service, error) {
	if s.Module == "" {
		return nil, errors.New("rpc: serve: module name is empty")
	}
	if s.Logger == nil {
		return nil, fmt.Errorf("rpc: serve %s: logger is nil", s.Module)
	}
	var o serveOptions
	for _, opt := range opts {
		opt(&o)
	}
	if s.Version == "" {
		s.Version = "1.0.0"
	}
	if s.MaxInFlight <= 0 {
		s.MaxInFlight = 256
	}
	name := ServiceName(s.Module)
	svc, err := micro.AddService(conn, micro.Config{
		Name:        name,
		Version:     s.Version,
		Description: s.Description,
		QueueGroup:  name,
		Metadata:    map[string]string{"seam.module": s.Module},
	})
	if err != nil {
		return nil, fmt.Errorf("rpc: serve %s: %w", s.Module, err)
	}
	srv := &server{Service: svc, conn: conn, logger: s.Logger.With(slog.String("rpc_service", name)),
		slots: make(chan struct{}, s.MaxInFlight), calls: map[string]context.CancelCauseFunc{}}
	// Every instance hears every cancellation; the one serving the call cancels its context.
	srv.cancels, err = conn.Subscribe(Subject(s.Module, cancelMethod), func(m *nats.Msg) { srv.cancel(string(m.Data)) })
	if err != nil {
		_ = svc.Stop()
		return nil, fmt.Errorf("rpc: serve %s: cancellations: %w", s.Module, err)
	}
	all := append(append([]Endpoint(nil), s.Endpoints...), o.extra...)
	endpoints := make(map[string]endpoint, len(all))
	for _, ep := range all {
		subject := Subject(s.Module, ep.Method)
		endpoints[ep.Method] = endpoint{subject: subject, handler: ep.Handler, raw: ep.Raw}
		if ep.Raw {
			continue
		}
		if err := svc.AddEndpoint(ep.Method, srv.handler(subject, ep.Handler), micro.WithEndpointSubject(subject)); err != nil {
			_ = srv.Stop()
			return nil, fmt.Errorf("rpc: serve %s: endpoint %s: %w", s.Module, ep.Method, err)
		}
	}
	if o.lanes.Lanes {
		if srv.lanes, err = listenLanes(srv, s.Module, endpoints, o.lanes); err != nil {
			_ = srv.Stop()
			return nil, fmt.Errorf("rpc: serve %s: %w", s.Module, err)
		}
	}
	// Once Serve returns, the NATS server knows every subscription: a caller asking next finds this instance.
	if err := conn.FlushTimeout(RegisterTimeout); err != nil {
		_ = srv.Stop()
		return nil, fmt.Errorf("rpc: serve %s: register on the bus: %w", s.Module, err)
	}
	return srv, nil
}

// RegisterTimeout bounds how long a server waits for the NATS server to confirm its subscriptions.
const RegisterTimeout = 5 * time.Second

// endpoint is one served method as lanes dispatch it.
type endpoint struct {
	subject string
	handler Handler
	raw     bool
}

// server is a micro.Service whose Stop also waits for the requests in flight.
type server struct {
	micro.Service
	conn   *nats.Conn
	logger *slog.Logger
	slots  chan struct{}

	mu      sync.Mutex
	stopped bool
	wg      sync.WaitGroup
	// calls holds the cancel function of every call in flight, by call id.
	calls   map[string]context.CancelCauseFunc
	cancels *nats.Subscription
	// lanes accepts direct lanes, when served.
	lanes *laneServer
}

// ErrCallerCanceled is the cause of a served call's context when its caller cancelled the call.
var ErrCallerCanceled = errors.New("rpc: the caller cancelled the call")

// cancel cancels the call with id, if this instance serves it.
func (s *server) cancel(id string) {
	s.mu.Lock()
	cancel := s.calls[id]
	s.mu.Unlock()
	if cancel != nil {
		cancel(ErrCallerCanceled)
	}
}

// track registers the call with id (when it has one) under a context its caller can cancel, until the
// returned function is called.
func (s *server) track(ctx context.Context, id string) (context.Context, func()) {
	if id == "" {
		return ctx, func() {}
	}
	ctx, cancel := context.WithCancelCause(ctx)
	s.mu.Lock()
	s.calls[id] = cancel
	s.mu.Unlock()
	return ctx, func() {
		s.mu.Lock()
		delete(s.calls, id)
		s.mu.Unlock()
		cancel(nil)
	}
}

// Stop stops taking requests, then waits for those being handled.
func (s *server) Stop() error {
	if err := s.cancels.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		s.logger.Warn("rpc: stop hearing cancellations", slog.Any("error", err))
	}
	err := s.Service.Stop()
	s.mu.Lock()
	s.stopped = true
	s.mu.Unlock()
	if s.lanes != nil {
		s.lanes.goAway()
	}
	s.wg.Wait()
	if s.lanes != nil {
		s.lanes.close()
	}
	return err
}

// begin registers a request about to be handled, unless the server is stopping.
func (s *server) begin() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return false
	}
	s.wg.Add(1)
	return true
}

func (s *server) handler(subject string, h Handler) micro.Handler {
	return micro.HandlerFunc(func(req micro.Request) {
		if !s.begin() {
			w, _ := encodeError(ErrUnavailable)
			h := errorHeader(w)
			h.Set(HeaderNotRun, "1")
			s.reply(req, req.Subject(), &nats.Msg{Header: h, Data: w.encode()})
			return
		}
		s.slots <- struct{}{}
		go func() {
			defer s.wg.Done()
			defer func() { <-s.slots }()
			s.serve(req, subject, h)
		}()
	})
}

// serve answers one request that came over NATS.
func (s *server) serve(req micro.Request, subject string, h Handler) {
	headers := observe.HeaderCarrier(req.Headers())
	ctx, cancel, err := requestContext(context.Background(), headers)
	defer cancel()
	ctx, done := s.track(ctx, headers.Get(HeaderCallID))
	defer done()
	body, w := s.outcome(ctx, endpoint{subject: subject, handler: h}, req.Data(), err)
	if w != nil {
		s.respondError(req, *w)
		return
	}
	s.reply(req, subject, &nats.Msg{Data: body})
}

// outcome runs ep's handler on the request body in ctx, in a server span that is a child of the caller's
// when tracing is on (none for a raw endpoint), and returns the response or, when the call failed, its wire
// error (logging the details of a failure that is not client-safe). badHeaders is the error rebuilding ctx
// from the request's headers.
func (s *server) outcome(ctx context.Context, ep endpoint, data []byte, badHeaders error) ([]byte, *wireError) {
	subject := ep.subject
	span := trace.Span(noop.Span{})
	if !ep.raw {
		ctx, span = startSpan(ctx, subject, trace.SpanKindServer)
	}
	var body []byte
	err := badHeaders
	if err != nil {
		err = fmt.Errorf("%w: %w", ErrBadRequest, err)
	} else {
		body, err = s.answer(ctx, ep, data)
	}
	endSpan(span, err)
	if err == nil {
		return body, nil
	}
	w, internal := encodeError(err)
	if internal {
		s.logger.ErrorContext(ctx, "rpc: remote call failed", slog.String("subject", subject),
			slog.String("request_id", observe.RequestID(ctx)), slog.Any("error", err))
	}
	return nil, &w
}

// answer runs ep's handler on the request body and encodes its response (a raw endpoint's is sent as it is).
func (s *server) answer(ctx context.Context, ep endpoint, data []byte) ([]byte, error) {
	resp, err := s.call(ctx, ep.subject, ep.handler, data)
	if err != nil {
		return nil, err
	}
	if ep.raw {
		raw, ok := resp.([]byte)
		if !ok {
			return nil, fmt.Errorf("raw endpoint %s returned %T, not []byte", ep.subject, resp)
		}
		return raw, nil
	}
	body, err := encodeBody(resp)
	if err != nil {
		return nil, fmt.Errorf("encode response: %w", err)
	}
	return body, nil
}

// call runs h, turning a panic into an error so one bad request cannot take the process down.
func (s *server) call(ctx context.Context, subject string, h Handler, body []byte) (resp any, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic in %s: %v", subject, r)
		}
	}()
	return h(ctx, body)
}

// respondError answers a NATS request with w, the error's kind and code in the micro error headers.
func (s *server) respondError(req micro.Request, w wireError) {
	s.reply(req, req.Subject(), &nats.Msg{Header: errorHeader(w), Data: w.encode()})
}

// errorHeader is the header of an answer that carries the failure w, as micro's error headers.
func errorHeader(w wireError) nats.Header {
	h := nats.Header{}
	h.Set(micro.ErrorCodeHeader, w.Kind)
	h.Set(micro.ErrorHeader, w.Code)
	return h
}

// reply publishes the answer to the request's reply subject directly rather than through micro.Request,
// whose Respond may not be called once the micro handler has returned (requests run in their own
// goroutines here).
func (s *server) reply(req micro.Request, subject string, msg *nats.Msg) {
	if req.Reply() == "" {
		return
	}
	msg.Subject = req.Reply()
	if err := s.conn.PublishMsg(msg); err != nil {
		s.logger.Error("rpc: reply", slog.String("subject", subject), slog.Any("error", err))
	}
}

// requestContext rebuilds the caller's context from the request headers, under parent: deadline, request
// id, principal and trace context.
func requestContext(parent context.Context, h propagation.TextMapCarrier) (context.Context, context.CancelFunc, error) {
	ctx := parent
	cancel := context.CancelFunc(func() {})
	if v := h.Get(HeaderDeadline); v != "" {
		ns, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return ctx, cancel, fmt.Errorf("header %s: %w", HeaderDeadline, err)
		}
		ctx, cancel = context.WithDeadline(ctx, time.Unix(0, ns))
	}
	if id := h.Get(HeaderRequestID); id != "" {
		ctx = observe.WithRequestID(ctx, id)
	}
	ctx = observe.ExtractTrace(ctx, h)
	if v := h.Get(HeaderPrincipal); v != "" {
		p, err := decodePrincipal(v)
		if err != nil {
			return ctx, cancel, fmt.Errorf("header %s: %w", HeaderPrincipal, err)
		}
		ctx = identity.With(ctx, p)
	}
	return ctx, cancel, nil
}
