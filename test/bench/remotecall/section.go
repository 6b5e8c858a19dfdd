package remotecall

import (
	"fmt"
	"runtime"
	"time"

	"github.com/seamkit/seam/test/bench/prof"
	"github.com/seamkit/seam/test/bench/report"
)

// peerLabels describe the peers in the tables.
var peerLabels = map[string]string{
	PeerSeam:         "**Seam** as a Seam process runs it: `rpc.Call` on a direct lane (found over NATS) → `rpc.Serve` in the server's",
	PeerSeamNATS:     "Seam with `rpc.lanes: false`: `rpc.Call` → NATS server embedded in the caller's process → `rpc.Serve`",
	PeerGRPC:         "gRPC unary (hand-written `grpc.ServiceDesc`, JSON codec), one client connection",
	PeerHTTP:         "HTTP/1.1 + JSON on chi, keep-alive connections",
	PeerNATS:         "plain NATS request-reply (`nats.go` `Request`, JSON), same embedded server",
	PeerTCP:          "raw TCP ping-pong of length-prefixed frames, no codec (the floor)",
	peerSeamSeparate: "Seam, caller and responder in ONE process, on separate NATS connections",
	peerSeamShared:   "Seam, caller and responder in ONE process, sharing one NATS connection",
}

// references are the figures the issue gives for a machine like this one; they were not measured here.
var references = map[string]string{
	PeerGRPC: "153 µs, 39k/s",
	PeerNATS: "128 µs, 57k/s",
	PeerTCP:  "28 µs",
}

// Figures holds every run of every peer, the codec's cost per run and the profiles.
type Figures struct {
	// Runs holds every peer's runs.
	Runs map[string][]Run
	// Codec is the JSON codec's cost per call, per run.
	Codec []time.Duration
	// Profiles are the profiled run's.
	Profiles Profiles
	// Opts are the options the runs had.
	Opts Options
}

type peerFigs struct {
	p50, p99, r16, r64, cpu []float64
}

func (f Figures) collect(peer string) peerFigs {
	var pf peerFigs
	for _, r := range f.Runs[peer] {
		pf.p50 = append(pf.p50, report.Micros(r.P50))
		pf.p99 = append(pf.p99, report.Micros(r.P99))
		pf.r16 = append(pf.r16, r.Rate16)
		pf.r64 = append(pf.r64, r.Rate64)
		pf.cpu = append(pf.cpu, report.Micros(r.CallerCPU+r.ServerCPU))
	}
	return pf
}

// Section turns the figures into the report's section.
func (f Figures) Section() report.Section {
	reqSize, respSize := sizes()
	med := map[string]map[string]float64{}
	var figs []report.Figure
	for _, peer := range Peers {
		pf := f.collect(peer)
		med[peer] = map[string]float64{}
		for _, x := range []struct {
			key, name, unit string
			runs            []float64
		}{
			{"p50", "p50, 1 caller", "µs", pf.p50},
			{"p99", "p99, 1 caller", "µs", pf.p99},
			{"r16", "throughput, 16 callers", "calls/s", pf.r16},
			{"r64", "throughput, 64 callers", "calls/s", pf.r64},
			{"cpu", "CPU per call, both processes, 64 callers", "µs", pf.cpu},
		} {
			fig := report.Figure{Name: peer + ": " + x.name, Unit: x.unit, Runs: x.runs}
			figs = append(figs, fig)
			med[peer][x.key] = fig.Median()
		}
	}
	var codecRuns []float64
	for _, c := range f.Codec {
		codecRuns = append(codecRuns, report.Micros(c))
	}
	codec := report.Figure{Name: "JSON encode + decode of request and response", Unit: "µs", Runs: codecRuns}
	figs = append(figs, codec)

	grpc := med[PeerGRPC]
	peersTable := report.Table{Header: []string{"peer", "p50 µs (1 caller)", "p99 µs", "calls/s (16)", "calls/s (64)",
		"CPU µs/call (64)", "p50 / gRPC", "calls/s (64) / gRPC", "issue's reference"}}
	for _, peer := range Peers[:6] {
		m := med[peer]
		peersTable.Rows = append(peersTable.Rows, []string{peerLabels[peer], report.Num(m["p50"]), report.Num(m["p99"]), report.Num(m["r16"]),
			report.Num(m["r64"]), report.Num(m["cpu"]), fmt.Sprintf("%.2f×", report.Ratio(m["p50"], grpc["p50"])),
			fmt.Sprintf("%.2f×", report.Ratio(m["r64"], grpc["r64"])), references[peer]})
	}
	sep, shr := med[peerSeamSeparate], med[peerSeamShared]
	conn := report.Table{
		Caption: "Over NATS (`rpc.lanes: false`, where the connection layout matters), caller and responder in one process (one embedded NATS server, as in `platform/rpc`'s own benchmark): " +
			"separate connections, as Seam's processes use them (calls on the platform's connection, api served on the module's), " +
			"against one shared connection. The issue's reference: sharing loses about 28% at 64 callers.",
		Header: []string{"variant", "p50 µs (1 caller)", "calls/s (16)", "calls/s (64)", "CPU µs/call (64)"},
		Rows: [][]string{
			{peerLabels[peerSeamSeparate], report.Num(sep["p50"]), report.Num(sep["r16"]), report.Num(sep["r64"]), report.Num(sep["cpu"])},
			{peerLabels[peerSeamShared], report.Num(shr["p50"]), report.Num(shr["r16"]), report.Num(shr["r64"]), report.Num(shr["cpu"])},
			{"shared vs separate at 64 callers", "", "", report.Pct(report.Ratio(shr["r64"], sep["r64"]) - 1), ""},
		},
	}
	seam := med[PeerSeam]
	p50Target := report.AtMost("Remote call p50 (1 caller): Seam vs gRPC", report.Ratio(seam["p50"], grpc["p50"]), 0.45, "%.2f×")
	rateTarget := report.AtLeast("Remote call throughput at 64 callers: Seam vs gRPC", report.Ratio(seam["r64"], grpc["r64"]), 2, "%.2f×")
	p := f.Profiles
	tcp := med[PeerTCP]
	if !p50Target.Met {
		p50Target.Limits = fmt.Sprintf("with one caller the call is bound by latency, not CPU. On its lane Seam's call crosses two "+
			"loopback sockets, as raw TCP's ping-pong does (%s µs here), and spends the rest in the two processes: the JSON codec, "+
			"the caller's and the server's contexts, headers and per-call allocations, and a goroutine hand-off a raw "+
			"ping-pong does not make: the lane's reader goroutine in the caller passes the answer to the waiting call, a "+
			"wake-up of a thread that may be parked on an idle CPU (on this virtual machine the single-caller round trips "+
			"of every peer swing from run to run with such wake-ups; see the appendix). Over NATS (`rpc.lanes: false`) the "+
			"same call takes %s µs.",
			report.Num(tcp["p50"]), report.Num(med[PeerSeamNATS]["p50"]))
	}
	if !rateTarget.Met {
		capOf := func(cpu float64) string { return report.Num(float64(runtime.NumCPU()) * 1e6 / cpu) }
		rateTarget.Limits = fmt.Sprintf("at 64 callers Seam's call used %s µs of CPU per call in both processes against gRPC's %s µs "+
			"(raw TCP %s µs): at those costs the machine's %s could complete at most about %s Seam calls/s against %s gRPC "+
			"calls/s (the processes used %.2f cores in the run; the rest of the shared machine went to other work, see the "+
			"load averages, or idled while calls waited on their round trips). The profile under Findings shows where that CPU goes.",
			report.Num(seam["cpu"]), report.Num(grpc["cpu"]), report.Num(tcp["cpu"]), cores(),
			capOf(seam["cpu"]), capOf(grpc["cpu"]), seam["r64"]*seam["cpu"]/1e6)
	}
	sec := report.Section{
		Title: "Remote module call: Seam vs gRPC, HTTP, plain NATS and raw TCP, two processes",
		Method: []string{
			fmt.Sprintf("The caller (this benchmark's process) and the server (a child process, the benchmark binary re-executed "+
				"in a server role) are two processes on this machine. The request is %d bytes of JSON and the response %d "+
				"(an `Invoice` shaped like billing's `GetInvoiceResponse`); raw TCP sends frames of the same sizes. "+
				"Seam's call is `rpc.Call` with `rpc.Idempotent()` against `rpc.Serve`, exactly what a generated "+
				"client and `Serve<I>` do, with lanes on as a Seam process has them by default (`rpc.ServeLanes` with "+
				"`rpc.Config`'s defaults, calls with `rpc.OverLanes`; the lane is opened with `rpc.Lanes.Open` before the runs), "+
				"and again with lanes off, over NATS; the caller's context carries a request id and a principal, as a request "+
				"handler's does (Seam sends them as headers). The NATS server is embedded in the caller's process, "+
				"started by `bus.Bus` as the monolith starts it (JetStream on, a user per module): the caller uses the "+
				"platform's connection and the server connects as the module's own user with its permissions. gRPC uses "+
				"a JSON codec (`grpc.ForceCodec`, a hand-written `ServiceDesc`, no code generation) so that every peer "+
				"carries the same bytes and the comparison is of the transports.", reqSize, respSize),
			fmt.Sprintf("Each run: one caller in a closed loop for %s (p50, p99), then 16 and 64 concurrent callers for %s "+
				"each (completed calls per second), each after %s of warm-up. CPU per call is the CPU time both processes "+
				"used in the 64-caller run (from getrusage) divided by the calls. The issue's reference figures for a "+
				"machine like this one (not measured here) are in the last column; it also quotes a well-known peer's "+
				"multi-process mode at 65 µs p50 and about 79k calls/s, and 8 µs for the JSON codec alone.",
				f.Opts.Latency, f.Opts.Throughput, f.Opts.Warmup),
		},
		Tables: []report.Table{peersTable, conn, {
			Header: []string{"JSON encode + decode of request and response alone (`testing.Benchmark`)", "µs"},
			Rows:   [][]string{{"per call", report.Num(codec.Median())}},
		}},
		Targets: []report.Target{p50Target, rateTarget},
		Figures: figs,
	}
	sec.Tables = append(sec.Tables, profileTables(p)...)
	sec.Findings = append(sec.Findings, fmt.Sprintf("Profile of Seam's 64-caller run (%s, %s calls/s while profiled; "+
		"pprof CPU and allocation profiles of both processes in `%s`): %s", f.Opts.Profile, report.Num(p.Rate), f.Opts.ProfileDir,
		f.profileFindings(med, codec.Median())))
	return sec
}

// cores names the machine's core count.
func cores() string { return fmt.Sprintf("%d cores", runtime.NumCPU()) }

// profileFindings says, from the profiles, where Seam's call spends its CPU and allocations.
func (f Figures) profileFindings(med map[string]map[string]float64, codecMicros float64) string {
	c, s := f.Profiles.Caller, f.Profiles.Server
	return fmt.Sprintf("per call, the caller's process used %s µs of CPU and the server's %s µs; the embedded NATS server, "+
		"which the calls no longer cross, accounts for %s of the caller's process. Caller's CPU by component (inclusive): %s. "+
		"Server's: %s. Heap allocations per call: %s in the caller's process (%s bytes), %s in the server's (%s bytes); the "+
		"largest allocators are listed above. encoding/json alone costs %s µs per call (request and response, both ways); "+
		"Seam's bodies use goccy/go-json, about a quarter of that (platform/rpc BenchmarkCodec*), within the %s µs of CPU "+
		"Seam's call uses in both processes. The rest is syscalls on the two sockets (writes coalesce when calls overlap), "+
		"goroutine wake-ups, and each call's context, headers and frames.",
		report.Num(report.Micros(c.CPUPerCall)), report.Num(report.Micros(s.CPUPerCall)),
		report.Pct(c.CPU.Component("NATS server (embedded)").Inclusive), prof.Summary(c.CPU, 0.02), prof.Summary(s.CPU, 0.02),
		report.Num(c.AllocsPerCall), report.Num(c.BytesPerCall), report.Num(s.AllocsPerCall), report.Num(s.BytesPerCall),
		report.Num(codecMicros), report.Num(med[PeerSeam]["cpu"])) + f.replyPermissions()
}

// replyPermissions points out the NATS server's pruning of reply permissions when the profile shows it.
func (f Figures) replyPermissions() string {
	share := f.Profiles.Caller.CPU.Component(prof.ReplyPermissions).Inclusive
	if share < 0.01 {
		return ""
	}
	return fmt.Sprintf(" %s of the caller's process went to nats-server's `pruneReplyPerms`: the module's NATS user may answer "+
		"the requests it receives (allow_responses, which `bus.Bus` grants with a five-minute window and up to 1,000 replies "+
		"each), so the server remembers every reply subject the responder was sent, an api reply uses one of its 1,000 and never "+
		"expires it early, and every 4,096 replies the server rescans them all; at the profiled %s calls/s that is as many new "+
		"entries a second, up to %s kept at once, a cost that grows with the call rate and the time the process has served. "+
		"The plain NATS peer's responder, connected as the platform's user, has no such permission to track.", report.Pct(share),
		report.Num(f.Profiles.Rate), report.Num(f.Profiles.Rate*300))
}

// profileTables shows the profiles: CPU by component, per-call counts, top functions.
func profileTables(p Profiles) []report.Table {
	comp := report.Table{
		Caption: "Where Seam's call spends CPU at 64 callers. Self: the innermost recognised frame of a sample is in the component; " +
			"inclusive: the component is anywhere on the sample's stack (so inclusive shares overlap).",
		Header: []string{"component", "caller self", "caller inclusive", "server self", "server inclusive"},
	}
	for i, cs := range p.Caller.CPU.Components {
		ss := prof.Share{}
		if i < len(p.Server.CPU.Components) {
			ss = p.Server.CPU.Components[i]
		}
		comp.Rows = append(comp.Rows, []string{cs.Name, report.Pct(cs.Self), report.Pct(cs.Inclusive), report.Pct(ss.Self), report.Pct(ss.Inclusive)})
	}
	counts := report.Table{
		Header: []string{"per call (64 callers, profiled run)", "caller's process (with the NATS server)", "server's process"},
		Rows: [][]string{
			{"CPU µs", report.Num(report.Micros(p.Caller.CPUPerCall)), report.Num(report.Micros(p.Server.CPUPerCall))},
			{"heap allocations", report.Num(p.Caller.AllocsPerCall), report.Num(p.Server.AllocsPerCall)},
			{"bytes allocated", report.Num(p.Caller.BytesPerCall), report.Num(p.Server.BytesPerCall)},
		},
	}
	top := func(name string, b prof.Breakdown, what string) report.Table {
		t := report.Table{Caption: name, Header: []string{"function", "self " + what, "inclusive " + what}}
		for _, s := range b.Top {
			t.Rows = append(t.Rows, []string{"`" + s.Name + "`", report.Pct(s.Self), report.Pct(s.Inclusive)})
		}
		return t
	}
	return []report.Table{comp, counts,
		top("Caller's process: functions with the most CPU", p.Caller.CPU, "CPU"),
		top("Server's process: functions with the most CPU", p.Server.CPU, "CPU"),
		top("Caller's process: functions allocating the most objects", p.Caller.Allocs, "objects"),
		top("Server's process: functions allocating the most objects", p.Server.Allocs, "objects"),
	}
}
