package arch

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"go/ast"
	"go/format"
	"go/parser"
	"go/token"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/template"

	"gopkg.in/yaml.v3"

	"github.com/seamkit/seam/arch/stubgen"
)

// scaffoldFS holds the templates of a new module: modules/NAME/... and sql/NAME/... (NAME stands for the
// module's name; a trailing .tmpl is dropped) and the module's sqlc.yaml entry.
//
//go:embed scaffold
var scaffoldFS embed.FS

// scaffoldData is what the scaffold templates are rendered with.
type scaffoldData struct {
	// Name is the module's name, e.g. "inventory".
	Name string
	// Title is Name with a capital first letter, the name of the module's api interface ("Inventory").
	Title string
	// Upper is Name in capitals, as in its environment variables (SEAM_INVENTORY_...).
	Upper string
	// GoModule is the repository's Go module path.
	GoModule string
}

// ScaffoldResult lists the files NewModule created and the ones it changed, relative to the root.
type ScaffoldResult struct {
	Created []string
	Changed []string
}

// GenerateFunc regenerates code in the repository at root after NewModule wrote the module's SQL (normally
// `sqlc generate`).
type GenerateFunc func(ctx context.Context, root string) error

// NewModule scaffolds module name in the repository at root: modules/<name>/{module.go, http.go, api,
// domain, data} and sql/<name>/{schema.sql, migrations, queries}; it adds the module's sqlc.yaml entry,
// registers it in cmd/monolith/main.go, regenerates .go-arch-lint.yml and the extracted binaries
// (cmd/<module>/main.go, which reach every module), runs generate for the sqlc code and regenerates the
// module-graph docs. A name ValidateModuleName refuses writes nothing; a later
// failure restores every file it had written.
func NewModule(ctx context.Context, root, name string, generate GenerateFunc) (res ScaffoldResult, err error) {
	if err := ValidateModuleName(root, name); err != nil {
		return res, err
	}
	goModule, err := goModPath(root)
	if err != nil {
		return res, err
	}
	data := scaffoldData{Name: name, Title: strings.ToUpper(name[:1]) + name[1:], Upper: strings.ToUpper(name), GoModule: goModule}
	files, err := renderScaffold(data)
	if err != nil {
		return res, err
	}
	edits := map[string][]byte{}
	if edits[SQLCConfigFile], err = addSQLCEntry(root, data); err != nil {
		return res, err
	}
	if edits[MonolithMain], err = registerInMonolith(root, goModule, name); err != nil {
		return res, err
	}

	w := &undoWriter{root: root, saved: map[string][]byte{}}
	defer func() {
		if err != nil {
			if rerr := w.undo(); rerr != nil {
				err = errors.Join(err, rerr)
			}
			res = ScaffoldResult{}
		}
	}()
	for _, file := range slices.Sorted(maps.Keys(files)) {
		if err := w.write(file, files[file]); err != nil {
			return res, err
		}
	}
	for _, file := range slices.Sorted(maps.Keys(edits)) {
		if err := w.write(file, edits[file]); err != nil {
			return res, err
		}
	}
	// The new api's remote stubs, before the lint config: their directory adds a component.
	stubs, err := stubgen.Generate(root)
	if err != nil {
		return res, fmt.Errorf("arch: remote stubs of module %s: %w", name, err)
	}
	for _, file := range slices.Sorted(maps.Keys(stubs)) {
		if strings.HasPrefix(file, ModulesDir+"/"+name+"/") {
			if err := w.write(file, stubs[file]); err != nil {
				return res, err
			}
		}
	}
	mods, err := LoadModules(root)
	if err != nil {
		return res, err
	}
	if err := w.write(ArchLintFile, ArchLintConfig(mods)); err != nil {
		return res, err
	}
	extracted, err := extractedModules(root, mods)
	if err != nil {
		return res, err
	}
	for _, m := range extracted {
		src, err := ExtractedMain(root, mods, m.Name)
		if err != nil {
			return res, err
		}
		if err := w.write(ExtractedMainPath(m.Name), src); err != nil {
			return res, err
		}
	}
	if generate != nil {
		if err := generate(ctx, root); err != nil {
			return res, fmt.Errorf("arch: generate code for module %s: %w", name, err)
		}
	}
	g, err := LoadGraph(root)
	if err != nil {
		return res, err
	}
	for file, content := range g.GraphDocs() {
		if err := w.write(file, content); err != nil {
			return res, err
		}
	}
	if err := w.collectGenerated(filepath.Join("modules", name)); err != nil {
		return res, err
	}
	return w.result(), nil
}

// renderScaffold renders the module's files (path relative to the root -> content), Go files gofmt'd.
func renderScaffold(data scaffoldData) (map[string][]byte, error) {
	files := map[string][]byte{}
	for _, top := range []string{"modules", "sql"} {
		err := fs.WalkDir(scaffoldFS, path.Join("scaffold", top), func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			out, err := renderTemplate(p, data)
			if err != nil {
				return err
			}
			target := strings.TrimSuffix(strings.TrimPrefix(p, "scaffold/"), ".tmpl")
			target = strings.ReplaceAll(target, "NAME", data.Name)
			if strings.HasSuffix(target, ".go") {
				if out, err = format.Source(out); err != nil {
					return fmt.Errorf("arch: scaffold %s does not gofmt: %w", target, err)
				}
			}
			files[target] = out
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("arch: scaffold: %w", err)
		}
	}
	return files, nil
}

func renderTemplate(name string, data scaffoldData) ([]byte, error) {
	text, err := scaffoldFS.ReadFile(name)
	if err != nil {
		return nil, err
	}
	t, err := template.New(path.Base(name)).Option("missingkey=error").Parse(string(text))
	if err != nil {
		return nil, fmt.Errorf("arch: template %s: %w", name, err)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, data); err != nil {
		return nil, fmt.Errorf("arch: template %s: %w", name, err)
	}
	return b.Bytes(), nil
}

// addSQLCEntry returns sqlc.yaml with the module's entry appended to its sql: list, keeping the rest of
// the file (comments included) as it is.
func addSQLCEntry(root string, data scaffoldData) ([]byte, error) {
	orig, err := os.ReadFile(filepath.Join(root, SQLCConfigFile))
	if err != nil {
		return nil, fmt.Errorf("arch: %w", err)
	}
	seq, next, err := sqlcEntries(orig)
	if err != nil {
		return nil, err
	}
	if len(seq.Content) == 0 || seq.Style&yaml.FlowStyle != 0 {
		return nil, fmt.Errorf("arch: %s: the sql: list must be a block list with at least one entry", SQLCConfigFile)
	}
	for _, e := range seq.Content {
		if entryName(e) == data.Name {
			return nil, fmt.Errorf("%w %q: %s has an entry with that name already", ErrInvalidModuleName, data.Name, SQLCConfigFile)
		}
	}
	entry, err := renderTemplate("scaffold/sqlc-entry.yaml.tmpl", data)
	if err != nil {
		return nil, err
	}
	// The template is indented for a list whose dashes are in column 3; follow the file's own indentation.
	indent := strings.Repeat(" ", max(seq.Content[0].Column-3, 0))
	var block strings.Builder
	block.WriteString("\n")
	for _, line := range strings.SplitAfter(string(entry), "\n") {
		if line != "" {
			block.WriteString(indent + strings.TrimPrefix(line, "  "))
		}
	}
	lines := strings.SplitAfter(string(orig), "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	at := len(lines)
	if next != nil {
		// Insert before the next top-level key, and before the comments and blank lines above it.
		at = next.Line - 1
		for at > 0 && (strings.TrimSpace(lines[at-1]) == "" || strings.HasPrefix(strings.TrimSpace(lines[at-1]), "#")) {
			at--
		}
	}
	if at > 0 && !strings.HasSuffix(lines[at-1], "\n") {
		lines[at-1] += "\n"
	}
	if at < len(lines) && strings.TrimSpace(lines[at]) != "" {
		block.WriteString("\n")
	}
	out := strings.Join(lines[:at], "") + block.String() + strings.Join(lines[at:], "")
	check, _, err := sqlcEntries([]byte(out))
	if err != nil {
		return nil, fmt.Errorf("arch: adding module %s to %s broke it (add the entry by hand, like the others): %w",
			data.Name, SQLCConfigFile, err)
	}
	if len(check.Content) != len(seq.Content)+1 || entryName(check.Content[len(check.Content)-1]) != data.Name {
		return nil, fmt.Errorf("arch: could not add module %s to the sql: list of %s; add the entry by hand, like the others",
			data.Name, SQLCConfigFile)
	}
	return []byte(out), nil
}

// sqlcEntries parses a sqlc configuration and returns its sql: list and the top-level key after it (nil
// when sql: is the last one).
func sqlcEntries(data []byte) (seq, next *yaml.Node, err error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, nil, fmt.Errorf("arch: %s: %w", SQLCConfigFile, err)
	}
	if len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, nil, fmt.Errorf("arch: %s: not a mapping", SQLCConfigFile)
	}
	top := doc.Content[0].Content
	for i := 0; i+1 < len(top); i += 2 {
		if top[i].Value != "sql" {
			continue
		}
		if top[i+1].Kind != yaml.SequenceNode {
			return nil, nil, fmt.Errorf("arch: %s: sql: is not a list", SQLCConfigFile)
		}
		if i+2 < len(top) {
			next = top[i+2]
		}
		return top[i+1], next, nil
	}
	return nil, nil, fmt.Errorf("arch: %s: no sql: list", SQLCConfigFile)
}

func entryName(entry *yaml.Node) string {
	for i := 0; i+1 < len(entry.Content); i += 2 {
		if entry.Content[i].Value == "name" {
			return entry.Content[i+1].Value
		}
	}
	return ""
}

// registerInMonolith returns cmd/monolith/main.go with the module's package imported and its Module passed
// to app.Run after the others. The places to edit are found with go/ast; the result is gofmt'd and parsed
// again to check that it registers the module.
func registerInMonolith(root, goModule, name string) ([]byte, error) {
	file := filepath.Join(root, MonolithMain)
	src, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("arch: %w", err)
	}
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, file, src, parser.ParseComments|parser.SkipObjectResolution)
	if err != nil {
		return nil, fmt.Errorf("arch: %w", err)
	}
	modPrefix := goModule + "/modules/"
	newPath := modPrefix + name
	appName := ""
	var appImport, before, after *ast.ImportSpec
	for _, imp := range f.Imports {
		p := importPath(imp)
		switch {
		case p == goModule+"/platform/app":
			appName, appImport = "app", imp
			if imp.Name != nil {
				appName = imp.Name.Name
			}
		case strings.HasPrefix(p, modPrefix) && p > newPath && before == nil:
			before = imp
		case strings.HasPrefix(p, modPrefix) && p < newPath:
			after = imp
		}
	}
	if appName == "" {
		return nil, fmt.Errorf("arch: %s does not import %s/platform/app; register module %s by hand", MonolithMain, goModule, name)
	}
	run := findCall(f, appName, "Run")
	if run == nil || len(run.Args) == 0 || run.Ellipsis.IsValid() {
		return nil, fmt.Errorf("arch: %s has no %s.Run(...) call listing the modules; register module %s by hand", MonolithMain, appName, name)
	}
	if d := lastImportDecl(f); d == nil || !d.Lparen.IsValid() {
		return nil, fmt.Errorf("arch: %s has no parenthesised import block; register module %s by hand", MonolithMain, name)
	}
	// The import goes in order among the module imports, or above platform/app when there are none; the
	// module goes last in app.Run, so that it starts after the modules it may depend on.
	type insert struct {
		at   int
		text string
	}
	quoted := strconv.Quote(newPath)
	imp := insert{fset.Position(appImport.Pos()).Offset, quoted + "\n\t"}
	switch {
	case before != nil:
		imp = insert{fset.Position(before.Pos()).Offset, quoted + "\n\t"}
	case after != nil:
		imp = insert{fset.Position(after.End()).Offset, "\n\t" + quoted}
	}
	inserts := []insert{imp, {fset.Position(run.Args[len(run.Args)-1].End()).Offset, ", " + name + ".Module"}}
	slices.SortFunc(inserts, func(a, b insert) int { return b.at - a.at })
	out := slices.Clone(src)
	for _, in := range inserts {
		out = slices.Insert(out, in.at, []byte(in.text)...)
	}
	out, err = format.Source(out)
	if err != nil {
		return nil, fmt.Errorf("arch: %s after registering module %s: %w", MonolithMain, name, err)
	}
	if err := checkRegistered(out, appName, newPath, name); err != nil {
		return nil, err
	}
	return out, nil
}

func importPath(imp *ast.ImportSpec) string {
	p, _ := strconv.Unquote(imp.Path.Value)
	return p
}

func lastImportDecl(f *ast.File) *ast.GenDecl {
	var last *ast.GenDecl
	for _, d := range f.Decls {
		if gd, ok := d.(*ast.GenDecl); ok && gd.Tok == token.IMPORT {
			last = gd
		}
	}
	return last
}

// findCall returns the first call pkg.fn(...) in f.
func findCall(f *ast.File, pkg, fn string) *ast.CallExpr {
	var found *ast.CallExpr
	ast.Inspect(f, func(n ast.Node) bool {
		if c, ok := n.(*ast.CallExpr); ok && found == nil && isPkgSelector(c.Fun, pkg, fn) {
			found = c
		}
		return found == nil
	})
	return found
}

// checkRegistered parses src and checks that it imports importPath and passes name.Module to app.Run.
func checkRegistered(src []byte, appName, importPath, name string) error {
	f, err := parser.ParseFile(token.NewFileSet(), MonolithMain, src, parser.SkipObjectResolution)
	if err != nil {
		return fmt.Errorf("arch: %s after registering module %s: %w", MonolithMain, name, err)
	}
	imported := slices.ContainsFunc(f.Imports, func(imp *ast.ImportSpec) bool {
		return imp.Path.Value == strconv.Quote(importPath) && imp.Name == nil
	})
	run := findCall(f, appName, "Run")
	passed := run != nil && slices.ContainsFunc(run.Args, func(a ast.Expr) bool { return isPkgSelector(a, name, "Module") })
	if !imported || !passed {
		return fmt.Errorf("arch: %s: registering module %s went wrong (import %v, argument %v); register it by hand",
			MonolithMain, name, imported, passed)
	}
	return nil
}

// undoWriter writes files under root and can put everything back as it was.
type undoWriter struct {
	root  string
	saved map[string][]byte // original content of changed files; nil for files that did not exist
	order []string
	dirs  []string // directories it created, outermost first
}

func (w *undoWriter) write(name string, content []byte) error {
	name = filepath.ToSlash(name)
	p := filepath.Join(w.root, filepath.FromSlash(name))
	if err := w.remember(name); err != nil {
		return err
	}
	if err := w.mkdirs(filepath.Dir(p)); err != nil {
		return err
	}
	if err := os.WriteFile(p, content, 0o644); err != nil {
		return fmt.Errorf("arch: write %s: %w", name, err)
	}
	return nil
}

// remember records name's original content (nil when it does not exist) the first time it is written.
func (w *undoWriter) remember(name string) error {
	if _, ok := w.saved[name]; ok {
		return nil
	}
	old, err := os.ReadFile(filepath.Join(w.root, filepath.FromSlash(name)))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		old = nil
	case err != nil:
		return fmt.Errorf("arch: %w", err)
	case old == nil:
		old = []byte{}
	}
	w.saved[name] = old
	w.order = append(w.order, name)
	return nil
}

// collectGenerated records the files under dir that it did not write itself (a generator's) as created.
func (w *undoWriter) collectGenerated(dir string) error {
	return filepath.WalkDir(filepath.Join(w.root, dir), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(w.root, p)
		if err != nil {
			return err
		}
		name := filepath.ToSlash(rel)
		if _, ok := w.saved[name]; !ok {
			w.saved[name] = nil
			w.order = append(w.order, name)
		}
		return nil
	})
}

func (w *undoWriter) mkdirs(dir string) error {
	var missing []string
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil {
			break
		}
		missing = append(missing, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	for i := len(missing) - 1; i >= 0; i-- {
		if err := os.Mkdir(missing[i], 0o755); err != nil {
			return fmt.Errorf("arch: %w", err)
		}
		w.dirs = append(w.dirs, missing[i])
	}
	return nil
}

// undo restores changed files, removes created ones and the directories it made (with anything a
// generator put there).
func (w *undoWriter) undo() error {
	var errs []error
	for _, name := range slices.Backward(w.order) {
		p := filepath.Join(w.root, filepath.FromSlash(name))
		if old := w.saved[name]; old != nil {
			errs = append(errs, os.WriteFile(p, old, 0o644))
		} else if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	for _, d := range slices.Backward(w.dirs) {
		errs = append(errs, os.RemoveAll(d))
	}
	return errors.Join(errs...)
}

// result lists the created and changed files in name order.
func (w *undoWriter) result() ScaffoldResult {
	var r ScaffoldResult
	for _, name := range slices.Sorted(slices.Values(w.order)) {
		if w.saved[name] == nil {
			r.Created = append(r.Created, name)
		} else {
			r.Changed = append(r.Changed, name)
		}
	}
	return r
}
