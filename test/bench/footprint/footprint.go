// Package footprint measures the monolith's footprint: start-to-ready time on an existing database (PostgreSQL
// already running, so its own start is not counted), resident memory idle and under load, and the size of its
// binary.
package footprint

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/google/uuid"

	"github.com/seamkit/seam/test/bench/cluster"
	"github.com/seamkit/seam/test/bench/proc"
	"github.com/seamkit/seam/test/bench/report"
	"github.com/seamkit/seam/test/bench/stats"
)

// Options sizes and places the benchmark.
type Options struct {
	// Runs is how many measured starts there are, after a first one that migrates the database.
	Runs int
	// Idle is how long the monolith runs idle before its memory is read; Load how long it is then loaded.
	Idle, Load time.Duration
	// Workers are the load's concurrent clients.
	Workers int
	// Spec is the deployment (the monolith alone) to start; its database must exist, empty.
	Spec cluster.Spec
	// Logf reports progress.
	Logf func(format string, args ...any)
}

// Run is one start's figures.
type Run struct {
	// Ready is from exec to the first 200 from /readyz.
	Ready time.Duration
	// Idle is the resident memory after Idle; Loaded and Peak after the load (VmRSS, VmHWM).
	Idle, Loaded, Peak int64
	// LoadRate is the pay flows per second the load ran at.
	LoadRate float64
	// Stop is how long the graceful stop took.
	Stop time.Duration
}

// Figures are the first start's time, every measured run and the binary's size.
type Figures struct {
	// FirstStart is the first start's exec-to-ready time, on the empty database.
	FirstStart time.Duration
	// Runs are the measured starts.
	Runs []Run
	// BinarySize is the monolith binary's size in bytes.
	BinarySize int64
	// Opts are the options the runs had.
	Opts Options
}

// Measure starts the monolith once on its empty database (creating its roles and schemas, running the
// migrations, signing a user up), then Runs times more on the now existing database, measuring each.
func Measure(ctx context.Context, o Options) (Figures, error) {
	f := Figures{Opts: o}
	info, err := os.Stat(filepath.Join(o.Spec.BinDir, "monolith"))
	if err != nil {
		return f, fmt.Errorf("footprint: %w", err)
	}
	f.BinarySize = info.Size()
	o.Logf("footprint: first start on an empty database")
	first, err := cluster.Start(ctx, o.Spec)
	if err != nil {
		return f, err
	}
	f.FirstStart = first.Gateway.Ready
	client := cluster.NewClient(first.Gateway.BaseURL, 4)
	token, err := client.SignUp(ctx, "footprint@bench.example", "correct horse battery staple")
	if stopErr := first.Stop(); err == nil {
		err = stopErr
	}
	if err != nil {
		return f, err
	}
	for i := range o.Runs {
		o.Logf("footprint, run %d/%d: start, idle, load, stop", i+1, o.Runs)
		r, err := measureOne(ctx, o, token)
		if err != nil {
			return f, err
		}
		f.Runs = append(f.Runs, r)
	}
	return f, nil
}

func measureOne(ctx context.Context, o Options, token string) (Run, error) {
	d, err := cluster.Start(ctx, o.Spec)
	if err != nil {
		return Run{}, err
	}
	var r Run
	defer func() {
		if d.Processes != nil {
			d.Kill()
		}
	}()
	p := d.Gateway
	r.Ready = p.Ready
	time.Sleep(o.Idle)
	mem, err := proc.ReadMemory(p.Pid())
	if err != nil {
		return Run{}, err
	}
	r.Idle = mem.RSS
	client := cluster.NewClient(p.BaseURL, 2*o.Workers)
	lat, err := stats.ClosedLoop(ctx, o.Workers, 0, o.Load, func(int) (stats.Op, error) {
		return func(ctx context.Context) error {
			id, err := client.CreateInvoice(ctx, token)
			if err != nil {
				return err
			}
			return client.Pay(ctx, token, id, uuid.NewString())
		}, nil
	})
	if err != nil {
		return Run{}, fmt.Errorf("footprint: load: %w", err)
	}
	if lat.Errors > 0 {
		return Run{}, fmt.Errorf("footprint: load: %d flows failed: %w", lat.Errors, lat.FirstError)
	}
	r.LoadRate = lat.Rate()
	if mem, err = proc.ReadMemory(p.Pid()); err != nil {
		return Run{}, err
	}
	r.Loaded, r.Peak = mem.RSS, mem.Peak
	if r.Stop, err = p.Stop(); err != nil {
		return Run{}, err
	}
	d.Processes = nil
	return r, nil
}

// Section turns the figures into the report's section.
func (f Figures) Section() report.Section {
	var ready, idle, loaded, peak, rate, stop []float64
	for _, r := range f.Runs {
		ready = append(ready, report.Millis(r.Ready))
		idle = append(idle, mib(r.Idle))
		loaded = append(loaded, mib(r.Loaded))
		peak = append(peak, mib(r.Peak))
		rate = append(rate, r.LoadRate)
		stop = append(stop, report.Millis(r.Stop))
	}
	figs := []report.Figure{
		{Name: "start-to-ready, existing database", Unit: "ms", Runs: ready},
		{Name: "resident memory, idle", Unit: "MiB", Runs: idle},
		{Name: "resident memory, after the load", Unit: "MiB", Runs: loaded},
		{Name: "peak resident memory (VmHWM)", Unit: "MiB", Runs: peak},
		{Name: "load: pay flows", Unit: "flows/s", Runs: rate},
		{Name: "graceful stop (SIGTERM to exit)", Unit: "ms", Runs: stop},
		{Name: "first start, empty database (roles, schemas, migrations)", Unit: "ms", Runs: []float64{report.Millis(f.FirstStart)}},
		{Name: "binary size of cmd/monolith", Unit: "MiB", Runs: []float64{mib(f.BinarySize)}},
	}
	m := func(i int) float64 { return figs[i].Median() }
	target := report.AtMost("Monolith start-to-ready on an existing database", m(0), 1000, "%.0f ms")
	if !target.Met {
		target.Limits = fmt.Sprintf("the start connects to PostgreSQL as each module's role, checks every module's migrations, "+
			"starts the embedded NATS server with JetStream on its file store and ensures every module's stream, starts the "+
			"relays and consumers, and only then answers /readyz; the first start, which also creates the roles and schemas "+
			"and runs the migrations, took %.0f ms.", m(6))
	}
	return report.Section{
		Title: "Footprint: the monolith's start, memory and binary",
		Method: []string{fmt.Sprintf("The monolith (`cmd/monolith`, built by the suite with `go build`) runs with `SEAM_DATABASE_URL` "+
			"pointing at the already running PostgreSQL server, so the database server's own start is not counted, on a database it "+
			"migrated in a first start. Each run starts it again on that existing database and times exec to the first 200 from "+
			"`/readyz` (polled every 5 ms), reads `VmRSS` from `/proc/<pid>/status` after %s idle, then runs %d clients of pay flows "+
			"in a closed loop for %s and reads `VmRSS` and `VmHWM` again, then stops it with SIGTERM.", f.Opts.Idle, f.Opts.Workers, f.Opts.Load)},
		Tables: []report.Table{{
			Header: []string{"figure", "median"},
			Rows: [][]string{
				{"start-to-ready, existing database", report.Num(m(0)) + " ms"},
				{"first start, empty database (roles, schemas, migrations)", report.Num(m(6)) + " ms"},
				{"resident memory (VmRSS), idle", report.Num(m(1)) + " MiB"},
				{fmt.Sprintf("resident memory after %s of pay flows at %s/s", f.Opts.Load, report.Num(m(4))), report.Num(m(2)) + " MiB (peak " + report.Num(m(3)) + " MiB)"},
				{"graceful stop (SIGTERM to exit)", report.Num(m(5)) + " ms"},
				{"binary size of cmd/monolith", report.Num(m(7)) + " MiB"},
			},
		}},
		Targets: []report.Target{target},
		Figures: figs,
	}
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }
