// Package pgserver runs a local PostgreSQL cluster from the installed server binaries, in a directory
// that is kept between runs, for Seam when no database URL is configured and for tests.
//
// The directory (Options.Dir) holds:
//
//	data/                the cluster (PGDATA); its unix socket lives here too
//	data/seam.conf       settings Seam rewrites at every start (address, port, socket, durability)
//	superuser.password   the generated password of the "postgres" superuser (mode 0600)
//	port                 the TCP port, picked at first start when Options.Port is 0
//	server.log           the server's log (rotated to server.log.1 past 8 MiB)
//
// The server listens on 127.0.0.1 only. When the process runs as root, the server runs as the OS user
// "postgres", which then owns the directory.
//
// By default the server is started with pg_ctl and keeps running on its own if Seam dies; the next Start
// on the same directory adopts it. In Ephemeral mode, meant for tests, the postgres process is a direct
// child of this process and, on Linux, the kernel kills it (SIGKILL) when this process dies, so a killed
// test binary does not leave servers behind.
//
// The unix socket is put in the data directory unless that path is too long for a socket (about 100
// bytes) or holds unusual characters; the server then listens on TCP only.
package pgserver

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Options configures Start.
type Options struct {
	// Dir is the cluster directory; it is created and initialised if absent and reused if present.
	Dir string
	// BinDir holds initdb, pg_ctl and postgres; empty searches $PATH (for pg_ctl), then
	// /usr/lib/postgresql/<highest version>/bin, then /usr/local/pgsql/bin.
	BinDir string
	// Port is the TCP port on 127.0.0.1; 0 picks a free port at the first start and keeps it in Dir.
	Port int
	// Ephemeral trades durability for speed (fsync, synchronous_commit and full_page_writes off) and ties
	// the server's life to this process; for throwaway test clusters.
	Ephemeral bool
	// Preload names shared libraries the server loads at start (shared_preload_libraries), such as
	// "pg_stat_statements"; one the installation lacks is left out (Server.Preloaded says which were kept).
	Preload []string
	// Logger receives lifecycle messages; nil discards them.
	Logger *slog.Logger
	// freePort picks a free port; nil uses freePort (tests hand out a taken one).
	freePort func() (int, error)
}

// Server is a running local cluster; Stop it when done.
type Server struct {
	dir, dataDir, binDir, logPath string
	port                          int
	password                      string
	acct                          account
	logger                        *slog.Logger
	preload                       []string
	freePort                      func() (int, error)

	mu      sync.Mutex
	stopped bool
	// child and exited are set in Ephemeral mode, where postgres is this process's child; exited is
	// closed when it has exited.
	child  *exec.Cmd
	exited chan struct{}
}

const (
	superuser       = "postgres"
	defaultDatabase = "seam"
	passwordFile    = "superuser.password"
	portFile        = "port"
	logFile         = "server.log"
	confFile        = "seam.conf"
	// readyTimeout bounds how long Start waits for the server to accept connections.
	readyTimeout = 30 * time.Second
	// stopTimeout bounds pg_ctl stop when the context has no deadline.
	stopTimeout = 60 * time.Second
	// maxLogSize is the log size past which Start rotates the log.
	maxLogSize = 8 << 20
	// maxSocketPath is the longest unix socket path the kernel accepts (sun_path less its NUL).
	maxSocketPath = 107
)

// Start initialises the cluster in o.Dir if needed, starts it (or adopts a server already running on that
// directory), waits until it accepts connections and makes sure database "seam" exists.
func Start(ctx context.Context, o Options) (*Server, error) {
	logger := o.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if o.Dir == "" {
		return nil, errors.New("pgserver: Options.Dir is required")
	}
	if o.Port < 0 || o.Port > 65535 {
		return nil, fmt.Errorf("pgserver: port %d out of range", o.Port)
	}
	binDir, err := findBinDir(o.BinDir)
	if err != nil {
		return nil, err
	}
	acct, err := serverAccount()
	if err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, fmt.Errorf("pgserver: %w", err)
	}
	// Parents are made traversable (0755) for the server's account; the cluster directory is its alone.
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return nil, fmt.Errorf("pgserver: create cluster directory: %w", err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("pgserver: create cluster directory: %w", err)
	}
	if err := acct.own(dir); err != nil {
		return nil, err
	}
	if err := acct.checkTraversable(dir); err != nil {
		return nil, err
	}
	s := &Server{
		dir:      dir,
		dataDir:  filepath.Join(dir, "data"),
		binDir:   binDir,
		logPath:  filepath.Join(dir, logFile),
		acct:     acct,
		logger:   logger.With(slog.String("component", "pgserver")),
		preload:  installedLibraries(binDir, o.Preload),
		freePort: o.freePort,
	}
	if s.freePort == nil {
		s.freePort = freePort
	}
	picked := false
	if s.port, picked, err = s.resolvePort(o.Port); err != nil {
		return nil, err
	}
	if s.password, err = s.ensurePassword(); err != nil {
		return nil, err
	}
	if err := s.ensureCluster(ctx, o.Ephemeral); err != nil {
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		err := s.start(ctx, o.Ephemeral)
		if err == nil {
			break
		}
		// A port picked here was free when picked, but another process may have bound it since.
		if !picked || attempt == pickAttempts || !portTaken(err) {
			return nil, err
		}
		s.logger.Info("the port picked was taken before the server bound it; picking another", slog.Int("port", s.port))
		if s.port, err = s.pickPort(); err != nil {
			return nil, err
		}
	}
	if err := s.ensureDatabase(ctx, defaultDatabase); err != nil {
		stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopTimeout)
		defer cancel()
		return nil, errors.Join(err, s.Stop(stopCtx))
	}
	return s, nil
}

// URL returns the superuser's connection URL for database on this server.
func (s *Server) URL(database string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(superuser, s.password),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)),
		Path:     "/" + database,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// Port returns the TCP port the server listens on.
func (s *Server) Port() int {
	return s.port
}

// Stop shuts the server down (fast mode: open sessions are ended) and waits for it to exit. Calling it
// again after success does nothing.
func (s *Server) Stop(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return nil
	}
	var err error
	if s.child != nil {
		err = s.stopChild(ctx)
	} else {
		err = s.pgCtlStop(ctx)
	}
	if err != nil {
		return err
	}
	s.stopped = true
	s.logger.Info("PostgreSQL stopped", slog.Int("port", s.port))
	return nil
}

// resolvePort returns want when set, else the port kept in the directory, else a free loopback port it
// picks (picked); the result is kept for later runs.
func (s *Server) resolvePort(want int) (port int, picked bool, err error) {
	path := filepath.Join(s.dir, portFile)
	kept := 0
	if b, err := os.ReadFile(path); err == nil {
		kept, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	} else if !errors.Is(err, fs.ErrNotExist) {
		return 0, false, fmt.Errorf("pgserver: read port: %w", err)
	}
	port = want
	if port == 0 {
		port = kept
	}
	if port <= 0 || port > 65535 {
		port, err = s.pickPort()
		return port, true, err
	}
	if port != kept {
		if err := s.keepPort(port); err != nil {
			return 0, false, err
		}
	}
	return port, false, nil
}

// pickAttempts bounds how many ports Start picks when the one it picked is taken before the server binds it.
const pickAttempts = 3

// pickPort picks a free port and keeps it in the directory.
func (s *Server) pickPort() (int, error) {
	port, err := s.freePort()
	if err != nil {
		return 0, err
	}
	return port, s.keepPort(port)
}

// keepPort records port in the directory, for the next starts.
func (s *Server) keepPort(port int) error {
	if err := os.WriteFile(filepath.Join(s.dir, portFile), []byte(strconv.Itoa(port)+"\n"), 0o644); err != nil {
		return fmt.Errorf("pgserver: keep port: %w", err)
	}
	return nil
}

// portTaken reports whether a start failed because the server could not bind its port (as its log says).
func portTaken(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "could not bind") || strings.Contains(msg, "already in use")
}

// freePort returns a loopback port that is free now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgserver: pick a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// ensurePassword returns the superuser password kept in the directory, generating it on first use.
func (s *Server) ensurePassword() (string, error) {
	path := filepath.Join(s.dir, passwordFile)
	b, err := os.ReadFile(path)
	if err == nil && len(bytes.TrimSpace(b)) > 0 {
		return string(bytes.TrimSpace(b)), nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("pgserver: read superuser password: %w", err)
	}
	password := rand.Text()
	if err := os.WriteFile(path, []byte(password+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("pgserver: write superuser password: %w", err)
	}
	if err := s.acct.own(path); err != nil {
		return "", err
	}
	return password, nil
}

// ensureCluster runs initdb unless the data directory already holds a cluster. initdb writes into a
// scratch directory that is renamed into place, so an interrupted initdb is simply redone.
func (s *Server) ensureCluster(ctx context.Context, ephemeral bool) error {
	_, err := os.Stat(filepath.Join(s.dataDir, "PG_VERSION"))
	if err == nil {
		return nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("pgserver: %w", err)
	}
	if entries, err := os.ReadDir(s.dataDir); err == nil && len(entries) > 0 {
		return fmt.Errorf("pgserver: %s is not empty but holds no PostgreSQL cluster (no PG_VERSION); move it away", s.dataDir)
	}
	if err := os.Remove(s.dataDir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("pgserver: %w", err)
	}
	scratch := s.dataDir + ".init"
	if err := os.RemoveAll(scratch); err != nil {
		return fmt.Errorf("pgserver: remove unfinished cluster: %w", err)
	}
	s.logger.Info("initialising PostgreSQL cluster", slog.String("dir", s.dataDir), slog.String("bin_dir", s.binDir))
	args := []string{
		"-D", scratch,
		"--username=" + superuser,
		"--pwfile=" + filepath.Join(s.dir, passwordFile),
		"--auth=scram-sha-256",
		"--encoding=UTF8",
		"--locale=C",
	}
	if ephemeral {
		args = append(args, "--no-sync")
	}
	if out, err := s.command(ctx, "initdb", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("pgserver: initdb: %w\n%s", err, tailLines(out))
	}
	f, err := os.OpenFile(filepath.Join(scratch, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("pgserver: %w", err)
	}
	_, werr := fmt.Fprintf(f, "\n# Seam's settings, rewritten at every start.\ninclude_if_exists = '%s'\n", confFile)
	if err := errors.Join(werr, f.Close()); err != nil {
		return fmt.Errorf("pgserver: extend postgresql.conf: %w", err)
	}
	if err := os.Rename(scratch, s.dataDir); err != nil {
		return fmt.Errorf("pgserver: %w", err)
	}
	return nil
}

// writeConf writes the settings of this run: loopback only, the port, the socket directory and, for
// ephemeral clusters, no durability.
func (s *Server) writeConf(ephemeral bool) error {
	socketDir := s.dataDir
	if len(socketDir)+len("/.s.PGSQL.65535") > maxSocketPath || strings.ContainsAny(socketDir, "',\"\\ \t\n") {
		s.logger.Info("PostgreSQL unix socket disabled: path too long or unusual", slog.String("dir", socketDir))
		socketDir = ""
	}
	var b strings.Builder
	b.WriteString("# Written by Seam at every start; changes here are lost.\n")
	b.WriteString("listen_addresses = '127.0.0.1'\n")
	fmt.Fprintf(&b, "port = %d\n", s.port)
	fmt.Fprintf(&b, "unix_socket_directories = '%s'\n", socketDir)
	b.WriteString("unix_socket_permissions = 0700\n")
	if len(s.preload) > 0 {
		fmt.Fprintf(&b, "shared_preload_libraries = '%s'\n", strings.Join(s.preload, ","))
	}
	if ephemeral {
		b.WriteString("fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n")
	}
	path := filepath.Join(s.dataDir, confFile)
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		return fmt.Errorf("pgserver: write %s: %w", confFile, err)
	}
	return s.acct.own(path)
}

// Preloaded are the libraries of Options.Preload the server was configured to load.
func (s *Server) Preloaded() []string { return slices.Clone(s.preload) }

// installedLibraries keeps the names whose shared library is in the library directory beside binDir (the
// layout of Debian's and of a source installation: <prefix>/bin and <prefix>/lib).
func installedLibraries(binDir string, names []string) []string {
	var kept []string
	for _, name := range names {
		if strings.ContainsAny(name, "/',\\ ") {
			continue
		}
		if _, err := os.Stat(filepath.Join(filepath.Dir(binDir), "lib", name+".so")); err == nil {
			kept = append(kept, name)
		}
	}
	return kept
}

// start starts the server, or adopts one already running on this directory with the same port and mode.
func (s *Server) start(ctx context.Context, ephemeral bool) error {
	if pid, port, ok := s.runningServer(ctx); ok {
		if !ephemeral && port == s.port {
			s.logger.Info("adopting PostgreSQL already running", slog.Int("pid", pid), slog.Int("port", port))
			if err := s.waitReady(ctx, nil); err != nil {
				return fmt.Errorf("pgserver: PostgreSQL already running on this directory (pid %d, port %d): %w", pid, port, err)
			}
			return nil
		}
		s.logger.Info("stopping PostgreSQL left running with other settings", slog.Int("pid", pid), slog.Int("port", port))
		if err := s.pgCtlStop(ctx); err != nil {
			return err
		}
	}
	if err := s.writeConf(ephemeral); err != nil {
		return err
	}
	logStart, err := s.prepareLog()
	if err != nil {
		return err
	}
	s.logger.Info("starting PostgreSQL", slog.Int("port", s.port), slog.Bool("ephemeral", ephemeral))
	if ephemeral {
		err = s.startChild()
	} else {
		err = s.pgCtlStart(ctx)
	}
	if err == nil {
		if err = s.waitReady(ctx, s.exited); err != nil {
			s.abandonStart(ctx)
		}
	}
	if err != nil {
		return fmt.Errorf("pgserver: start PostgreSQL on 127.0.0.1:%d: %w\nserver log %s:\n%s",
			s.port, err, s.logPath, s.logTail(logStart))
	}
	return nil
}

// abandonStart stops a server that started but never accepted connections.
func (s *Server) abandonStart(ctx context.Context) {
	if s.child != nil {
		_ = s.child.Process.Kill()
		<-s.exited
		return
	}
	if err := s.pgCtlStop(context.WithoutCancel(ctx)); err != nil {
		s.logger.Warn("could not stop PostgreSQL after a failed start", slog.Any("error", err))
	}
}

// runningServer reports the postmaster running on the data directory, if any, with its port. The pid
// file of a postmaster that died unreaped is removed, as it would otherwise block the restart.
func (s *Server) runningServer(ctx context.Context) (pid, port int, ok bool) {
	pidFile := filepath.Join(s.dataDir, "postmaster.pid")
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return 0, 0, false
	}
	// postmaster.pid lines: pid, data directory, start time, port, ...
	lines := strings.Split(string(b), "\n")
	if len(lines) < 4 {
		return 0, 0, false
	}
	pid, _ = strconv.Atoi(strings.TrimSpace(lines[0]))
	port, _ = strconv.Atoi(strings.TrimSpace(lines[3]))
	if pid > 0 && isZombie(pid) {
		s.removeLockFiles(pid)
		return 0, 0, false
	}
	if err := s.command(ctx, "pg_ctl", "status", "-D", s.dataDir).Run(); err != nil {
		return 0, 0, false
	}
	return pid, port, true
}

// removeLockFiles removes the lock files (postmaster.pid and the socket's) that the dead postmaster pid
// left in the data directory.
func (s *Server) removeLockFiles(pid int) {
	s.logger.Info("removing the lock files of a dead PostgreSQL server", slog.Int("pid", pid))
	sockets, _ := filepath.Glob(filepath.Join(s.dataDir, ".s.PGSQL.*.lock"))
	for _, path := range append(sockets, filepath.Join(s.dataDir, "postmaster.pid")) {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		first, _, _ := strings.Cut(string(b), "\n")
		if strings.TrimSpace(first) != strconv.Itoa(pid) {
			continue
		}
		if err := os.Remove(path); err != nil {
			s.logger.Warn("could not remove stale lock file", slog.String("file", path), slog.Any("error", err))
		}
	}
}

// prepareLog rotates an oversized log, makes sure the server may write it and returns its size, from
// where this run's lines start.
func (s *Server) prepareLog() (int64, error) {
	if fi, err := os.Stat(s.logPath); err == nil && fi.Size() > maxLogSize {
		if err := os.Rename(s.logPath, s.logPath+".1"); err != nil {
			return 0, fmt.Errorf("pgserver: rotate log: %w", err)
		}
	}
	f, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return 0, fmt.Errorf("pgserver: open log: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("pgserver: open log: %w", err)
	}
	return fi.Size(), s.acct.own(s.logPath)
}

func (s *Server) pgCtlStart(ctx context.Context) error {
	out, err := s.command(ctx, "pg_ctl", "start", "-D", s.dataDir, "-l", s.logPath, "-w",
		"-t", strconv.Itoa(int(readyTimeout/time.Second)), "-s").CombinedOutput()
	if err != nil {
		return fmt.Errorf("pg_ctl start: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

func (s *Server) pgCtlStop(ctx context.Context) error {
	timeout := stopTimeout
	if d, ok := ctx.Deadline(); ok {
		timeout = max(time.Until(d), time.Second)
	}
	out, err := s.command(ctx, "pg_ctl", "stop", "-D", s.dataDir, "-m", "fast", "-w",
		"-t", strconv.Itoa(int(timeout.Round(time.Second)/time.Second)), "-s").CombinedOutput()
	if err == nil {
		return nil
	}
	if _, _, running := s.runningServer(context.WithoutCancel(ctx)); !running {
		return nil
	}
	return fmt.Errorf("pgserver: pg_ctl stop: %w: %s", err, strings.TrimSpace(string(out)))
}

// startChild runs postgres as a direct child that the kernel kills when this process dies.
func (s *Server) startChild() error {
	logf, err := os.OpenFile(s.logPath, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("open log: %w", err)
	}
	defer logf.Close()
	cmd := s.command(context.Background(), "postgres", "-D", s.dataDir)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr.Setpgid = true
	dieWithParent(cmd.SysProcAttr)
	// On Linux the kernel sends the signal when the OS thread that forked the child exits. A fresh goroutine never
	// runs on a thread locked by runtime.LockOSThread, and Go keeps its other threads for the life of
	// the process, so the signal comes only when the process itself dies.
	started := make(chan error, 1)
	go func() { started <- cmd.Start() }()
	if err := <-started; err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	s.child = cmd
	s.exited = make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(s.exited)
	}()
	return nil
}

func (s *Server) stopChild(ctx context.Context) error {
	// SIGINT asks the postmaster for a fast shutdown.
	if err := s.child.Process.Signal(syscall.SIGINT); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("pgserver: signal postgres: %w", err)
	}
	select {
	case <-s.exited:
		return nil
	case <-ctx.Done():
		_ = s.child.Process.Kill()
		<-s.exited
		return fmt.Errorf("pgserver: postgres did not shut down in time, killed it: %w", ctx.Err())
	}
}

// waitReady polls until the server accepts a superuser connection, the deadline passes, or exited closes.
func (s *Server) waitReady(ctx context.Context, exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	cfg, err := pgx.ParseConfig(s.URL("postgres"))
	if err != nil {
		return fmt.Errorf("pgserver: %w", err)
	}
	cfg.ConnectTimeout = 2 * time.Second
	delay := 20 * time.Millisecond
	for {
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err == nil {
			return conn.Close(ctx)
		}
		select {
		case <-exited:
			return errors.New("postgres exited")
		case <-ctx.Done():
			return fmt.Errorf("server not accepting connections: %w (last error: %w)", ctx.Err(), err)
		case <-time.After(delay):
		}
		delay = min(delay*2, 500*time.Millisecond)
	}
}

// ensureDatabase creates database name unless it exists.
func (s *Server) ensureDatabase(ctx context.Context, name string) error {
	conn, err := pgx.Connect(ctx, s.URL("postgres"))
	if err != nil {
		return fmt.Errorf("pgserver: connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return fmt.Errorf("pgserver: look up database %s: %w", name, err)
	}
	if exists {
		return nil
	}
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	if pgErr := (*pgconn.PgError)(nil); errors.As(err, &pgErr) && pgErr.Code == "42P04" {
		return nil // created concurrently
	}
	if err != nil {
		return fmt.Errorf("pgserver: create database %s: %w", name, err)
	}
	s.logger.Info("created database", slog.String("database", name))
	return nil
}

// command prepares one of the server binaries to run as the server's account, in the cluster directory,
// with a minimal environment (no inherited PG* variables).
func (s *Server) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(s.binDir, name), args...)
	cmd.Dir = s.dir
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LC_ALL=C"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.acct.cred}
	return cmd
}

// logTail returns the end of what the server logged since offset.
func (s *Server) logTail(offset int64) string {
	f, err := os.Open(s.logPath)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return "(no log: " + err.Error() + ")"
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	return tailLines(b)
}

// tailLines returns the last lines of out, at most about 4 KiB.
func tailLines(out []byte) string {
	const maxTail = 4 << 10
	if len(out) > maxTail {
		out = out[len(out)-maxTail:]
		if i := bytes.IndexByte(out, '\n'); i >= 0 {
			out = out[i+1:]
		}
	}
	return strings.TrimSpace(string(out))
}
