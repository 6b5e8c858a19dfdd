package route

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metric descriptions of a Table, read from its counters at each scrape.
var (
	callsDesc = prometheus.NewDesc("seam_module_calls_total",
		"Calls of a module's api methods (method \"http\": its HTTP routes this process forwards or serves), by the side that served them.",
		[]string{"module", "method", "side"}, nil)
	errorsDesc = prometheus.NewDesc("seam_module_call_errors_total",
		"Calls that failed on their side (internal or unavailable errors, timeouts), not business answers such as not found.",
		[]string{"module", "method", "side"}, nil)
	durationDesc = prometheus.NewDesc("seam_module_call_duration_seconds",
		"Latency of module calls by side. Every remote call is timed; local calls of a module in local mode one in 64.",
		[]string{"module", "method", "side"}, nil)
	shadowComparedDesc = prometheus.NewDesc("seam_shadow_comparisons_total",
		"Shadow calls whose answer was compared with the primary side's.", []string{"module", "method"}, nil)
	shadowDiscrepancyDesc = prometheus.NewDesc("seam_shadow_discrepancies_total",
		"Shadow calls whose answer differed from the primary side's.", []string{"module", "method"}, nil)
	shadowSkippedDesc = prometheus.NewDesc("seam_shadow_skipped_total",
		"Shadow calls skipped because too many were in flight.", []string{"module", "method"}, nil)
	remoteRatioDesc = prometheus.NewDesc("seam_rollout_remote_ratio",
		"Share of a method's callers sent remote (0 to 1).", []string{"module", "method", "mode"}, nil)
	shadowDesc = prometheus.NewDesc("seam_rollout_shadow",
		"Whether a method's read-only calls are shadowed (1) or not (0).", []string{"module", "method"}, nil)
	rollbacksDesc = prometheus.NewDesc("seam_rollout_automatic_rollbacks_total",
		"Times the rollback rule sent the module back to local in this process.", []string{"module"}, nil)
)

// Describe implements prometheus.Collector.
func (t *Table) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{callsDesc, errorsDesc, durationDesc, shadowComparedDesc, shadowDiscrepancyDesc,
		shadowSkippedDesc, remoteRatioDesc, shadowDesc, rollbacksDesc} {
		ch <- d
	}
}

// Collect implements prometheus.Collector: every module's counters, latency histograms and rollout state.
func (t *Table) Collect(ch chan<- prometheus.Metric) {
	for _, mod := range t.Modules() {
		for _, m := range mod.order {
			for side, s := range m.sides {
				labels := []string{mod.name, m.name, Side(side).String()}
				ch <- prometheus.MustNewConstMetric(callsDesc, prometheus.CounterValue, float64(s.calls.Load()), labels...)
				ch <- prometheus.MustNewConstMetric(errorsDesc, prometheus.CounterValue, float64(s.failures.Load()), labels...)
				buckets := make(map[float64]uint64, len(promBounds))
				var cumulative uint64
				for i, bound := range promBounds {
					cumulative += s.promBuckets[i].Load()
					buckets[bound] = cumulative
				}
				count := cumulative + s.promBuckets[len(promBounds)].Load()
				sum := time.Duration(s.sumNanos.Load()).Seconds()
				ch <- prometheus.MustNewConstHistogram(durationDesc, count, sum, buckets, labels...)
			}
			sc := m.ShadowCounts()
			ch <- prometheus.MustNewConstMetric(shadowComparedDesc, prometheus.CounterValue, float64(sc.Compared), mod.name, m.name)
			ch <- prometheus.MustNewConstMetric(shadowDiscrepancyDesc, prometheus.CounterValue, float64(sc.Discrepancies), mod.name, m.name)
			ch <- prometheus.MustNewConstMetric(shadowSkippedDesc, prometheus.CounterValue, float64(sc.Skipped), mod.name, m.name)
			st := m.state.Load()
			ch <- prometheus.MustNewConstMetric(remoteRatioDesc, prometheus.GaugeValue, float64(st.RemoteBP)/Full, mod.name, m.name, string(mod.mode))
			shadow := 0.0
			if st.Shadow {
				shadow = 1
			}
			ch <- prometheus.MustNewConstMetric(shadowDesc, prometheus.GaugeValue, shadow, mod.name, m.name)
		}
		ch <- prometheus.MustNewConstMetric(rollbacksDesc, prometheus.CounterValue, float64(mod.rollbacks.Load()), mod.name)
	}
}
