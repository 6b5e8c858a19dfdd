// Package deploy runs Seam in its deployment modes for the end-to-end suite: modules flipped to remote and
// run by their extracted binaries (cmd/<module>), each in its own process, with the monolith as their gateway
// and its embedded NATS server listening for them on a loopback port.
package deploy

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/seamkit/seam/test/harness"
)

// Env names the variable that selects a deployment (by Deployment.Name) for the end-to-end suite; empty or
// unset runs the monolith alone.
const Env = "SEAMTEST_DEPLOYMENT"

// BinDirEnv names the variable holding a directory of prebuilt binaries (monolith, auth, billing,
// notifications, reporting), so that running the suite once per deployment does not link them every time.
const BinDirEnv = "SEAMTEST_BIN_DIR"

// Modules are the reference application's modules, each extracted into cmd/<module>.
var Modules = []string{"auth", "billing", "notifications", "reporting"}

// Deployment is one way of running the application.
type Deployment struct {
	// Name identifies the deployment, e.g. "billing-remote".
	Name string
	// Remote lists the modules run by their extracted binaries instead of the monolith.
	Remote []string
	// Split lists the modules run both by the monolith (in split mode, SEAM_<M>_MODE=split) and by their
	// extracted binaries, the monolith sending a share of their callers to the latter.
	Split []string
	// ModuleEnv holds extra settings (KEY=VALUE) for the extracted processes of a module, beyond env.
	ModuleEnv map[string][]string
	// MonolithEnv holds extra settings for the monolith, beyond env.
	MonolithEnv []string
	// MoveDatabase names a module whose schema is moved, once the monolith has started on its local
	// PostgreSQL, to a database of its own on the same server with `seam db move`; the monolith then runs
	// that module there (SEAM_DATABASE_MODULE_URLS).
	MoveDatabase string
	// Instances is how many processes run each remote module (1 when absent).
	Instances map[string]int
	// Kill names a module one of whose instances is killed (SIGKILL) KillAfter after the deployment is up,
	// while the suite runs.
	Kill string
	// KillAfter is when Kill's instance (or the NATS node) dies.
	KillAfter time.Duration
	// NATSCluster runs the deployment on a three-node NATS cluster (standalone nats-server processes on
	// loopback, streams with three replicas) instead of the monolith's embedded server.
	NATSCluster bool
	// KillNATSNode kills (SIGKILL) one node of the cluster KillAfter after the deployment is up: one the
	// processes are not given in bus.urls.
	KillNATSNode bool
}

// Deployments are the deployments the suite runs in besides the monolith alone: each module remote on its
// own, all four remote (the monolith only a gateway), two instances of billing, one killed mid-run, billing
// split half and half between the monolith and its extracted process with every read shadowed, and all
// four remote on a three-node NATS cluster that loses a node.
func Deployments() []Deployment {
	var ds []Deployment
	for _, m := range Modules {
		ds = append(ds, Deployment{Name: m + "-remote", Remote: []string{m}})
	}
	ds = append(ds,
		Deployment{Name: "all-remote", Remote: Modules},
		Deployment{Name: "billing-twice-one-killed", Remote: []string{"billing"}, Instances: map[string]int{"billing": 2},
			Kill: "billing", KillAfter: 1500 * time.Millisecond},
		Deployment{Name: "billing-on-its-own-database", MoveDatabase: "billing"},
		Deployment{Name: "billing-split-shadowed", Split: []string{"billing"},
			MonolithEnv: []string{"SEAM_BILLING_ROLLOUT_PERCENT=50", "SEAM_BILLING_ROLLOUT_SHADOW=true"}},
		Deployment{Name: "all-remote-nats-cluster-node-killed", Remote: Modules, NATSCluster: true, KillNATSNode: true,
			KillAfter: 1500 * time.Millisecond},
	)
	return ds
}

// Lookup returns the deployment called name.
func Lookup(name string) (Deployment, bool) {
	i := slices.IndexFunc(Deployments(), func(d Deployment) bool { return d.Name == name })
	if i < 0 {
		return Deployment{}, false
	}
	return Deployments()[i], true
}

// Shared secrets every process of a deployment is given explicitly, so their NATS users and database roles
// agree.
const (
	busSecret  = "deploy-test-bus-secret"
	roleSecret = "deploy-test-role-secret"
)

// Start runs d with the extra settings env (KEY=VALUE, given to every process) and returns the process
// clients talk to: the monolith, the gateway of the remote modules. Every process stops when the test ends.
func Start(t testing.TB, d Deployment, env []string) *harness.Process {
	t.Helper()
	common := append(slices.Clone(env),
		"SEAM_BUS_CREDENTIALS_SECRET="+busSecret,
		"SEAM_DATABASE_ROLE_SECRET="+roleSecret,
	)
	var monolithEnv []string
	var nodes []*natsNode
	busURLs := ""
	if d.NATSCluster {
		nodes = startCluster(t)
		// The processes are given the first two nodes and the third is the one killed: it holds stream and
		// consumer replicas (and leaders) but no client connections. A request in flight on a connection to a
		// dying node is lost and its caller waits for its deadline, which the unchanged suite would report
		// as a failure; see docs/deployment.md.
		busURLs = clusterURLs(nodes[:len(nodes)-1])
		common = append(common, "SEAM_BUS_REPLICAS=3")
		monolithEnv = append(slices.Clone(common), "SEAM_BUS_URLS="+busURLs)
	} else {
		busPort := harness.FreePort(t)
		busURLs = fmt.Sprintf("nats://127.0.0.1:%d", busPort)
		monolithEnv = append(slices.Clone(common), "SEAM_BUS_HOST=127.0.0.1", fmt.Sprintf("SEAM_BUS_PORT=%d", busPort))
	}
	for _, m := range d.Remote {
		monolithEnv = append(monolithEnv, "SEAM_"+strings.ToUpper(m)+"_MODE=remote")
	}
	for _, m := range d.Split {
		monolithEnv = append(monolithEnv, "SEAM_"+strings.ToUpper(m)+"_MODE=split")
	}
	monolithEnv = append(monolithEnv, d.MonolithEnv...)
	dataDir := harness.DataDir(t)
	gateway := harness.Start(t, harness.Options{Binary: binary(t, "monolith"), DataDir: dataDir, Env: monolithEnv})
	dbURL := superuserURL(t, dataDir, "seam")
	if d.MoveDatabase != "" {
		moveDatabase(t, gateway, d.MoveDatabase, dbURL, superuserURL(t, dataDir, d.MoveDatabase+"_own"))
	}
	var victim *harness.Process
	for _, m := range append(slices.Clone(d.Remote), d.Split...) {
		n := max(d.Instances[m], 1)
		for range n {
			p := harness.Start(t, harness.Options{Binary: binary(t, m), Env: append(append(slices.Clone(common),
				"SEAM_BUS_URLS="+busURLs,
				"SEAM_DATABASE_URL="+dbURL,
			), d.ModuleEnv[m]...)})
			if m == d.Kill && victim == nil {
				victim = p
			}
		}
	}
	if d.KillNATSNode {
		node := nodes[len(nodes)-1]
		timer := time.AfterFunc(d.KillAfter, func() {
			if err := node.cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Errorf("deploy: kill a NATS node: %v", err)
			}
		})
		t.Cleanup(func() { timer.Stop() })
	}
	if victim != nil {
		timer := time.AfterFunc(d.KillAfter, func() {
			if err := victim.Signal(syscall.SIGKILL); err != nil {
				t.Errorf("deploy: kill an instance of %s: %v", d.Kill, err)
			}
		})
		t.Cleanup(func() { timer.Stop() })
	}
	return gateway
}

// NATSServerPackage is the main package of the standalone NATS server the cluster deployment runs.
const NATSServerPackage = "github.com/nats-io/nats-server/v2"

// binary returns the built binary of cmd/<name> (or of NATSServerPackage for "nats-server"): from BinDirEnv's
// directory when set, else built now.
func binary(t testing.TB, name string) string {
	t.Helper()
	if dir := os.Getenv(BinDirEnv); dir != "" {
		return filepath.Join(dir, name)
	}
	if name == "nats-server" {
		return harness.Build(t, NATSServerPackage)
	}
	return harness.Build(t, "./cmd/"+name)
}

// moveDatabase creates database to on the monolith's server, moves module there with `seam db move` while
// no request runs (the monolith's server is its own, so the monolith stays up), and restarts the monolith
// with the module on it.
func moveDatabase(t testing.TB, monolith *harness.Process, module, from, to string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	admin, err := pgx.Connect(ctx, from)
	if err != nil {
		t.Fatalf("deploy: connect to %s's database: %v", module, err)
	}
	defer func() { _ = admin.Close(context.Background()) }()
	target, err := url.Parse(to)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{strings.TrimPrefix(target.Path, "/")}.Sanitize()); err != nil {
		t.Fatalf("deploy: create the database of %s: %v", module, err)
	}
	cmd := exec.CommandContext(ctx, binary(t, "seam"), "db", "move", module, "--from", from, "--to", to)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("deploy: seam db move %s: %v\n%s", module, err, out)
	}
	monolith.Restart("SEAM_DATABASE_MODULE_URLS=" + module + "=" + to)
}

// superuserURL is the URL of database on the monolith's local PostgreSQL as its superuser (the files
// pgserver keeps in <data_dir>/postgres), which extracted processes connect to with their own schema and role.
func superuserURL(t testing.TB, dataDir, database string) string {
	t.Helper()
	dir := filepath.Join(dataDir, "postgres")
	password, err := os.ReadFile(filepath.Join(dir, "superuser.password"))
	if err != nil {
		t.Fatalf("deploy: %v", err)
	}
	port, err := os.ReadFile(filepath.Join(dir, "port"))
	if err != nil {
		t.Fatalf("deploy: %v", err)
	}
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword("postgres", strings.TrimSpace(string(password))),
		Host:     net.JoinHostPort("127.0.0.1", strings.TrimSpace(string(port))),
		Path:     "/" + database,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}
