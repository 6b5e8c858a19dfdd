package stubgen

import (
	"fmt"
	"go/ast"
	"go/token"
	"go/types"
	"path/filepath"
	"strings"
	"unicode"
)

// Directives recognised in doc comments of the api package.
const (
	// DirectiveIdempotent on an interface method marks it safe to retry.
	DirectiveIdempotent = "//seam:idempotent"
	// DirectiveReadOnly on an interface method marks it as changing nothing: safe to retry, and the only kind
	// of method a split module may shadow (call on both sides and compare).
	DirectiveReadOnly = "//seam:readonly"
	// DirectiveKey on an interface method, followed by a string parameter's name ("//seam:key userID"), makes
	// that argument the method's routing key: a split module sends the same key to the same side. Without it
	// the caller's user id routes the call.
	DirectiveKey = "//seam:key"
	// DirectiveLocal on an interface type leaves it out of generation (an interface that is not the module's
	// remote contract).
	DirectiveLocal = "//seam:local"
)

// Violation is one reason a method cannot be called remotely, at its position in the source.
type Violation struct {
	// Pos is file:line, the file relative to the repository root.
	Pos string
	// Method is Interface.Method.
	Method string
	// Reason says what is wrong.
	Reason string
}

func (v Violation) String() string { return v.Pos + ": " + v.Method + ": " + v.Reason }

// InvalidError lists every method that is not remotable; Generate and Check return it.
type InvalidError struct {
	// Violations are sorted by position.
	Violations []Violation
}

// Error lists the violations, one per line.
func (e *InvalidError) Error() string {
	lines := make([]string, len(e.Violations))
	for i, v := range e.Violations {
		lines[i] = v.String()
	}
	return "stubgen: methods that cannot be called remotely:\n  " + strings.Join(lines, "\n  ")
}

// service is an interface to generate stubs for.
type service struct {
	name    string
	methods []*method
}

// method is one remotable method.
type method struct {
	name       string
	params     []param // after ctx
	result     types.Type
	idempotent bool
	readOnly   bool
	// key is the routing key parameter's Go name in the client, or "".
	key string
}

// param is one argument after ctx: its Go name in the client and its field in the request struct.
type param struct {
	name  string
	field string
	tag   string
	typ   types.Type
}

// collect finds the package's service interfaces and checks every method, returning the violations found.
func collect(root string, ap *apiPackage) ([]*service, []Violation) {
	docs := map[string]*ast.CommentGroup{}
	fields := map[token.Pos]*ast.Field{}
	for _, f := range ap.files {
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.GenDecl:
				for _, s := range n.Specs {
					if ts, ok := s.(*ast.TypeSpec); ok {
						if ts.Doc != nil {
							docs[ts.Name.Name] = ts.Doc
						} else if len(n.Specs) == 1 {
							docs[ts.Name.Name] = n.Doc
						}
					}
				}
			case *ast.InterfaceType:
				for _, fl := range n.Methods.List {
					for _, name := range fl.Names {
						fields[name.Pos()] = fl
					}
				}
			}
			return true
		})
	}
	var services []*service
	var violations []Violation
	scope := ap.pkg.Scope()
	for _, name := range scope.Names() {
		tn, ok := scope.Lookup(name).(*types.TypeName)
		if !ok || !tn.Exported() || tn.IsAlias() {
			continue
		}
		iface, ok := tn.Type().Underlying().(*types.Interface)
		if !ok || hasDirective(docs[name], DirectiveLocal) {
			continue
		}
		svc := &service{name: name}
		if named, ok := tn.Type().(*types.Named); ok && named.TypeParams().Len() > 0 {
			violations = append(violations, Violation{Pos: position(root, ap.fset, tn.Pos()), Method: name,
				Reason: "generic interfaces are not remotable"})
			continue
		}
		for i := range iface.NumMethods() {
			fn := iface.Method(i)
			m, reasons := checkMethod(fn)
			var doc *ast.CommentGroup
			if f := fields[fn.Pos()]; f != nil {
				doc = f.Doc
			}
			if len(reasons) == 0 {
				m.readOnly = hasDirective(doc, DirectiveReadOnly)
				m.idempotent = m.readOnly || hasDirective(doc, DirectiveIdempotent)
				if key, ok := directiveArg(doc, DirectiveKey); ok {
					m.key, reasons = routingKey(fn, m, key)
				}
			}
			for _, r := range reasons {
				violations = append(violations, Violation{Pos: position(root, ap.fset, fn.Pos()), Method: name + "." + fn.Name(), Reason: r})
			}
			if len(reasons) == 0 {
				svc.methods = append(svc.methods, m)
			}
		}
		services = append(services, svc)
	}
	return services, violations
}

func hasDirective(doc *ast.CommentGroup, directive string) bool {
	if doc == nil {
		return false
	}
	for _, c := range doc.List {
		if strings.TrimSpace(c.Text) == directive {
			return true
		}
	}
	return false
}

// directiveArg returns the argument of directive in doc ("//seam:key userID" gives "userID").
func directiveArg(doc *ast.CommentGroup, directive string) (string, bool) {
	if doc == nil {
		return "", false
	}
	for _, c := range doc.List {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(c.Text), directive); ok && (rest == "" || rest[0] == ' ') {
			return strings.TrimSpace(rest), true
		}
	}
	return "", false
}

// routingKey checks that key names a string parameter of fn and returns its Go name in the client.
func routingKey(fn *types.Func, m *method, key string) (string, []string) {
	params := fn.Type().(*types.Signature).Params()
	for i := 1; i < params.Len(); i++ {
		v := params.At(i)
		if v.Name() != key {
			continue
		}
		if b, ok := v.Type().Underlying().(*types.Basic); !ok || b.Kind() != types.String {
			return "", []string{fmt.Sprintf("%s %s: the routing key must be a string parameter", DirectiveKey, key)}
		}
		return m.params[i-1].name, nil
	}
	return "", []string{fmt.Sprintf("%s %s: no parameter is called %q", DirectiveKey, key, key)}
}

func position(root string, fset *token.FileSet, pos token.Pos) string {
	p := fset.Position(pos)
	file := p.Filename
	if abs, err := filepath.Abs(root); err == nil {
		if rel, err := filepath.Rel(abs, file); err == nil {
			file = filepath.ToSlash(rel)
		}
	}
	return fmt.Sprintf("%s:%d", file, p.Line)
}

// reservedNames are the client method's own identifiers, which a parameter must not shadow.
var reservedNames = map[string]bool{"c": true, "ctx": true, "resp": true, "err": true, "r": true, "result": true, "other": true}

// checkMethod returns the method's model, or why it is not remotable.
func checkMethod(fn *types.Func) (*method, []string) {
	sig := fn.Type().(*types.Signature)
	m := &method{name: fn.Name()}
	var reasons []string
	if sig.Variadic() {
		reasons = append(reasons, "variadic parameters are not remotable")
	}
	params, results := sig.Params(), sig.Results()
	if params.Len() == 0 || !isContext(params.At(0).Type()) {
		reasons = append(reasons, "the first parameter must be context.Context")
	}
	switch {
	case results.Len() == 0 || !isError(results.At(results.Len()-1).Type()):
		reasons = append(reasons, "the last result must be error")
	case results.Len() > 2:
		reasons = append(reasons, "at most one result besides error")
	case results.Len() == 2:
		m.result = results.At(0).Type()
		if r := unremotable(m.result, map[types.Type]bool{}); r != "" {
			reasons = append(reasons, "result: "+r)
		}
	}
	fieldsUsed := map[string]bool{}
	for i := 1; i < params.Len(); i++ {
		v := params.At(i)
		if r := unremotable(v.Type(), map[types.Type]bool{}); r != "" {
			reasons = append(reasons, fmt.Sprintf("parameter %d (%s): %s", i, v.Name(), r))
			continue
		}
		name := v.Name()
		if name == "" || name == "_" {
			name = fmt.Sprintf("arg%d", i)
		}
		field := exportName(name)
		for fieldsUsed[field] {
			field += "_"
		}
		fieldsUsed[field] = true
		goName := name
		if reservedNames[goName] {
			goName += "Arg"
		}
		m.params = append(m.params, param{name: goName, field: field, tag: snakeCase(name), typ: v.Type()})
	}
	return m, reasons
}

// snakeCase turns a parameter name into the JSON key convention of Seam's api types: userID -> user_id.
func snakeCase(s string) string {
	r := []rune(s)
	var b strings.Builder
	for i, c := range r {
		if unicode.IsUpper(c) {
			prevLower := i > 0 && (unicode.IsLower(r[i-1]) || unicode.IsDigit(r[i-1]))
			nextLower := i > 0 && i+1 < len(r) && unicode.IsUpper(r[i-1]) && unicode.IsLower(r[i+1])
			if prevLower || nextLower {
				b.WriteByte('_')
			}
			c = unicode.ToLower(c)
		}
		b.WriteRune(c)
	}
	return b.String()
}

func exportName(s string) string {
	r := []rune(s)
	r[0] = unicode.ToUpper(r[0])
	return string(r)
}

func isContext(t types.Type) bool {
	n, ok := types.Unalias(t).(*types.Named)
	return ok && n.Obj().Pkg() != nil && n.Obj().Pkg().Path() == "context" && n.Obj().Name() == "Context"
}

func isError(t types.Type) bool { return types.Identical(t, types.Universe.Lookup("error").Type()) }

// unremotable says why values of t cannot travel as JSON between processes, or "" when they can.
func unremotable(t types.Type, seen map[types.Type]bool) string {
	t = types.Unalias(t)
	if seen[t] {
		return ""
	}
	seen[t] = true
	if n, ok := t.(*types.Named); ok {
		obj := n.Obj()
		if obj.Pkg() != nil && !obj.Exported() {
			return fmt.Sprintf("type %s is unexported, so the generated package cannot name it", obj.Name())
		}
		if marshals(t) {
			return ""
		}
		if r := unremotable(n.Underlying(), seen); r != "" {
			if obj.Pkg() == nil {
				return r
			}
			return obj.Name() + ": " + r
		}
		return ""
	}
	switch u := t.(type) {
	case *types.Basic:
		switch u.Kind() {
		case types.UnsafePointer:
			return "unsafe.Pointer is not remotable"
		case types.Complex64, types.Complex128:
			return "complex numbers do not encode as JSON"
		}
		return ""
	case *types.Chan:
		return "channels are not remotable"
	case *types.Signature:
		return "funcs are not remotable"
	case *types.Interface:
		return "interface values (including any and error) cannot be decoded on the other side"
	case *types.TypeParam:
		return "type parameters are not remotable"
	case *types.Pointer:
		return unremotable(u.Elem(), seen)
	case *types.Slice:
		return unremotable(u.Elem(), seen)
	case *types.Array:
		return unremotable(u.Elem(), seen)
	case *types.Map:
		if b, ok := u.Key().Underlying().(*types.Basic); !ok || b.Info()&(types.IsString|types.IsInteger) == 0 {
			if !marshalsText(u.Key()) {
				return "map keys must be strings, integers or encoding.TextMarshaler"
			}
		}
		return unremotable(u.Elem(), seen)
	case *types.Struct:
		for i := range u.NumFields() {
			f := u.Field(i)
			if !f.Exported() && !f.Embedded() {
				continue
			}
			if r := unremotable(f.Type(), seen); r != "" {
				return "field " + f.Name() + ": " + r
			}
		}
		return ""
	}
	return fmt.Sprintf("type %s is not remotable", t)
}

// marshals reports whether t (or *t) encodes itself, as time.Time does.
func marshals(t types.Type) bool {
	return hasMethod(t, "MarshalJSON") || marshalsText(t)
}

func marshalsText(t types.Type) bool { return hasMethod(t, "MarshalText") }

func hasMethod(t types.Type, name string) bool {
	for _, typ := range []types.Type{t, types.NewPointer(t)} {
		ms := types.NewMethodSet(typ)
		for i := range ms.Len() {
			if ms.At(i).Obj().Name() == name {
				return true
			}
		}
	}
	return false
}
