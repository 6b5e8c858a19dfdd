package arch

import (
	"bufio"
	"cmp"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// StreamOf names module's JetStream stream as platform/bus does (bus.StreamName): arch repeats it so that
// reading the graph needs no NATS code, and a test keeps the two in step.
func StreamOf(module string) string { return strings.ToUpper(module) }

// EventSubjectPrefix is the prefix of module's event subjects, as platform/bus builds them
// (bus.EventSubject(module, "")).
func EventSubjectPrefix(module string) string { return module + ".events." }

// EdgeKind says through which channel one module depends on another.
type EdgeKind string

// The kinds of module dependency.
const (
	// KindCall means the module uses the other module's Go contract (its interface, types or errors): a
	// synchronous call that becomes a remote call once either module runs on its own.
	KindCall EdgeKind = "call"
	// KindEvent means the module consumes the other module's events: asynchronous, already over the bus.
	KindEvent EdgeKind = "event"
)

// Evidence is one place in the code that shows a dependency.
type Evidence struct {
	// File is the file's path relative to the repository root, with forward slashes.
	File string
	// Line is the 1-based line of the reference; 0 when the evidence names the file only.
	Line int
}

// String returns "file:line", or "file" when the line is not known.
func (e Evidence) String() string {
	if e.Line == 0 {
		return e.File
	}
	return e.File + ":" + strconv.Itoa(e.Line)
}

// Edge is one dependency of module From on module To.
type Edge struct {
	From, To string
	Kind     EdgeKind
	Evidence Evidence
}

// Graph is the module dependency graph of a repository: its modules in name order and their dependencies
// ordered by From, To and Kind.
type Graph struct {
	Modules []string
	Edges   []Edge
}

// LoadGraph builds the module graph of the repository at root from the modules LoadModules finds.
func LoadGraph(root string) (*Graph, error) {
	mods, err := LoadModules(root)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(mods))
	for i, m := range mods {
		names[i] = m.Name
	}
	return BuildGraph(root, names)
}

// BuildGraph builds the dependency graph of modules (directories modules/<name> under root) by reading
// their non-test Go sources: module A depends on B by call when A refers to anything of B other than its
// events (normally B's api package), and by event when A consumes B's events, found in inbox.Subscription
// literals (Stream: bus.StreamName("b") or "B", Subjects: bapi.Subject... or "b.events...") and in
// references to B's event subjects and payload types.
func BuildGraph(root string, modules []string) (*Graph, error) {
	modPath, err := goModPath(root)
	if err != nil {
		return nil, err
	}
	s := &scanner{
		root:     root,
		modPath:  modPath,
		modules:  map[string]bool{},
		pkgNames: map[string]string{},
		events:   map[string]map[string]bool{},
		found:    map[edgeKey]candidate{},
		fset:     token.NewFileSet(),
	}
	sorted := slices.Clone(modules)
	slices.Sort(sorted)
	for _, m := range sorted {
		s.modules[m] = true
	}
	for _, m := range sorted {
		if err := s.scanModule(m); err != nil {
			return nil, err
		}
	}
	g := &Graph{Modules: sorted}
	for k, c := range s.found {
		g.Edges = append(g.Edges, Edge{From: k.from, To: k.to, Kind: k.kind, Evidence: c.at})
	}
	slices.SortFunc(g.Edges, compareEdges)
	return g, nil
}

func compareEdges(a, b Edge) int {
	return cmp.Or(cmp.Compare(a.From, b.From), cmp.Compare(a.To, b.To), cmp.Compare(a.Kind, b.Kind))
}

// goModPath reads the module path from root's go.mod.
func goModPath(root string) (string, error) {
	f, err := os.Open(filepath.Join(root, "go.mod"))
	if err != nil {
		return "", fmt.Errorf("arch: module path: %w", err)
	}
	defer func() { _ = f.Close() }()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "module "); ok {
			return strings.Trim(strings.TrimSpace(rest), `"`), nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("arch: read go.mod: %w", err)
	}
	return "", fmt.Errorf("arch: %s has no module line", filepath.Join(root, "go.mod"))
}

type edgeKey struct {
	from, to string
	kind     EdgeKind
}

// candidate is a piece of evidence and its rank: a subscription literal (rank 0) shows an event dependency
// better than a reference to an event type (rank 1); within a rank the first position wins.
type candidate struct {
	rank int
	at   Evidence
}

func (c candidate) better(o candidate) bool {
	return cmp.Or(cmp.Compare(c.rank, o.rank), cmp.Compare(c.at.File, o.at.File), cmp.Compare(c.at.Line, o.at.Line)) < 0
}

type scanner struct {
	root     string
	modPath  string
	modules  map[string]bool
	pkgNames map[string]string          // import path -> package name
	events   map[string]map[string]bool // module -> identifiers of its api that belong to its events
	found    map[edgeKey]candidate
	fset     *token.FileSet
}

func (s *scanner) add(from, to string, kind EdgeKind, rank int, pos token.Pos) {
	if from == to || !s.modules[to] {
		return
	}
	p := s.fset.Position(pos)
	rel, err := filepath.Rel(s.root, p.Filename)
	if err != nil {
		rel = p.Filename
	}
	c := candidate{rank: rank, at: Evidence{File: filepath.ToSlash(rel), Line: p.Line}}
	k := edgeKey{from, to, kind}
	if old, ok := s.found[k]; !ok || c.better(old) {
		s.found[k] = c
	}
}

// scanModule reads every non-test Go file under modules/<name>.
func (s *scanner) scanModule(name string) error {
	dir := filepath.Join(s.root, "modules", name)
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("arch: scan module %s: %w", name, err)
		}
		base := d.Name()
		if d.IsDir() {
			if p != dir && (base == "testdata" || strings.HasPrefix(base, ".") || strings.HasPrefix(base, "_")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(base, ".go") || strings.HasSuffix(base, "_test.go") {
			return nil
		}
		return s.scanFile(name, p)
	})
}

// fileImports are the local names of the imports of one file that the scan cares about.
type fileImports struct {
	modules map[string]importedModule // local name -> module package
	inbox   string                    // local name of platform/inbox ("" when not imported)
	bus     string                    // local name of platform/bus
}

type importedModule struct {
	module string
	isAPI  bool
}

func (s *scanner) scanFile(module, file string) error {
	f, err := parser.ParseFile(s.fset, file, nil, parser.SkipObjectResolution)
	if err != nil {
		return fmt.Errorf("arch: %w", err)
	}
	imps, err := s.imports(module, f)
	if err != nil {
		return err
	}
	subscriptions := map[*ast.CompositeLit]bool{}
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.CompositeLit:
			if imps.inbox == "" {
				return true
			}
			if isPkgSelector(n.Type, imps.inbox, "Subscription") {
				subscriptions[n] = true
			}
			if elt := sliceElemType(n.Type); elt != nil && isPkgSelector(elt, imps.inbox, "Subscription") {
				for _, e := range n.Elts {
					if lit := elemLiteral(e); lit != nil {
						subscriptions[lit] = true
					}
				}
			}
			if subscriptions[n] {
				s.subscription(module, n, imps)
			}
		case *ast.SelectorExpr:
			s.reference(module, n, imps)
		}
		return true
	})
	return nil
}

// imports maps the file's imports of module packages, platform/inbox and platform/bus to their local names.
// A dot import of another module's package hides which identifiers come from it: it counts as a call
// dependency at the import.
func (s *scanner) imports(module string, f *ast.File) (fileImports, error) {
	imps := fileImports{modules: map[string]importedModule{}}
	for _, spec := range f.Imports {
		p, err := strconv.Unquote(spec.Path.Value)
		if err != nil {
			return imps, fmt.Errorf("arch: import %s: %w", spec.Path.Value, err)
		}
		local := ""
		if spec.Name != nil {
			local = spec.Name.Name
		}
		switch {
		case p == s.modPath+"/platform/inbox":
			imps.inbox = cmp.Or(local, "inbox")
		case p == s.modPath+"/platform/bus":
			imps.bus = cmp.Or(local, "bus")
		case strings.HasPrefix(p, s.modPath+"/modules/"):
			rest := strings.TrimPrefix(p, s.modPath+"/modules/")
			mod, sub, _ := strings.Cut(rest, "/")
			if !s.modules[mod] || local == "_" {
				continue
			}
			if local == "" {
				if local, err = s.packageName(p); err != nil {
					return imps, err
				}
			}
			if local == "." {
				s.add(module, mod, KindCall, 0, spec.Pos())
				continue
			}
			imps.modules[local] = importedModule{module: mod, isAPI: sub == "api" || strings.HasPrefix(sub, "api/")}
		}
	}
	return imps, nil
}

// packageName returns the package name declared by the Go files of import path p inside the repository.
func (s *scanner) packageName(p string) (string, error) {
	if name, ok := s.pkgNames[p]; ok {
		return name, nil
	}
	dir := filepath.Join(s.root, filepath.FromSlash(strings.TrimPrefix(p, s.modPath+"/")))
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", fmt.Errorf("arch: package %s: %w", p, err)
	}
	name := path.Base(p)
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), filepath.Join(dir, e.Name()), nil, parser.PackageClauseOnly)
		if err != nil {
			return "", fmt.Errorf("arch: %w", err)
		}
		name = f.Name.Name
		break
	}
	s.pkgNames[p] = name
	return name, nil
}

// reference records a use of another module's package: an event dependency when the identifier belongs to
// that module's events, a call dependency otherwise.
func (s *scanner) reference(module string, sel *ast.SelectorExpr, imps fileImports) {
	x, ok := sel.X.(*ast.Ident)
	if !ok {
		return
	}
	im, ok := imps.modules[x.Name]
	if !ok {
		return
	}
	if im.isAPI && s.eventIdents(im.module)[sel.Sel.Name] {
		s.add(module, im.module, KindEvent, 1, sel.Pos())
		return
	}
	s.add(module, im.module, KindCall, 0, sel.Pos())
}

// subscription records the modules whose events an inbox.Subscription literal consumes.
func (s *scanner) subscription(module string, lit *ast.CompositeLit, imps fileImports) {
	for _, e := range lit.Elts {
		kv, ok := e.(*ast.KeyValueExpr)
		if !ok {
			continue
		}
		key, ok := kv.Key.(*ast.Ident)
		if !ok {
			continue
		}
		switch key.Name {
		case "Stream":
			if from, ok := s.streamModule(kv.Value, imps); ok {
				s.add(module, from, KindEvent, 0, kv.Value.Pos())
			}
		case "Subjects":
			list, ok := kv.Value.(*ast.CompositeLit)
			if !ok {
				continue
			}
			for _, subj := range list.Elts {
				if from, ok := s.subjectModule(subj, imps); ok {
					s.add(module, from, KindEvent, 0, subj.Pos())
				}
			}
		}
	}
}

// streamModule resolves bus.StreamName("b") or a literal stream name to the module owning the stream.
func (s *scanner) streamModule(e ast.Expr, imps fileImports) (string, bool) {
	switch v := e.(type) {
	case *ast.CallExpr:
		if imps.bus == "" || !isPkgSelector(v.Fun, imps.bus, "StreamName") || len(v.Args) != 1 {
			return "", false
		}
		if name, ok := stringLiteral(v.Args[0]); ok && s.modules[name] {
			return name, true
		}
	case *ast.BasicLit:
		name, ok := stringLiteral(v)
		if !ok {
			return "", false
		}
		for m := range s.modules {
			if StreamOf(m) == name {
				return m, true
			}
		}
	}
	return "", false
}

// subjectModule resolves bapi.SubjectX or a literal "b.events..." subject to the module publishing it.
func (s *scanner) subjectModule(e ast.Expr, imps fileImports) (string, bool) {
	switch v := e.(type) {
	case *ast.SelectorExpr:
		if x, ok := v.X.(*ast.Ident); ok {
			if im, ok := imps.modules[x.Name]; ok && im.isAPI {
				return im.module, true
			}
		}
	case *ast.BasicLit:
		subject, ok := stringLiteral(v)
		if !ok {
			return "", false
		}
		for m := range s.modules {
			if strings.HasPrefix(subject, EventSubjectPrefix(m)) {
				return m, true
			}
		}
	}
	return "", false
}

// eventIdents returns the identifiers of module's api package that describe its events: constants named
// Subject* and Event*, and each type T for which a constant SubjectT exists (the event's payload).
func (s *scanner) eventIdents(module string) map[string]bool {
	if ids, ok := s.events[module]; ok {
		return ids
	}
	ids := map[string]bool{}
	s.events[module] = ids
	dir := filepath.Join(s.root, "modules", module, "api")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return ids // no api package: every reference counts as a call
	}
	var types []string
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), filepath.Join(dir, e.Name()), nil, parser.SkipObjectResolution)
		if err != nil {
			continue // the scan of the module itself reports unparsable files
		}
		for _, d := range f.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok {
				continue
			}
			for _, spec := range gd.Specs {
				switch sp := spec.(type) {
				case *ast.ValueSpec:
					for _, n := range sp.Names {
						if gd.Tok == token.CONST && (strings.HasPrefix(n.Name, "Subject") || strings.HasPrefix(n.Name, "Event")) {
							ids[n.Name] = true
						}
					}
				case *ast.TypeSpec:
					types = append(types, sp.Name.Name)
				}
			}
		}
	}
	for _, t := range types {
		if ids["Subject"+t] {
			ids[t] = true
		}
	}
	return ids
}

func isPkgSelector(e ast.Expr, pkg, name string) bool {
	sel, ok := e.(*ast.SelectorExpr)
	if !ok {
		return false
	}
	x, ok := sel.X.(*ast.Ident)
	return ok && x.Name == pkg && sel.Sel.Name == name
}

func sliceElemType(e ast.Expr) ast.Expr {
	if at, ok := e.(*ast.ArrayType); ok {
		return at.Elt
	}
	return nil
}

func elemLiteral(e ast.Expr) *ast.CompositeLit {
	if u, ok := e.(*ast.UnaryExpr); ok && u.Op == token.AND {
		e = u.X
	}
	lit, _ := e.(*ast.CompositeLit)
	return lit
}

func stringLiteral(e ast.Expr) (string, bool) {
	lit, ok := e.(*ast.BasicLit)
	if !ok || lit.Kind != token.STRING {
		return "", false
	}
	s, err := strconv.Unquote(lit.Value)
	return s, err == nil
}
