package fault

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/seamkit/seam/modules/auth"
	"github.com/seamkit/seam/modules/billing"
	"github.com/seamkit/seam/modules/notifications"
	"github.com/seamkit/seam/modules/reporting"
	"github.com/seamkit/seam/platform/app"
	"github.com/seamkit/seam/platform/bus"
	"github.com/seamkit/seam/test/harness"
)

// natsServer is a standalone nats-server process with JetStream, restartable on the same store and port.
type natsServer struct {
	t    *testing.T
	bin  string
	conf string
	addr string
	cmd  *exec.Cmd
	done chan struct{}
}

// startNATS builds nats-server from the module's pinned version, configures it with JetStream (every write
// synced), a fixed loopback port and the authorization block Seam's modules need, and starts it.
func startNATS(t *testing.T, secret string) *natsServer {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "nats-server")
	build := exec.Command("go", "build", "-o", bin, "github.com/nats-io/nats-server/v2")
	build.Dir = harness.RepoRoot(t)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build nats-server: %v\n%s", err, out)
	}
	cfg, err := app.LoadConfig("", []string{"SEAM_BUS_CREDENTIALS_SECRET=" + secret})
	if err != nil {
		t.Fatal(err)
	}
	decls, err := app.Declarations(cfg, auth.Module, billing.Module, notifications.Module, reporting.Module)
	if err != nil {
		t.Fatal(err)
	}
	block, err := bus.AuthorizationConfig(decls, secret)
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	conf := filepath.Join(dir, "nats.conf")
	text := fmt.Sprintf("listen: %s\njetstream {\n  store_dir: %q\n  sync_interval: always\n}\n%s",
		addr, filepath.Join(dir, "js"), block)
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	n := &natsServer{t: t, bin: bin, conf: conf, addr: addr}
	n.start()
	t.Cleanup(func() { n.stop(syscall.SIGTERM) })
	return n
}

func (n *natsServer) start() {
	n.t.Helper()
	n.cmd = exec.Command(n.bin, "-c", n.conf)
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := n.cmd.Start(); err != nil {
		n.t.Fatalf("start nats-server: %v", err)
	}
	n.done = make(chan struct{})
	go func() { _ = n.cmd.Wait(); close(n.done) }()
	harness.Wait(n.t, 30*time.Second, "nats-server to listen", func(context.Context) (bool, error) {
		c, err := net.DialTimeout("tcp", n.addr, time.Second)
		if err != nil {
			return false, err
		}
		return true, c.Close()
	})
}

// stop signals the server (SIGTERM: graceful; SIGKILL: a crash) and waits for it to exit.
func (n *natsServer) stop(sig syscall.Signal) {
	select {
	case <-n.done:
		return
	default:
	}
	_ = n.cmd.Process.Signal(sig)
	select {
	case <-n.done:
	case <-time.After(30 * time.Second):
		_ = n.cmd.Process.Kill()
		<-n.done
	}
}

var backlogLine = regexp.MustCompile(`(?m)^seam_outbox_backlog\{module="([a-z]+)"\} (\S+)$`)

// backlogs reads seam_outbox_backlog per module from /metrics.
func backlogs(ctx context.Context, base string) (map[string]float64, error) {
	status, body, err := newRaw(base).do(ctx, http.MethodGet, "/metrics", "", nil, nil)
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %d", status)
	}
	out := map[string]float64{}
	for _, m := range backlogLine.FindAllStringSubmatch(string(body), -1) {
		v, err := strconv.ParseFloat(m[2], 64)
		if err != nil {
			return nil, err
		}
		out[m[1]] = v
	}
	return out, nil
}

// TestNATSRestartsDuringEvents is fault test 5 (docs/reliability.md): the monolith runs on a standalone
// nats-server, which is restarted twice (once gracefully, once killed) while a few thousand invoices are
// created at a steady rate. Every invoice's event reaches reporting exactly once, and the outbox backlog
// (seam_outbox_backlog on /metrics) drains to zero.
func TestNATSRestartsDuringEvents(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("fault test: skipped with -short")
	}
	const secret = "fault-test-bus-secret"
	n := startNATS(t, secret)
	p := startSeam(t, "", "", "SEAM_BUS_URLS=nats://"+n.addr, "SEAM_BUS_CREDENTIALS_SECRET="+secret)
	users := newUsers(t, p, "nats", 10, 0)
	ctx := t.Context()
	r := newRaw(p.BaseURL)
	admin := adminToken(t, p)
	before, err := r.summary(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}

	total := 2000 * soak()
	var created, failed int
	var mu sync.Mutex
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			r := newRaw(p.BaseURL)
			for i := range jobs {
				u := users[i%len(users)]
				status, _, err := r.do(ctx, http.MethodPost, "/api/billing/invoices", u.token,
					map[string]any{"amount_minor": 100, "currency": "EUR", "description": "nats restart"}, nil)
				mu.Lock()
				if err == nil && status == http.StatusCreated {
					created++
				} else {
					failed++
				}
				mu.Unlock()
			}
		})
	}
	tick := time.NewTicker(time.Millisecond)
	start := time.Now()
	for i := range total {
		switch i {
		case total / 3:
			n.stop(syscall.SIGTERM)
			n.start()
		case 2 * total / 3:
			n.stop(syscall.SIGKILL)
			n.start()
		}
		<-tick.C
		jobs <- i
	}
	tick.Stop()
	close(jobs)
	wg.Wait()
	t.Logf("%d invoices created (%d failed) in %s, nats-server restarted twice", created, failed,
		time.Since(start).Round(time.Millisecond))

	var got int64
	harness.Wait(t, time.Duration(2*soak())*deadline, "every invoice in the report and an empty outbox", func(ctx context.Context) (bool, error) {
		s, err := r.summary(ctx, admin)
		if err != nil {
			return false, err
		}
		got = totalFor(s.Invoices, "EUR").Count - totalFor(before.Invoices, "EUR").Count
		if got < int64(created) {
			return false, fmt.Errorf("report counts %d of %d invoices", got, created)
		}
		b, err := backlogs(ctx, p.BaseURL)
		if err != nil {
			return false, err
		}
		if _, ok := b["billing"]; !ok {
			return false, fmt.Errorf("no billing backlog in /metrics: %v", b)
		}
		for _, pending := range b {
			if pending != 0 {
				return false, fmt.Errorf("outbox backlog %v", b)
			}
		}
		return true, nil
	})
	o := outcome{Operations: total, Acknowledged: created, Unknown: failed,
		Duplicated: int(max(got-int64(created), 0))}
	t.Logf("fault 5 (NATS restarted twice): %s", o)
	if o.Duplicated != 0 || failed != 0 {
		t.Fatalf("NATS restarts: %s; want every invoice created and reported once", o)
	}
}
