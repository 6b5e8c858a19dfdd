// Package ports hands out loopback TCP ports to the processes tests and benchmarks start, so that processes
// of one machine never pick the same port at the same time.
package ports

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// portSpan is how many ports below the kernel's ephemeral range Reserve chooses from.
const portSpan = 12000

// Reserve reserves a loopback TCP port and returns it, with the function that gives it back. The port is
// free now and stays out of other hands until the process it is given to binds it: it lies below the
// kernel's ephemeral range, so no outgoing connection is given it meanwhile, and a lock file under the
// system's temporary directory, holding this process's pid, keeps other processes from reserving it too
// (until released, or this process has gone).
func Reserve() (port int, release func(), err error) {
	lo, hi := portRange()
	dir := filepath.Join(os.TempDir(), "seam-test-ports")
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return 0, nil, fmt.Errorf("ports: locks: %w", err)
	}
	for range 1000 {
		port := lo + rand.IntN(hi-lo)
		lock := filepath.Join(dir, strconv.Itoa(port))
		f, err := os.OpenFile(lock, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if errors.Is(err, fs.ErrExist) {
			removeStale(lock)
			continue
		}
		if err != nil {
			return 0, nil, fmt.Errorf("ports: lock: %w", err)
		}
		_, err = f.WriteString(strconv.Itoa(os.Getpid()))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			_ = os.Remove(lock)
			return 0, nil, fmt.Errorf("ports: lock: %w", err)
		}
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			_ = os.Remove(lock)
			continue
		}
		_ = ln.Close()
		return port, func() { _ = os.Remove(lock) }, nil
	}
	return 0, nil, fmt.Errorf("ports: no free port in [%d, %d)", lo, hi)
}

// removeStale removes the port lock at path if the process that wrote it has gone (a test run that was
// killed), so that its port can be chosen again.
func removeStale(path string) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil || pid <= 0 {
		return
	}
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		_ = os.Remove(path)
	}
}

// portRange is the span of ports just below the kernel's ephemeral range (Linux's default when unknown).
func portRange() (lo, hi int) {
	hi = 32768
	if raw, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if fields := strings.Fields(string(raw)); len(fields) == 2 {
			if n, err := strconv.Atoi(fields[0]); err == nil && n > 2048 {
				hi = n
			}
		}
	}
	return max(1024, hi-portSpan), hi
}
