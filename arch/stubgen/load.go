package stubgen

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
)

// apiPackage is a module's api package, parsed and type-checked.
type apiPackage struct {
	module string // the module's directory name under modules/
	dir    string // the package directory relative to the repository root, slash-separated
	fset   *token.FileSet
	files  []*ast.File
	pkg    *types.Package
}

// listedPackage is what `go list -json` says about one package.
type listedPackage struct {
	ImportPath string
	Name       string
	Dir        string
	GoFiles    []string
	Export     string
	Error      *struct{ Err string }
}

// findAPIDirs returns the modules/<m>/api directories under root, sorted.
func findAPIDirs(root string) ([]string, error) {
	dirs, err := filepath.Glob(filepath.Join(root, "modules", "*", "api"))
	if err != nil {
		return nil, fmt.Errorf("stubgen: %w", err)
	}
	var out []string
	for _, d := range dirs {
		if fi, err := os.Stat(d); err == nil && fi.IsDir() {
			out = append(out, d)
		}
	}
	sort.Strings(out)
	return out, nil
}

// loadAPIPackages lists the api packages with `go list -export -deps` (export data of every dependency, so
// the packages type-check without golang.org/x/tools) and type-checks each from its source.
func loadAPIPackages(root string, dirs []string) ([]*apiPackage, error) {
	absRoot, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("stubgen: %w", err)
	}
	args := []string{"list", "-e", "-export", "-deps", "-json=ImportPath,Name,Dir,GoFiles,Export,Error"}
	want := map[string]string{}
	for _, d := range dirs {
		abs, err := filepath.Abs(d)
		if err != nil {
			return nil, fmt.Errorf("stubgen: %w", err)
		}
		want[abs] = filepath.Base(filepath.Dir(abs))
		args = append(args, abs)
	}
	cmd := exec.Command("go", args...)
	cmd.Dir = absRoot
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("stubgen: go list: %w: %s", err, stderr.String())
	}
	exports := map[string]string{}
	var apis []listedPackage
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p listedPackage
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("stubgen: decode go list output: %w", err)
		}
		if p.Export != "" {
			exports[p.ImportPath] = p.Export
		}
		if _, ok := want[p.Dir]; ok {
			if p.Error != nil {
				return nil, fmt.Errorf("stubgen: %s: %s", p.ImportPath, p.Error.Err)
			}
			apis = append(apis, p)
		}
	}
	lookup := func(path string) (io.ReadCloser, error) {
		f, ok := exports[path]
		if !ok {
			return nil, fmt.Errorf("no export data for %s", path)
		}
		return os.Open(f)
	}
	var pkgs []*apiPackage
	for _, p := range apis {
		fset := token.NewFileSet()
		ap := &apiPackage{module: want[p.Dir], fset: fset}
		rel, err := filepath.Rel(absRoot, p.Dir)
		if err != nil {
			return nil, fmt.Errorf("stubgen: %w", err)
		}
		ap.dir = filepath.ToSlash(rel)
		for _, name := range p.GoFiles {
			f, err := parser.ParseFile(fset, filepath.Join(p.Dir, name), nil, parser.ParseComments)
			if err != nil {
				return nil, fmt.Errorf("stubgen: %w", err)
			}
			ap.files = append(ap.files, f)
		}
		conf := types.Config{Importer: importer.ForCompiler(fset, "gc", lookup)}
		ap.pkg, err = conf.Check(p.ImportPath, fset, ap.files, nil)
		if err != nil {
			return nil, fmt.Errorf("stubgen: type-check %s: %w", p.ImportPath, err)
		}
		pkgs = append(pkgs, ap)
	}
	sort.Slice(pkgs, func(i, j int) bool { return pkgs[i].dir < pkgs[j].dir })
	return pkgs, nil
}
