package observe

import (
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics is the process's Prometheus registry and the platform's own metrics, served at /metrics.
type Metrics struct {
	registry      *prometheus.Registry
	outboxBacklog *prometheus.GaugeVec
	outboxOldest  *prometheus.GaugeVec

	mu      sync.Mutex
	backlog map[string]OutboxBacklog
}

// OutboxBacklog is a module's outbox as its relay last saw it.
type OutboxBacklog struct {
	Module        string  `json:"module"`
	Pending       int64   `json:"pending"`
	OldestSeconds float64 `json:"oldest_unsent_seconds"`
}

// NewMetrics makes a registry holding the Go runtime and process collectors and the platform's gauges.
func NewMetrics() *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		backlog:  map[string]OutboxBacklog{},
		outboxBacklog: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "seam_outbox_backlog",
			Help: "Events committed to the module's outbox and not yet published to its stream.",
		}, []string{"module"}),
		outboxOldest: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "seam_outbox_oldest_unsent_seconds",
			Help: "Age of the oldest event in the module's outbox not yet published (0 when none).",
		}, []string{"module"}),
	}
	m.registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.outboxBacklog,
		m.outboxOldest,
	)
	return m
}

// Registry returns the registry, for components that add metrics of their own.
func (m *Metrics) Registry() *prometheus.Registry { return m.registry }

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{Registry: m.registry})
}

// ObserveOutbox records a module's outbox backlog: how many events are unsent and how old the oldest is.
func (m *Metrics) ObserveOutbox(module string, pending int64, oldest time.Duration) {
	m.outboxBacklog.WithLabelValues(module).Set(float64(pending))
	m.outboxOldest.WithLabelValues(module).Set(oldest.Seconds())
	m.mu.Lock()
	m.backlog[module] = OutboxBacklog{Module: module, Pending: pending, OldestSeconds: oldest.Seconds()}
	m.mu.Unlock()
}

// Outboxes returns every module's outbox backlog as last observed, sorted by module.
func (m *Metrics) Outboxes() []OutboxBacklog {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]OutboxBacklog, 0, len(m.backlog))
	for _, b := range m.backlog {
		out = append(out, b)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Module < out[j].Module })
	return out
}
