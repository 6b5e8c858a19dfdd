// Package app assembles a Seam process: it loads the configuration, provides the kernel (logging, database,
// bus, HTTP) to the modules it is given, runs them with go.uber.org/fx and shuts down gracefully on SIGINT or
// SIGTERM.
package app

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/seamkit/seam/platform/bus"
	"github.com/seamkit/seam/platform/config"
	"github.com/seamkit/seam/platform/db"
	"github.com/seamkit/seam/platform/failpoint"
	"github.com/seamkit/seam/platform/httpx"
	"github.com/seamkit/seam/platform/observe"
	"github.com/seamkit/seam/platform/rpc"
)

// Config is the whole configuration of a Seam process. Each module owns its section under modules.<name>.
type Config struct {
	// DataDir holds the local PostgreSQL cluster, the embedded NATS store and generated secrets.
	DataDir string `yaml:"data_dir"`
	// StopTimeout bounds the whole graceful shutdown; it must exceed the HTTP shutdown and bus drain timeouts.
	StopTimeout time.Duration         `yaml:"stop_timeout"`
	Log         observe.LogConfig     `yaml:"log"`
	HTTP        httpx.Config          `yaml:"http"`
	Database    db.Config             `yaml:"database"`
	Bus         bus.Config            `yaml:"bus"`
	RPC         rpc.Config            `yaml:"rpc"`
	Inbox       InboxConfig           `yaml:"inbox"`
	Tracing     observe.TracingConfig `yaml:"tracing"`
	Modules     map[string]yaml.Node  `yaml:"modules"`
	// Failpoints makes the process fail at named points, for fault tests only (see platform/failpoint);
	// empty in production.
	Failpoints string `yaml:"failpoints"`

	environ  []string
	knownEnv map[string]bool
	// forcedModes overrides modules' modes (RunExtracted).
	forcedModes map[string]Mode
}

// SetDefaults fills unset fields.
func (c *Config) SetDefaults() {
	if c.DataDir == "" {
		c.DataDir = ".seam"
	}
	if c.StopTimeout == 0 {
		c.StopTimeout = 45 * time.Second
	}
}

// callOptions are the options of this process's calls to the modules that run elsewhere: on lanes unless
// rpc.lanes is off.
func (c *Config) callOptions(lanes *rpc.Lanes) []rpc.CallOption {
	if !c.RPC.Lanes {
		return nil
	}
	return []rpc.CallOption{rpc.OverLanes(lanes)}
}

// Validate checks the sections and their relations; errors name the key.
func (c Config) Validate() error {
	if strings.TrimSpace(c.DataDir) == "" {
		return errors.New("data_dir: must not be empty")
	}
	for _, v := range []config.Validator{c.Log, c.HTTP, c.Database, c.Bus, c.RPC, c.Inbox, c.Tracing} {
		if err := v.Validate(); err != nil {
			return err
		}
	}
	if c.Failpoints != "" {
		if err := failpoint.Validate(c.Failpoints); err != nil {
			return fmt.Errorf("failpoints: %w", err)
		}
	}
	if c.StopTimeout <= c.HTTP.ShutdownTimeout+c.Bus.DrainTimeout {
		return fmt.Errorf("stop_timeout: must exceed http.shutdown_timeout + bus.drain_timeout (%s), got %s",
			c.HTTP.ShutdownTimeout+c.Bus.DrainTimeout, c.StopTimeout)
	}
	return nil
}

// tracing returns the tracing section with its service name filled in: tracing.service_name, else
// seam-<module> for a module extracted into its own process (RunExtracted), else seam-monolith.
func (c *Config) tracing() observe.TracingConfig {
	tc := c.Tracing
	if tc.ServiceName != "" {
		return tc
	}
	tc.ServiceName = "seam-monolith"
	var local []string
	for name, mode := range c.forcedModes {
		if mode == ModeLocal {
			local = append(local, name)
		}
	}
	if len(local) == 1 {
		tc.ServiceName = "seam-" + local[0]
	}
	return tc
}

// LoadConfig reads the YAML file at path (none when path is empty) and applies SEAM_* variables from environ.
func LoadConfig(path string, environ []string) (*Config, error) {
	var node *yaml.Node
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("config: read %s: %w", path, err)
		}
		if node, err = config.ParseYAML(data); err != nil {
			return nil, fmt.Errorf("config: %s: %w", path, err)
		}
	}
	var c Config
	if err := config.Decode(node, &c, config.EnvPrefix, "", environ); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c.environ = environ
	c.knownEnv = map[string]bool{ConfigEnv: true}
	c.noteEnv(&c, config.EnvPrefix)
	if c.Bus.StoreDir == "" {
		c.Bus.StoreDir = c.DataDir + "/nats"
	}
	return &c, nil
}

// ModuleSection decodes module name's section (modules.<name> in YAML, SEAM_<NAME>_* in the environment)
// into out, which holds the module's defaults.
func (c *Config) ModuleSection(name string, out any) error {
	node := c.Modules[name]
	prefix := config.EnvName(config.EnvPrefix, name)
	c.noteEnv(out, prefix)
	return config.Decode(&node, out, prefix, "modules."+name, c.environ)
}

// ConfigEnv names the variable that gives the configuration file's path.
const ConfigEnv = "SEAM_CONFIG"

func (c *Config) noteEnv(section any, prefix string) {
	if c.knownEnv == nil {
		c.knownEnv = map[string]bool{}
	}
	for _, name := range config.EnvNames(section, prefix) {
		c.knownEnv[name] = true
	}
}

// unknownEnv lists SEAM_* variables that no configuration section read: most likely misspelt settings.
func (c *Config) unknownEnv() []string {
	var unknown []string
	for _, kv := range c.environ {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, config.EnvPrefix+"_") && !c.knownEnv[name] {
			unknown = append(unknown, name)
		}
	}
	sort.Strings(unknown)
	return unknown
}

// checkModules refuses a modules.<name> section for a module this process does not know.
func (c *Config) checkModules(known []string) error {
	isKnown := map[string]bool{}
	for _, k := range known {
		isKnown[k] = true
	}
	var unknown []string
	for name := range c.Modules {
		if !isKnown[name] {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return fmt.Errorf("config: modules.%s: no such module (known: %s)", unknown[0], strings.Join(known, ", "))
	}
	return nil
}
