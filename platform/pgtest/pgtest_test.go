package pgtest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { Main(m) }

func TestNewDatabaseIsFreshAndDroppedAtCleanup(t *testing.T) {
	ctx := context.Background()
	var first string
	t.Run("first", func(t *testing.T) {
		pool := NewPool(t)
		if err := pool.QueryRow(ctx, "SELECT current_database()").Scan(&first); err != nil {
			t.Fatal(err)
		}
		if _, err := pool.Exec(ctx, "CREATE TABLE t (v int)"); err != nil {
			t.Fatal(err)
		}
	})
	pool := NewPool(t)
	var second string
	if err := pool.QueryRow(ctx, "SELECT current_database()").Scan(&second); err != nil {
		t.Fatal(err)
	}
	if second == first || first == "" {
		t.Fatalf("databases %q and %q: want two different ones", first, second)
	}
	var tables int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").Scan(&tables); err != nil || tables != 0 {
		t.Errorf("fresh database holds %d tables, %v", tables, err)
	}
	var exists bool
	if err := pool.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", first).Scan(&exists); err != nil || exists {
		t.Errorf("database %s still exists after its test ended (%v)", first, err)
	}
	var fsync string
	if err := pool.QueryRow(ctx, "SHOW fsync").Scan(&fsync); err != nil || fsync != "off" {
		t.Errorf("fsync = %q, %v; want an ephemeral cluster", fsync, err)
	}
}

func TestNewDatabaseURLIsUsable(t *testing.T) {
	url := NewDatabase(t)
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var super bool
	if err := conn.QueryRow(context.Background(), "SELECT rolsuper FROM pg_roles WHERE rolname = current_user").Scan(&super); err != nil || !super {
		t.Errorf("connected as superuser = %v, %v", super, err)
	}
}

// helperEnv makes the test binary act as a test binary that is killed while its cluster runs.
const helperEnv = "SEAM_PGTEST_KILLED_BINARY"

func TestKilledBinaryLeavesNoServer(t *testing.T) {
	if os.Getenv(helperEnv) == "1" {
		NewDatabase(t)
		fmt.Printf("cluster %s\n", shared.dir)
		// Hold the cluster until killed (or until the parent test goes away and closes stdin).
		_, _ = io.Copy(io.Discard, os.Stdin)
		return
	}
	if testing.Short() {
		t.Skip("starts a real PostgreSQL server")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestKilledBinaryLeavesNoServer$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var dir string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if d, ok := strings.CutPrefix(sc.Text(), "cluster "); ok {
			dir = d
			break
		}
	}
	if dir == "" {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatal("helper did not report its cluster")
	}
	postmaster := pidIn(filepath.Join(dir, "cluster", "data", "postmaster.pid"))
	if postmaster == 0 {
		t.Fatal("no postmaster pid")
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()

	deadline := time.Now().Add(30 * time.Second)
	for alive(postmaster) && !zombie(postmaster) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(postmaster, syscall.SIGKILL)
			t.Fatalf("postmaster %d outlived its killed test binary", postmaster)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The next cluster start sweeps the abandoned directory (once the dead postmaster is reaped).
	deadline = time.Now().Add(30 * time.Second)
	for {
		removeAbandoned()
		if _, err := os.Stat(dir); os.IsNotExist(err) {
			break
		}
		if time.Now().After(deadline) {
			_ = os.RemoveAll(dir)
			t.Fatalf("abandoned %s was not removed", dir)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func zombie(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(b), ')')
	return i >= 0 && len(b) > i+2 && b[i+2] == 'Z'
}
