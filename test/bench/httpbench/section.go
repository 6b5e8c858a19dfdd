package httpbench

import (
	"fmt"
	"runtime"
	"strings"

	"github.com/seamkit/seam/test/bench/prof"
	"github.com/seamkit/seam/test/bench/report"
	"github.com/seamkit/seam/test/bench/stats"
)

// deployments are the deployments in table order.
var deployments = []string{Monolith, AllRemote, Bare}

var deploymentLabels = map[string]string{
	Monolith:  "monolith (every module local)",
	AllRemote: "all four modules extracted, the monolith as gateway (5 processes)",
	Bare:      "bare chi + pgx handler, same SQL and token check",
}

var scenarioLabels = map[Scenario]string{
	Read: "authenticated read: `GET /api/billing/invoices`",
	Pay:  "pay flow: `POST /api/billing/invoices`, then `POST /api/billing/invoices/{id}/pay` with a fresh Idempotency-Key",
}

// med holds one deployment's medians in one scenario.
type med struct {
	rate, errors, p99Closed, p50, p99, latErrors, server, db, client float64
}

func (f Figures) medians(dep string, s Scenario) (med, []report.Figure) {
	var rate, errs, p99c, p50, p99, lerrs, server, db, client []float64
	for _, c := range f.Capacity[dep][s] {
		rate = append(rate, c.Rate)
		errs = append(errs, float64(c.Errors))
		p99c = append(p99c, report.Millis(c.P99))
		server = append(server, report.Micros(c.ServerCPU))
		db = append(db, report.Micros(c.DatabaseCPU))
		client = append(client, report.Micros(c.ClientCPU))
	}
	for _, l := range f.Latency[dep][s] {
		p50 = append(p50, report.Millis(l.P50))
		p99 = append(p99, report.Millis(l.P99))
		lerrs = append(lerrs, float64(l.Errors))
	}
	prefix := dep + ", " + string(s) + ": "
	figs := []report.Figure{
		{Name: prefix + "capacity (closed loop)", Unit: "req/s", Runs: rate},
		{Name: prefix + "failed requests in the closed loop", Unit: "", Runs: errs},
		{Name: prefix + "p99 in the closed loop", Unit: "ms", Runs: p99c},
		{Name: prefix + fmt.Sprintf("p50 at %d/s", f.Rate[s]), Unit: "ms", Runs: p50},
		{Name: prefix + fmt.Sprintf("p99 at %d/s", f.Rate[s]), Unit: "ms", Runs: p99},
		{Name: prefix + "failed requests at the constant rate", Unit: "", Runs: lerrs},
		{Name: prefix + "CPU per request, deployment's processes", Unit: "µs", Runs: server},
		{Name: prefix + "CPU per request, PostgreSQL", Unit: "µs", Runs: db},
		{Name: prefix + "CPU per request, load generator", Unit: "µs", Runs: client},
	}
	m := med{figs[0].Median(), figs[1].Median(), figs[2].Median(), figs[3].Median(), figs[4].Median(), figs[5].Median(),
		figs[6].Median(), figs[7].Median(), figs[8].Median()}
	return m, figs
}

// Section turns the figures into the report's section.
func (f Figures) Section() report.Section {
	meds := map[string]map[Scenario]med{}
	var figs []report.Figure
	sec := report.Section{Title: "HTTP end to end on the reference application: monolith, all modules extracted, bare handler"}
	for _, dep := range deployments {
		meds[dep] = map[Scenario]med{}
		for _, s := range Scenarios {
			m, fs := f.medians(dep, s)
			meds[dep][s] = m
			figs = append(figs, fs...)
		}
	}
	for _, s := range Scenarios {
		unit := "req/s"
		if s == Pay {
			unit = "flows/s"
		}
		t := report.Table{
			Caption: fmt.Sprintf("%s. Latency at a constant %d %s; capacity with %d closed-loop clients.", capitalise(scenarioLabels[s]), f.Rate[s], unit, f.Opts.Workers),
			Header: []string{"deployment", "capacity " + unit, "failed", "p50 ms", "p99 ms", "vs monolith",
				"CPU µs per " + string(s) + ": processes / PostgreSQL / load generator"},
		}
		for _, dep := range deployments {
			m := meds[dep][s]
			t.Rows = append(t.Rows, []string{deploymentLabels[dep], report.Num(m.rate), report.Num(m.errors + m.latErrors), report.Num(m.p50),
				report.Num(m.p99), fmt.Sprintf("%.2f×", report.Ratio(m.rate, meds[Monolith][s].rate)),
				report.Num(m.server) + " / " + report.Num(m.db) + " / " + report.Num(m.client)})
		}
		sec.Tables = append(sec.Tables, t)
	}
	if names := f.Names[AllRemote]; len(names) > 1 {
		t := report.Table{Caption: "The extracted deployment's CPU time per request (or flow), by process (medians over the closed-loop runs).",
			Header: []string{"process", "µs per read", "µs per pay flow"}}
		for i, name := range names {
			row := []string{name}
			for _, s := range Scenarios {
				var xs []float64
				for _, c := range f.Capacity[AllRemote][s] {
					if i < len(c.PerProcess) {
						xs = append(xs, report.Micros(c.PerProcess[i]))
					}
				}
				row = append(row, report.Num(stats.Median(xs)))
			}
			t.Rows = append(t.Rows, row)
		}
		sec.Tables = append(sec.Tables, t)
	}
	if t := f.statementsTable(Pay); t != nil {
		sec.Tables = append(sec.Tables, *t)
	}
	for _, s := range Scenarios {
		sec.Tables = append(sec.Tables, f.profileTables(s)...)
	}
	readTarget := report.AtLeast("HTTP read: monolith's capacity vs the bare handler's", report.Ratio(meds[Monolith][Read].rate, meds[Bare][Read].rate), 0.9, "%.2f×")
	payTarget := report.AtLeast("HTTP pay flow: monolith's capacity vs the bare handler's", report.Ratio(meds[Monolith][Pay].rate, meds[Bare][Pay].rate), 0.9, "%.2f×")
	splitTarget := report.AtLeast("HTTP pay flow: all-remote capacity vs the monolith's", report.Ratio(meds[AllRemote][Pay].rate, meds[Monolith][Pay].rate), 0.7, "%.2f×")
	if !readTarget.Met {
		readTarget.Limits = cpuLimits(meds[Monolith][Read], meds[Bare][Read], "the bare handler", "request") +
			" Per request the monolith runs its middleware (request id, a JSON access log line, recovery, body limit, metrics, " +
			"the routing table) and finds the token in auth's cache of verified tokens (verifying it through auth's api once " +
			"every `token_cache_ttl`, 30 s), where the bare handler verifies the token on every request. " +
			f.profileSummary(Read)
	}
	if !payTarget.Met {
		payTarget.Limits = cpuLimits(meds[Monolith][Pay], meds[Bare][Pay], "the bare handler", "flow") +
			" The monolith also relays each flow's two events to JetStream (stored with SyncAlways) and its consumers " +
			"(notifications, reporting) apply them, each recording the event in its inbox and doing its own work (a " +
			"notification rendered, stored and sent; the read model updated), the events waiting together in one transaction; " +
			"the bare handler writes the same outbox rows, but nothing relays or consumes them, so the consumers' SQL, which is " +
			"the application's work rather than the framework's, is missing from its side of the comparison." +
			f.statementsSummary(Pay) + " " + f.profileSummary(Pay)
	}
	if !splitTarget.Met {
		splitTarget.Limits = cpuLimits(meds[AllRemote][Pay], meds[Monolith][Pay], "the monolith", "flow") + f.perProcess(AllRemote, Pay) +
			" Split, each request crosses the gateway: the gateway authenticates it (from its cache of verified tokens, asking " +
			"auth once every 30 s per token) and forwards it to billing's process on a direct lane (one frame each way), " +
			"which authenticates it the same way from its own " +
			"cache and asks auth for the user on a direct lane (the remote call measured above); the gateway's embedded server " +
			"also stores every event in JetStream, and every process runs its share of the relays and consumers."
	}
	sec.Targets = []report.Target{readTarget, payTarget, splitTarget}
	sec.Method = []string{
		fmt.Sprintf("Three deployments run at once on one PostgreSQL server (Seam's durable settings), each on its own database "+
			"seeded with the same %d readers (each with %d invoices) and %d payers, all signed up through the API: the "+
			"monolith (`cmd/monolith`, every module local, `SEAM_DATABASE_URL` pointing at the server), all four modules "+
			"extracted (`cmd/auth`, `cmd/billing`, `cmd/notifications`, `cmd/reporting`) with the monolith as their gateway "+
			"and NATS server, started as `test/deploy` starts them, and a bare handler (chi and pgx, no framework) that verifies "+
			"the same EdDSA JWT with the same key (`SEAM_AUTH_SIGNING_KEY_SEED`) on every request (each Seam process verifies "+
			"a token once and then trusts it for `modules.auth.token_cache_ttl`, 30 s, as a product would; every client here "+
			"reuses one token, so nearly every request is a cache hit) and runs the SQL billing's and auth's queries "+
			"and the outbox run, with the same two pools of %d connections (billing's and auth's), on a database the monolith "+
			"migrated and seeded and then left (so no relay or consumer runs beside it). The Seam processes log at their "+
			"default level (info, JSON) to files.", f.Opts.Readers, f.Opts.SeedInvoices, f.Opts.Payers, poolSize),
		fmt.Sprintf("Capacity (the maximum sustainable throughput) is measured in a closed loop: %d clients on keep-alive "+
			"connections, each sending its next request (or flow) as soon as the previous one answered, for %s after %s of "+
			"warm-up, counting the successful ones per second. A closed loop never offers more than the server completes (at most "+
			"%d requests are in flight), so its rate is one the server sustains indefinitely, and it saturates the server in one "+
			"bounded run; a search over constant rates for the highest one meeting a latency bound would take several runs per "+
			"figure and, on %d cores shared with the load generator, be noisier. Latency is measured separately at a constant "+
			"arrival rate with vegeta's attacker (%s per run), which starts every request on schedule whatever the earlier ones "+
			"are doing, so the latencies are free of coordinated omission; the rate is %.0f%% of the lowest median capacity of the "+
			"three deployments in that scenario, the same rate for all three. A pay flow counts as one: create, then pay. After "+
			"every run the suite waits until the deployment's outboxes are sent and its inboxes stop growing, so no run pays for "+
			"the previous one's events. CPU per request is each group of processes' CPU time (from /proc) over the run divided by "+
			"the requests it served, and PostgreSQL's execution time per request is what pg_stat_statements (preloaded in the "+
			"suite's server when installed, at the same cost to every deployment) counted in the deployment's database over the "+
			"run and the wait for its events; the profiles come from extra runs: the monolith's from the same modules run by `app.Run` in a "+
			"child that profiles itself, on the monolith's database.", f.Opts.Workers, f.Opts.Capacity, f.Opts.Warmup,
			f.Opts.Workers, runtime.NumCPU(),
			f.Opts.Latency, 100*f.Opts.LatencyShare),
	}
	sec.Figures = figs
	return sec
}

// perProcess says how dep's CPU per request in scenario s divides among its processes (medians over the runs).
func (f Figures) perProcess(dep string, s Scenario) string {
	runs := f.Capacity[dep][s]
	if len(runs) == 0 || len(f.Names[dep]) < 2 {
		return ""
	}
	var parts []string
	for i, name := range f.Names[dep] {
		var xs []float64
		for _, c := range runs {
			if i < len(c.PerProcess) {
				xs = append(xs, report.Micros(c.PerProcess[i]))
			}
		}
		parts = append(parts, fmt.Sprintf("%s %s µs", name, report.Num(stats.Median(xs))))
	}
	return " By process, per " + string(s) + ": " + strings.Join(parts, ", ") + "."
}

// profileTables shows where the monolith's and the bare handler's processes spend CPU in scenario s.
func (f Figures) profileTables(s Scenario) []report.Table {
	mono, okM := f.Profiles[Monolith][s]
	bare, okB := f.Profiles[Bare][s]
	if !okM || !okB {
		return nil
	}
	t := report.Table{
		Caption: fmt.Sprintf("Profiles, %s (a closed-loop run of %s with %d clients, CPU profile of the serving process; pprof files in `%s`): "+
			"self is the share of samples whose innermost recognised frame is in the component, inclusive the share with the component "+
			"anywhere on the stack.", s, f.Opts.Profile, f.Opts.Workers, f.Opts.ProfileDir),
		Header: []string{"component", "monolith self", "monolith inclusive", "bare self", "bare inclusive"},
		Rows: [][]string{
			{"CPU µs per " + string(s) + " (the process)", report.Num(report.Micros(mono.CPUPerOp)), "", report.Num(report.Micros(bare.CPUPerOp)), ""},
			{"heap allocations per " + string(s), report.Num(mono.AllocsPerOp), "", report.Num(bare.AllocsPerOp), ""},
		},
	}
	for i, cs := range mono.CPU.Components {
		bs := bare.CPU.Components[i]
		if cs.Inclusive < 0.005 && bs.Inclusive < 0.005 {
			continue
		}
		t.Rows = append(t.Rows, []string{cs.Name, report.Pct(cs.Self), report.Pct(cs.Inclusive), report.Pct(bs.Self), report.Pct(bs.Inclusive)})
	}
	top := report.Table{Caption: fmt.Sprintf("The monolith's functions with the most CPU, %s", s), Header: []string{"function", "self", "inclusive"}}
	for _, fn := range mono.CPU.Top {
		top.Rows = append(top.Rows, []string{"`" + fn.Name + "`", report.Pct(fn.Self), report.Pct(fn.Inclusive)})
	}
	return []report.Table{t, top}
}

// profileSummary says, from the profiles, where the monolith's process spends more than the bare handler's.
func (f Figures) profileSummary(s Scenario) string {
	mono, okM := f.Profiles[Monolith][s]
	bare, okB := f.Profiles[Bare][s]
	if !okM || !okB {
		return ""
	}
	return fmt.Sprintf("Profiled, the monolith's process spent %s µs of CPU and made %s heap allocations per %s against the bare "+
		"handler's %s µs and %s; the monolith's CPU by component (inclusive): %s; the bare handler's: %s.",
		report.Num(report.Micros(mono.CPUPerOp)), report.Num(mono.AllocsPerOp), s, report.Num(report.Micros(bare.CPUPerOp)),
		report.Num(bare.AllocsPerOp), prof.Summary(mono.CPU, 0.03), prof.Summary(bare.CPU, 0.03))
}

// cpuLimits compares two deployments' CPU per request and says whether CPU is what bounds the first one.
func cpuLimits(a, b med, bName, unit string) string {
	cores := float64(runtime.NumCPU())
	ta, tb := a.server+a.db+a.client, b.server+b.db+b.client
	busy := a.rate * ta / 1e6
	out := fmt.Sprintf("per %s the deployment's processes used %s µs of CPU against %s for %s, PostgreSQL %s µs against %s, "+
		"and the load generator %s against %s: %s µs in all against %s, which on the machine's %d cores would cap the rates near "+
		"%s/s and %s/s. ", unit, report.Num(a.server), report.Num(b.server), bName, report.Num(a.db), report.Num(b.db),
		report.Num(a.client), report.Num(b.client), report.Num(ta), report.Num(tb), runtime.NumCPU(), report.Num(cores*1e6/ta),
		report.Num(cores*1e6/tb))
	if busy >= 0.8*cores {
		return out + fmt.Sprintf("At capacity they kept %.2f cores busy: the run is CPU-bound.", busy)
	}
	return out + fmt.Sprintf("At capacity they used %.2f cores; the rest of the shared machine went to other work (see the load "+
		"averages) or idled while requests waited for pool connections, row and advisory locks and the flushes of their commits.", busy)
}

func capitalise(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
