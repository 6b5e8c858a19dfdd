// Package proc runs the processes a benchmark measures: copies of the benchmark program in a child role
// (peer servers, the bare HTTP handler), driven over their standard input and output, and other binaries
// (Seam's) waited for until they are ready; and it reads their CPU time and memory from /proc.
package proc

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// RoleEnv names the variable that makes the benchmark program run a child role instead of the suite; it
// holds the JSON of a Spec.
const RoleEnv = "SEAMBENCH_CHILD"

// Spec tells a child what to run.
type Spec struct {
	// Role names the child's job, e.g. "remote-server".
	Role string `json:"role"`
	// Params are the role's parameters.
	Params map[string]string `json:"params,omitempty"`
}

// ChildSpec returns the Spec this process was started with as a child, and whether it was.
func ChildSpec() (Spec, bool, error) {
	raw, ok := os.LookupEnv(RoleEnv)
	if !ok {
		return Spec{}, false, nil
	}
	var s Spec
	if err := json.Unmarshal([]byte(raw), &s); err != nil {
		return Spec{}, true, fmt.Errorf("proc: %s: %w", RoleEnv, err)
	}
	return s, true, nil
}

// Child is a copy of this program running a role, answering commands one line at a time.
type Child struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  *bufio.Scanner
	mu     sync.Mutex
	exited chan struct{}
	// Addr is what the child announced when it became ready (e.g. its listen address).
	Addr string
}

// readyTimeout bounds how long a child may take to announce that it is ready.
const readyTimeout = 30 * time.Second

// Spawn starts this program's executable as a child running spec, with env added to this process's
// environment, and waits until it announces it is ready. Its standard error goes to stderr; it dies with
// this process (SIGKILL on Linux).
func Spawn(ctx context.Context, spec Spec, env []string, stderr io.Writer) (*Child, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("proc: %w", err)
	}
	raw, err := json.Marshal(spec)
	if err != nil {
		return nil, fmt.Errorf("proc: %w", err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(append(os.Environ(), env...), RoleEnv+"="+string(raw))
	cmd.Stderr = stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("proc: %w", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("proc: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("proc: start child %s: %w", spec.Role, err)
	}
	c := &Child{cmd: cmd, stdin: stdin, lines: bufio.NewScanner(stdout), exited: make(chan struct{})}
	ready := make(chan error, 1)
	go func() {
		if !c.lines.Scan() {
			ready <- fmt.Errorf("proc: child %s exited before it was ready: %w", spec.Role, errors.Join(c.lines.Err(), io.ErrUnexpectedEOF))
			return
		}
		addr, ok := strings.CutPrefix(c.lines.Text(), "ready ")
		if !ok {
			ready <- fmt.Errorf("proc: child %s said %q instead of ready", spec.Role, c.lines.Text())
			return
		}
		c.Addr = addr
		ready <- nil
	}()
	go func() { _ = cmd.Wait(); close(c.exited) }()
	timer := time.NewTimer(readyTimeout)
	defer timer.Stop()
	select {
	case err = <-ready:
	case <-timer.C:
		err = fmt.Errorf("proc: child %s not ready within %s", spec.Role, readyTimeout)
	case <-ctx.Done():
		err = fmt.Errorf("proc: child %s: %w", spec.Role, ctx.Err())
	}
	if err != nil {
		c.Stop()
		return nil, err
	}
	return c, nil
}

// Pid is the child's process id.
func (c *Child) Pid() int { return c.cmd.Process.Pid }

// Command sends one command line and returns the child's one-line answer; an answer starting "error " is
// returned as an error.
func (c *Child) Command(line string) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, err := io.WriteString(c.stdin, line+"\n"); err != nil {
		return "", fmt.Errorf("proc: command %q: %w", line, err)
	}
	if !c.lines.Scan() {
		return "", fmt.Errorf("proc: command %q: the child closed its output: %w", line, errors.Join(c.lines.Err(), io.ErrUnexpectedEOF))
	}
	answer := c.lines.Text()
	if msg, failed := strings.CutPrefix(answer, "error "); failed {
		return "", fmt.Errorf("proc: command %q: %s", line, msg)
	}
	return answer, nil
}

// stopTimeout bounds how long a child may take to exit once its input is closed.
const stopTimeout = 10 * time.Second

// Stop closes the child's input, which asks it to exit, and kills it if it has not within stopTimeout.
func (c *Child) Stop() {
	_ = c.stdin.Close()
	select {
	case <-c.exited:
	case <-time.After(stopTimeout):
		_ = c.cmd.Process.Kill()
		<-c.exited
	}
}

// Serve is the child's side: it announces addr as ready on standard output, then answers each command line
// read from standard input with handle's one-line result (or "error <message>") until the input closes.
func Serve(addr string, handle func(cmd string) (string, error)) error {
	out := bufio.NewWriter(os.Stdout)
	if _, err := fmt.Fprintf(out, "ready %s\n", addr); err != nil {
		return fmt.Errorf("proc: announce: %w", err)
	}
	if err := out.Flush(); err != nil {
		return fmt.Errorf("proc: announce: %w", err)
	}
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		answer, err := handle(in.Text())
		if err != nil {
			answer = "error " + strings.ReplaceAll(err.Error(), "\n", " ")
		}
		if _, err := fmt.Fprintln(out, answer); err != nil {
			return fmt.Errorf("proc: answer: %w", err)
		}
		if err := out.Flush(); err != nil {
			return fmt.Errorf("proc: answer: %w", err)
		}
	}
	if err := in.Err(); err != nil {
		return fmt.Errorf("proc: read commands: %w", err)
	}
	return nil
}
