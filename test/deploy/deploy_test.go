package deploy_test

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/seamkit/seam/test/deploy"
	"github.com/seamkit/seam/test/harness"
)

// suite selects the end-to-end tests run in every deployment: the whole journey, bad input on every
// endpoint and login throttling. The restart test runs on the monolith alone (test/e2e): it restarts the one
// process and its data directory, which a deployment of several processes does not have.
const suite = "^(TestJourney|TestBadInput|TestLoginThrottling)$"

// TestSuiteInEveryDeployment runs the end-to-end suite, unchanged, against each deployment: the test binary
// of test/e2e is built once and run with deploy.Env naming the deployment.
func TestSuiteInEveryDeployment(t *testing.T) {
	if testing.Short() {
		t.Skip("deployment test: skipped with -short")
	}
	root := harness.RepoRoot(t)
	bin := t.TempDir()
	build := func(args ...string) {
		cmd := exec.Command("go", args...)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	build("test", "-c", "-o", filepath.Join(bin, "e2e.test"), "./test/e2e")
	for _, name := range append([]string{"monolith", "seam"}, deploy.Modules...) {
		build("build", "-o", filepath.Join(bin, name), "./cmd/"+name)
	}
	build("build", "-o", filepath.Join(bin, "nats-server"), deploy.NATSServerPackage)
	for _, d := range deploy.Deployments() {
		t.Run(d.Name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, filepath.Join(bin, "e2e.test"), "-test.run", suite, "-test.count=1", "-test.v")
			cmd.Dir = filepath.Join(root, "test", "e2e")
			cmd.Env = append(cmd.Environ(), deploy.Env+"="+d.Name, deploy.BinDirEnv+"="+bin)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("end-to-end suite in %s: %v\n%s", d.Name, err, out)
			}
			for line := range strings.Lines(string(out)) {
				if strings.HasPrefix(line, "--- ") {
					t.Log(strings.TrimSpace(line))
				}
			}
		})
	}
}
