package harness

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
	"testing"
)

// portSpan is how many ports below the kernel's ephemeral range FreePort chooses from.
const portSpan = 12000

// FreePort reserves a loopback TCP port for the rest of the test and returns it. The port is free now and
// stays out of other hands until the process the test gives it to binds it: it lies below the kernel's
// ephemeral range, so no outgoing connection is given it meanwhile, and a lock file under the system's
// temporary directory keeps other test processes of the same machine from choosing it too.
func FreePort(t testing.TB) int {
	t.Helper()
	lo, hi := portRange()
	dir := filepath.Join(os.TempDir(), "seam-test-ports")
	if err := os.MkdirAll(dir, 0o777); err != nil {
		t.Fatalf("harness: port locks: %v", err)
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
			t.Fatalf("harness: port lock: %v", err)
		}
		_, err = f.WriteString(strconv.Itoa(os.Getpid()))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			t.Fatalf("harness: port lock: %v", err)
		}
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			_ = os.Remove(lock)
			continue
		}
		_ = ln.Close()
		t.Cleanup(func() { _ = os.Remove(lock) })
		return port
	}
	t.Fatalf("harness: no free port in [%d, %d)", lo, hi)
	return 0
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
