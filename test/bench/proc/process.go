package proc

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/seamkit/seam/test/ports"
)

// Process is a running binary that serves HTTP and answers GET /readyz when it is ready, such as a Seam
// process.
type Process struct {
	// Name says which process it is, for messages.
	Name string
	// BaseURL is where it serves HTTP, e.g. http://127.0.0.1:8080.
	BaseURL string
	// LogPath is the file its standard output and error go to.
	LogPath string
	// Ready is how long it took from exec to the first 200 from /readyz.
	Ready  time.Duration
	cmd    *exec.Cmd
	log    *os.File
	exited chan struct{}
}

// readyPoll is how often a starting process's /readyz is polled: often, since start-to-ready is measured.
const readyPoll = 5 * time.Millisecond

// StartProcess runs bin with env (added to this process's environment), its output in logPath, and waits up
// to timeout for baseURL's /readyz to answer 200. The process dies with this one (SIGKILL on Linux).
func StartProcess(ctx context.Context, name, bin string, env []string, baseURL, logPath string, timeout time.Duration) (*Process, error) {
	log, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("proc: %s: %w", name, err)
	}
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	p := &Process{Name: name, BaseURL: baseURL, LogPath: logPath, cmd: cmd, log: log, exited: make(chan struct{})}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		_ = log.Close()
		return nil, fmt.Errorf("proc: start %s: %w", name, err)
	}
	go func() { _ = cmd.Wait(); close(p.exited) }()
	if err := p.waitReady(ctx, timeout); err != nil {
		p.Kill()
		return nil, err
	}
	p.Ready = time.Since(start)
	return p, nil
}

func (p *Process) waitReady(ctx context.Context, timeout time.Duration) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-p.exited:
			return fmt.Errorf("proc: %s exited before it was ready (log: %s)", p.Name, p.LogPath)
		case <-ctx.Done():
			return fmt.Errorf("proc: %s: %w", p.Name, ctx.Err())
		default:
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.BaseURL+"/readyz", nil)
		if err != nil {
			return fmt.Errorf("proc: %s: %w", p.Name, err)
		}
		if resp, err := client.Do(req); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(readyPoll)
	}
	return fmt.Errorf("proc: %s not ready within %s (log: %s)", p.Name, timeout, p.LogPath)
}

// Pid is the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// processStopTimeout bounds a graceful stop before the process is killed.
const processStopTimeout = time.Minute

// Stop sends SIGTERM and waits for the process to exit, killing it after processStopTimeout; it returns
// how long the graceful stop took, or an error when the process had to be killed or exited with a failure.
func (p *Process) Stop() (time.Duration, error) {
	defer func() { _ = p.log.Close() }()
	select {
	case <-p.exited:
		return 0, p.exitError()
	default:
	}
	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return 0, fmt.Errorf("proc: stop %s: %w", p.Name, err)
	}
	select {
	case <-p.exited:
		return time.Since(start), p.exitError()
	case <-time.After(processStopTimeout):
		p.Kill()
		return time.Since(start), fmt.Errorf("proc: %s did not stop within %s of SIGTERM (log: %s)", p.Name, processStopTimeout, p.LogPath)
	}
}

func (p *Process) exitError() error {
	if st := p.cmd.ProcessState; st != nil && !st.Success() {
		return fmt.Errorf("proc: %s exited with %s (log: %s)", p.Name, st, p.LogPath)
	}
	return nil
}

// Kill kills the process at once and waits for it.
func (p *Process) Kill() {
	_ = p.cmd.Process.Kill()
	<-p.exited
	_ = p.log.Close()
}

// FreePort reserves a loopback TCP port until this process exits (see ports.Reserve) and returns it.
func FreePort() (int, error) {
	port, _, err := ports.Reserve()
	if err != nil {
		return 0, fmt.Errorf("proc: free port: %w", err)
	}
	return port, nil
}
