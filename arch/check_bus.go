package arch

import (
	"context"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/seamkit/seam/platform/bus"
)

// eventSubject matches an event subject literal and captures the module it belongs to ("billing.events.x").
var eventSubject = regexp.MustCompile(`^([a-z][a-z0-9_]*)\.events\.`)

// consumeKeys are the struct fields that declare consumption (inbox.Subscription, bus.Consumption): another
// module's subject is expected there.
var consumeKeys = []string{"Subjects", "FilterSubject", "FilterSubjects"}

// rawBusMethods are the platform/bus methods that hand out a raw NATS connection; module code publishes
// through its outbox and consumes through platform/inbox instead. Without type information a call is
// recognised by name in a file importing platform/bus (Conn and JetStream only without arguments).
var rawBusMethods = []string{"Conn", "JetStream", "ModuleConn", "ModuleJetStream"}

// natsModule is the NATS client module; module code does not import it.
const natsModule = "github.com/nats-io/nats.go"

// checkBus reads every non-test Go file of every module and reports event publications outside the
// module's own subjects and raw NATS use. The NATS server enforces the same at run time (each module's
// user may publish only "<module>.events.>"); this check names the file and line before anything runs. The
// generated remote stubs (RemoteDir) are the one place module code talks to NATS directly: they carry the
// module's api calls, not events, and go-arch-lint confines them to their own component.
func checkBus(_ context.Context, env Env) ChannelResult {
	var res ChannelResult
	for _, m := range env.Modules {
		remote := m.Dir + "/" + RemoteDir + "/"
		err := walkGo(env.Root, m.Dir, func(rel string, fset *token.FileSet, src []byte) error {
			if strings.HasPrefix(filepath.ToSlash(rel), remote) {
				return nil
			}
			f, err := parser.ParseFile(fset, rel, src, parser.SkipObjectResolution)
			if err != nil {
				return err
			}
			res.Violations = append(res.Violations, busFile(env, m.Name, rel, fset, f)...)
			return nil
		})
		if err != nil {
			res.Err = err
			return res
		}
	}
	res.Checked = "subjects each module publishes and names, raw NATS use (modules/**/*.go)"
	return res
}

// busImports are the packages of one file that matter to the bus check, by local name.
type busImports struct {
	bus, outbox string
	apis        map[string]string // local name -> module whose api package it is
}

// busFile checks one file of module.
func busFile(env Env, module, rel string, fset *token.FileSet, f *ast.File) []Violation {
	var vs []Violation
	add := func(pos token.Pos, rule, detail, msg string) {
		vs = append(vs, Violation{Channel: ChannelBus, Rule: rule, File: rel, Line: fset.Position(pos).Line,
			Detail: detail, Message: msg})
	}
	own := bus.EventSubject(module, "")
	rule := fmt.Sprintf("a module publishes only its own subjects (%s*) through its outbox, and names another "+
		"module's events only through that module's api constants when it consumes them", own)

	imps := busImports{apis: map[string]string{}}
	for _, imp := range f.Imports {
		p, err := strconv.Unquote(imp.Path.Value)
		if err != nil {
			continue
		}
		local := p[strings.LastIndex(p, "/")+1:]
		if imp.Name != nil {
			local = imp.Name.Name
		}
		switch {
		case p == natsModule || strings.HasPrefix(p, natsModule+"/"):
			add(imp.Pos(), "raw-nats", p, fmt.Sprintf("imports %s (rule: module code publishes through "+
				"platform/outbox and consumes through platform/inbox, never on a raw NATS connection)", p))
		case strings.HasSuffix(p, "/platform/bus"):
			imps.bus = local
		case strings.HasSuffix(p, "/platform/outbox"):
			imps.outbox = local
		default:
			for _, o := range env.Modules {
				if o.Name != module && strings.HasSuffix(p, "/"+o.Dir+"/"+LayerAPI) {
					if imp.Name == nil {
						local = o.Name + LayerAPI
					}
					imps.apis[local] = o.Name
				}
			}
		}
	}

	var stack []ast.Node
	ast.Inspect(f, func(n ast.Node) bool {
		if n == nil {
			stack = stack[:len(stack)-1]
			return true
		}
		parent := ast.Node(nil)
		if len(stack) > 0 {
			parent = stack[len(stack)-1]
		}
		stack = append(stack, n)
		switch n := n.(type) {
		case *ast.BasicLit:
			s, ok := stringValue(n)
			if !ok {
				return true
			}
			m := eventSubject.FindStringSubmatch(s)
			if m == nil || m[1] == module || consuming(stack) {
				return true
			}
			add(n.Pos(), "foreign-subject", s, fmt.Sprintf("names subject %q of module %s (rule: %s)", s, m[1], rule))
		case *ast.KeyValueExpr:
			key, ok := n.Key.(*ast.Ident)
			if !ok || key.Name != "Subject" {
				return true
			}
			if sel, ok := n.Value.(*ast.SelectorExpr); ok {
				if x, ok := sel.X.(*ast.Ident); ok && imps.apis[x.Name] != "" {
					name := x.Name + "." + sel.Sel.Name
					add(n.Value.Pos(), "foreign-subject", imps.apis[x.Name]+"api."+sel.Sel.Name,
						fmt.Sprintf("publishes under %s, a subject of module %s (rule: %s)", name, imps.apis[x.Name], rule))
				}
				return true
			}
			lit, ok := n.Value.(*ast.BasicLit)
			if !ok || !isOutboxEvent(parent, imps.outbox) {
				return true
			}
			if s, ok := stringValue(lit); ok && !strings.HasPrefix(s, own) && eventSubject.FindStringSubmatch(s) == nil {
				add(lit.Pos(), "foreign-subject", s, fmt.Sprintf("publishes on %q, outside %s* (rule: %s)", s, own, rule))
			}
		case *ast.CallExpr:
			sel, ok := n.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if x, ok := sel.X.(*ast.Ident); ok && imps.bus != "" && x.Name == imps.bus && sel.Sel.Name == "EventSubject" && len(n.Args) > 0 {
				if lit, ok := n.Args[0].(*ast.BasicLit); ok {
					if s, ok := stringValue(lit); ok && s != module {
						add(n.Pos(), "foreign-subject", "bus.EventSubject("+s+")",
							fmt.Sprintf("builds a subject of module %s (rule: %s)", s, rule))
					}
				}
				return true
			}
			raw := slices.Contains(rawBusMethods, sel.Sel.Name) && (strings.HasPrefix(sel.Sel.Name, "Module") || len(n.Args) == 0)
			if imps.bus != "" && raw {
				add(n.Pos(), "raw-nats", sel.Sel.Name+"()", fmt.Sprintf("takes the raw NATS connection (%s) from the bus "+
					"(rule: module code publishes through platform/outbox and consumes through platform/inbox)", sel.Sel.Name))
			}
		}
		return true
	})
	return vs
}

// consuming reports whether the innermost nodes of stack (ending at a string literal) are the value, or an
// element of the value, of a consumption field such as inbox.Subscription.Subjects.
func consuming(stack []ast.Node) bool {
	for i := len(stack) - 2; i >= 0 && i >= len(stack)-3; i-- {
		if kv, ok := stack[i].(*ast.KeyValueExpr); ok {
			key, ok := kv.Key.(*ast.Ident)
			return ok && slices.Contains(consumeKeys, key.Name)
		}
		if _, ok := stack[i].(*ast.CompositeLit); !ok {
			return false
		}
	}
	return false
}

// isOutboxEvent reports whether n is an outbox.Event composite literal.
func isOutboxEvent(n ast.Node, outbox string) bool {
	lit, ok := n.(*ast.CompositeLit)
	if !ok || outbox == "" {
		return false
	}
	sel, ok := lit.Type.(*ast.SelectorExpr)
	if !ok {
		return false
	}
	x, ok := sel.X.(*ast.Ident)
	return ok && x.Name == outbox && sel.Sel.Name == "Event"
}

// stringValue returns the value of a string literal.
func stringValue(lit *ast.BasicLit) (string, bool) {
	if lit.Kind != token.STRING {
		return "", false
	}
	s, err := strconv.Unquote(lit.Value)
	return s, err == nil
}
