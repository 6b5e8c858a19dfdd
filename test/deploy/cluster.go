package deploy

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/seamkit/seam/modules/auth"
	"github.com/seamkit/seam/modules/billing"
	"github.com/seamkit/seam/modules/notifications"
	"github.com/seamkit/seam/modules/reporting"
	"github.com/seamkit/seam/platform/app"
	"github.com/seamkit/seam/platform/bus"
	"github.com/seamkit/seam/test/harness"
)

// natsNode is one standalone nats-server process of a test cluster.
type natsNode struct {
	cmd    *exec.Cmd
	url    string
	logs   *lockedBuffer
	exited chan struct{}
}

// lockedBuffer collects a process's output safely.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startCluster runs a three-node NATS cluster with JetStream on loopback, its users those of Seam's modules
// (bus.AuthorizationConfig of what the modules declare), and waits until JetStream answers. The nodes stop when
// the test ends.
func startCluster(t testing.TB) []*natsNode {
	t.Helper()
	cfg, err := app.LoadConfig("", []string{"SEAM_BUS_CREDENTIALS_SECRET=" + busSecret})
	if err != nil {
		t.Fatalf("deploy: %v", err)
	}
	decls, err := app.Declarations(cfg, auth.Module, billing.Module, notifications.Module, reporting.Module)
	if err != nil {
		t.Fatalf("deploy: declarations: %v", err)
	}
	authz, err := bus.AuthorizationConfig(decls, busSecret)
	if err != nil {
		t.Fatalf("deploy: %v", err)
	}
	const n = 3
	clientPorts, routePorts := make([]int, n), make([]int, n)
	for i := range n {
		clientPorts[i], routePorts[i] = harness.FreePort(t), harness.FreePort(t)
	}
	dir := t.TempDir()
	bin := binary(t, "nats-server")
	nodes := make([]*natsNode, n)
	for i := range n {
		var routes []string
		for j := range n {
			if j != i {
				routes = append(routes, fmt.Sprintf("%q", fmt.Sprintf("nats-route://127.0.0.1:%d", routePorts[j])))
			}
		}
		conf := fmt.Sprintf("server_name: n%d\nlisten: 127.0.0.1:%d\njetstream {\n  store_dir: %q\n}\n"+
			"cluster {\n  name: seam\n  listen: 127.0.0.1:%d\n  routes: [%s]\n}\n%s",
			i+1, clientPorts[i], filepath.Join(dir, fmt.Sprintf("n%d", i+1)), routePorts[i], strings.Join(routes, ", "), authz)
		path := filepath.Join(dir, fmt.Sprintf("n%d.conf", i+1))
		if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
			t.Fatalf("deploy: %v", err)
		}
		node := &natsNode{url: fmt.Sprintf("nats://127.0.0.1:%d", clientPorts[i]), logs: &lockedBuffer{}, exited: make(chan struct{})}
		node.cmd = exec.Command(bin, "-c", path)
		node.cmd.Stdout, node.cmd.Stderr = node.logs, node.logs
		node.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := node.cmd.Start(); err != nil {
			t.Fatalf("deploy: start nats-server n%d: %v", i+1, err)
		}
		go func() { _ = node.cmd.Wait(); close(node.exited) }()
		t.Cleanup(func() {
			_ = node.cmd.Process.Kill()
			<-node.exited
			if t.Failed() {
				t.Logf("nats-server n%d log:\n%s", i+1, node.logs.String())
			}
		})
		nodes[i] = node
	}
	harness.Wait(t, time.Minute, "the NATS cluster's JetStream", func(ctx context.Context) (bool, error) {
		conn, err := nats.Connect(nodes[0].url, nats.UserInfo(bus.SystemUser, bus.Password(busSecret, bus.SystemUser)))
		if err != nil {
			return false, err
		}
		defer conn.Close()
		js, err := jetstream.New(conn)
		if err != nil {
			return false, err
		}
		info, err := js.AccountInfo(ctx)
		if err != nil {
			return false, err
		}
		return info != nil, nil
	})
	return nodes
}

// clusterURLs is the value of bus.urls for nodes.
func clusterURLs(nodes []*natsNode) string {
	urls := make([]string, len(nodes))
	for i, n := range nodes {
		urls[i] = n.url
	}
	return strings.Join(urls, ",")
}
