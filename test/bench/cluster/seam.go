package cluster

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/seamkit/seam/test/bench/proc"
)

// Modules are the reference application's modules, each extracted into cmd/<module>.
var Modules = []string{"auth", "billing", "notifications", "reporting"}

// Build compiles cmd/monolith and every extracted module's binary from repoRoot into dir (one go build).
func Build(ctx context.Context, repoRoot, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	args := []string{"build", "-o", dir + string(filepath.Separator), "./cmd/monolith"}
	for _, m := range Modules {
		args = append(args, "./cmd/"+m)
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = repoRoot
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("cluster: go build: %w\n%s", err, out)
	}
	return nil
}

// Secrets are what every process of one application must share.
type Secrets struct {
	// Bus derives the NATS users' passwords.
	Bus string
	// Role derives the database roles' passwords.
	Role string
	// SigningKeySeed pins auth's Ed25519 signing key (standard base64 of 32 bytes), so that a bare
	// handler can verify the same tokens.
	SigningKeySeed string
	// AdminPassword is the first admin's password.
	AdminPassword string
}

// NewSecrets makes random secrets, with seed (32 bytes) as auth's signing key seed.
func NewSecrets(seed []byte) Secrets {
	return Secrets{Bus: rand.Text(), Role: rand.Text(), SigningKeySeed: base64.StdEncoding.EncodeToString(seed), AdminPassword: rand.Text()}
}

// env are the settings every process of an application is given.
func (s Secrets) env() []string {
	return []string{
		"SEAM_BUS_CREDENTIALS_SECRET=" + s.Bus,
		"SEAM_DATABASE_ROLE_SECRET=" + s.Role,
		"SEAM_AUTH_SIGNING_KEY_SEED=" + s.SigningKeySeed,
		"SEAM_AUTH_ADMIN_PASSWORD=" + s.AdminPassword,
	}
}

// Deployment is a running Seam application: the process clients talk to and every process it is made of.
type Deployment struct {
	// Name identifies the deployment.
	Name string
	// Gateway is the process clients talk to: the monolith.
	Gateway *proc.Process
	// Processes are all of its processes, the gateway first.
	Processes []*proc.Process
	// DatabaseURL is the superuser's URL of its database.
	DatabaseURL string
}

// Spec describes a deployment to start.
type Spec struct {
	// Name identifies it; it names the log files too.
	Name string
	// BinDir holds the binaries Build made.
	BinDir string
	// LogDir receives one log per process.
	LogDir string
	// DataDir is the parent of each process's data directory.
	DataDir string
	// DatabaseURL is the database it runs on (database.url), as a user that may create roles.
	DatabaseURL string
	// RolePrefix is the prefix of its module roles (roles are cluster-wide).
	RolePrefix string
	// Secrets are shared by its processes.
	Secrets Secrets
	// Remote runs every module in its extracted binary, the monolith only their gateway.
	Remote bool
	// Env are extra settings for every process.
	Env []string
}

// startTimeout bounds one process's start.
const startTimeout = 3 * time.Minute

// Start runs the deployment and waits until every process is ready. The processes die with this one.
func Start(ctx context.Context, s Spec) (_ *Deployment, err error) {
	d := &Deployment{Name: s.Name, DatabaseURL: s.DatabaseURL}
	defer func() {
		if err != nil {
			d.Kill()
		}
	}()
	common := slices.Concat(s.Secrets.env(), []string{"SEAM_DATABASE_URL=" + s.DatabaseURL, "SEAM_DATABASE_ROLE_PREFIX=" + s.RolePrefix}, s.Env)
	busPort, err := proc.FreePort()
	if err != nil {
		return nil, err
	}
	monolithEnv := slices.Concat(common, []string{"SEAM_BUS_HOST=127.0.0.1", fmt.Sprintf("SEAM_BUS_PORT=%d", busPort)})
	if s.Remote {
		for _, m := range Modules {
			monolithEnv = append(monolithEnv, "SEAM_"+strings.ToUpper(m)+"_MODE=remote")
		}
	}
	gw, err := StartOne(ctx, s, "monolith", "monolith", monolithEnv)
	if err != nil {
		return nil, err
	}
	d.Gateway = gw
	d.Processes = append(d.Processes, gw)
	if !s.Remote {
		return d, nil
	}
	for _, m := range Modules {
		p, err := StartOne(ctx, s, m, m, slices.Concat(common, []string{fmt.Sprintf("SEAM_BUS_URLS=nats://127.0.0.1:%d", busPort)}))
		if err != nil {
			return nil, err
		}
		d.Processes = append(d.Processes, p)
	}
	return d, nil
}

// StartOne runs one process of s's deployment: binary bin (in s.BinDir) with env, its own HTTP port, data
// directory and log, and waits until it is ready.
func StartOne(ctx context.Context, s Spec, name, bin string, env []string) (*proc.Process, error) {
	env, baseURL, err := ProcessEnv(s, name, env)
	if err != nil {
		return nil, err
	}
	return proc.StartProcess(ctx, s.Name+"/"+name, filepath.Join(s.BinDir, bin), env, baseURL, LogPath(s, name), startTimeout)
}

// LogPath is the log file of s's process name.
func LogPath(s Spec, name string) string { return filepath.Join(s.LogDir, s.Name+"-"+name+".log") }

// ProcessEnv returns the settings of s's process name: env plus a free HTTP port and its data directory
// (kept across restarts); and the URL it will serve at.
func ProcessEnv(s Spec, name string, env []string) ([]string, string, error) {
	port, err := proc.FreePort()
	if err != nil {
		return nil, "", err
	}
	dataDir := filepath.Join(s.DataDir, s.Name+"-"+name)
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return nil, "", fmt.Errorf("cluster: %w", err)
	}
	env = slices.Concat(env, []string{fmt.Sprintf("SEAM_HTTP_ADDR=127.0.0.1:%d", port), "SEAM_DATA_DIR=" + dataDir})
	return env, fmt.Sprintf("http://127.0.0.1:%d", port), nil
}

// MonolithEnv returns the settings of s's monolith when it runs every module itself (not Remote): the
// shared secrets, the database and its embedded NATS server on a free port.
func MonolithEnv(s Spec) ([]string, error) {
	busPort, err := proc.FreePort()
	if err != nil {
		return nil, err
	}
	return slices.Concat(s.Secrets.env(), []string{"SEAM_DATABASE_URL=" + s.DatabaseURL, "SEAM_DATABASE_ROLE_PREFIX=" + s.RolePrefix,
		"SEAM_BUS_HOST=127.0.0.1", fmt.Sprintf("SEAM_BUS_PORT=%d", busPort)}, s.Env), nil
}

// Names are the deployment's process names (monolith, or an extracted module's), in PIDs' order.
func (d *Deployment) Names() []string {
	var names []string
	for _, p := range d.Processes {
		_, name, _ := strings.Cut(p.Name, "/")
		names = append(names, name)
	}
	return names
}

// PIDs are the deployment's process ids.
func (d *Deployment) PIDs() []int {
	var pids []int
	for _, p := range d.Processes {
		pids = append(pids, p.Pid())
	}
	return pids
}

// Stop stops the processes gracefully, the extracted ones first.
func (d *Deployment) Stop() error {
	var errs []error
	for i := len(d.Processes) - 1; i >= 0; i-- {
		if _, err := d.Processes[i].Stop(); err != nil {
			errs = append(errs, err)
		}
	}
	d.Processes = nil
	return errors.Join(errs...)
}

// Kill kills the processes at once.
func (d *Deployment) Kill() {
	for _, p := range d.Processes {
		p.Kill()
	}
	d.Processes = nil
}
