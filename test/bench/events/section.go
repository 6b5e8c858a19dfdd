package events

import (
	"fmt"
	"runtime"
	"strings"
	"time"

	"github.com/seamkit/seam/test/bench/report"
	"github.com/seamkit/seam/test/bench/stats"
)

// Figures holds every run's measurements.
type Figures struct {
	// Latency is each run's commit-to-effect latencies.
	Latency []stats.Latencies
	// Throughput is each run's sustained throughput.
	Throughput []Throughput
	// Capacity is the relay's rate sending a committed backlog, per run.
	Capacity []float64
	// PGBench and PGBenchNotify are the database's single-row commit rates per run, with Opts.Producers
	// clients, without and with a pg_notify in each transaction (what waking the relay through PostgreSQL
	// would cost).
	PGBench, PGBenchNotify []float64
	// Flush is the disk's write-and-fsync time per run.
	Flush []time.Duration
	// Opts are the options the runs had.
	Opts Options
}

// Figure indexes in Section's list.
const (
	figP50 = iota
	figP99
	figCommitted
	figRelayed
	figBacklog
	figDrain
	figProcCPU
	figDBCPU
	figCapacity
	figPGBench
	figPGBenchNotify
	figSustainedRatio
	figCapacityRatio
	figFlush
)

// Section turns the figures into the report's section.
func (f Figures) Section() report.Section {
	runs := make([][]float64, figFlush+1)
	for _, l := range f.Latency {
		runs[figP50] = append(runs[figP50], report.Millis(l.P(0.50)))
		runs[figP99] = append(runs[figP99], report.Millis(l.P(0.99)))
	}
	for i, t := range f.Throughput {
		runs[figCommitted] = append(runs[figCommitted], t.Committed)
		runs[figRelayed] = append(runs[figRelayed], t.Relayed)
		runs[figBacklog] = append(runs[figBacklog], float64(t.Backlog))
		runs[figDrain] = append(runs[figDrain], report.Millis(t.Drain))
		runs[figProcCPU] = append(runs[figProcCPU], t.ProcessCPU)
		runs[figDBCPU] = append(runs[figDBCPU], t.DatabaseCPU)
		if i < len(f.PGBench) {
			runs[figSustainedRatio] = append(runs[figSustainedRatio], report.Ratio(t.Relayed, f.PGBench[i]))
		}
		if i < len(f.PGBench) && i < len(f.Capacity) {
			runs[figCapacityRatio] = append(runs[figCapacityRatio], report.Ratio(f.Capacity[i], f.PGBench[i]))
		}
	}
	runs[figCapacity] = f.Capacity
	runs[figPGBench] = f.PGBench
	runs[figPGBenchNotify] = f.PGBenchNotify
	for _, d := range f.Flush {
		runs[figFlush] = append(runs[figFlush], report.Micros(d))
	}
	names := []struct{ name, unit string }{
		{"commit-to-effect p50", "ms"},
		{"commit-to-effect p99", "ms"},
		{"sustained: producers' single-event commits", "events/s"},
		{"sustained: relay, events published and marked sent", "events/s"},
		{"sustained: backlog at the end of the run", "events"},
		{"sustained: time to send that backlog", "ms"},
		{"sustained: CPU of the producers + relay + NATS server process", "cores"},
		{"sustained: CPU of PostgreSQL", "cores"},
		{"relay capacity: sending a committed backlog", "events/s"},
		{"pgbench: single-row INSERT per transaction", "tx/s"},
		{"pgbench: single-row INSERT + pg_notify per transaction", "tx/s"},
		{"sustained relay / pgbench", "×"},
		{"relay capacity / pgbench", "×"},
		{"disk: 4 KiB write + fsync", "µs"},
	}
	figs := make([]report.Figure, len(names))
	for i, n := range names {
		figs[i] = report.Figure{Name: n.name, Unit: n.unit, Runs: runs[i]}
	}
	m := func(i int) float64 { return figs[i].Median() }
	latTarget := report.AtMost("Events: commit-to-effect p50 (SyncAlways)", m(figP50), 5, "%.2f ms")
	relayTarget := report.AtLeast("Events: relay's sustained rate vs the database's single-row commit rate", m(figSustainedRatio), 0.5, "%.2f×")
	flushMs := m(figFlush) / 1000
	if !latTarget.Met {
		latTarget.Limits = fmt.Sprintf("an event reaches its effect through at least three flushes to disk one after the other: "+
			"JetStream's write of the message (SyncAlways flushes it before acknowledging), the relay's commit marking it sent (the "+
			"next batch waits for it) and the consumer's commit of its effect and inbox row; a 4 KiB write and fsync takes %.2f ms "+
			"on this disk, so the flushes alone take about %.1f ms of the %.2f ms p50; the rest is the relay's wake-up "+
			"(in process, outbox.WakeRelays), its transaction and the consumer's delivery.", flushMs, 3*flushMs, m(figP50))
	}
	if !relayTarget.Met {
		relayTarget.Limits = relayLimits(m)
	}
	return report.Section{
		Title: "Events: commit to consumer effect, and the relay's throughput",
		Method: []string{
			fmt.Sprintf("The real `platform/outbox` relay (default options: batches of up to 1000, sent as JetStream atomic batches "+
				"from 16 events on) publishes billing's outbox to an embedded "+
				"JetStream (`bus.Bus`, file store, `SyncAlways` on, the default and durable setting), each module on its own "+
				"connection as its own NATS user; a real `platform/inbox` consumer in the notifications schema applies each event: "+
				"it inserts an effect row and, in the same transaction, sends a PostgreSQL notification that arrives when the "+
				"effect commits. Events are written with `outbox.Enqueue` and carry a %d-byte JSON payload; after each commit the "+
				"producer wakes the relay with `outbox.WakeRelays`, as Seam's producers do. PostgreSQL is a "+
				"local server with Seam's own durable settings (fsync and synchronous commit on).", payloadSize()),
			fmt.Sprintf("Latency: %d events a second for %s, each committed in its own transaction; the latency is from the "+
				"producer's `Commit` returning to the effect's notification arriving. Sustained throughput: %d producers commit "+
				"one event per transaction as fast as they can for %s (events nobody consumes, so the relay alone is measured) "+
				"while the relay runs; its rate counts the events it marked sent in that window. Relay capacity: with the relay "+
				"stopped, a backlog is committed (100 events per transaction), then a new relay is started and timed until it has "+
				"sent everything. The ceiling: pgbench with as many clients, one single-row INSERT per transaction, on the same "+
				"server for as long, and again with a `pg_notify` in each transaction, which is what waking the relay through "+
				"PostgreSQL (LISTEN/NOTIFY) would cost and why the relay is woken in process instead. The disk's "+
				"flush time is a 4 KiB write and fsync in JetStream's store directory.",
				f.Opts.LatencyRate, f.Opts.LatencyFor, f.Opts.Producers, f.Opts.ThroughputFor),
		},
		Tables: []report.Table{{
			Header: []string{"figure", "median"},
			Rows: [][]string{
				{"commit-to-effect p50 / p99", report.Num(m(figP50)) + " / " + report.Num(m(figP99)) + " ms"},
				{fmt.Sprintf("sustained: producers' single-event commits (%d producers)", f.Opts.Producers), report.Num(m(figCommitted)) + " events/s"},
				{"sustained: relay, events published to JetStream and marked sent", report.Num(m(figRelayed)) + " events/s"},
				{"sustained: backlog at the end of the run / time to send it", report.Num(m(figBacklog)) + " events / " + report.Num(m(figDrain)) + " ms"},
				{"sustained: CPU of producers + relay + NATS server / of PostgreSQL", report.Num(m(figProcCPU)) + " / " + report.Num(m(figDBCPU)) + " cores"},
				{"relay capacity (sending a committed backlog)", report.Num(m(figCapacity)) + " events/s"},
				{fmt.Sprintf("pgbench: single-row INSERT per transaction (%d clients)", f.Opts.Producers), report.Num(m(figPGBench)) + " tx/s"},
				{"pgbench: the same with a pg_notify in each transaction", report.Num(m(figPGBenchNotify)) + " tx/s"},
				{"sustained relay / pgbench; relay capacity / pgbench", fmt.Sprintf("%.2f×; %.2f×", m(figSustainedRatio), m(figCapacityRatio))},
				{"disk: 4 KiB write + fsync", report.Num(m(figFlush)) + " µs"},
			},
		}},
		Targets:  []report.Target{latTarget, relayTarget},
		Findings: findings(m),
		Figures:  figs,
	}
}

// relayLimits says what holds the sustained relay rate back: the commits feeding it, the relay itself, or both.
func relayLimits(m func(int) float64) string {
	var parts []string
	if m(figRelayed) >= 0.9*m(figCommitted) {
		parts = append(parts, fmt.Sprintf("the relay kept up with the producers (%s of %s events/s sent within the window), so the "+
			"rate is first bounded by how fast events are committed", report.Num(m(figRelayed)), report.Num(m(figCommitted))))
	} else {
		parts = append(parts, fmt.Sprintf("the relay fell behind the producers (%s of %s events/s sent within the window)",
			report.Num(m(figRelayed)), report.Num(m(figCommitted))))
	}
	if m(figCommitted) < 0.5*m(figPGBench) {
		parts = append(parts, fmt.Sprintf("and the producers commit fewer events than that: %s events/s against pgbench's %s tx/s, "+
			"as each producer's transaction takes three round trips (BEGIN, the outbox INSERT with its JSON payload, COMMIT) "+
			"where pgbench's single-row INSERT takes one, and the producers share the process with the relay, the NATS server "+
			"and the consumer", report.Num(m(figCommitted)), report.Num(m(figPGBench))))
	}
	if m(figCapacityRatio) < 0.5 {
		flush := m(figFlush) / 1000
		parts = append(parts, fmt.Sprintf("and the relay alone, sending a committed backlog, reaches only %s events/s (%.2f× the "+
			"commit rate): each batch waits for all its acknowledgements, which JetStream with SyncAlways gives once it has synced "+
			"its message file, before the relay commits the batch (another flush); this disk does %s 4 KiB writes and fsyncs a "+
			"second (%.2f ms each)", report.Num(m(figCapacity)), m(figCapacityRatio), report.Num(1000/flush), flush))
	}
	cpu := "so CPU was not what they waited for"
	if m(figProcCPU)+m(figDBCPU) > 0.8*float64(runtime.NumCPU()) {
		cpu = "close to the machine's capacity"
	}
	parts = append(parts, fmt.Sprintf("the producers, relay and NATS server used %.2f cores and PostgreSQL %.2f, %s", m(figProcCPU),
		m(figDBCPU), cpu))
	return strings.Join(parts, "; ") + "."
}

// findings compares the figures with each other.
func findings(m func(int) float64) []string {
	return []string{fmt.Sprintf("A notification per transaction would cost the database %s of its single-row commit rate (%s tx/s "+
		"with `pg_notify`, %s without), which is why `outbox.Enqueue` sends none and producers wake the relay in process; "+
		"Seam's producers committed %s events/s. The relay itself sends %s events/s from a backlog (%.2f× the bare commit rate).",
		report.Pct(1-report.Ratio(m(figPGBenchNotify), m(figPGBench))), report.Num(m(figPGBenchNotify)), report.Num(m(figPGBench)),
		report.Num(m(figCommitted)), report.Num(m(figCapacity)), m(figCapacityRatio))}
}
