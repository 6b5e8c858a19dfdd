package httpbench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/seamkit/seam/test/bench/cluster"
	"github.com/seamkit/seam/test/bench/proc"
	"github.com/seamkit/seam/test/bench/prof"
	"github.com/seamkit/seam/test/bench/stats"
)

// Options sizes and places the benchmark.
type Options struct {
	// Runs is how many times each figure is measured.
	Runs int
	// Workers is the closed loop's concurrent clients.
	Workers int
	// Warmup precedes each run, uncounted; Capacity is each closed-loop run's length, Latency each
	// constant-rate run's.
	Warmup, Capacity, Latency time.Duration
	// LatencyShare sets the constant rate: this share of the lowest deployment's median capacity.
	LatencyShare float64
	// Readers and Payers are the users of each scenario; each reader owns SeedInvoices invoices.
	Readers, Payers, SeedInvoices int
	// BinDir holds Seam's binaries; LogDir receives their logs; DataDir their data directories.
	BinDir, LogDir, DataDir string
	// Postgres is the database server every deployment uses.
	Postgres *cluster.Postgres
	// Secrets are shared by every Seam process.
	Secrets cluster.Secrets
	// Profile is how long each profiled run lasts.
	Profile time.Duration
	// ProfileDir receives the profiles.
	ProfileDir string
	// Stderr receives the children's error output.
	Stderr io.Writer
	// Logf reports progress.
	Logf func(format string, args ...any)
}

// Deployment names, in table order.
const (
	Monolith  = "monolith"
	AllRemote = "all-remote"
	Bare      = "bare chi+pgx"
)

// bareDatabase is the bare handler's database.
const bareDatabase = "bench_bare"

// Bench is the running benchmark: the deployments under load.
type Bench struct {
	opts         Options
	targets      []*Target
	deployments  []*cluster.Deployment
	monolithSpec cluster.Spec
	bare         *proc.Child
}

// Start prepares every deployment: the bare handler's database (migrated and seeded by a monolith that is
// then stopped, so no relay or consumer runs beside the bare handler), the bare handler, the monolith and
// all four modules extracted behind the monolith as gateway, each on a database of its own on the same
// server, seeded with the same users and invoices.
func Start(ctx context.Context, o Options) (_ *Bench, err error) {
	b := &Bench{opts: o}
	defer func() {
		if err != nil {
			b.Close()
		}
	}()
	bareURL, err := o.Postgres.CreateDatabase(ctx, bareDatabase)
	if err != nil {
		return nil, err
	}
	o.Logf("http: preparing the bare handler's database with a monolith")
	prep, err := cluster.Start(ctx, b.spec("bare-prep", bareURL, "bb_", false))
	if err != nil {
		return nil, err
	}
	readers, payers, err := b.seed(ctx, prep.Gateway.BaseURL)
	if stopErr := prep.Stop(); err == nil {
		err = stopErr
	}
	if err != nil {
		return nil, err
	}
	if b.bare, err = proc.Spawn(ctx, proc.Spec{Role: BareRole, Params: BareParams(bareURL, o.Secrets.SigningKeySeed)}, nil, o.Stderr); err != nil {
		return nil, err
	}
	bare := &Target{Name: Bare, Client: cluster.NewClient(b.bare.Addr, 2*o.Workers), Readers: readers, Payers: payers,
		PIDs: func() []int { return []int{b.bare.Pid()} }, Names: []string{"bare"}, Database: bareDatabase}
	for _, d := range []struct {
		name, db, prefix string
		remote           bool
	}{{Monolith, "bench_monolith", "bm_", false}, {AllRemote, "bench_all_remote", "br_", true}} {
		url, err := o.Postgres.CreateDatabase(ctx, d.db)
		if err != nil {
			return nil, err
		}
		o.Logf("http: starting the %s deployment", d.name)
		spec := b.spec(d.name, url, d.prefix, d.remote)
		if !d.remote {
			b.monolithSpec = spec
		}
		dep, err := cluster.Start(ctx, spec)
		if err != nil {
			return nil, err
		}
		b.deployments = append(b.deployments, dep)
		readers, payers, err := b.seed(ctx, dep.Gateway.BaseURL)
		if err != nil {
			return nil, err
		}
		b.targets = append(b.targets, &Target{Name: d.name, Client: cluster.NewClient(dep.Gateway.BaseURL, 2*o.Workers),
			Readers: readers, Payers: payers, PIDs: dep.PIDs, Names: dep.Names(), DatabaseURL: url, Database: d.db})
	}
	b.targets = append(b.targets, bare)
	return b, nil
}

func (b *Bench) spec(name, url, prefix string, remote bool) cluster.Spec {
	return cluster.Spec{Name: name, BinDir: b.opts.BinDir, LogDir: b.opts.LogDir, DataDir: b.opts.DataDir,
		DatabaseURL: url, RolePrefix: prefix, Secrets: b.opts.Secrets, Remote: remote}
}

// seedTimeout bounds seeding one deployment.
const seedTimeout = 2 * time.Minute

// seed signs the readers and payers up on the application at baseURL and gives each reader its invoices; it
// returns their tokens. Calls that find a remote module not yet reachable (503) are retried.
func (b *Bench) seed(ctx context.Context, baseURL string) (readers, payers []string, err error) {
	ctx, cancel := context.WithTimeout(ctx, seedTimeout)
	defer cancel()
	c := cluster.NewClient(baseURL, 4)
	retry := func(f func() error) error {
		for {
			err := f()
			var se *cluster.StatusError
			if !errors.As(err, &se) || se.Status != 503 || ctx.Err() != nil {
				return err
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	for i := range b.opts.Readers + b.opts.Payers {
		var token string
		email := "user-" + strconv.Itoa(i) + "@bench.example"
		if err := retry(func() (err error) { token, err = c.SignUp(ctx, email, "correct horse battery staple"); return err }); err != nil {
			return nil, nil, fmt.Errorf("httpbench: seed: %w", err)
		}
		if i >= b.opts.Readers {
			payers = append(payers, token)
			continue
		}
		readers = append(readers, token)
		for range b.opts.SeedInvoices {
			if err := retry(func() error { _, err := c.CreateInvoice(ctx, token); return err }); err != nil {
				return nil, nil, fmt.Errorf("httpbench: seed: %w", err)
			}
		}
	}
	return readers, payers, nil
}

// Close stops the deployments and the bare handler.
func (b *Bench) Close() {
	for _, d := range b.deployments {
		if err := d.Stop(); err != nil {
			b.opts.Logf("http: stop %s: %v", d.Name, err)
		}
	}
	if b.bare != nil {
		b.bare.Stop()
	}
}

// Capacity is one closed-loop run's outcome.
type Capacity struct {
	// Rate is the successful requests (or flows) per second.
	Rate float64
	// Errors counts the failed ones.
	Errors int
	// P99 is the closed loop's own 99th percentile latency.
	P99 time.Duration
	// ServerCPU, DatabaseCPU and ClientCPU are the CPU time per request (or flow) of the deployment's
	// processes, of PostgreSQL and of the load generator (this process).
	ServerCPU, DatabaseCPU, ClientCPU time.Duration
	// PerProcess is each of the deployment's processes' CPU time per request (or flow), in Target.Names' order.
	PerProcess []time.Duration
	// Statements is PostgreSQL's execution time per request (or flow) in the deployment's database, counting
	// the events the run left to settle; nil when the server does not count statements.
	Statements *Statements
	// FirstError is the first failure, if any.
	FirstError error
}

// Latency is one constant-rate run's outcome.
type Latency struct {
	// P50 and P99 are the median and 99th percentile latencies.
	P50, P99 time.Duration
	// Errors counts the failed requests.
	Errors int
	// FirstError is the first failure, if any.
	FirstError error
}

// Figures are every run's outcomes, by deployment and scenario.
type Figures struct {
	// Capacity holds each closed-loop run, by deployment and scenario.
	Capacity map[string]map[Scenario][]Capacity
	// Latency holds each constant-rate run, by deployment and scenario.
	Latency map[string]map[Scenario][]Latency
	// Rate is the constant arrival rate of the latency runs, per scenario.
	Rate map[Scenario]int
	// Profiles are the monolith's and the bare handler's profiles, per scenario.
	Profiles map[string]map[Scenario]Profile
	// Names name each deployment's processes, in Capacity.PerProcess' order.
	Names map[string][]string
	// Opts are the options the runs had.
	Opts Options
}

// Profile is a process's CPU profile in a closed-loop run of one scenario.
type Profile struct {
	// CPU breaks the process's CPU time down.
	CPU prof.Breakdown
	// CPUPerOp is the process's CPU time per request (or flow).
	CPUPerOp time.Duration
	// AllocsPerOp is its heap allocations per request (or flow).
	AllocsPerOp float64
	// Rate is the profiled run's rate.
	Rate float64
}

// Profile stops the measured monolith and runs the same monolith (app.Run with the same modules, in a child
// that profiles itself) on its database and data directory; then profiles it and the bare handler in a
// closed-loop run of each scenario. It runs after Run, whose figures it leaves alone.
func (b *Bench) Profile(ctx context.Context, f *Figures) error {
	f.Profiles = map[string]map[Scenario]Profile{Monolith: {}, Bare: {}}
	if err := b.deployments[0].Stop(); err != nil {
		return err
	}
	env, err := cluster.MonolithEnv(b.monolithSpec)
	if err != nil {
		return err
	}
	env, _, err = cluster.ProcessEnv(b.monolithSpec, "monolith", env)
	if err != nil {
		return err
	}
	b.opts.Logf("http: starting the profiled monolith")
	child, err := proc.Spawn(ctx, proc.Spec{Role: MonolithRole, Params: MonolithParams(cluster.LogPath(b.monolithSpec, "profiled"))}, env, b.opts.Stderr)
	if err != nil {
		return err
	}
	defer child.Stop()
	mono := *b.targets[0]
	mono.Client = cluster.NewClient(child.Addr, 2*b.opts.Workers)
	bare := b.targets[len(b.targets)-1]
	for _, s := range Scenarios {
		for _, x := range []struct {
			name  string
			child *proc.Child
			t     *Target
		}{{Monolith, child, &mono}, {Bare, b.bare, bare}} {
			b.opts.Logf("http: profiling %s, %s", x.name, s)
			p, err := b.profileOne(ctx, x.child, x.t, s, strings.ReplaceAll(x.name, " ", "-")+"-"+string(s))
			if err != nil {
				return err
			}
			f.Profiles[x.name][s] = p
		}
	}
	return nil
}

func (b *Bench) profileOne(ctx context.Context, child *proc.Child, t *Target, s Scenario, name string) (Profile, error) {
	if _, err := t.ClosedLoop(ctx, s, b.opts.Workers, 0, b.opts.Warmup); err != nil {
		return Profile{}, err
	}
	if err := prof.StartRemote(child, b.opts.ProfileDir, name); err != nil {
		return Profile{}, err
	}
	lat, runErr := t.ClosedLoop(ctx, s, b.opts.Workers, 0, b.opts.Profile)
	p, err := prof.StopRemote(child, b.opts.ProfileDir, name)
	if err := errors.Join(runErr, err); err != nil {
		return Profile{}, err
	}
	if err := b.settle(ctx, t); err != nil {
		return Profile{}, err
	}
	cpu, err := prof.CPU(p.CPU, prof.HTTPComponents, 12)
	if err != nil {
		return Profile{}, err
	}
	ops := float64(max(len(lat.Sorted), 1))
	return Profile{CPU: cpu, CPUPerOp: time.Duration(float64(p.CPUTime) / ops), AllocsPerOp: float64(p.Mallocs) / ops, Rate: lat.Rate()}, nil
}

// Run measures every deployment's capacity in each scenario (closed loop, Workers clients), interleaving the
// deployments run by run, then their latency at a constant rate: LatencyShare of the lowest median capacity.
func (b *Bench) Run(ctx context.Context) (Figures, error) {
	f := Figures{Capacity: map[string]map[Scenario][]Capacity{}, Latency: map[string]map[Scenario][]Latency{},
		Rate: map[Scenario]int{}, Names: map[string][]string{}, Opts: b.opts}
	for _, t := range b.targets {
		f.Names[t.Name] = t.Names
		f.Capacity[t.Name] = map[Scenario][]Capacity{}
		f.Latency[t.Name] = map[Scenario][]Latency{}
	}
	for run := range b.opts.Runs {
		for _, s := range Scenarios {
			for _, t := range b.targets {
				b.opts.Logf("http, run %d/%d: %s, %s, capacity (%d clients)", run+1, b.opts.Runs, t.Name, s, b.opts.Workers)
				c, err := b.capacity(ctx, t, s)
				if err != nil {
					return f, err
				}
				f.Capacity[t.Name][s] = append(f.Capacity[t.Name][s], c)
			}
		}
	}
	for _, s := range Scenarios {
		lowest := math.Inf(1)
		for _, t := range b.targets {
			var rates []float64
			for _, c := range f.Capacity[t.Name][s] {
				rates = append(rates, c.Rate)
			}
			lowest = min(lowest, stats.Median(rates))
		}
		f.Rate[s] = max(int(lowest*b.opts.LatencyShare/10)*10, 10)
	}
	for run := range b.opts.Runs {
		for _, s := range Scenarios {
			for _, t := range b.targets {
				b.opts.Logf("http, run %d/%d: %s, %s, latency at %d/s", run+1, b.opts.Runs, t.Name, s, f.Rate[s])
				lat := t.OpenLoop(s, f.Rate[s], b.opts.Latency)
				f.Latency[t.Name][s] = append(f.Latency[t.Name][s], Latency{P50: lat.P(0.50), P99: lat.P(0.99),
					Errors: lat.Errors, FirstError: lat.FirstError})
				if err := b.settle(ctx, t); err != nil {
					return f, err
				}
			}
		}
	}
	return f, nil
}

func (b *Bench) capacity(ctx context.Context, t *Target, s Scenario) (Capacity, error) {
	pids := t.PIDs()
	server := proc.NewCPUMeter(pids)
	each := make([]*proc.CPUMeter, len(pids))
	for i, pid := range pids {
		each[i] = proc.NewCPUMeter([]int{pid})
	}
	db := proc.NewCPUMeter(b.opts.Postgres.PIDs())
	client := prof.ProcessCPU()
	if err := b.opts.Postgres.ResetStatements(ctx); err != nil {
		return Capacity{}, err
	}
	lat, err := t.ClosedLoop(ctx, s, b.opts.Workers, b.opts.Warmup, b.opts.Capacity)
	if err != nil {
		return Capacity{}, err
	}
	c := Capacity{Rate: lat.Rate(), Errors: lat.Errors, P99: lat.P(0.99), FirstError: lat.FirstError}
	// The CPU is counted over the warm-up too: divide by the requests of the whole run, at the measured rate.
	n := lat.Rate() * (b.opts.Warmup + b.opts.Capacity).Seconds()
	if n > 0 {
		c.ServerCPU = time.Duration(float64(server.Used()) / n)
		c.DatabaseCPU = time.Duration(float64(db.Used()) / n)
		c.ClientCPU = time.Duration(float64(prof.ProcessCPU()-client) / n)
		for _, m := range each {
			c.PerProcess = append(c.PerProcess, time.Duration(float64(m.Used())/n))
		}
	}
	if err := b.settle(ctx, t); err != nil {
		return c, err
	}
	stmts, err := b.opts.Postgres.Statements(ctx, t.Database)
	c.Statements = statementsPer(stmts, n)
	return c, err
}

// settleTimeout bounds the wait for a deployment's background work.
const settleTimeout = 2 * time.Minute

// settleQuery counts a deployment's unsent events and the events its inboxes hold.
const settleQuery = `SELECT
  (SELECT count(*) FROM auth.outbox WHERE sent_at IS NULL) + (SELECT count(*) FROM billing.outbox WHERE sent_at IS NULL) +
  (SELECT count(*) FROM notifications.outbox WHERE sent_at IS NULL) + (SELECT count(*) FROM reporting.outbox WHERE sent_at IS NULL),
  (SELECT count(*) FROM auth.inbox) + (SELECT count(*) FROM billing.inbox) +
  (SELECT count(*) FROM notifications.inbox) + (SELECT count(*) FROM reporting.inbox)`

// settle waits until the events a run caused have been relayed and consumed, so that the next run does not
// pay for them: every outbox sent, and the inboxes no longer growing.
func (b *Bench) settle(ctx context.Context, t *Target) error {
	if t.DatabaseURL == "" {
		return nil
	}
	pool, err := pgxpool.New(ctx, t.DatabaseURL)
	if err != nil {
		return fmt.Errorf("httpbench: settle: %w", err)
	}
	defer pool.Close()
	deadline := time.Now().Add(settleTimeout)
	var last int64 = -1
	stable := 0
	for time.Now().Before(deadline) {
		var unsent, handled int64
		if err := pool.QueryRow(ctx, settleQuery).Scan(&unsent, &handled); err != nil {
			return fmt.Errorf("httpbench: settle %s: %w", t.Name, err)
		}
		if unsent == 0 && handled == last {
			stable++
			if stable >= 3 {
				return nil
			}
		} else {
			stable = 0
		}
		last = handled
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("httpbench: %s still relaying or consuming events after %s", t.Name, settleTimeout)
}
