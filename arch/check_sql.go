package arch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Files and tools of the SQL channel, relative to the repository root.
const (
	// SQLCConfigFile is sqlc's configuration: one entry per module.
	SQLCConfigFile = "sqlc.yaml"
	// ToolsModFile is the go.mod pinning sqlc (and golangci-lint, govulncheck).
	ToolsModFile = "tools/go.mod"
	// SQLDir holds sql/<module>/{schema.sql,migrations,queries}.
	SQLDir = "sql"
)

// sqlcPosition matches a positioned sqlc error: "sql/billing/queries/x.sql:3:1: relation ... does not exist".
var sqlcPosition = regexp.MustCompile(`^(\S+?):(\d+):(\d+): (.+)$`)

// The sqlc errors that mean a query reached into a schema the module's migrations do not define.
var (
	missingSchema   = regexp.MustCompile(`schema "([^"]+)" does not exist`)
	missingRelation = regexp.MustCompile(`relation "([^".]+)\.[^"]+" does not exist`)
)

// checkSQL checks that sqlc.yaml compiles every module against its own SQL only, then compiles the queries.
func checkSQL(ctx context.Context, env Env) ChannelResult {
	var res ChannelResult
	vs, err := sqlcConfigViolations(env)
	if err != nil {
		res.Err = err
		return res
	}
	res.Violations = vs
	out, err := runSQLC(ctx, env, "compile")
	errs := sqlcErrors(env, out)
	if err != nil && len(errs) == 0 {
		res.Err = fmt.Errorf("sqlc compile: %w: %s", err, strings.TrimSpace(string(out)))
		return res
	}
	res.Violations = append(res.Violations, errs...)
	res.Checked = "sqlc compile: each module's queries against its own migrations (" + SQLCConfigFile + ")"
	return res
}

// runSQLC runs the pinned sqlc in the repository root and returns its combined output.
func runSQLC(ctx context.Context, env Env, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, env.Go, append([]string{"tool", "-modfile=" + ToolsModFile, "sqlc"}, args...)...)
	cmd.Dir = env.Root
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.Bytes(), err
}

// sqlcErrors turns sqlc's positioned errors into violations, naming the query file and the foreign schema.
func sqlcErrors(env Env, out []byte) []Violation {
	var vs []Violation
	for line := range strings.Lines(string(out)) {
		m := sqlcPosition.FindStringSubmatch(strings.TrimSpace(line))
		if m == nil {
			continue
		}
		file, msg := env.Rel(m[1]), m[4]
		n, _ := strconv.Atoi(m[2])
		owner := sqlOwner(file)
		v := Violation{Channel: ChannelSQL, Rule: "query-compile", File: file, Line: n, Detail: msg,
			Message: "query does not compile: " + msg}
		schema := ""
		if s := missingSchema.FindStringSubmatch(msg); s != nil {
			schema = s[1]
		} else if s := missingRelation.FindStringSubmatch(msg); s != nil {
			schema = s[1]
		}
		if schema != "" && schema != owner {
			v.Rule = "foreign-schema"
			whose := "which is not " + owner + "'s"
			if slices.ContainsFunc(env.Modules, func(mod Module) bool { return mod.Name == schema }) {
				whose = "which belongs to module " + schema + ": call " + schema + "api instead"
			}
			v.Message = fmt.Sprintf("query reads schema %q, %s (rule: a module's queries compile against its own "+
				"migrations only; sqlc: %s)", schema, whose, msg)
		}
		vs = append(vs, v)
	}
	return vs
}

// sqlOwner returns the module a file under sql/<module>/ belongs to, or "".
func sqlOwner(file string) string {
	rest, ok := strings.CutPrefix(file, SQLDir+"/")
	if !ok {
		return ""
	}
	owner, _, ok := strings.Cut(rest, "/")
	if !ok {
		return ""
	}
	return owner
}

// sqlcConfig is the part of sqlc.yaml Seam checks.
type sqlcConfig struct {
	SQL []struct {
		Name    string    `yaml:"name"`
		Schema  yamlPaths `yaml:"schema"`
		Queries yamlPaths `yaml:"queries"`
	} `yaml:"sql"`
}

// yamlPaths is a sqlc path setting: one path or a list.
type yamlPaths []string

// UnmarshalYAML accepts a string or a list of strings.
func (p *yamlPaths) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*p = yamlPaths{n.Value}
		return nil
	}
	var list []string
	if err := n.Decode(&list); err != nil {
		return err
	}
	*p = list
	return nil
}

// sqlcConfigViolations checks the shape of sqlc.yaml that makes sqlc a boundary check: every module with a
// sql/<module> directory has an entry named after it, and each entry's schema and queries lie under its own
// sql/<module>/ directory.
func sqlcConfigViolations(env Env) ([]Violation, error) {
	data, err := os.ReadFile(filepath.Join(env.Root, SQLCConfigFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("sqlc: %w", err)
	}
	var cfg sqlcConfig
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		return nil, fmt.Errorf("sqlc: %s: %w", SQLCConfigFile, err)
	}
	var vs []Violation
	add := func(detail, msg string) {
		vs = append(vs, Violation{Channel: ChannelSQL, Rule: "sqlc-config", File: SQLCConfigFile, Detail: detail,
			Message: msg + " (rule: each module's queries compile against its own sql/<module>/ only)"})
	}
	entries := map[string]bool{}
	for _, e := range cfg.SQL {
		entries[e.Name] = true
		own := SQLDir + "/" + e.Name + "/"
		for _, p := range append(slices.Clone(e.Schema), e.Queries...) {
			clean := filepath.ToSlash(filepath.Clean(p))
			if !strings.HasPrefix(clean+"/", own) {
				add(e.Name+": "+clean, fmt.Sprintf("entry %q reads %s, outside %s", e.Name, clean, own))
			}
		}
	}
	for _, m := range env.Modules {
		fi, err := os.Stat(filepath.Join(env.Root, SQLDir, m.Name))
		if err != nil || !fi.IsDir() || entries[m.Name] {
			continue
		}
		add(m.Name+": missing", fmt.Sprintf("module %s has %s/%s but no entry named %q", m.Name, SQLDir, m.Name, m.Name))
	}
	return vs, nil
}
