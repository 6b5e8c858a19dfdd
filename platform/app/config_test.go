package app

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "seam.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

type demoSection struct {
	Greeting string        `yaml:"greeting"`
	Timeout  time.Duration `yaml:"timeout"`
}

func TestLoadConfigLayers(t *testing.T) {
	path := writeConfig(t, `
data_dir: /var/lib/seam
http:
  addr: ":9090"
modules:
  demo:
    greeting: hello
`)
	cfg, err := LoadConfig(path, []string{"SEAM_HTTP_ADDR=127.0.0.1:7070", "SEAM_DEMO_TIMEOUT=3s"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HTTP.Addr != "127.0.0.1:7070" || cfg.DataDir != "/var/lib/seam" || cfg.Bus.StoreDir != "/var/lib/seam/nats" {
		t.Fatalf("cfg = %+v", cfg)
	}
	var demo demoSection
	if err := cfg.ModuleSection("demo", &demo); err != nil {
		t.Fatal(err)
	}
	if demo.Greeting != "hello" || demo.Timeout != 3*time.Second {
		t.Fatalf("demo = %+v", demo)
	}
	if err := cfg.checkModules([]string{"demo"}); err != nil {
		t.Fatal(err)
	}
}

func TestLoadConfigErrorsNameTheKey(t *testing.T) {
	cases := map[string]struct {
		yaml string
		env  []string
		want string
	}{
		"unknown top-level key":   {yaml: "htp:\n  addr: x\n", want: "htp"},
		"bad address":             {env: []string{"SEAM_HTTP_ADDR=nonsense"}, want: "http.addr"},
		"bad database url":        {env: []string{"SEAM_DATABASE_URL=::not a url"}, want: "database.url"},
		"stop shorter than drain": {env: []string{"SEAM_STOP_TIMEOUT=5s"}, want: "stop_timeout"},
		"bad log level":           {env: []string{"SEAM_LOG_LEVEL=chatty"}, want: "log.level"},
		"malformed yaml":          {yaml: "http: [\n", want: "seam.yaml"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			path := ""
			if tc.yaml != "" {
				path = writeConfig(t, tc.yaml)
			}
			_, err := LoadConfig(path, tc.env)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to name %q", err, tc.want)
			}
		})
	}
}

func TestUnknownModuleSectionRefused(t *testing.T) {
	cfg, err := LoadConfig(writeConfig(t, "modules:\n  biling:\n    provider: simulated\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	err = cfg.checkModules([]string{"auth", "billing"})
	if err == nil || !strings.Contains(err.Error(), "modules.biling") {
		t.Fatalf("err = %v", err)
	}
}

func TestUnknownEnvListed(t *testing.T) {
	cfg, err := LoadConfig("", []string{"SEAM_HTTP_ADR=:1", "SEAM_HTTP_ADDR=:2", "SEAM_CONFIG=x", "SEAM_DEMO_GREETING=hi", "HOME=/root"})
	if err != nil {
		t.Fatal(err)
	}
	var demo demoSection
	if err := cfg.ModuleSection("demo", &demo); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(cfg.unknownEnv(), ","); got != "SEAM_HTTP_ADR" {
		t.Fatalf("unknown = %s", got)
	}
}

func TestMissingConfigFile(t *testing.T) {
	_, err := LoadConfig(filepath.Join(t.TempDir(), "absent.yaml"), nil)
	if err == nil || !strings.Contains(err.Error(), "absent.yaml") {
		t.Fatalf("err = %v", err)
	}
}
