package arch

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// ArchLintModFile is the go.mod pinning go-arch-lint, relative to the repository root.
const ArchLintModFile = "tools/archlint/go.mod"

// forbiddenInDomain are the standard library packages (and their sub-packages) a domain may not import:
// go-arch-lint always allows the standard library, so Seam checks these itself.
var forbiddenInDomain = []string{"net/http", "database/sql"}

// checkImports runs go-arch-lint with the configuration generated from the modules on disk (so a stale
// committed copy, which the generated channel reports, cannot hide a violation), then the standard library
// rules of domain packages.
func checkImports(ctx context.Context, env Env) ChannelResult {
	var res ChannelResult
	vs, err := runArchLint(ctx, env)
	if err != nil {
		res.Err = err
		return res
	}
	res.Violations = vs
	vs, err = domainStdlibImports(env)
	if err != nil {
		res.Err = err
		return res
	}
	res.Violations = append(res.Violations, vs...)
	res.Checked = "go-arch-lint with " + ArchLintFile + " as generated from modules/; standard library rules of domain"
	return res
}

// archLintReport is the part of go-arch-lint's JSON report (`check --json`) Seam reads.
type archLintReport struct {
	Payload struct {
		ExecutionWarnings []struct {
			Text string
		}
		ArchWarningsDeps []struct {
			ComponentName      string
			FileRelativePath   string
			ResolvedImportName string
			Reference          archLintRef
		}
		ArchWarningsNotMatched []struct {
			FileRelativePath string
		}
		ArchWarningsDeepScan []struct {
			Gate struct {
				ComponentName string
				MethodName    string
			}
			Dependency struct {
				ComponentName string
				Name          string
				Injection     archLintRef
			}
		}
		OmittedCount int
		ModuleName   string
	}
}

// archLintRef is a position in go-arch-lint's report.
type archLintRef struct {
	Valid bool
	File  string
	Line  int
}

// runArchLint writes the generated configuration to a temporary file and runs the pinned go-arch-lint on it.
func runArchLint(ctx context.Context, env Env) ([]Violation, error) {
	f, err := os.CreateTemp("", "seam-arch-lint-*.yml")
	if err != nil {
		return nil, fmt.Errorf("go-arch-lint: %w", err)
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(ArchLintConfig(env.Modules)); err != nil {
		f.Close()
		return nil, fmt.Errorf("go-arch-lint: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("go-arch-lint: %w", err)
	}
	cmd := exec.CommandContext(ctx, env.Go, "tool", "-modfile="+ArchLintModFile, "go-arch-lint", "check",
		"--json", "--output-json-one-line", "--max-warnings=32768", "--arch-file="+f.Name(), "--project-path="+env.Root)
	cmd.Dir = env.Root
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	var rep archLintReport
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		cause := runErr // the tool failed before reporting: its exit status and standard error say why
		if cause == nil {
			cause = fmt.Errorf("unreadable report: %w", err)
		}
		return nil, fmt.Errorf("go-arch-lint: %w", toolError(cause, &stderr))
	}
	p := rep.Payload
	var vs []Violation
	if len(p.ExecutionWarnings) > 0 {
		texts := make([]string, 0, len(p.ExecutionWarnings))
		for _, w := range p.ExecutionWarnings {
			texts = append(texts, w.Text)
		}
		return nil, fmt.Errorf("go-arch-lint: the generated configuration is rejected: %s", strings.Join(texts, "; "))
	}
	if p.OmittedCount > 0 {
		return nil, fmt.Errorf("go-arch-lint: %d warnings omitted", p.OmittedCount)
	}
	for _, w := range p.ArchWarningsDeps {
		rule, text := componentRule(w.ComponentName, !strings.HasPrefix(w.ResolvedImportName, p.ModuleName+"/"))
		vs = append(vs, Violation{
			Channel: ChannelImports,
			Rule:    rule,
			File:    env.Rel(strings.TrimPrefix(w.FileRelativePath, "/")),
			Line:    w.Reference.Line,
			Detail:  w.ResolvedImportName,
			Message: fmt.Sprintf("%s may not import %s (rule: %s)", w.ComponentName, w.ResolvedImportName, text),
		})
	}
	for _, w := range p.ArchWarningsNotMatched {
		file := strings.TrimPrefix(w.FileRelativePath, "/")
		vs = append(vs, Violation{
			Channel: ChannelImports,
			Rule:    "unattached",
			File:    file,
			Detail:  filepath.ToSlash(filepath.Dir(file)),
			Message: "package " + filepath.ToSlash(filepath.Dir(file)) + " belongs to no component (rule: Go code lives in cmd/, " +
				"platform/, arch/, test/ or a module's root, api/, domain/ or data/)",
		})
	}
	for _, w := range p.ArchWarningsDeepScan {
		rule, text := componentRule(w.Gate.ComponentName, false)
		inj := w.Dependency.Injection
		vs = append(vs, Violation{
			Channel: ChannelImports,
			Rule:    rule,
			File:    env.Rel(inj.File),
			Line:    inj.Line,
			Detail:  fmt.Sprintf("%s.%s <- %s", w.Gate.ComponentName, w.Gate.MethodName, w.Dependency.Name),
			Message: fmt.Sprintf("%s.%s is given %s from %s (rule: %s)", w.Gate.ComponentName, w.Gate.MethodName,
				w.Dependency.Name, w.Dependency.ComponentName, text),
		})
	}
	return vs, nil
}

// toolError adds a tool's standard error output to err.
func toolError(err error, stderr *bytes.Buffer) error {
	if msg := strings.TrimSpace(stderr.String()); msg != "" {
		return fmt.Errorf("%w: %s", err, msg)
	}
	return err
}

// componentRule returns the rule identifier and its one-line text for a violation by a component of the
// generated configuration; vendor says the import is a third-party library, so the text lists the ones
// the component may use.
func componentRule(comp string, vendor bool) (rule, text string) {
	var vendors []string
	switch comp {
	case "platform":
		rule, text, vendors = "platform-imports", "platform imports no module", platformVendors
	case "platform-contract":
		rule, text = "contract-imports", strings.Join(ContractPackages, " and ")+" import only the standard library"
	case "arch":
		rule, text, vendors = "arch-imports", "arch imports only platform, never a module", []string{"yaml"}
	default:
		module, layer, _ := strings.Cut(comp, "-")
		switch layer {
		case "":
			rule, text = "module-imports", "a module imports its own layers, other modules' api packages, platform and sql"
			vendors = moduleRootVendors
		case LayerAPI:
			rule, text = "api-imports", "an api package imports only the standard library and "+strings.Join(ContractPackages, ", ")
		case LayerDomain:
			rule = "domain-imports"
			text = "a domain imports its module's api, other modules' api packages and platform; never data, " +
				"another module's internals, or HTTP/SQL libraries"
			vendors = layerVendors[layer]
		case LayerData:
			rule, text = "data-imports", "data imports its module's api and domain, and platform"
			vendors = layerVendors[layer]
		default:
			return "imports", "component " + module + " " + layer + " has its own rules in " + ArchLintFile
		}
	}
	if vendor {
		if len(vendors) == 0 {
			text += "; no third-party libraries"
		} else {
			text += "; libraries: " + strings.Join(vendors, ", ")
		}
	}
	return rule, text
}

// domainStdlibImports reports domain files importing forbiddenInDomain packages.
func domainStdlibImports(env Env) ([]Violation, error) {
	var vs []Violation
	for _, m := range env.Modules {
		if !m.HasLayer(LayerDomain) {
			continue
		}
		comp := component(m.Name, LayerDomain)
		rule, text := componentRule(comp, false)
		err := walkGo(env.Root, m.Dir+"/"+LayerDomain, func(rel string, fset *token.FileSet, src []byte) error {
			f, err := parser.ParseFile(fset, rel, src, parser.ImportsOnly)
			if err != nil {
				return err
			}
			for _, imp := range f.Imports {
				p, err := strconv.Unquote(imp.Path.Value)
				if err != nil {
					continue
				}
				for _, bad := range forbiddenInDomain {
					if p == bad || strings.HasPrefix(p, bad+"/") {
						vs = append(vs, Violation{
							Channel: ChannelImports,
							Rule:    rule,
							File:    rel,
							Line:    fset.Position(imp.Pos()).Line,
							Detail:  p,
							Message: fmt.Sprintf("%s may not import %s (rule: %s)", comp, p, text),
						})
					}
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return vs, nil
}

// walkGo calls fn for every non-test Go file under dir (relative to root), skipping testdata and hidden
// directories, with the file's slash path relative to root.
func walkGo(root, dir string, fn func(rel string, fset *token.FileSet, src []byte) error) error {
	fset := token.NewFileSet()
	return filepath.WalkDir(filepath.Join(root, filepath.FromSlash(dir)), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if p != filepath.Join(root, filepath.FromSlash(dir)) && (name == "testdata" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		if err := fn(filepath.ToSlash(rel), fset, src); err != nil {
			return fmt.Errorf("arch: %s: %w", filepath.ToSlash(rel), err)
		}
		return nil
	})
}
