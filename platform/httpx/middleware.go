package httpx

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"runtime/debug"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/seamkit/seam/platform/identity"
	"github.com/seamkit/seam/platform/observe"
)

// RequestIDHeader carries the request id in requests and responses.
const RequestIDHeader = "X-Request-Id"

var validRequestID = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// RequestID takes a well-formed X-Request-Id from the client or makes one, puts it in the context and
// echoes it in the response.
func RequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(RequestIDHeader)
		if !validRequestID.MatchString(id) {
			id = NewRequestID()
		}
		w.Header().Set(RequestIDHeader, id)
		next.ServeHTTP(w, r.WithContext(observe.WithRequestID(r.Context(), id)))
	})
}

// NewRequestID returns a random 16-byte hex id.
func NewRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Trace runs each request in an OpenTelemetry server span when tracing is on (observe.TracingEnabled): a
// child of the trace context the request carries (traceparent), named "HTTP <method> <route>" after the chi
// route pattern it matched, with its request id and status; a 5xx marks it failed. Probes and scrapes
// (/healthz, /readyz, /metrics) are not traced. With tracing off it passes requests through untouched. It
// belongs after RequestID, whose id it records.
func Trace(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !observe.TracingEnabled() || untraced[r.URL.Path] {
			next.ServeHTTP(w, r)
			return
		}
		ctx := observe.ExtractTrace(r.Context(), propagation.HeaderCarrier(r.Header))
		ctx, span := observe.StartSpan(ctx, "HTTP "+r.Method, trace.SpanKindServer)
		defer span.End()
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r.WithContext(ctx))
		if !span.IsRecording() {
			return
		}
		status := rec.status
		if status == 0 {
			status = http.StatusOK
		}
		span.SetAttributes(
			semconv.HTTPRequestMethodKey.String(r.Method),
			semconv.URLPath(r.URL.Path),
			semconv.HTTPResponseStatusCode(status),
			attribute.String(SpanAttrRequestID, observe.RequestID(r.Context())),
		)
		if pattern := chi.RouteContext(r.Context()).RoutePattern(); pattern != "" {
			span.SetName("HTTP " + r.Method + " " + pattern)
			span.SetAttributes(semconv.HTTPRoute(pattern))
		}
		if status >= http.StatusInternalServerError {
			span.SetStatus(codes.Error, http.StatusText(status))
		}
	})
}

// untraced are the paths Trace leaves alone: probes and scrapes, polled all day, are noise in traces.
var untraced = map[string]bool{"/healthz": true, "/readyz": true, "/metrics": true}

// Span attributes Seam adds beside the OpenTelemetry semantic conventions.
const (
	// SpanAttrRequestID is the request id (X-Request-Id) of the request a span serves.
	SpanAttrRequestID = "seam.request_id"
	// SpanAttrUserID is the authenticated user a request was served for (set by Authenticate).
	SpanAttrUserID = "seam.user_id"
)

// statusRecorder remembers the status and size of a response for the access log.
type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	n, err := s.ResponseWriter.Write(b)
	s.bytes += n
	return n, err
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// AccessLog logs one structured line per request.
func AccessLog(logger *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			rec := &statusRecorder{ResponseWriter: w}
			next.ServeHTTP(rec, r)
			attrs := []slog.Attr{
				slog.String("method", r.Method),
				slog.String("path", r.URL.Path),
				slog.Int("status", rec.status),
				slog.Int("bytes", rec.bytes),
				slog.Duration("duration", time.Since(start)),
			}
			if p, ok := identity.From(r.Context()); ok {
				attrs = append(attrs, slog.String("user_id", p.UserID))
			}
			logger.LogAttrs(r.Context(), slog.LevelInfo, "http request", attrs...)
		})
	}
}

// Recover turns a panic in a handler into a logged 500 problem; the stack goes to the log, never to the client.
func Recover(logger *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			defer func() {
				v := recover()
				if v == nil {
					return
				}
				if err, ok := v.(error); ok && errors.Is(err, http.ErrAbortHandler) {
					panic(v)
				}
				logger.ErrorContext(r.Context(), "panic in handler", slog.Any("panic", v), slog.String("stack", string(debug.Stack())))
				WriteError(w, r, logger, fmt.Errorf("panic: %v", v))
			}()
			next.ServeHTTP(w, r)
		})
	}
}

// BodyLimit caps every request body at limit bytes; reading past it fails with ErrBodyTooLarge (413).
func BodyLimit(limit int64, logger *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.ContentLength > limit {
				WriteError(w, r, logger, ErrBodyTooLarge)
				return
			}
			r.Body = http.MaxBytesReader(w, r.Body, limit)
			next.ServeHTTP(w, r)
		})
	}
}

// TokenVerifier checks a bearer token and says who presented it; the auth module provides it.
type TokenVerifier interface {
	VerifyToken(ctx context.Context, token string) (identity.Principal, error)
}

// Authenticate verifies a bearer token when one is presented and puts the principal in the context. A
// request without an Authorization header goes on anonymously (routes decide with RequireUser); a malformed
// or invalid token is refused with 401.
func Authenticate(v TokenVerifier, logger *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h := r.Header.Get("Authorization")
			if h == "" {
				next.ServeHTTP(w, r)
				return
			}
			scheme, token, ok := strings.Cut(h, " ")
			if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
				WriteError(w, r, logger, ErrUnauthenticated)
				return
			}
			p, err := v.VerifyToken(r.Context(), strings.TrimSpace(token))
			if err != nil {
				WriteError(w, r, logger, err)
				return
			}
			if span := trace.SpanFromContext(r.Context()); span.IsRecording() {
				span.SetAttributes(attribute.String(SpanAttrUserID, p.UserID))
			}
			next.ServeHTTP(w, r.WithContext(identity.With(r.Context(), p)))
		})
	}
}

// RequireUser refuses anonymous requests with 401.
func RequireUser(logger *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if _, ok := identity.From(r.Context()); !ok {
				WriteError(w, r, logger, ErrUnauthenticated)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// RequireRole refuses anonymous requests with 401 and callers without role with 403.
func RequireRole(role string, logger *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, ok := identity.From(r.Context())
			switch {
			case !ok:
				WriteError(w, r, logger, ErrUnauthenticated)
			case p.Role != role:
				WriteError(w, r, logger, ErrForbidden)
			default:
				next.ServeHTTP(w, r)
			}
		})
	}
}

// Caller returns the authenticated principal of a request that passed RequireUser.
func Caller(r *http.Request) (identity.Principal, error) {
	p, ok := identity.From(r.Context())
	if !ok {
		return identity.Principal{}, ErrUnauthenticated
	}
	return p, nil
}
