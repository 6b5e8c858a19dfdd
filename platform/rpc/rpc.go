// Package rpc is the runtime behind Seam's generated remote stubs: it serves a module's api interface as a
// NATS micro service and calls it from another process, carrying deadline, request id, caller identity and
// trace context (in client and server spans when tracing is on), and rebuilding client-safe errors so
// errors.Is keeps working across the wire.
package rpc

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"

	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/seamkit/seam/platform/errs"
	"github.com/seamkit/seam/platform/observe"
)

// Headers every Seam RPC request carries (when the caller's context holds the value).
const (
	// HeaderRequestID carries the caller's request id (observe.RequestID).
	HeaderRequestID = "Seam-Request-Id"
	// HeaderPrincipal carries the caller's identity.Principal as JSON.
	HeaderPrincipal = "Seam-Principal"
	// HeaderDeadline carries the caller's absolute deadline in Unix nanoseconds.
	HeaderDeadline = "Seam-Deadline"
	// HeaderCallID identifies one call (all its attempts), so the caller can cancel it on the server.
	HeaderCallID = "Seam-Call-Id"
)

// HeaderNotRun marks the answer over NATS of an instance that is stopping and did not run the call: the
// caller may send it again, to another instance, whatever its method.
const HeaderNotRun = "Seam-Not-Run"

// cancelMethod is the pseudo-method whose subject, seam.rpc.<module>._cancel, carries the call id of a call
// its caller gave up on to every instance of the module (Go method names cannot start with "_").
const cancelMethod = "_cancel"

// cancelSubject is where the callers of the endpoint subject announce cancelled calls.
func cancelSubject(subject string) string {
	rest := strings.TrimPrefix(subject, SubjectPrefix)
	module, _, _ := strings.Cut(rest, ".")
	return Subject(module, cancelMethod)
}

// SubjectPrefix starts the subject of every Seam RPC endpoint: seam.rpc.<module>.<Method>.
const SubjectPrefix = "seam.rpc."

// Subject returns the NATS subject of method of module.
func Subject(module, method string) string { return SubjectPrefix + module + "." + method }

// ServiceName returns the NATS micro service name of module, as `nats micro ls` lists it.
func ServiceName(module string) string { return "seam-" + module }

// DefaultTimeout bounds a call whose context has no deadline.
const DefaultTimeout = 10 * time.Second

// ErrUnavailable means no instance of the remote module answered (none running, or none in time); retrying
// later may succeed.
var ErrUnavailable = errs.New(errs.Unavailable, "rpc.unavailable", "the remote module is unavailable")

// ErrRemote is the client-safe face of a failure inside the remote module that was not an *errs.Error; every
// *RemoteError matches it.
var ErrRemote = errs.New(errs.Internal, "rpc.remote_error", "the remote module failed")

// ErrBadRequest means the server could not decode a request (a client and server built from different api
// versions, or a hand-made request).
var ErrBadRequest = errs.New(errs.Invalid, "rpc.bad_request", "the remote call could not be decoded")

// RemoteError is what a caller gets when the remote implementation failed with an error that is not an
// *errs.Error: the server logged the details; the caller learns only where and which request.
type RemoteError struct {
	// Subject is the endpoint that failed.
	Subject string
	// RequestID is the request id the server logged the failure under.
	RequestID string
}

// Error says which call failed, never why (the server's text stays in the server's log).
func (e *RemoteError) Error() string {
	msg := "rpc: " + e.Subject + ": " + ErrRemote.Message
	if e.RequestID != "" {
		msg += " (request id " + e.RequestID + ")"
	}
	return msg
}

// Unwrap exposes ErrRemote, so errors.Is(err, ErrRemote) holds and errs.As finds a client-safe error.
func (e *RemoteError) Unwrap() error { return ErrRemote }

// rpcSystem is the rpc.system.name attribute of Seam's call spans.
const rpcSystem = "seam"

// startSpan starts the span of a call to subject: kind client around Call, kind server around the
// handler. It is named after the method ("billing/GetInvoice"); with tracing off it is a no-op span.
func startSpan(ctx context.Context, subject string, kind trace.SpanKind) (context.Context, trace.Span) {
	if !observe.TracingEnabled() {
		return ctx, noop.Span{}
	}
	method := strings.Replace(strings.TrimPrefix(subject, SubjectPrefix), ".", "/", 1)
	ctx, span := observe.StartSpan(ctx, method, kind)
	if span.IsRecording() {
		span.SetAttributes(
			semconv.RPCSystemNameKey.String(rpcSystem),
			semconv.RPCMethod(method),
			semconv.MessagingDestinationName(subject),
		)
	}
	return ctx, span
}

// endSpan records the call's outcome on span (its error code as rpc.response.status_code) and ends it.
func endSpan(span trace.Span, err error) {
	if !span.IsRecording() {
		return
	}
	code := "OK"
	if err != nil {
		code = ErrRemote.Code
		if e, ok := errs.As(err); ok {
			code = e.Code
		}
	}
	span.SetAttributes(semconv.RPCResponseStatusCode(code))
	observe.EndSpan(span, err)
}

// Wire codes of context errors, which travel as errors but are rebuilt as the context's own errors.
const (
	codeDeadlineExceeded = "rpc.deadline_exceeded"
	codeCanceled         = "rpc.canceled"
)

// wireError is an error as it travels in a response body.
type wireError struct {
	Kind       string            `json:"kind"`
	Code       string            `json:"code"`
	Message    string            `json:"message"`
	Fields     []errs.FieldError `json:"fields,omitempty"`
	RetryAfter string            `json:"retry_after,omitempty"`
}

// encodeError turns a handler's error into its wire form; internal reports whether it is not client-safe
// (and so must be logged by the server and hidden from the caller).
func encodeError(err error) (w wireError, internal bool) {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return wireError{Kind: errs.Unavailable.String(), Code: codeDeadlineExceeded, Message: "deadline exceeded"}, false
	case errors.Is(err, context.Canceled):
		return wireError{Kind: errs.Unavailable.String(), Code: codeCanceled, Message: "canceled"}, false
	}
	if e, ok := errs.As(err); ok {
		w = wireError{Kind: e.Kind.String(), Code: e.Code, Message: e.Message, Fields: e.Fields}
		if e.RetryAfter > 0 {
			w.RetryAfter = e.RetryAfter.String()
		}
		return w, false
	}
	return wireError{Kind: errs.Internal.String(), Code: ErrRemote.Code, Message: ErrRemote.Message}, true
}

// encode returns w as JSON (empty if it cannot be encoded, which the caller reads as an unknown failure).
func (w wireError) encode() []byte {
	body, err := json.Marshal(w)
	if err != nil {
		return nil
	}
	return body
}

// decodeError rebuilds the caller-side error of a response body.
func decodeError(subject, requestID string, data []byte) error {
	var w wireError
	if err := json.Unmarshal(data, &w); err != nil || w.Code == "" {
		return &RemoteError{Subject: subject, RequestID: requestID}
	}
	switch w.Code {
	case codeDeadlineExceeded:
		return context.DeadlineExceeded
	case codeCanceled:
		return context.Canceled
	case ErrRemote.Code:
		return &RemoteError{Subject: subject, RequestID: requestID}
	}
	e := &errs.Error{Kind: errs.ParseKind(w.Kind), Code: w.Code, Message: w.Message, Fields: w.Fields}
	if w.RetryAfter != "" {
		if d, err := time.ParseDuration(w.RetryAfter); err == nil {
			e.RetryAfter = d
		}
	}
	return e
}
