package pgserver

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// clusterDir returns a fresh directory for a cluster, under a temp dir the server's account can traverse,
// removed when the test ends.
func clusterDir(t *testing.T) string {
	t.Helper()
	parent, err := os.MkdirTemp("", "seam-pgserver-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(parent); err != nil {
			t.Error(err)
		}
	})
	if err := os.Chmod(parent, 0o755); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(parent, "cluster")
}

// realServer skips under -short and runs the test in parallel with the other real-server tests.
func realServer(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a real PostgreSQL server")
	}
	t.Parallel()
}

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// start starts a server and stops it at cleanup (a second Stop is harmless).
func start(t *testing.T, o Options) *Server {
	t.Helper()
	o.Logger = slog.New(slog.NewTextHandler(t.Output(), nil))
	s, err := Start(testContext(t), o)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Stop(context.Background()); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return s
}

func connect(t *testing.T, s *Server, db string) *pgx.Conn {
	t.Helper()
	ctx := testContext(t)
	conn, err := pgx.Connect(ctx, s.URL(db))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

func TestStartQueryStopRestartKeepsDataAndPort(t *testing.T) {
	realServer(t)
	ctx := testContext(t)
	dir := clusterDir(t)

	s := start(t, Options{Dir: dir})
	if s.Port() == 0 {
		t.Fatal("Port() = 0")
	}
	if !strings.HasPrefix(s.URL("seam"), "postgres://postgres:") || !strings.HasSuffix(s.URL("seam"), "@127.0.0.1:"+strconv.Itoa(s.Port())+"/seam?sslmode=disable") {
		t.Errorf("URL = %q", s.URL("seam"))
	}
	conn := connect(t, s, "seam")
	var listen string
	if err := conn.QueryRow(ctx, "SHOW listen_addresses").Scan(&listen); err != nil || listen != "127.0.0.1" {
		t.Errorf("listen_addresses = %q, %v", listen, err)
	}
	var socketDir string
	if err := conn.QueryRow(ctx, "SHOW unix_socket_directories").Scan(&socketDir); err != nil || socketDir != filepath.Join(dir, "data") {
		t.Errorf("unix_socket_directories = %q, %v; want the data directory", socketDir, err)
	}
	var fsync string
	if err := conn.QueryRow(ctx, "SHOW fsync").Scan(&fsync); err != nil || fsync != "on" {
		t.Errorf("fsync = %q, %v; want on for a kept cluster", fsync, err)
	}
	if _, err := conn.Exec(ctx, "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('hello')"); err != nil {
		t.Fatal(err)
	}
	_ = conn.Close(ctx)

	checkPasswordFile(t, dir)

	port := s.Port()
	if err := s.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := s.Stop(ctx); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second); err == nil {
		_ = c.Close()
		t.Fatal("server still accepts connections after Stop")
	}

	s2 := start(t, Options{Dir: dir})
	if s2.Port() != port {
		t.Errorf("port after restart = %d, want the kept %d", s2.Port(), port)
	}
	var v string
	if err := connect(t, s2, "seam").QueryRow(ctx, "SELECT v FROM kept").Scan(&v); err != nil || v != "hello" {
		t.Errorf("after restart: v = %q, %v", v, err)
	}
}

func checkPasswordFile(t *testing.T, dir string) {
	t.Helper()
	fi, err := os.Stat(filepath.Join(dir, passwordFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("password file mode = %v, want 0600", fi.Mode().Perm())
	}
	if os.Geteuid() == 0 {
		u, err := user.Lookup(serverUserName)
		if err != nil {
			t.Fatal(err)
		}
		if got := strconv.Itoa(int(fi.Sys().(*syscall.Stat_t).Uid)); got != u.Uid {
			t.Errorf("password file owner uid = %s, want %s (%s)", got, u.Uid, serverUserName)
		}
	}
}

func TestRestartAfterCrash(t *testing.T) {
	realServer(t)
	ctx := testContext(t)
	dir := clusterDir(t)
	s := start(t, Options{Dir: dir})
	if _, err := connect(t, s, "seam").Exec(ctx, "CREATE TABLE survived (v int); INSERT INTO survived VALUES (42)"); err != nil {
		t.Fatal(err)
	}

	pid := postmasterPID(t, dir)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitGone(t, pid)

	s2 := start(t, Options{Dir: dir})
	if s2.Port() != s.Port() {
		t.Errorf("port = %d, want %d", s2.Port(), s.Port())
	}
	var v int
	if err := connect(t, s2, "seam").QueryRow(ctx, "SELECT v FROM survived").Scan(&v); err != nil || v != 42 {
		t.Errorf("after crash: v = %d, %v", v, err)
	}
	if postmasterPID(t, dir) == pid {
		t.Error("restart reused the killed postmaster's pid file")
	}
}

func TestStartAdoptsRunningServer(t *testing.T) {
	realServer(t)
	ctx := testContext(t)
	dir := clusterDir(t)
	s := start(t, Options{Dir: dir})
	pid := postmasterPID(t, dir)

	// As after a crash of the process that started it: the server is still running.
	s2 := start(t, Options{Dir: dir})
	if got := postmasterPID(t, dir); got != pid {
		t.Errorf("postmaster pid = %d, want the running %d", got, pid)
	}
	if err := connect(t, s2, "seam").Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s2.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(ctx); err != nil {
		t.Errorf("Stop of a server already stopped elsewhere: %v", err)
	}
}

func TestEphemeral(t *testing.T) {
	realServer(t)
	ctx := testContext(t)
	dir := clusterDir(t)
	s := start(t, Options{Dir: dir, Ephemeral: true})
	conn := connect(t, s, "seam")
	for _, name := range []string{"fsync", "synchronous_commit", "full_page_writes"} {
		var v string
		if err := conn.QueryRow(ctx, "SHOW "+name).Scan(&v); err != nil || v != "off" {
			t.Errorf("%s = %q, %v; want off", name, v, err)
		}
	}
	pid := postmasterPID(t, dir)
	if s.child == nil || s.child.Process.Pid != pid {
		t.Errorf("ephemeral postmaster %d is not this process's child", pid)
	}
	_ = conn.Close(ctx)
	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(ctx); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "postmaster.pid")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("postmaster.pid after Stop: %v", err)
	}
}

func TestPreloadKeepsInstalledLibrariesOnly(t *testing.T) {
	realServer(t)
	ctx := testContext(t)
	s := start(t, Options{Dir: clusterDir(t), Ephemeral: true, Preload: []string{"pg_stat_statements", "no_such_library"}})
	want := ""
	if _, err := os.Stat(filepath.Join(filepath.Dir(s.binDir), "lib", "pg_stat_statements.so")); err == nil {
		want = "pg_stat_statements"
	}
	if got := strings.Join(s.Preloaded(), ","); got != want {
		t.Errorf("Preloaded() = %q, want %q", got, want)
	}
	conn := connect(t, s, "seam")
	defer func() { _ = conn.Close(ctx) }()
	var loaded string
	if err := conn.QueryRow(ctx, "SHOW shared_preload_libraries").Scan(&loaded); err != nil || loaded != want {
		t.Errorf("shared_preload_libraries = %q, %v; want %q", loaded, err, want)
	}
}

func TestLongPathServesOverTCPOnly(t *testing.T) {
	realServer(t)
	ctx := testContext(t)
	dir := filepath.Join(clusterDir(t), strings.Repeat("a-rather-long-directory-name/", 4), "cluster")
	s := start(t, Options{Dir: dir, Ephemeral: true})
	var socketDir string
	if err := connect(t, s, "seam").QueryRow(ctx, "SHOW unix_socket_directories").Scan(&socketDir); err != nil || socketDir != "" {
		t.Errorf("unix_socket_directories = %q, %v; want none for a path too long for a socket", socketDir, err)
	}
}

// takenPort returns a loopback port this test holds bound until it ends.
func takenPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l.Addr().(*net.TCPAddr).Port
}

func TestStartFailsWhenPortTaken(t *testing.T) {
	realServer(t)
	port := takenPort(t)
	_, err := Start(testContext(t), Options{Dir: clusterDir(t), Port: port, Ephemeral: true})
	if err == nil {
		t.Fatal("Start on a taken port succeeded")
	}
	if !strings.Contains(err.Error(), "could not bind") && !strings.Contains(err.Error(), "in use") {
		t.Errorf("error does not carry the server log's reason: %v", err)
	}
}

func TestStartPicksAnotherPortWhenThePickedOneIsTaken(t *testing.T) {
	realServer(t)
	taken := takenPort(t)
	picks := 0
	pick := func() (int, error) {
		picks++
		if picks == 1 {
			return taken, nil // free when picked, bound by someone else before the server starts
		}
		return freePort()
	}
	s := start(t, Options{Dir: clusterDir(t), Ephemeral: true, freePort: pick})
	if s.Port() == taken || picks != 2 {
		t.Fatalf("port %d after %d picks; want another port than the taken %d, on the second pick", s.Port(), picks, taken)
	}
	conn := connect(t, s, "seam")
	_ = conn.Close(testContext(t))
}

func TestMissingBinaries(t *testing.T) {
	_, err := Start(context.Background(), Options{Dir: filepath.Join(t.TempDir(), "c"), BinDir: t.TempDir()})
	if !errors.Is(err, ErrNoServerBinaries) {
		t.Fatalf("err = %v, want ErrNoServerBinaries", err)
	}
	for _, hint := range []string{"apt-get install -y postgresql", "SEAM_DATABASE_URL"} {
		if !strings.Contains(err.Error(), hint) {
			t.Errorf("error lacks %q: %v", hint, err)
		}
	}
}

func TestUntraversableParent(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("only root hands the server to another OS user")
	}
	if _, err := findBinDir(""); err != nil {
		t.Skip(err)
	}
	closed := filepath.Join(t.TempDir(), "closed")
	if err := os.Mkdir(closed, 0o700); err != nil {
		t.Fatal(err)
	}
	_, err := Start(context.Background(), Options{Dir: filepath.Join(closed, "cluster")})
	if err == nil || !strings.Contains(err.Error(), closed) || !strings.Contains(err.Error(), "not traversable") {
		t.Fatalf("err = %v, want one naming %s as not traversable", err, closed)
	}
}

func TestCompareVersions(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{{"15", "9.6", 1}, {"9.6", "15", -1}, {"16", "16", 0}, {"10", "9", 1}} {
		got := compareVersions(c.a, c.b)
		if (got > 0) != (c.want > 0) || (got < 0) != (c.want < 0) {
			t.Errorf("compareVersions(%q, %q) = %d, want sign of %d", c.a, c.b, got, c.want)
		}
	}
}

func postmasterPID(t *testing.T, dir string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "data", "postmaster.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// waitGone waits until pid has exited.
func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !processGone(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("process %d still alive", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func processGone(pid int) bool {
	return syscall.Kill(pid, 0) != nil || isZombie(pid)
}
