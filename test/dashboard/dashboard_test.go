// Package dashboard drives the admin dashboard (/admin) of a real monolith, billing in split mode beside its
// extracted process, in a real headless Chromium (Debian's, installed by `make browser`): an admin signs in,
// changes billing's rollout through the page, and sees it take effect. A screenshot is kept in
// bin/test-artifacts/dashboard.png.
package dashboard

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/seamkit/seam/test/deploy"
	"github.com/seamkit/seam/test/harness"
)

func TestMain(m *testing.M) {
	code := m.Run()
	harness.Cleanup()
	os.Exit(code)
}

const (
	adminEmail    = "admin@example.test"
	adminPassword = "admin-password-for-tests"
)

// chromium finds the browser: $SEAM_CHROMIUM, else chromium, chromium-browser or google-chrome in PATH.
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("SEAM_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("no Chromium found: run `make browser` (installs Debian's chromium) or set SEAM_CHROMIUM")
	return ""
}

// artifactDir is where the test keeps its screenshot: bin/test-artifacts at the repository root.
func artifactDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(harness.RepoRoot(t), "bin", "test-artifacts")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestDashboardChangesARollout(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test: skipped with -short")
	}
	browser := chromium(t)
	seed := make([]byte, 32)
	gw := deploy.Start(t, deploy.Deployment{Name: "dashboard", Split: []string{"billing"}}, []string{
		"SEAM_AUTH_ADMIN_EMAIL=" + adminEmail,
		"SEAM_AUTH_ADMIN_PASSWORD=" + adminPassword,
		"SEAM_AUTH_SIGNING_KEY_SEED=" + base64.StdEncoding.EncodeToString(seed),
		"SEAM_LOG_LEVEL=warn",
	})

	alloc, cancelAlloc := chromedp.NewExecAllocator(t.Context(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(browser),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.WindowSize(1400, 1000),
	)...)
	defer cancelAlloc()
	ctx, cancelTab := chromedp.NewContext(alloc)
	defer cancelTab()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()

	billingPercent := chromedp.CSS(`#modules tr[data-module="billing"] td.percent`)
	err := chromedp.Do(ctx,
		chromedp.Navigate(gw.BaseURL+"/admin"),
		chromedp.WaitVisible(chromedp.ID("login-email")),
		chromedp.SendKeys(chromedp.ID("login-email"), adminEmail),
		chromedp.SendKeys(chromedp.ID("login-password"), adminPassword),
		chromedp.Click(chromedp.ID("login-submit")),
		// Signed in: the module table lists billing, in split mode.
		chromedp.WaitVisible(billingPercent),
	)
	if err != nil {
		t.Fatalf("sign in: %v", err)
	}
	if percent, err := chromedp.Run(ctx, chromedp.Text(billingPercent)); err != nil || percent != "0" {
		t.Fatalf("billing's share before the change = %q, %v; want 0", percent, err)
	}
	err = chromedp.Do(ctx,
		chromedp.SetValue(chromedp.ID("rollout-module"), "billing"),
		chromedp.SetValue(chromedp.ID("rollout-percent"), "25"),
		chromedp.SendKeys(chromedp.ID("rollout-reason"), "browser test: first quarter of the users"),
		chromedp.Click(chromedp.ID("rollout-submit")),
		chromedp.WaitVisible(chromedp.Search(`//p[@id="rollout-result"][contains(., "25%")]`)),
		// The live table shows the new share on its next refresh.
		chromedp.WaitVisible(chromedp.Search(`//tr[@data-module="billing"]/td[contains(@class, "percent")][normalize-space(.)="25"]`)),
	)
	if err != nil {
		t.Fatalf("change the rollout through the page: %v", err)
	}
	result, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("rollout-result")))
	if err != nil || !strings.Contains(result, "billing now sends 25%") {
		t.Fatalf("the page said %q, %v", result, err)
	}
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	path := filepath.Join(artifactDir(t), "dashboard.png")
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)

	// The change took effect in the process, made by the admin who signed in, and is audited.
	c := harness.NewClient(t, gw.BaseURL)
	var login struct {
		AccessToken string `json:"access_token"`
	}
	resp := c.Do(harness.Request{Method: "POST", Path: "/api/auth/login", Body: map[string]string{"email": adminEmail, "password": adminPassword}})
	if resp.Status != http.StatusOK || json.Unmarshal(resp.Body, &login) != nil {
		t.Fatalf("admin login: %d %s", resp.Status, resp.Body)
	}
	var audit struct {
		Audit []struct {
			Actor    string `json:"actor"`
			Reason   string `json:"reason"`
			RemoteBP int    `json:"remote_bp"`
		} `json:"audit"`
	}
	resp = c.Do(harness.Request{Method: "GET", Path: "/api/admin/routes/billing/audit", Token: login.AccessToken})
	if resp.Status != http.StatusOK || json.Unmarshal(resp.Body, &audit) != nil || len(audit.Audit) == 0 {
		t.Fatalf("audit: %d %s", resp.Status, resp.Body)
	}
	if a := audit.Audit[0]; a.Actor != adminEmail || a.RemoteBP != 2500 || !strings.HasPrefix(a.Reason, "browser test") {
		t.Fatalf("newest audit entry = %+v, want the admin's change to 25%%", a)
	}
}
