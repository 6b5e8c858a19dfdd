package rpc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"go.opentelemetry.io/otel/trace"

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
		if err := json.Unmarshal(body, req); err != nil {
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

// Serve starts s on conn as a NATS micro service in queue group seam-<module>, so instances share the load.
// Every request runs in its own goroutine with a context carrying the caller's deadline, request id,
// principal and trace context (in a server span when tracing is on), cancelled when the caller cancels the
// call (its cause ErrCallerCanceled). Answers are published on the request's reply subject, so the micro service's
// stats count requests but not their errors or processing time. Stop on the returned service stops taking requests and waits for those in
// flight.
func Serve(conn *nats.Conn, s Service) (micro.Service, error) {
	if s.Module == "" {
		return nil, errors.New("rpc: serve: module name is empty")
	}
	if s.Logger == nil {
		return nil, fmt.Errorf("rpc: serve %s: logger is nil", s.Module)
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
	for _, ep := range s.Endpoints {
		subject := Subject(s.Module, ep.Method)
		if err := svc.AddEndpoint(ep.Method, srv.handler(subject, ep.Handler), micro.WithEndpointSubject(subject)); err != nil {
			_ = srv.Stop()
			return nil, fmt.Errorf("rpc: serve %s: endpoint %s: %w", s.Module, ep.Method, err)
		}
	}
	return srv, nil
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
	s.wg.Wait()
	return err
}

func (s *server) handler(subject string, h Handler) micro.Handler {
	return micro.HandlerFunc(func(req micro.Request) {
		s.mu.Lock()
		if s.stopped {
			s.mu.Unlock()
			s.respondError(context.Background(), req, subject, "", ErrUnavailable)
			return
		}
		s.wg.Add(1)
		s.mu.Unlock()
		s.slots <- struct{}{}
		go func() {
			defer s.wg.Done()
			defer func() { <-s.slots }()
			s.serve(req, subject, h)
		}()
	})
}

// serve answers one request, in a server span that is a child of the caller's when tracing is on.
func (s *server) serve(req micro.Request, subject string, h Handler) {
	ctx, cancel, err := requestContext(req.Headers())
	defer cancel()
	ctx, done := s.track(ctx, req.Headers().Get(HeaderCallID))
	defer done()
	ctx, span := startSpan(ctx, subject, trace.SpanKindServer)
	if err != nil {
		err = fmt.Errorf("%w: %w", ErrBadRequest, err)
	} else {
		err = s.answer(ctx, req, subject, h)
	}
	if err != nil {
		s.respondError(ctx, req, subject, observe.RequestID(ctx), err)
	}
	endSpan(span, err)
}

// answer runs h on the request and replies with its response.
func (s *server) answer(ctx context.Context, req micro.Request, subject string, h Handler) error {
	resp, err := s.call(ctx, subject, h, req.Data())
	if err != nil {
		return err
	}
	body, err := json.Marshal(resp)
	if err != nil {
		return fmt.Errorf("encode response: %w", err)
	}
	s.reply(req, subject, &nats.Msg{Data: body})
	return nil
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

func (s *server) respondError(ctx context.Context, req micro.Request, subject, requestID string, err error) {
	w, internal := encodeError(err)
	if internal {
		s.logger.ErrorContext(ctx, "rpc: remote call failed", slog.String("subject", subject),
			slog.String("request_id", requestID), slog.Any("error", err))
	}
	body, mErr := json.Marshal(w)
	if mErr != nil {
		body = nil
	}
	h := nats.Header{}
	h.Set(micro.ErrorCodeHeader, w.Kind)
	h.Set(micro.ErrorHeader, w.Code)
	s.reply(req, subject, &nats.Msg{Header: h, Data: body})
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

// requestContext rebuilds the caller's context from the request headers: deadline, request id, principal
// and trace context.
func requestContext(h micro.Headers) (context.Context, context.CancelFunc, error) {
	ctx := context.Background()
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
	ctx = observe.ExtractTrace(ctx, observe.HeaderCarrier(h))
	if v := h.Get(HeaderPrincipal); v != "" {
		var p identity.Principal
		if err := json.Unmarshal([]byte(v), &p); err != nil {
			return ctx, cancel, fmt.Errorf("header %s: %w", HeaderPrincipal, err)
		}
		ctx = identity.With(ctx, p)
	}
	return ctx, cancel, nil
}
