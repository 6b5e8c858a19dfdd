package arch

import (
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// ErrInvalidModuleName is returned (wrapped, with the reason) for a name `seam new module` refuses.
var ErrInvalidModuleName = errors.New("invalid module name")

// moduleNamePattern is what a module name looks like: it becomes a Go package name, a PostgreSQL schema, a
// NATS subject prefix and stream name, a configuration key and a URL path segment.
var moduleNamePattern = regexp.MustCompile(`^[a-z][a-z0-9]{1,30}$`)

// MonolithMain is the file that composes every module into the monolith, relative to the repository root.
const MonolithMain = "cmd/monolith/main.go"

// reservedModuleNames are names a module cannot take, and why.
var reservedModuleNames = func() map[string]string {
	m := map[string]string{}
	add := func(why string, names string) {
		for _, n := range strings.Fields(names) {
			if _, ok := m[n]; !ok {
				m[n] = why
			}
		}
	}
	add("it is a directory or package name of the repository's own layout",
		"platform app api domain data cmd arch modules sql sqlfs test tests testdata internal vendor tools docs "+
			"seam monolith main init")
	add("it is a Go keyword", "break case chan const continue default defer else fallthrough for func go goto "+
		"if import interface map package range return select struct switch type var")
	add("it is a predeclared Go identifier", "any bool byte comparable complex64 complex128 error float32 "+
		"float64 int int8 int16 int32 int64 rune string uint uint8 uint16 uint32 uint64 uintptr true false iota "+
		"nil append cap clear close complex copy delete imag len make max min new panic print println real recover")
	add("it is a Go standard library package name, which the module's package would shadow wherever both "+
		"are imported", "bufio bytes context crypto embed encoding errors expvar flag fmt hash html image io "+
		"iter log maps math mime net os path plugin reflect regexp runtime slices sort strconv strings sync "+
		"syscall testing text time unicode unique unsafe http json xml csv url slog rand filepath exec signal "+
		"atomic cmp heap list ring template tabwriter utf8 big bits fs user driver pprof debug trace")
	add("it is a PostgreSQL reserved word (the module's schema would need quoting everywhere)",
		"all analyse analyze and as asc asymmetric authorization binary both cast check collate collation "+
			"column concurrently constraint create cross deferrable desc distinct do end except fetch foreign "+
			"freeze from full grant group having ilike in initially inner intersect into is isnull join lateral "+
			"leading left like limit localtime localtimestamp natural not notnull null offset on only or order "+
			"outer overlaps placing primary references returning right session_user similar some symmetric "+
			"table tablesample then to trailing union unique user using variadic verbose when where window with")
	add("it is a PostgreSQL schema of its own", "public information_schema")
	add("it is the name of a platform package the module's code imports", "bus config db errs httpx identity inbox "+
		"outbox migrate observe pgserver pgtest rpc admin")
	add("the scaffolded api package declares a type Item, which the module's interface (named after the module) "+
		"would collide with", "item")
	return m
}()

// ValidateModuleName reports whether name can be a new module of the repository at root; the error wraps
// ErrInvalidModuleName and says why not.
func ValidateModuleName(root, name string) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w %q: %s", ErrInvalidModuleName, name, fmt.Sprintf(format, args...))
	}
	if !moduleNamePattern.MatchString(name) {
		return bad("a module name is 2 to 31 characters: a lower-case letter, then lower-case letters or " +
			"digits (it becomes a Go package, a PostgreSQL schema and a NATS subject prefix)")
	}
	if why, ok := reservedModuleNames[name]; ok {
		return bad("the name is reserved: %s", why)
	}
	for _, dir := range []string{"modules", "sql"} {
		p := filepath.Join(root, dir, name)
		if _, err := os.Stat(p); err == nil {
			return bad("%s/%s exists already", dir, name)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("arch: %w", err)
		}
	}
	used, err := monolithIdentifiers(root)
	if err != nil {
		return err
	}
	if used[name] {
		return bad("%s already uses the identifier %s, which the module's package name would collide with",
			MonolithMain, name)
	}
	return nil
}

// monolithIdentifiers returns every identifier and import name of the monolith's main file.
func monolithIdentifiers(root string) (map[string]bool, error) {
	f, err := parser.ParseFile(token.NewFileSet(), filepath.Join(root, MonolithMain), nil, parser.SkipObjectResolution)
	if err != nil {
		return nil, fmt.Errorf("arch: %w", err)
	}
	used := map[string]bool{}
	for _, imp := range f.Imports {
		p, err := strconv.Unquote(imp.Path.Value)
		if err != nil {
			return nil, fmt.Errorf("arch: %s: import %s: %w", MonolithMain, imp.Path.Value, err)
		}
		used[p[strings.LastIndex(p, "/")+1:]] = true
	}
	ast.Inspect(f, func(n ast.Node) bool {
		if id, ok := n.(*ast.Ident); ok {
			used[id.Name] = true
		}
		return true
	})
	return used, nil
}
