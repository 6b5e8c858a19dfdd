package config_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/seamkit/seam/platform/config"
)

type inner struct {
	Port    int           `yaml:"port"`
	Timeout time.Duration `yaml:"timeout"`
	Hosts   []string      `yaml:"hosts"`
}

type sample struct {
	Name     string `yaml:"name"`
	Password string `yaml:"password" secret:"true"`
	URL      string `yaml:"url" secret:"url"`
	Debug    bool   `yaml:"debug"`
	Inner    inner  `yaml:"inner"`
}

func (s *sample) SetDefaults() {
	if s.Name == "" {
		s.Name = "default"
	}
}

func (s *inner) SetDefaults() {
	if s.Port == 0 {
		s.Port = 8080
	}
}

func (s sample) Validate() error {
	if s.Inner.Port <= 0 || s.Inner.Port > 65535 {
		return errors.New("inner.port: must be between 1 and 65535")
	}
	return nil
}

func decode(t *testing.T, doc string, env ...string) (sample, error) {
	t.Helper()
	node, err := config.ParseYAML([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	var s sample
	return s, config.Decode(node, &s, "SEAM_DEMO", "modules.demo", env)
}

func TestDefaultsYAMLThenEnv(t *testing.T) {
	s, err := decode(t, "inner:\n  timeout: 5s\n  hosts: [a]\n", "SEAM_DEMO_INNER_PORT=9000", "SEAM_DEMO_DEBUG=true",
		"SEAM_DEMO_INNER_HOSTS=x, y", "OTHER=1")
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != "default" || s.Inner.Port != 9000 || s.Inner.Timeout != 5*time.Second || !s.Debug {
		t.Fatalf("got %+v", s)
	}
	if strings.Join(s.Inner.Hosts, "|") != "x|y" {
		t.Fatalf("hosts = %v", s.Inner.Hosts)
	}
}

func TestErrorsNameTheKey(t *testing.T) {
	cases := map[string]struct {
		doc  string
		env  []string
		want string
	}{
		"unknown yaml key": {doc: "nme: x\n", want: "nme"},
		"bad env value":    {env: []string{"SEAM_DEMO_INNER_PORT=eighty"}, want: "SEAM_DEMO_INNER_PORT"},
		"bad duration":     {env: []string{"SEAM_DEMO_INNER_TIMEOUT=5"}, want: "SEAM_DEMO_INNER_TIMEOUT"},
		"validation":       {doc: "inner:\n  port: 70000\n", want: "modules.demo.inner.port"},
		"wrong yaml type":  {doc: "inner:\n  port: [1]\n", want: "modules.demo"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := decode(t, tc.doc, tc.env...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to name %q", err, tc.want)
			}
		})
	}
}

func TestEnvNames(t *testing.T) {
	got := strings.Join(config.EnvNames(&sample{}, "SEAM_DEMO"), " ")
	want := "SEAM_DEMO_NAME SEAM_DEMO_PASSWORD SEAM_DEMO_URL SEAM_DEMO_DEBUG SEAM_DEMO_INNER_PORT SEAM_DEMO_INNER_TIMEOUT SEAM_DEMO_INNER_HOSTS"
	if got != want {
		t.Fatalf("EnvNames = %s\nwant       %s", got, want)
	}
}

func TestRedactedMasksSecrets(t *testing.T) {
	s := sample{Name: "n", Password: "hunter2", URL: "postgres://seam:pw@db:5432/seam?sslmode=disable"}
	m := config.Redacted(s).(map[string]any)
	if m["password"] != config.Masked {
		t.Errorf("password = %v", m["password"])
	}
	if u := m["url"].(string); strings.Contains(u, "pw@") || !strings.Contains(u, "db:5432") {
		t.Errorf("url = %v", u)
	}
	if m["name"] != "n" {
		t.Errorf("name = %v", m["name"])
	}
	if empty := config.Redacted(sample{}).(map[string]any); empty["password"] != "" {
		t.Errorf("an unset secret should show as empty, got %v", empty["password"])
	}
}
