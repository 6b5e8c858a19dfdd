// Package httpx is Seam's HTTP layer: the chi router every module mounts its routes on, the middleware chain
// (request id, access log, recovery, body limit, authentication) and RFC 9457 problem+json for every error.
package httpx

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/seamkit/seam/platform/errs"
	"github.com/seamkit/seam/platform/observe"
)

// ProblemContentType is the media type of every error response.
const ProblemContentType = "application/problem+json"

// Transport-level errors; module errors come from their api packages.
var (
	// ErrBodyTooLarge is returned when a request body exceeds the configured limit.
	ErrBodyTooLarge = errs.New(errs.Invalid, "http.body_too_large", "the request body is too large")
	// ErrUnsupportedMediaType is returned when a body is not application/json.
	ErrUnsupportedMediaType = errs.New(errs.Invalid, "http.unsupported_media_type", "the request body must be application/json")
	// ErrMalformedBody is returned when a JSON body cannot be decoded.
	ErrMalformedBody = errs.New(errs.Invalid, "http.malformed_body", "the request body is not valid JSON for this endpoint")
	// ErrNotFound is returned for a path no route serves.
	ErrNotFound = errs.New(errs.NotFound, "http.not_found", "no resource at this path")
	// ErrMethodNotAllowed is returned for a method the path does not serve.
	ErrMethodNotAllowed = errs.New(errs.Invalid, "http.method_not_allowed", "this method is not allowed on this path")
	// ErrUnauthenticated is returned when a route needs a signed-in caller and there is none.
	ErrUnauthenticated = errs.New(errs.Unauthenticated, "auth.unauthenticated", "a valid bearer token is required")
	// ErrForbidden is returned when the caller lacks the role a route needs.
	ErrForbidden = errs.New(errs.Forbidden, "auth.forbidden", "you are not allowed to do this")
	// ErrUnavailable is what a client sees when a dependency (the database, the bus) cannot be reached: the
	// request did not complete and may be retried later.
	ErrUnavailable = errs.New(errs.Unavailable, "unavailable", "a service this request needs is unavailable; try again later")
	// ErrInternal is what a client sees for any unexpected failure.
	ErrInternal = errs.New(errs.Internal, "internal", "an internal error occurred; quote the request id when reporting it")
)

// statusByCode overrides the kind's status for transport errors that have a status of their own.
var statusByCode = map[string]int{
	ErrBodyTooLarge.Code:         http.StatusRequestEntityTooLarge,
	ErrUnsupportedMediaType.Code: http.StatusUnsupportedMediaType,
	ErrMethodNotAllowed.Code:     http.StatusMethodNotAllowed,
}

var statusByKind = map[errs.Kind]int{
	errs.Internal:        http.StatusInternalServerError,
	errs.Invalid:         http.StatusBadRequest,
	errs.Unprocessable:   http.StatusUnprocessableEntity,
	errs.Unauthenticated: http.StatusUnauthorized,
	errs.Forbidden:       http.StatusForbidden,
	errs.NotFound:        http.StatusNotFound,
	errs.Conflict:        http.StatusConflict,
	errs.TooManyRequests: http.StatusTooManyRequests,
	errs.PaymentRequired: http.StatusPaymentRequired,
	errs.Unavailable:     http.StatusServiceUnavailable,
}

// Problem is an RFC 9457 problem details document, with Seam's extension members.
type Problem struct {
	Type      string            `json:"type"`
	Title     string            `json:"title"`
	Status    int               `json:"status"`
	Detail    string            `json:"detail,omitempty"`
	Instance  string            `json:"instance,omitempty"`
	Code      string            `json:"code"`
	RequestID string            `json:"request_id,omitempty"`
	Errors    []errs.FieldError `json:"errors,omitempty"`
}

// Status returns the HTTP status an error maps to.
func Status(err error) int {
	e, ok := errs.As(err)
	if !ok {
		return http.StatusInternalServerError
	}
	if s, ok := statusByCode[e.Code]; ok {
		return s
	}
	return statusByKind[e.Kind]
}

// classify turns any error into the client-safe *errs.Error it may show.
func classify(err error) *errs.Error {
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return ErrBodyTooLarge
	case errors.Is(err, context.DeadlineExceeded):
		return errs.New(errs.Unavailable, "timeout", "the request took too long; try again")
	case unreachable(err):
		return ErrUnavailable
	}
	if e, ok := errs.As(err); ok && e.Kind != errs.Internal {
		return e
	}
	return ErrInternal
}

// unreachable reports whether err says a dependency could not be reached (a failed connect, a dropped
// connection, a server shutting down) rather than that the request itself failed.
func unreachable(err error) bool {
	var (
		connectErr *pgconn.ConnectError
		netErr     net.Error
		pgErr      *pgconn.PgError
	)
	switch {
	case errors.As(err, &connectErr), errors.As(err, &netErr), pgconn.SafeToRetry(err):
		return true
	case errors.Is(err, io.ErrUnexpectedEOF):
		return true
	case errors.As(err, &pgErr):
		// Class 08 is a connection exception; 57P01-57P03 are admin shutdown, crash shutdown and "cannot
		// connect now" (the server is starting or stopping).
		return strings.HasPrefix(pgErr.Code, "08") || pgErr.Code == "57P01" || pgErr.Code == "57P02" || pgErr.Code == "57P03"
	}
	return false
}

// RenderProblem returns the status and problem+json body err maps to for request r, without writing them
// (handlers that store responses, such as idempotent payments, replay these bytes later).
func RenderProblem(r *http.Request, err error) (int, []byte) {
	e := classify(err)
	status := Status(e)
	body, _ := json.Marshal(Problem{
		Type:      "urn:seam:problem:" + e.Code,
		Title:     http.StatusText(status),
		Status:    status,
		Detail:    e.Message,
		Instance:  r.URL.Path,
		Code:      e.Code,
		RequestID: observe.RequestID(r.Context()),
		Errors:    e.Fields,
	})
	return status, append(body, '\n')
}

// WriteError writes err as problem+json. Unexpected errors are logged with their details and reach the client
// only as a generic message with the request id.
func WriteError(w http.ResponseWriter, r *http.Request, logger *slog.Logger, err error) {
	status, body := RenderProblem(r, err)
	if status >= 500 {
		logger.ErrorContext(r.Context(), "request failed", slog.String("path", r.URL.Path), slog.Any("error", err))
	}
	WriteProblemBody(w, status, body, retryAfter(err))
}

// WriteProblemBody writes an already-rendered problem body (see RenderProblem).
func WriteProblemBody(w http.ResponseWriter, status int, body []byte, retryAfter time.Duration) {
	h := w.Header()
	h.Set("Content-Type", ProblemContentType)
	h.Set("X-Content-Type-Options", "nosniff")
	if status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Bearer realm="seam"`)
	}
	if retryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(int(math.Ceil(retryAfter.Seconds()))))
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func retryAfter(err error) time.Duration {
	if e, ok := errs.As(err); ok {
		return e.RetryAfter
	}
	return 0
}
