// Package dashboard is the admin dashboard's page: one self-contained HTML document (no external assets)
// that asks an admin to sign in and then shows, live, what the admin API reports: each module's mode,
// rollout, traffic split, latency and errors per side, shadow discrepancies, outbox backlog, dead letters,
// consumers and the module graph, with a control to change a rollout.
package dashboard

import (
	_ "embed"
	"net/http"
)

//go:embed index.html
var page []byte

// Handler serves the page. It holds no data, so it needs no authentication: everything it shows comes from
// the admin API with the token of the admin who signs in.
func Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Cache-Control", "no-store")
		// Only the page's own inline script and style, and requests to this origin.
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "+
			"connect-src 'self'; img-src 'self' data:; form-action 'none'; frame-ancestors 'none'; base-uri 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		_, _ = w.Write(page)
	})
}
