package rpc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"go.opentelemetry.io/otel/attribute"
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

// Call sends req (JSON-encoded) to subject over conn and decodes the answer into resp, which stays untouched
// when Call fails. It never waits past ctx's deadline, or DefaultTimeout when ctx has none. Errors:
// the remote *errs.Error rebuilt (errors.Is matches its sentinel); the context's error when ctx ends or the
// server reported it; ErrUnavailable when no instance answered; *RemoteError for any other remote failure.
func Call(ctx context.Context, conn *nats.Conn, subject string, req, resp any, opts ...CallOption) (err error) {
	o := callOptions{timeout: DefaultTimeout, maxAttempts: 3, backoff: 25 * time.Millisecond}
	for _, opt := range opts {
		opt(&o)
	}
	ctx, span := startSpan(ctx, subject, trace.SpanKindClient)
	defer func() { endSpan(span, err) }()
	data, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("rpc: %s: encode request: %w", subject, err)
	}
	ctx, cancel := withDefaultTimeout(ctx, o.timeout)
	defer cancel()
	msg := nats.NewMsg(subject)
	msg.Data = data
	if err := setHeaders(ctx, msg.Header); err != nil {
		return fmt.Errorf("rpc: %s: %w", subject, err)
	}
	callID := uuid.NewString()
	msg.Header.Set(HeaderCallID, callID)
	defer func() {
		if errors.Is(err, context.Canceled) && conn != nil {
			// The caller gave up: tell the instance serving the call, so its work stops too.
			_ = conn.Publish(cancelSubject(subject), []byte(callID))
		}
	}()
	attempts := 1
	if o.idempotent {
		attempts = o.maxAttempts
	}
	pause := o.backoff
	for attempt := 1; ; attempt++ {
		err = callOnce(ctx, conn, msg, resp)
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

func setHeaders(ctx context.Context, h nats.Header) error {
	if id := observe.RequestID(ctx); id != "" {
		h.Set(HeaderRequestID, id)
	}
	if p, ok := identity.From(ctx); ok {
		b, err := json.Marshal(p)
		if err != nil {
			return fmt.Errorf("encode principal: %w", err)
		}
		h.Set(HeaderPrincipal, string(b))
	}
	if dl, ok := ctx.Deadline(); ok {
		h.Set(HeaderDeadline, strconv.FormatInt(dl.UnixNano(), 10))
	}
	observe.InjectTrace(ctx, observe.HeaderCarrier(h))
	return nil
}

func callOnce(ctx context.Context, conn *nats.Conn, msg *nats.Msg, resp any) error {
	subject := msg.Subject
	if conn == nil {
		// A lazily connected client called before its process connected to the bus.
		return transportError(ctx, subject, nats.ErrInvalidConnection)
	}
	reply, err := conn.RequestMsgWithContext(ctx, msg)
	if err != nil {
		return transportError(ctx, subject, err)
	}
	if reply.Header.Get(micro.ErrorCodeHeader) != "" {
		return fmt.Errorf("rpc: %s: %w", subject, decodeError(subject, msg.Header.Get(HeaderRequestID), reply.Data))
	}
	if err := json.Unmarshal(reply.Data, resp); err != nil {
		return fmt.Errorf("rpc: %s: decode response: %w", subject, err)
	}
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
