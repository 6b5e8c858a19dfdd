// Package e2e drives the real monolith binary over HTTP: the whole user journey, bad input on every
// endpoint, and restarts on the same data directory. Each test starts its own process with its own data
// directory (local PostgreSQL and embedded NATS included).
package e2e

import (
	"crypto/ed25519"
	"encoding/base64"
	"os"
	"testing"

	"github.com/seamkit/seam/test/deploy"
	"github.com/seamkit/seam/test/harness"
)

const (
	adminEmail    = "admin@example.test"
	adminPassword = "admin-password-for-tests"
)

// signingSeed pins auth's signing key so tests can mint tokens the server must refuse (expired, wrong
// issuer, other algorithms) with the server's own key.
var signingSeed = func() []byte {
	seed := make([]byte, ed25519.SeedSize)
	for i := range seed {
		seed[i] = byte(i * 7)
	}
	return seed
}()

func TestMain(m *testing.M) {
	code := m.Run()
	harness.Cleanup()
	os.Exit(code)
}

// startMonolith runs cmd/monolith with a fresh data directory (unless one is given) and test settings.
func startMonolith(t *testing.T, dataDir string) *harness.Process {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test: skipped with -short")
	}
	env := []string{
		"SEAM_AUTH_ADMIN_EMAIL=" + adminEmail,
		"SEAM_AUTH_ADMIN_PASSWORD=" + adminPassword,
		"SEAM_AUTH_SIGNING_KEY_SEED=" + base64.StdEncoding.EncodeToString(signingSeed),
		"SEAM_LOG_LEVEL=warn",
	}
	// test/deploy runs this suite again with a deployment named here: modules in their own processes, the
	// monolith their gateway (test/deploy picks the tests: restarts run on the monolith alone).
	if name := os.Getenv(deploy.Env); name != "" {
		d, ok := deploy.Lookup(name)
		if !ok {
			t.Fatalf("%s=%s: no such deployment", deploy.Env, name)
		}
		return deploy.Start(t, d, env)
	}
	return harness.Start(t, harness.Options{
		Binary:  harness.Build(t, "./cmd/monolith"),
		DataDir: dataDir,
		Env:     env,
	})
}
