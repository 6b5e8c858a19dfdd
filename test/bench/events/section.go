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
	// Throughput is each run's sustained throughput with single-event transactions.
	Throughput []Throughput
	// Saturated is each run's sustained throughput with SaturatingPerTx events per transaction, when the
	// producers commit more than the relay can send, so the relay never waits for events.
	Saturated []Throughput
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

// SaturatingPerTx is how many events each producer transaction of the saturated run commits.
const SaturatingPerTx = 20

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
	figSatCommitted
	figSatRelayed
	figSatBacklog
	figSatRatio
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
	for i, t := range f.Saturated {
		runs[figSatCommitted] = append(runs[figSatCommitted], t.Committed)
		runs[figSatRelayed] = append(runs[figSatRelayed], t.Relayed)
		runs[figSatBacklog] = append(runs[figSatBacklog], float64(t.Backlog))
		if i < len(f.PGBench) {
			runs[figSatRatio] = append(runs[figSatRatio], report.Ratio(t.Relayed, f.PGBench[i]))
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
		{"saturated: producers' commits, 20 events per transaction", "events/s"},
		{"saturated: relay, events published and marked sent", "events/s"},
		{"saturated: backlog at the end of the run", "events"},
		{"saturated relay / pgbench", "×"},
		{"disk: 4 KiB write + fsync", "µs"},
	}
	figs := make([]report.Figure, len(names))
	for i, n := range names {
		figs[i] = report.Figure{Name: n.name, Unit: n.unit, Runs: runs[i]}
	}
	m := func(i int) float64 { return figs[i].Median() }
	latTarget := report.AtMost("Events: commit-to-effect p50 (SyncAlways)", m(figP50), 5, "%.2f ms")
	relayTarget := report.AtLeast("Events: relay's sustained rate vs the database's single-row commit rate", m(figSatRatio), 0.5, "%.2f×")
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
				"while the relay runs; its rate counts the events it marked sent in that window. Single-event producers cannot "+
				"commit as fast as the relay sends, so a second run, the one the target uses, has them commit %d events per "+
				"transaction for as long: the events keep coming faster than the relay sends them, and its rate is what it "+
				"sustains while the database is busy with the producers' commits. Relay capacity: with the relay "+
				"stopped, a backlog is committed (100 events per transaction), then a new relay is started and timed until it has "+
				"sent everything. The ceiling: pgbench with as many clients, one single-row INSERT per transaction, on the same "+
				"server for as long, and again with a `pg_notify` in each transaction, which is what waking the relay through "+
				"PostgreSQL (LISTEN/NOTIFY) would cost and why the relay is woken in process instead. The disk's "+
				"flush time is a 4 KiB write and fsync in JetStream's store directory.",
				f.Opts.LatencyRate, f.Opts.LatencyFor, f.Opts.Producers, f.Opts.ThroughputFor, SaturatingPerTx),
		},
		Tables: []report.Table{{
			Header: []string{"figure", "median"},
			Rows: [][]string{
				{"commit-to-effect p50 / p99", report.Num(m(figP50)) + " / " + report.Num(m(figP99)) + " ms"},
				{fmt.Sprintf("sustained: producers' single-event commits (%d producers)", f.Opts.Producers), report.Num(m(figCommitted)) + " events/s"},
				{"sustained: relay, events published to JetStream and marked sent", report.Num(m(figRelayed)) + " events/s"},
				{"sustained: backlog at the end of the run / time to send it", report.Num(m(figBacklog)) + " events / " + report.Num(m(figDrain)) + " ms"},
				{"sustained: CPU of producers + relay + NATS server / of PostgreSQL", report.Num(m(figProcCPU)) + " / " + report.Num(m(figDBCPU)) + " cores"},
				{fmt.Sprintf("saturated: producers' commits, %d events per transaction", SaturatingPerTx), report.Num(m(figSatCommitted)) + " events/s"},
				{"saturated: relay, events published to JetStream and marked sent / backlog at the end", report.Num(m(figSatRelayed)) + " events/s / " + report.Num(m(figSatBacklog)) + " events"},
				{"relay capacity (sending a committed backlog)", report.Num(m(figCapacity)) + " events/s"},
				{fmt.Sprintf("pgbench: single-row INSERT per transaction (%d clients)", f.Opts.Producers), report.Num(m(figPGBench)) + " tx/s"},
				{"pgbench: the same with a pg_notify in each transaction", report.Num(m(figPGBenchNotify)) + " tx/s"},
				{"sustained relay / pgbench: single events; saturated; relay capacity / pgbench", fmt.Sprintf("%.2f×; %.2f×; %.2f×", m(figSustainedRatio), m(figSatRatio), m(figCapacityRatio))},
				{"disk: 4 KiB write + fsync", report.Num(m(figFlush)) + " µs"},
			},
		}},
		Targets:  []report.Target{latTarget, relayTarget},
		Findings: findings(m),
		Figures:  figs,
	}
}

// relayLimits says what holds the sustained relay rate back, from the saturated run (the relay never short
// of events) and the relay's capacity.
func relayLimits(m func(int) float64) string {
	parts := []string{fmt.Sprintf("with the producers ahead of it (%s events/s committed, %s events left unsent at the end), the "+
		"relay sent %s events/s while the database was busy with their commits, against %s from a backlog with nothing else "+
		"running", report.Num(m(figSatCommitted)), report.Num(m(figSatBacklog)), report.Num(m(figSatRelayed)), report.Num(m(figCapacity)))}
	flush := m(figFlush) / 1000
	parts = append(parts, fmt.Sprintf("each batch waits for JetStream's acknowledgement, which SyncAlways gives once the batch "+
		"is synced to disk, and then commits its marks (another flush); this disk does %s 4 KiB writes and fsyncs a second "+
		"(%.2f ms each)", report.Num(1000/flush), flush))
	cpu := "so CPU was not what they waited for"
	if m(figProcCPU)+m(figDBCPU) > 0.8*float64(runtime.NumCPU()) {
		cpu = "close to the machine's capacity"
	}
	parts = append(parts, fmt.Sprintf("in the single-event run the producers, relay and NATS server used %.2f cores and "+
		"PostgreSQL %.2f, %s", m(figProcCPU), m(figDBCPU), cpu))
	return strings.Join(parts, "; ") + "."
}

// findings compares the figures with each other.
func findings(m func(int) float64) []string {
	keptUp := "and the relay kept up with them"
	if m(figRelayed) < 0.9*m(figCommitted) {
		keptUp = "and the relay fell behind them"
	}
	return []string{fmt.Sprintf("A notification per transaction would cost the database %s of its single-row commit rate (%s tx/s "+
		"with `pg_notify`, %s without), which is why `outbox.Enqueue` sends none and producers wake the relay in process. "+
		"Committing one event per transaction, Seam's producers reached %s events/s (%.2f× pgbench: each transaction takes "+
		"three round trips, BEGIN, the outbox INSERT with its JSON payload and COMMIT, where pgbench's single-row INSERT "+
		"takes one, and they share the process with the relay, the NATS server and the consumer), %s (%s events/s sent). "+
		"The relay sends %s events/s from a backlog (%.2f× the bare commit rate).",
		report.Pct(1-report.Ratio(m(figPGBenchNotify), m(figPGBench))), report.Num(m(figPGBenchNotify)), report.Num(m(figPGBench)),
		report.Num(m(figCommitted)), report.Ratio(m(figCommitted), m(figPGBench)), keptUp, report.Num(m(figRelayed)),
		report.Num(m(figCapacity)), m(figCapacityRatio))}
}
