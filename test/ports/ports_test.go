package ports

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

func TestReserveGivesABindablePortOutsideTheEphemeralRange(t *testing.T) {
	lo, hi := portRange()
	seen := map[int]bool{}
	for range 20 {
		port, release, err := Reserve()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(release)
		if port < lo || port >= hi {
			t.Fatalf("port %d outside [%d, %d)", port, lo, hi)
		}
		if seen[port] {
			t.Fatalf("port %d given twice", port)
		}
		seen[port] = true
		if _, err := os.Stat(filepath.Join(os.TempDir(), "seam-test-ports", strconv.Itoa(port))); err != nil {
			t.Errorf("port %d has no lock: %v", port, err)
		}
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			t.Fatalf("port %d is not free: %v", port, err)
		}
		_ = ln.Close()
	}
	port, release, err := Reserve()
	if err != nil {
		t.Fatal(err)
	}
	release()
	if _, err := os.Stat(filepath.Join(os.TempDir(), "seam-test-ports", strconv.Itoa(port))); !os.IsNotExist(err) {
		t.Errorf("port %d's lock outlived its release: %v", port, err)
	}
}

func TestRemoveStaleTakesOnlyLocksOfGoneProcesses(t *testing.T) {
	dir := t.TempDir()
	live, gone := filepath.Join(dir, "live"), filepath.Join(dir, "gone")
	if err := os.WriteFile(live, []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		t.Fatal(err)
	}
	// A pid above the kernel's pid_max (4194304 at most) belongs to no process.
	if err := os.WriteFile(gone, []byte("999999999"), 0o644); err != nil {
		t.Fatal(err)
	}
	removeStale(live)
	removeStale(gone)
	if _, err := os.Stat(live); err != nil {
		t.Errorf("a live process's lock was removed: %v", err)
	}
	if _, err := os.Stat(gone); !os.IsNotExist(err) {
		t.Errorf("a gone process's lock was kept: %v", err)
	}
}
