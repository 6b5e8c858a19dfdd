// Package prof captures CPU and allocation profiles of a process over a measured interval, with the exact
// allocation and CPU-time counts beside them, and breaks a profile down by component (JSON codec, NATS
// client and server, syscalls, garbage collection, ...) so a report can say where the time goes.
package prof

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"
)

// memProfileRate is the allocation sampling rate while a Capture runs: one sample per 16 KiB allocated on
// average, much finer than the runtime's default of 512 KiB, so a few seconds give a usable profile.
const memProfileRate = 16 << 10

// Capture is a profile being taken of this process.
type Capture struct {
	rate         int
	cpu          bytes.Buffer
	allocsBefore bytes.Buffer
	mem          runtime.MemStats
	cpuTime      time.Duration
}

// Start starts profiling this process: CPU samples from now on and a snapshot of the allocation profile.
func Start() (*Capture, error) {
	c := &Capture{rate: runtime.MemProfileRate}
	runtime.MemProfileRate = memProfileRate
	if err := pprof.Lookup("allocs").WriteTo(&c.allocsBefore, 0); err != nil {
		return nil, fmt.Errorf("prof: allocation profile: %w", err)
	}
	runtime.ReadMemStats(&c.mem)
	c.cpuTime = ProcessCPU()
	if err := pprof.StartCPUProfile(&c.cpu); err != nil {
		return nil, fmt.Errorf("prof: start CPU profile: %w", err)
	}
	return c, nil
}

// Profile is what a Capture took.
type Profile struct {
	// CPU is the CPU profile (pprof format).
	CPU []byte
	// AllocsBefore and AllocsAfter are the allocation profiles at the start and the end; their difference
	// is what was allocated in between.
	AllocsBefore, AllocsAfter []byte
	// Mallocs and Bytes count the heap allocations in between, exactly (runtime.MemStats).
	Mallocs, Bytes uint64
	// CPUTime is the CPU time the process used in between.
	CPUTime time.Duration
}

// Stop ends the capture and returns the profiles.
func (c *Capture) Stop() (Profile, error) {
	pprof.StopCPUProfile()
	cpuTime := ProcessCPU() - c.cpuTime
	var mem runtime.MemStats
	runtime.ReadMemStats(&mem)
	var after bytes.Buffer
	err := pprof.Lookup("allocs").WriteTo(&after, 0)
	runtime.MemProfileRate = c.rate
	if err != nil {
		return Profile{}, fmt.Errorf("prof: allocation profile: %w", err)
	}
	return Profile{
		CPU:          c.cpu.Bytes(),
		AllocsBefore: c.allocsBefore.Bytes(),
		AllocsAfter:  after.Bytes(),
		Mallocs:      mem.Mallocs - c.mem.Mallocs,
		Bytes:        mem.TotalAlloc - c.mem.TotalAlloc,
		CPUTime:      cpuTime,
	}, nil
}

// Save writes the profiles into dir as <name>.cpu.pprof, <name>.allocs-before.pprof and
// <name>.allocs-after.pprof (compare the last two with go tool pprof -base).
func (p Profile) Save(dir, name string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("prof: %w", err)
	}
	var errs []error
	for suffix, data := range map[string][]byte{".cpu.pprof": p.CPU, ".allocs-before.pprof": p.AllocsBefore, ".allocs-after.pprof": p.AllocsAfter} {
		if err := os.WriteFile(filepath.Join(dir, name+suffix), data, 0o644); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("prof: save %s: %w", name, err)
	}
	return nil
}

// Load reads the profiles Save wrote; the counts (Mallocs, Bytes, CPUTime) are not stored and stay zero.
func Load(dir, name string) (Profile, error) {
	var p Profile
	var errs []error
	for suffix, dst := range map[string]*[]byte{".cpu.pprof": &p.CPU, ".allocs-before.pprof": &p.AllocsBefore, ".allocs-after.pprof": &p.AllocsAfter} {
		data, err := os.ReadFile(filepath.Join(dir, name+suffix))
		errs = append(errs, err)
		*dst = data
	}
	if err := errors.Join(errs...); err != nil {
		return Profile{}, fmt.Errorf("prof: load %s: %w", name, err)
	}
	return p, nil
}

// ProcessCPU returns the user plus system CPU time this process has used.
func ProcessCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Commands returns a child's command handler for profiling itself on its parent's request: "stats" answers
// the count so far and the CPU time used; "profile-start <dir> <name>" starts a Capture; "profile-stop" saves
// it (see Save) and answers the count's increase, the heap allocations, the bytes allocated and the CPU time
// in between. count is what the child counts (calls answered, requests served).
func Commands(count func() int64) func(string) (string, error) {
	var (
		capture   *Capture
		dir, name string
		start     int64
	)
	return func(line string) (string, error) {
		fields := strings.Fields(line)
		switch {
		case len(fields) == 1 && fields[0] == "stats":
			return fmt.Sprintf("%d %d", count(), ProcessCPU().Nanoseconds()), nil
		case len(fields) == 3 && fields[0] == "profile-start":
			c, err := Start()
			if err != nil {
				return "", err
			}
			capture, dir, name, start = c, fields[1], fields[2], count()
			return "ok", nil
		case len(fields) == 1 && fields[0] == "profile-stop" && capture != nil:
			p, err := capture.Stop()
			capture = nil
			if err != nil {
				return "", err
			}
			if err := p.Save(dir, name); err != nil {
				return "", err
			}
			return fmt.Sprintf("%d %d %d %d", count()-start, p.Mallocs, p.Bytes, p.CPUTime.Nanoseconds()), nil
		default:
			return "", fmt.Errorf("unknown command %q", line)
		}
	}
}

// Remote is a profile a child took on its parent's request, with its counts.
type Remote struct {
	Profile
	// Count is the increase of what the child counts.
	Count int64
}

// commander sends a command and returns the answer; proc.Child's Command is one.
type commander interface {
	Command(line string) (string, error)
}

// StartRemote asks child to start profiling itself (see Commands), saving into dir as name.
func StartRemote(child commander, dir, name string) error {
	_, err := child.Command("profile-start " + dir + " " + name)
	return err
}

// StopRemote asks child to stop profiling and loads what it saved in dir as name.
func StopRemote(child commander, dir, name string) (Remote, error) {
	answer, err := child.Command("profile-stop")
	if err != nil {
		return Remote{}, err
	}
	var count, mallocs, bytes, cpu int64
	if _, err := fmt.Sscanf(answer, "%d %d %d %d", &count, &mallocs, &bytes, &cpu); err != nil {
		return Remote{}, fmt.Errorf("prof: profile-stop answered %q: %w", answer, err)
	}
	p, err := Load(dir, name)
	if err != nil {
		return Remote{}, err
	}
	p.Mallocs, p.Bytes, p.CPUTime = uint64(mallocs), uint64(bytes), time.Duration(cpu)
	return Remote{Profile: p, Count: count}, nil
}
