// Package harness starts real Seam processes for end-to-end tests: it builds a binary once per test run,
// runs it with a throwaway data directory and free ports, waits until it is ready, and stops (or kills) it.
package harness

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/seamkit/seam/test/ports"
)

// RepoRoot returns the repository root (the directory holding go.mod) above the working directory.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("harness: no go.mod above the working directory")
		}
		dir = parent
	}
}

var (
	buildMu  sync.Mutex
	binaries = map[string]string{}
	binDir   string
)

// Build compiles the main package at pkg (e.g. "./cmd/monolith") once per test binary and returns its path.
func Build(t testing.TB, pkg string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if bin, ok := binaries[pkg]; ok {
		return bin
	}
	if binDir == "" {
		dir, err := os.MkdirTemp("", "seam-bin-")
		if err != nil {
			t.Fatal(err)
		}
		binDir = dir
	}
	bin := filepath.Join(binDir, strings.ReplaceAll(strings.Trim(pkg, "./"), "/", "-"))
	cmd := exec.Command("go", "build", "-o", bin, pkg)
	cmd.Dir = RepoRoot(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("harness: go build %s: %v\n%s", pkg, err, out)
	}
	binaries[pkg] = bin
	return bin
}

// Cleanup removes the built binaries; call it from TestMain after m.Run.
func Cleanup() {
	buildMu.Lock()
	defer buildMu.Unlock()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
}

// FreePort reserves a loopback TCP port for the rest of the test (see ports.Reserve) and returns it.
func FreePort(t testing.TB) int {
	t.Helper()
	port, release, err := ports.Reserve()
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	t.Cleanup(release)
	return port
}

// DataDir makes a data directory that the postgres OS user can reach (the local database runs as that user
// when tests run as root); it is removed when the test ends.
func DataDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "seam-data-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stopLeftoverPostgres(filepath.Join(dir, "postgres"))
		_ = os.RemoveAll(dir)
	})
	return dir
}

// stopLeftoverPostgres stops a local PostgreSQL that a killed Seam process left running in dir (its
// postmaster.pid names it), so no test leaves a server behind.
func stopLeftoverPostgres(dir string) {
	data, err := os.ReadFile(filepath.Join(dir, "postmaster.pid"))
	if err != nil {
		return
	}
	first, _, _ := strings.Cut(string(data), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil || pid <= 0 {
		return
	}
	_ = syscall.Kill(pid, syscall.SIGQUIT)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) && syscall.Kill(pid, 0) == nil {
		time.Sleep(20 * time.Millisecond)
	}
}

// Process is a running Seam binary.
type Process struct {
	t       testing.TB
	bin     string
	env     []string
	cmd     *exec.Cmd
	logs    *syncBuffer
	BaseURL string
	exited  chan struct{}
	// lastExit is the exit code of the run Restart stopped.
	lastExit int
}

// Options says how to run a process.
type Options struct {
	// Binary is the built binary to run.
	Binary string
	// Env holds extra SEAM_* settings (KEY=VALUE); HTTP address and data dir are set by Start unless given.
	Env []string
	// DataDir is the process's data directory; empty makes a fresh one.
	DataDir string
}

// Start runs the binary and waits until /readyz answers 200; the process is stopped when the test ends.
func Start(t testing.TB, o Options) *Process {
	t.Helper()
	if o.DataDir == "" {
		o.DataDir = DataDir(t)
	}
	port := FreePort(t)
	env := append(os.Environ(),
		"SEAM_HTTP_ADDR=127.0.0.1:"+fmt.Sprint(port),
		"SEAM_DATA_DIR="+o.DataDir,
		"SEAM_BUS_PORT=-1",
	)
	env = append(env, o.Env...)
	p := &Process{t: t, bin: o.Binary, env: env, BaseURL: fmt.Sprintf("http://127.0.0.1:%d", port)}
	p.start()
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("harness: log of %s (%s):\n%s", filepath.Base(p.bin), p.BaseURL, tail(p.Logs(), maxLoggedBytes))
		}
	})
	return p
}

// maxLoggedBytes bounds how much of a process's log a failed test prints.
const maxLoggedBytes = 16 << 10

// tail returns the last n bytes of s, starting at a line.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[len(s)-n:]
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return "...\n" + s
}

func (p *Process) start() {
	p.t.Helper()
	p.logs = &syncBuffer{}
	p.cmd = exec.Command(p.bin)
	p.cmd.Env = p.env
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		p.t.Fatalf("harness: start %s: %v", p.bin, err)
	}
	p.exited = make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(p.exited) }()
	p.WaitReady(3 * time.Minute)
}

// WaitReady polls /readyz until it answers 200, failing the test (with the process log) at the deadline
// or if the process exits.
func (p *Process) WaitReady(timeout time.Duration) {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	client := &http.Client{Timeout: 2 * time.Second}
	for time.Now().Before(deadline) {
		select {
		case <-p.exited:
			p.t.Fatalf("harness: %s exited before it was ready:\n%s", p.bin, p.Logs())
		default:
		}
		resp, err := client.Get(p.BaseURL + "/readyz")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.t.Fatalf("harness: %s not ready after %s:\n%s", p.bin, timeout, p.Logs())
}

// Stop sends SIGTERM and waits for a clean exit (killing it after a minute); safe to call twice.
func (p *Process) Stop() {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(time.Minute):
		_ = p.cmd.Process.Kill()
		<-p.exited
		p.t.Errorf("harness: %s did not stop within a minute of SIGTERM:\n%s", p.bin, p.Logs())
	}
}

// ExitCode waits for the process to exit and returns its exit code.
func (p *Process) ExitCode() int {
	<-p.exited
	return p.cmd.ProcessState.ExitCode()
}

// ExitCodeOfLastStop returns the exit code of the run that Restart stopped.
func (p *Process) ExitCodeOfLastStop() int { return p.lastExit }

// Restart stops the process gracefully and starts it again with the same settings and data directory,
// plus extra settings (KEY=VALUE) that win over the earlier ones from now on.
func (p *Process) Restart(extra ...string) {
	p.t.Helper()
	p.Stop()
	p.lastExit = p.ExitCode()
	p.env = append(p.env, extra...)
	p.start()
}

// Logs returns everything the process has written so far.
func (p *Process) Logs() string { return p.logs.String() }

// Wait polls cond until it returns true, failing the test at the deadline with what last returned.
func Wait(t testing.TB, timeout time.Duration, what string, cond func(ctx context.Context) (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		ok, err := cond(ctx)
		cancel()
		if ok {
			return
		}
		last = err
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("harness: timed out after %s waiting for %s (last error: %v)", timeout, what, last)
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Signal sends sig to the running process without waiting: SIGKILL for a crash, SIGTERM for a graceful
// stop observed from outside (ExitCode then waits for it).
func (p *Process) Signal(sig os.Signal) error {
	if err := p.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("harness: signal %s: %w", p.bin, err)
	}
	return nil
}
