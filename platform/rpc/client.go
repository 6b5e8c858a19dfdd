package rpc

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/seamkit/seam/platform/errs"
	"github.com/seamkit/seam/platform/identity"
	"github.com/seamkit/seam/platform/observe"
)

// CallOption adjusts one call (or, passed to a generated client's constructor, every call it makes).
type CallOption func(*callOptions)

type callOptions struct {
	timeout     time.Duration
	idempotent  bool
	maxAttempts int
	backoff     time.Duration
	lanes       *Lanes
}

// WithTimeout bounds calls whose context has no deadline (default DefaultTimeout); a context deadline always
// wins.
func WithTimeout(d time.Duration) CallOption {
	return func(o *callOptions) {
		if d > 0 {
			o.timeout = d
		}
	}
}

// Idempotent marks the call safe to repeat: it is retried when no instance answered or the remote module
// reported itself unavailable, while the deadline allows. Generated clients pass it for //seam:idempotent
// methods.
func Idempotent() CallOption { return func(o *callOptions) { o.idempotent = true } }

// WithRetry sets how many attempts an idempotent call makes (default 3) and the first pause between them
// (default 25ms, doubling, with jitter).
func WithRetry(attempts int, backoff time.Duration) CallOption {
	return func(o *callOptions) {
		if attempts > 0 {
			o.maxAttempts = attempts
		}
		if backoff > 0 {
			o.backoff = backoff
		}
	}
}

// Call sends req (JSON-encoded) to subject and decodes the answer into resp, which stays untouched when
// Call fails. The call travels on a direct lane to an instance of the module when OverLanes gave it one,
// and over conn otherwise. It never waits past ctx's deadline, or DefaultTimeout when ctx has none. Errors:
// the remote *errs.Error rebuilt (errors.Is matches its sentinel); the context's error when ctx ends or the
// server reported it; ErrUnavailable when no instance answered; *RemoteError for any other remote failure.
func Call(ctx context.Context, conn *nats.Conn, subject string, req, resp any, opts ...CallOption) (err error) {
	o := callOptions{timeout: DefaultTimeout, maxAttempts: 3, backoff: 25 * time.Millisecond}
	for _, opt := range opts {
		opt(&o)
	}
	ctx, span := startSpan(ctx, subject, trace.SpanKindClient)
	defer func() { endSpan(span, err) }()
	data, err := encodeBody(req)
	if err != nil {
		return fmt.Errorf("rpc: %s: encode request: %w", subject, err)
	}
	ctx, cancel := withDefaultTimeout(ctx, o.timeout)
	defer cancel()
	c := call{conn: conn, subject: subject, data: data}
	if o.lanes != nil {
		c.module, c.method, _ = splitSubject(subject)
		c.lanes = o.lanes
	}
	defer func() {
		if errors.Is(err, context.Canceled) && c.callID != "" && conn != nil {
			// The caller gave up: tell the instance serving the call over NATS, so its work stops too.
			_ = conn.Publish(cancelSubject(subject), []byte(c.callID))
		}
	}()
	attempts := 1
	if o.idempotent {
		attempts = o.maxAttempts
	}
	pause := o.backoff
	for attempt := 1; ; attempt++ {
		err = c.once(ctx, resp)
		if err == nil || attempt >= attempts || !retryable(err) {
			return err
		}
		wait := jitter(pause)
		if e, ok := errs.As(err); ok && e.RetryAfter > wait {
			wait = e.RetryAfter
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= wait {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		if span.IsRecording() {
			span.AddEvent("retry", trace.WithAttributes(attribute.Int("seam.attempt", attempt+1),
				attribute.String("seam.previous_error", err.Error())))
		}
		pause *= 2
	}
}

// call is one call's state across its attempts: the request, and its headers in each transport's form,
// built on the first attempt that needs them.
type call struct {
	conn            *nats.Conn
	subject         string
	data            []byte
	lanes           *Lanes
	module, method  string
	msg             *nats.Msg
	callID          string
	headers         laneHeaders
	headersComplete bool
}

// notRunTries bounds how many times one attempt is sent again after an instance that is stopping did not run
// it (on a lane, then over NATS).
const notRunTries = 3

// once makes one attempt: on a lane when there is one (and the request fits in a frame), else over NATS.
// An instance that is stopping answers that it did not run the call, which is then sent to another.
func (c *call) once(ctx context.Context, resp any) error {
	if c.lanes != nil && c.module != "" && len(c.data) < maxFrame/2 {
		for range notRunTries {
			l := c.lanes.pick(c.conn, c.module)
			if l == nil {
				break
			}
			err := c.overLane(ctx, l, resp)
			if !errors.Is(err, errLaneGone) {
				return err
			}
		}
	}
	var err error
	for range notRunTries {
		if err = c.overNATS(ctx, resp); !errors.Is(err, errNotRun) {
			return err
		}
	}
	return err
}

// errNotRun means an instance that is stopping answered a call over NATS without running it.
var errNotRun = errors.New("rpc: the instance is stopping and did not run the call")

// overLane sends the call on l; errLaneGone means it did not run there.
func (c *call) overLane(ctx context.Context, l *clientLane, resp any) error {
	if !c.headersComplete {
		c.headers = make(laneHeaders, 0, 8)
		if err := setHeaders(ctx, &c.headers); err != nil {
			return fmt.Errorf("rpc: %s: %w", c.subject, err)
		}
		c.headersComplete = true
	}
	typ, payload, err := l.call(ctx, c.method, c.headers, c.data)
	if err != nil {
		if errors.Is(err, errLaneGone) {
			return err
		}
		return transportError(ctx, c.subject, err)
	}
	switch typ {
	case frameResult:
		return decodeResult(c.subject, payload, resp)
	case frameFailure:
		return fmt.Errorf("rpc: %s: %w", c.subject, decodeError(c.subject, c.headers.Get(HeaderRequestID), payload))
	case frameRejected:
		return errLaneGone
	default:
		return transportError(ctx, c.subject, ErrLaneLost)
	}
}

// overNATS sends the call as a NATS request on conn.
func (c *call) overNATS(ctx context.Context, resp any) error {
	if c.conn == nil {
		// A lazily connected client called before its process connected to the bus.
		return transportError(ctx, c.subject, nats.ErrInvalidConnection)
	}
	if c.msg == nil {
		msg := nats.NewMsg(c.subject)
		msg.Data = c.data
		if err := setHeaders(ctx, observe.HeaderCarrier(msg.Header)); err != nil {
			return fmt.Errorf("rpc: %s: %w", c.subject, err)
		}
		c.callID = uuid.NewString()
		msg.Header.Set(HeaderCallID, c.callID)
		c.msg = msg
	}
	reply, err := c.conn.RequestMsgWithContext(ctx, c.msg)
	if err != nil {
		return transportError(ctx, c.subject, err)
	}
	if reply.Header.Get(micro.ErrorCodeHeader) != "" {
		err := decodeError(c.subject, c.msg.Header.Get(HeaderRequestID), reply.Data)
		if reply.Header.Get(HeaderNotRun) != "" {
			return fmt.Errorf("rpc: %s: %w: %w", c.subject, errNotRun, err)
		}
		return fmt.Errorf("rpc: %s: %w", c.subject, err)
	}
	return decodeResult(c.subject, reply.Data, resp)
}

// decodeResult decodes a successful answer into resp.
func decodeResult(subject string, data []byte, resp any) error {
	if err := decodeBody(data, resp); err != nil {
		return fmt.Errorf("rpc: %s: decode response: %w", subject, err)
	}
	return nil
}

// withDefaultTimeout bounds ctx by d unless it already has a deadline.
func withDefaultTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeoutCause(ctx, d, errDefaultTimeout)
}

// errDefaultTimeout is the cause of a context ended by the default timeout, told apart from the caller's
// own deadline.
var errDefaultTimeout = errors.New("rpc: default timeout")

// setHeaders writes the call's headers (request id, principal, deadline, trace context) into h.
func setHeaders(ctx context.Context, h propagation.TextMapCarrier) error {
	if id := observe.RequestID(ctx); id != "" {
		h.Set(HeaderRequestID, id)
	}
	if p, ok := identity.From(ctx); ok {
		v, err := encodePrincipal(p)
		if err != nil {
			return err
		}
		h.Set(HeaderPrincipal, v)
	}
	if dl, ok := ctx.Deadline(); ok {
		h.Set(HeaderDeadline, strconv.FormatInt(dl.UnixNano(), 10))
	}
	observe.InjectTrace(ctx, h)
	return nil
}

// transportError classifies a failed request: the caller's own context ending is reported as the context's
// error; everything else (no responders, default timeout, connection closed) is ErrUnavailable.
func transportError(ctx context.Context, subject string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		if errors.Is(context.Cause(ctx), errDefaultTimeout) {
			return fmt.Errorf("rpc: %s: no answer within the default timeout: %w: %w", subject, ErrUnavailable, ctxErr)
		}
		return fmt.Errorf("rpc: %s: %w", subject, ctxErr)
	}
	return fmt.Errorf("rpc: %s: %w: %w", subject, ErrUnavailable, err)
}

// retryable reports whether an idempotent call may be repeated after err: no instance answered, or the
// remote module said it is unavailable. A call that ran out of time is not repeated.
func retryable(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return false
	}
	if errors.Is(err, nats.ErrNoResponders) {
		return true
	}
	e, ok := errs.As(err)
	return ok && e.Kind == errs.Unavailable
}

func jitter(d time.Duration) time.Duration {
	return d/2 + rand.N(d/2+1)
}
