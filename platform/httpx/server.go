package httpx

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"go.uber.org/fx"

	"github.com/seamkit/seam/platform/errs"
	"github.com/seamkit/seam/platform/observe"
)

// Config is the http section of the configuration.
type Config struct {
	// Addr is the listen address; ":0" picks a free port.
	Addr string `yaml:"addr"`
	// MaxBodyBytes caps every request body.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// ReadHeaderTimeout bounds how long a client may take to send headers.
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	// WriteTimeout bounds a whole response.
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// IdleTimeout closes idle keep-alive connections.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// ShutdownTimeout bounds how long in-flight requests may take to finish at shutdown.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
}

// DefaultAddr is where Seam serves HTTP when nothing else is configured.
const DefaultAddr = ":8080"

// SetDefaults fills unset fields.
func (c *Config) SetDefaults() {
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = 1 << 20
	}
	if c.ReadHeaderTimeout == 0 {
		c.ReadHeaderTimeout = 5 * time.Second
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = 30 * time.Second
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = 2 * time.Minute
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = 15 * time.Second
	}
}

// Validate checks the section; errors name the key.
func (c Config) Validate() error {
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return fmt.Errorf("http.addr: want host:port, got %q", c.Addr)
	}
	if c.MaxBodyBytes < 1024 {
		return fmt.Errorf("http.max_body_bytes: must be at least 1024, got %d", c.MaxBodyBytes)
	}
	for key, d := range map[string]time.Duration{"read_header_timeout": c.ReadHeaderTimeout,
		"write_timeout": c.WriteTimeout, "idle_timeout": c.IdleTimeout, "shutdown_timeout": c.ShutdownTimeout} {
		if d <= 0 {
			return fmt.Errorf("http.%s: must be positive, got %s", key, d)
		}
	}
	return nil
}

// Routes is what a module contributes to the router: its sub-router, mounted at Prefix (e.g. "/api/billing").
type Routes struct {
	Prefix string
	Mount  func(r chi.Router)
}

// AsRoutes annotates a constructor returning Routes so its result joins the "routes" value group.
func AsRoutes(constructor any) any {
	return fx.Annotate(constructor, fx.ResultTags(`group:"routes"`))
}

// Wrapper wraps every request under Prefix (the Prefix of a Routes) in Middleware, before the routes
// match: the platform uses it to decide where a module's requests are served.
type Wrapper struct {
	Prefix     string
	Middleware func(http.Handler) http.Handler
}

// AsWrapper annotates a constructor returning a Wrapper so its result joins the "wrappers" value group.
func AsWrapper(constructor any) any {
	return fx.Annotate(constructor, fx.ResultTags(`group:"wrappers"`))
}

// ReadinessCheck reports whether a dependency (database, bus) is usable; /readyz runs them all.
type ReadinessCheck struct {
	Name  string
	Check func(ctx context.Context) error
}

// AsReadinessCheck annotates a constructor returning a ReadinessCheck so it joins the "readiness" group.
func AsReadinessCheck(constructor any) any {
	return fx.Annotate(constructor, fx.ResultTags(`group:"readiness"`))
}

// ServerParams is what NewServer needs from the application.
type ServerParams struct {
	fx.In
	Config   Config
	Logger   *slog.Logger
	Verifier TokenVerifier    `optional:"true"`
	Routes   []Routes         `group:"routes"`
	Wrappers []Wrapper        `group:"wrappers"`
	Checks   []ReadinessCheck `group:"readiness"`
	// Metrics, when given, is served at /metrics in the Prometheus text format.
	Metrics *observe.Metrics `optional:"true"`
}

// Server is the process's HTTP server.
type Server struct {
	cfg     Config
	logger  *slog.Logger
	handler http.Handler
	srv     *http.Server

	mu   sync.Mutex
	addr string
}

// ErrDuplicatePrefix is returned when two modules mount routes at the same prefix.
var ErrDuplicatePrefix = errors.New("two route groups share a prefix")

// NewServer builds the router from the module routes and readiness checks.
func NewServer(p ServerParams) (*Server, error) {
	r := chi.NewRouter()
	r.Use(RequestID, Trace, AccessLog(p.Logger), Recover(p.Logger), BodyLimit(p.Config.MaxBodyBytes, p.Logger))
	if p.Verifier != nil {
		r.Use(Authenticate(p.Verifier, p.Logger))
	}
	r.NotFound(Errors(p.Logger, func(http.ResponseWriter, *http.Request) error { return ErrNotFound }))
	r.MethodNotAllowed(Errors(p.Logger, func(http.ResponseWriter, *http.Request) error { return ErrMethodNotAllowed }))
	r.Get("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		_ = WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	r.Get("/readyz", readyHandler(p.Checks, p.Logger))
	if p.Metrics != nil {
		r.Method(http.MethodGet, "/metrics", p.Metrics.Handler())
	}
	wrappers := map[string][]func(http.Handler) http.Handler{}
	for _, w := range p.Wrappers {
		prefix := "/" + strings.Trim(w.Prefix, "/")
		wrappers[prefix] = append(wrappers[prefix], w.Middleware)
	}
	seen := map[string]bool{}
	routes := append([]Routes(nil), p.Routes...)
	sort.Slice(routes, func(i, j int) bool { return routes[i].Prefix < routes[j].Prefix })
	for _, rt := range routes {
		prefix := "/" + strings.Trim(rt.Prefix, "/")
		if seen[prefix] {
			return nil, fmt.Errorf("mount %s: %w", prefix, ErrDuplicatePrefix)
		}
		seen[prefix] = true
		r.Route(prefix, func(sub chi.Router) {
			sub.Use(wrappers[prefix]...)
			rt.Mount(sub)
		})
		delete(wrappers, prefix)
	}
	for prefix := range wrappers {
		return nil, fmt.Errorf("wrap %s: no routes are mounted there", prefix)
	}
	s := &Server{cfg: p.Config, logger: p.Logger, handler: r}
	s.srv = &http.Server{
		Handler:           r,
		ReadHeaderTimeout: p.Config.ReadHeaderTimeout,
		WriteTimeout:      p.Config.WriteTimeout,
		IdleTimeout:       p.Config.IdleTimeout,
		ErrorLog:          slog.NewLogLogger(p.Logger.Handler(), slog.LevelWarn),
	}
	return s, nil
}

// Handler returns the full handler chain (useful to serve it without a listener).
func (s *Server) Handler() http.Handler { return s.handler }

// Start listens (failing at once if the address is taken) and serves in the background.
func (s *Server) Start(context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("http: listen on %s (set http.addr / SEAM_HTTP_ADDR to another address): %w", s.cfg.Addr, err)
	}
	s.mu.Lock()
	s.addr = ln.Addr().String()
	s.mu.Unlock()
	s.logger.Info("http server listening", slog.String("addr", s.addr))
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.logger.Error("http server stopped", slog.Any("error", err))
		}
	}()
	return nil
}

// Stop stops accepting connections and waits (up to the shutdown timeout) for in-flight requests.
func (s *Server) Stop(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ShutdownTimeout)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		return fmt.Errorf("http: shutdown: %w", err)
	}
	s.logger.Info("http server stopped")
	return nil
}

// Addr returns the address the server listens on, once started.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// ErrNotReady is returned by /readyz when a dependency is down.
var ErrNotReady = errs.New(errs.Unavailable, "not_ready", "a dependency is not available")

func readyHandler(checks []ReadinessCheck, logger *slog.Logger) http.HandlerFunc {
	return Errors(logger, func(w http.ResponseWriter, r *http.Request) error {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		status := map[string]string{}
		var failed []string
		for _, c := range checks {
			if err := c.Check(ctx); err != nil {
				logger.WarnContext(ctx, "readiness check failed", slog.String("check", c.Name), slog.Any("error", err))
				status[c.Name] = "down"
				failed = append(failed, c.Name)
				continue
			}
			status[c.Name] = "up"
		}
		if len(failed) > 0 {
			sort.Strings(failed)
			e := *ErrNotReady
			e.Message = "not ready: " + strings.Join(failed, ", ") + " down"
			return &e
		}
		return WriteJSON(w, http.StatusOK, map[string]any{"status": "ready", "checks": status})
	})
}

// Module provides the HTTP server and starts it after every module (so it serves only once they are
// ready) and stops it first (so requests drain before consumers and connections close).
var Module = fx.Module("httpx",
	fx.Provide(NewServer),
	fx.Invoke(func(lc fx.Lifecycle, s *Server) {
		lc.Append(fx.Hook{OnStart: s.Start, OnStop: s.Stop})
	}),
)
