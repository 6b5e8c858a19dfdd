package route

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"

	"github.com/seamkit/seam/platform/httpx"
	"github.com/seamkit/seam/platform/identity"
)

// maxShadowBody bounds how much of a response a shadowed HTTP request keeps for comparison; a longer body is
// compared by its first maxShadowBody bytes.
const maxShadowBody = 1 << 20

// errServerError is how a 5xx answer counts against its side.
var errServerError = errors.New("route: the HTTP answer was a server error")

// HTTP serves the module's HTTP requests as its router decides, measured under HTTPMethod: local requests
// go to local (the module's own routes, nil when the module does not run here), remote ones through gw to
// its extracted instances (nil when it runs only here). With shadowing on, a GET or HEAD request is also
// served on the other side in the background and the two answers compared; the client always gets the
// chosen side's. The routing key is the caller's user id, else the client's IP address.
func HTTP(mod *Module, local http.Handler, gw *httpx.Gateway, logger *slog.Logger) http.Handler {
	m := mod.Method(HTTPMethod)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := m.Begin(r.Context(), httpKey(r))
		ctx := r.Context()
		if c.Traced() {
			ctx = c.StartSpan(ctx)
			r = r.WithContext(ctx)
		}
		shadow := c.Shadow() && (r.Method == http.MethodGet || r.Method == http.MethodHead)
		if c.Side() == Local {
			rec := &teeWriter{ResponseWriter: w, keep: shadow}
			local.ServeHTTP(rec, r)
			c.End(ctx, statusError(rec.status))
			if shadow {
				c.Compare(r.Context(), httpAnswer(rec.status, rec.body), nil, forwardFunc(gw, r))
			}
			return
		}
		body, err := httpx.ReadBody(r)
		if err != nil {
			c.End(ctx, nil)
			httpx.WriteError(w, r, logger, err)
			return
		}
		resp, err := gw.Do(r, body)
		if err != nil {
			c.End(ctx, err)
			httpx.WriteError(w, r, logger, err)
			return
		}
		c.End(ctx, statusError(resp.Status))
		resp.Write(w, logger)
		if shadow {
			c.Compare(r.Context(), httpAnswer(resp.Status, resp.Body), nil, serveFunc(local, r))
		}
	})
}

// httpKey is the routing key of a request: its caller's user id, else its client's address.
func httpKey(r *http.Request) string {
	if p, ok := identity.From(r.Context()); ok {
		return p.UserID
	}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}

func statusError(status int) error {
	if status >= 500 {
		return errServerError
	}
	return nil
}

// Answer is an HTTP answer as shadowing compares it: status and body (as JSON when it is JSON).
type Answer struct {
	Status int `json:"status"`
	Body   any `json:"body"`
}

func httpAnswer(status int, body []byte) Answer {
	if status == 0 {
		status = http.StatusOK
	}
	var v any
	if json.Unmarshal(body, &v) != nil {
		v = string(body)
	}
	return Answer{Status: status, Body: v}
}

// forwardFunc runs r again through gw, for a shadow comparison.
func forwardFunc(gw *httpx.Gateway, r *http.Request) func(ctx context.Context) (any, error) {
	return func(ctx context.Context) (any, error) {
		resp, err := gw.Do(r.Clone(ctx), nil)
		if err != nil {
			return nil, err
		}
		return httpAnswer(resp.Status, resp.Body), nil
	}
}

// serveFunc runs r again through the local handler, for a shadow comparison.
func serveFunc(local http.Handler, r *http.Request) func(ctx context.Context) (any, error) {
	return func(ctx context.Context) (any, error) {
		rec := httptest.NewRecorder()
		sr := r.Clone(ctx)
		sr.Body = http.NoBody
		local.ServeHTTP(rec, sr)
		return httpAnswer(rec.Code, rec.Body.Bytes()), nil
	}
}

// teeWriter passes a response through, noting its status and (when keep) its body, up to maxShadowBody.
type teeWriter struct {
	http.ResponseWriter
	keep   bool
	status int
	body   []byte
}

func (t *teeWriter) WriteHeader(status int) {
	if t.status == 0 {
		t.status = status
	}
	t.ResponseWriter.WriteHeader(status)
}

func (t *teeWriter) Write(p []byte) (int, error) {
	if t.status == 0 {
		t.status = http.StatusOK
	}
	if t.keep && len(t.body) < maxShadowBody {
		t.body = append(t.body, p[:min(len(p), maxShadowBody-len(t.body))]...)
	}
	return t.ResponseWriter.Write(p)
}

// Unwrap gives http.ResponseController the underlying writer.
func (t *teeWriter) Unwrap() http.ResponseWriter { return t.ResponseWriter }
