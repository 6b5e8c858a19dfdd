// Package suite runs Seam's benchmarks in one go (local and remote module calls, HTTP end to end, events,
// footprint), each next to its baselines and repeated to take medians, and assembles the report.
package suite

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/seamkit/seam/test/bench/cluster"
	"github.com/seamkit/seam/test/bench/events"
	"github.com/seamkit/seam/test/bench/footprint"
	"github.com/seamkit/seam/test/bench/httpbench"
	"github.com/seamkit/seam/test/bench/localcall"
	"github.com/seamkit/seam/test/bench/proc"
	"github.com/seamkit/seam/test/bench/remotecall"
	"github.com/seamkit/seam/test/bench/report"
)

// Benchmark names, as Config.Only takes them.
const (
	Local     = "local"
	Remote    = "remote"
	Events    = "events"
	Footprint = "footprint"
	HTTP      = "http"
)

// All lists every benchmark in the order they run.
var All = []string{Local, Remote, Events, Footprint, HTTP}

// Config says what to run and where.
type Config struct {
	// Runs is how many times each figure is measured (the report shows medians).
	Runs int
	// Quick shortens every duration to a smoke run whose figures only show that everything works.
	Quick bool
	// Only lists the benchmarks to run; empty runs them all.
	Only []string
	// RepoRoot is the repository's root, where the Seam binaries are built from.
	RepoRoot string
	// WorkDir receives binaries, logs and profiles (bin/bench).
	WorkDir string
	// PostgresDir holds the PostgreSQL cluster; keep it between runs (see DefaultPostgresDir).
	PostgresDir string
	// Progress receives a line per step.
	Progress io.Writer
}

func (c Config) runs(name string) bool { return len(c.Only) == 0 || slices.Contains(c.Only, name) }

// scale returns full in a full run and quick in a quick one.
func (c Config) scale(full, quick time.Duration) time.Duration {
	if c.Quick {
		return quick
	}
	return full
}

func (c Config) logf(format string, args ...any) {
	if c.Progress != nil {
		fmt.Fprintf(c.Progress, "bench: "+format+"\n", args...)
	}
}

// Run runs the benchmarks cfg selects and returns the report. Everything it starts is stopped before it
// returns, also when it fails.
func Run(ctx context.Context, cfg Config) (report.Report, error) {
	if cfg.Runs < 1 {
		return report.Report{}, errors.New("suite: runs must be at least 1")
	}
	if cfg.PostgresDir == "" {
		cfg.PostgresDir = DefaultPostgresDir()
	}
	for _, name := range cfg.Only {
		if !slices.Contains(All, name) {
			return report.Report{}, fmt.Errorf("suite: unknown benchmark %q (known: %v)", name, All)
		}
	}
	rep := report.Report{Started: time.Now(), Runs: cfg.Runs, Quick: cfg.Quick, Machine: report.ReadMachine()}
	if err := os.MkdirAll(cfg.WorkDir, 0o755); err != nil {
		return rep, fmt.Errorf("suite: %w", err)
	}
	if cfg.runs(Local) {
		sec, err := runLocal(ctx, cfg)
		if err != nil {
			return rep, err
		}
		rep.Sections = append(rep.Sections, sec)
	}
	if cfg.runs(Remote) {
		sec, err := runRemote(ctx, cfg)
		if err != nil {
			return rep, err
		}
		rep.Sections = append(rep.Sections, sec)
	}
	if cfg.runs(Events) || cfg.runs(Footprint) || cfg.runs(HTTP) {
		secs, version, err := runDatabaseBenchmarks(ctx, cfg)
		rep.Sections = append(rep.Sections, secs...)
		rep.Machine.PostgreSQL = version
		if err != nil {
			return rep, err
		}
	}
	rep.Took = time.Since(rep.Started)
	rep.Machine.LoadAfter = report.LoadAverage()
	return rep, nil
}

// RunChild runs the child role spec names (this program re-executed by a benchmark).
func RunChild(spec proc.Spec) error {
	switch spec.Role {
	case remotecall.ServerRole:
		return remotecall.RunServer(spec.Params)
	case httpbench.BareRole:
		return httpbench.RunBare(spec.Params)
	case httpbench.MonolithRole:
		return httpbench.RunMonolith(spec.Params)
	default:
		return fmt.Errorf("suite: unknown child role %q", spec.Role)
	}
}

func runLocal(ctx context.Context, cfg Config) (report.Section, error) {
	benchTime := cfg.scale(time.Second, 50*time.Millisecond)
	if err := localcall.SetBenchTime(benchTime); err != nil {
		return report.Section{}, err
	}
	setup, err := localcall.NewSetup(ctx)
	if err != nil {
		return report.Section{}, err
	}
	defer func() { _ = setup.Close(context.Background()) }()
	var runs []localcall.Result
	for i := range cfg.Runs {
		cfg.logf("local call, run %d/%d", i+1, cfg.Runs)
		r, err := setup.Run()
		if err != nil {
			return report.Section{}, err
		}
		runs = append(runs, r)
	}
	return localcall.Section(runs, benchTime), nil
}

// DefaultPostgresDir is where the benchmarks' PostgreSQL cluster lives, kept between runs so that a run that
// was killed leaves a server the next run adopts and stops.
func DefaultPostgresDir() string { return filepath.Join(os.TempDir(), "seam-bench", "postgres") }

// runDatabaseBenchmarks starts the PostgreSQL server and runs the benchmarks that need it, stopping it at the end.
func runDatabaseBenchmarks(ctx context.Context, cfg Config) (_ []report.Section, version string, err error) {
	cfg.logf("starting PostgreSQL in %s", cfg.PostgresDir)
	pg, err := cluster.StartPostgres(ctx, cfg.PostgresDir)
	if err != nil {
		return nil, "", err
	}
	defer func() {
		cfg.logf("stopping PostgreSQL")
		err = errors.Join(err, pg.Stop())
	}()
	var secs []report.Section
	if cfg.runs(Events) {
		sec, err := runEvents(ctx, cfg, pg)
		if err != nil {
			return secs, pg.Version, err
		}
		secs = append(secs, sec)
	}
	if !cfg.runs(Footprint) && !cfg.runs(HTTP) {
		return secs, pg.Version, nil
	}
	seam, err := prepareSeam(ctx, cfg)
	if err != nil {
		return secs, pg.Version, err
	}
	defer func() { _ = os.RemoveAll(seam.dataDir) }()
	if cfg.runs(Footprint) {
		sec, err := runFootprint(ctx, cfg, pg, seam)
		if err != nil {
			return secs, pg.Version, err
		}
		secs = append(secs, sec)
	}
	if cfg.runs(HTTP) {
		sec, err := runHTTP(ctx, cfg, pg, seam)
		if err != nil {
			return secs, pg.Version, err
		}
		secs = append(secs, sec)
	}
	return secs, pg.Version, nil
}

// seamSetup is what the benchmarks that run Seam's binaries share.
type seamSetup struct {
	binDir, logDir, dataDir string
	secrets                 cluster.Secrets
}

// prepareSeam builds Seam's binaries and makes the secrets and directories their processes share.
func prepareSeam(ctx context.Context, cfg Config) (seamSetup, error) {
	s := seamSetup{binDir: filepath.Join(cfg.WorkDir, "seam"), logDir: filepath.Join(cfg.WorkDir, "logs")}
	cfg.logf("building cmd/monolith and the extracted modules' binaries into %s", s.binDir)
	if err := cluster.Build(ctx, cfg.RepoRoot, s.binDir); err != nil {
		return s, err
	}
	if err := os.MkdirAll(s.logDir, 0o755); err != nil {
		return s, fmt.Errorf("suite: %w", err)
	}
	dataDir, err := os.MkdirTemp("", "seam-bench-data-")
	if err != nil {
		return s, fmt.Errorf("suite: %w", err)
	}
	s.dataDir = dataDir
	seed := make([]byte, 32)
	if _, err := rand.Read(seed); err != nil {
		return s, fmt.Errorf("suite: %w", err)
	}
	s.secrets = cluster.NewSecrets(seed)
	return s, nil
}

func runFootprint(ctx context.Context, cfg Config, pg *cluster.Postgres, seam seamSetup) (report.Section, error) {
	url, err := pg.CreateDatabase(ctx, "bench_footprint")
	if err != nil {
		return report.Section{}, err
	}
	f, err := footprint.Measure(ctx, footprint.Options{
		Runs:    cfg.Runs,
		Idle:    cfg.scale(2*time.Second, 200*time.Millisecond),
		Load:    cfg.scale(2*time.Second, 500*time.Millisecond),
		Workers: 16,
		Spec: cluster.Spec{Name: "footprint", BinDir: seam.binDir, LogDir: seam.logDir, DataDir: seam.dataDir,
			DatabaseURL: url, RolePrefix: "bf_", Secrets: seam.secrets},
		Logf: cfg.logf,
	})
	if err != nil {
		return report.Section{}, err
	}
	return f.Section(), nil
}

func runHTTP(ctx context.Context, cfg Config, pg *cluster.Postgres, seam seamSetup) (report.Section, error) {
	users, invoices := 8, 5
	if cfg.Quick {
		users, invoices = 2, 2
	}
	b, err := httpbench.Start(ctx, httpbench.Options{
		Runs:         cfg.Runs,
		Workers:      32,
		Warmup:       cfg.scale(500*time.Millisecond, 100*time.Millisecond),
		Capacity:     cfg.scale(3*time.Second, 300*time.Millisecond),
		Latency:      cfg.scale(3*time.Second, 300*time.Millisecond),
		LatencyShare: 0.5,
		Readers:      users,
		Payers:       users,
		SeedInvoices: invoices,
		BinDir:       seam.binDir,
		LogDir:       seam.logDir,
		DataDir:      seam.dataDir,
		Postgres:     pg,
		Secrets:      seam.secrets,
		Profile:      cfg.scale(3*time.Second, 300*time.Millisecond),
		ProfileDir:   filepath.Join(cfg.WorkDir, "profiles"),
		Stderr:       os.Stderr,
		Logf:         cfg.logf,
	})
	if err != nil {
		return report.Section{}, err
	}
	defer b.Close()
	f, err := b.Run(ctx)
	if err != nil {
		return report.Section{}, err
	}
	if err := b.Profile(ctx, &f); err != nil {
		return report.Section{}, err
	}
	return f.Section(), nil
}

func runEvents(ctx context.Context, cfg Config, pg *cluster.Postgres) (report.Section, error) {
	pgbench, err := cluster.ClientBinary("pgbench")
	if err != nil {
		return report.Section{}, err
	}
	url, err := pg.CreateDatabase(ctx, "bench_events")
	if err != nil {
		return report.Section{}, err
	}
	benchURL, err := pg.CreateDatabase(ctx, "bench_pgbench")
	if err != nil {
		return report.Section{}, err
	}
	store, err := os.MkdirTemp("", "seam-bench-jetstream-")
	if err != nil {
		return report.Section{}, fmt.Errorf("suite: %w", err)
	}
	defer func() { _ = os.RemoveAll(store) }()
	opts := events.Options{
		LatencyRate:   100,
		LatencyFor:    cfg.scale(4*time.Second, 500*time.Millisecond),
		Producers:     8,
		ThroughputFor: cfg.scale(4*time.Second, 500*time.Millisecond),
		StoreDir:      store,
		DatabasePIDs:  pg.PIDs,
	}
	cfg.logf("events: starting the relay, the consumer and JetStream")
	b, err := events.Start(ctx, url, opts)
	if err != nil {
		return report.Section{}, err
	}
	defer b.Close()
	figs := events.Figures{Opts: opts}
	for i := range cfg.Runs {
		cfg.logf("events, run %d/%d: commit-to-effect latency", i+1, cfg.Runs)
		lat, err := b.Latency(ctx, i)
		if err != nil {
			return report.Section{}, err
		}
		figs.Latency = append(figs.Latency, lat)
		cfg.logf("events, run %d/%d: relay throughput", i+1, cfg.Runs)
		tp, err := b.Throughput(ctx, 1)
		if err != nil {
			return report.Section{}, err
		}
		figs.Throughput = append(figs.Throughput, tp)
		cfg.logf("events, run %d/%d: relay throughput, producers ahead of it", i+1, cfg.Runs)
		sat, err := b.Throughput(ctx, events.SaturatingPerTx)
		if err != nil {
			return report.Section{}, err
		}
		figs.Saturated = append(figs.Saturated, sat)
		cfg.logf("events, run %d/%d: pgbench and the disk's flush time", i+1, cfg.Runs)
		cfg.logf("events, run %d/%d: relay capacity", i+1, cfg.Runs)
		capacity, err := b.Capacity(ctx, int(cfg.scale(3000, 300)))
		if err != nil {
			return report.Section{}, err
		}
		figs.Capacity = append(figs.Capacity, capacity)
		tps, err := events.PGBench(ctx, pgbench, benchURL, events.InsertScript, opts.Producers, opts.ThroughputFor)
		if err != nil {
			return report.Section{}, err
		}
		figs.PGBench = append(figs.PGBench, tps)
		tps, err = events.PGBench(ctx, pgbench, benchURL, events.InsertNotifyScript, opts.Producers, opts.ThroughputFor)
		if err != nil {
			return report.Section{}, err
		}
		figs.PGBenchNotify = append(figs.PGBenchNotify, tps)
		flush, err := events.FlushLatency(store, cfg.scale(time.Second, 200*time.Millisecond))
		if err != nil {
			return report.Section{}, err
		}
		figs.Flush = append(figs.Flush, flush)
	}
	return figs.Section(), nil
}

func runRemote(ctx context.Context, cfg Config) (report.Section, error) {
	store, err := os.MkdirTemp("", "seam-bench-nats-")
	if err != nil {
		return report.Section{}, fmt.Errorf("suite: %w", err)
	}
	defer func() { _ = os.RemoveAll(store) }()
	opts := remotecall.Options{
		Latency:    cfg.scale(time.Second, 150*time.Millisecond),
		Throughput: cfg.scale(time.Second, 150*time.Millisecond),
		Warmup:     cfg.scale(200*time.Millisecond, 50*time.Millisecond),
		Profile:    cfg.scale(2*time.Second, 200*time.Millisecond),
		ProfileDir: filepath.Join(cfg.WorkDir, "profiles"),
		StoreDir:   store,
		Stderr:     os.Stderr,
	}
	cfg.logf("remote call: starting the embedded NATS server and the peers' servers")
	b, err := remotecall.Start(ctx, opts)
	if err != nil {
		return report.Section{}, err
	}
	defer b.Close()
	figs := remotecall.Figures{Runs: map[string][]remotecall.Run{}, Opts: opts}
	for i := range cfg.Runs {
		for _, peer := range remotecall.Peers {
			cfg.logf("remote call, run %d/%d: %s", i+1, cfg.Runs, peer)
			r, err := b.Measure(ctx, peer)
			if err != nil {
				return report.Section{}, err
			}
			figs.Runs[peer] = append(figs.Runs[peer], r)
		}
		codec, err := remotecall.CodecCost()
		if err != nil {
			return report.Section{}, err
		}
		figs.Codec = append(figs.Codec, codec)
	}
	cfg.logf("remote call: profiling Seam's 64-caller run")
	if figs.Profiles, err = b.Profile(ctx); err != nil {
		return report.Section{}, err
	}
	return figs.Section(), nil
}
