package app

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/seamkit/seam/platform/inbox"
)

// scrapeTimeout bounds what one /metrics scrape asks of the bus and the database.
const scrapeTimeout = 2 * time.Second

// Metric descriptions of the consumers, read from JetStream and the dead-letter stores at each scrape.
var (
	consumerPendingDesc = prometheus.NewDesc("seam_consumer_pending_messages",
		"Events in the stream the durable consumer has not been delivered yet: its lag.", []string{"module", "consumer"}, nil)
	consumerAckPendingDesc = prometheus.NewDesc("seam_consumer_ack_pending_messages",
		"Events delivered to the durable consumer and not yet acknowledged.", []string{"module", "consumer"}, nil)
	deadLettersDesc = prometheus.NewDesc("seam_dead_letters",
		"Dead letters the module holds, by status (pending, retried, discarded).", []string{"module", "status"}, nil)
)

// consumerMetrics exposes the lag of every durable consumer of the process and its modules' dead letters.
type consumerMetrics struct {
	c *Consumers
}

// Describe implements prometheus.Collector.
func (m consumerMetrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- consumerPendingDesc
	ch <- consumerAckPendingDesc
	ch <- deadLettersDesc
}

// Collect implements prometheus.Collector; what cannot be read within scrapeTimeout is left out (and
// logged), so a scrape never hangs on a bus or database outage.
func (m consumerMetrics) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	if m.c.bus.JetStream() != nil {
		st, err := m.c.Status(ctx)
		if err != nil {
			m.c.logger.Warn("metrics: consumer status", slog.Any("error", err))
		}
		for _, s := range st {
			ch <- prometheus.MustNewConstMetric(consumerPendingDesc, prometheus.GaugeValue, float64(s.Pending), s.Module, s.Consumer)
			ch <- prometheus.MustNewConstMetric(consumerAckPendingDesc, prometheus.GaugeValue, float64(s.AckPending), s.Module, s.Consumer)
		}
	}
	for _, name := range m.c.names() {
		mod, err := m.c.lookup(name)
		if err != nil {
			continue
		}
		counts, err := inbox.CountDeadLetters(ctx, mod.pool, name)
		if err != nil {
			m.c.logger.Warn("metrics: count dead letters", slog.String("module", name), slog.Any("error", err))
			continue
		}
		for status, n := range counts {
			ch <- prometheus.MustNewConstMetric(deadLettersDesc, prometheus.GaugeValue, float64(n), name, status)
		}
	}
}
