package arch_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/seamkit/seam/arch"
	"github.com/seamkit/seam/arch/archtest"
)

// edgesOf returns g's edges without their evidence, as "from -kind-> to".
func edgesOf(g *arch.Graph) []string {
	out := make([]string, len(g.Edges))
	for i, e := range g.Edges {
		out[i] = e.From + " -" + string(e.Kind) + "-> " + e.To
	}
	return out
}

func TestReferenceAppGraph(t *testing.T) {
	g, err := arch.LoadGraph(archtest.RepoRoot(t))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"billing -call-> auth",
		"notifications -event-> auth",
		"notifications -event-> billing",
		"reporting -event-> auth",
		"reporting -event-> billing",
	}
	if diff := cmp.Diff(want, edgesOf(g)); diff != "" {
		t.Errorf("edges (-want +got):\n%s", diff)
	}
	var ranking []string
	for _, d := range g.Ranking() {
		ranking = append(ranking, d.Name)
	}
	if diff := cmp.Diff([]string{"notifications", "reporting", "billing", "auth"}, ranking); diff != "" {
		t.Errorf("ranking (-want +got):\n%s", diff)
	}
	for _, e := range g.Edges {
		if e.Evidence.Line == 0 || !strings.HasPrefix(e.Evidence.File, "modules/"+e.From+"/") {
			t.Errorf("%s -> %s: evidence %s is not a line in %s", e.From, e.To, e.Evidence, e.From)
		}
	}
}

// TestGraphDocsAreCurrent fails when docs/module-graph.md or .dot no longer match the code: run `make docs`.
func TestGraphDocsAreCurrent(t *testing.T) {
	root := archtest.RepoRoot(t)
	g, err := arch.LoadGraph(root)
	if err != nil {
		t.Fatal(err)
	}
	if err := arch.CheckGraphDocs(root, g); err != nil {
		t.Fatal(err)
	}
}

func TestCheckGraphDocsNamesTheStaleFile(t *testing.T) {
	root := t.TempDir()
	g := &arch.Graph{Modules: []string{"a", "b"}, Edges: []arch.Edge{{From: "a", To: "b", Kind: arch.KindCall,
		Evidence: arch.Evidence{File: "modules/a/x.go", Line: 3}}}}
	err := arch.CheckGraphDocs(root, g)
	if !errors.Is(err, arch.ErrStaleDocs) || !strings.Contains(err.Error(), arch.GraphDocsPath) ||
		!strings.Contains(err.Error(), arch.GraphDOTPath) || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("no docs: err = %v", err)
	}
	if err := arch.WriteGraphDocs(root, g); err != nil {
		t.Fatal(err)
	}
	if err := arch.CheckGraphDocs(root, g); err != nil {
		t.Fatalf("just written: %v", err)
	}
	// Moving a line does not make the docs stale; a new edge does.
	g.Edges[0].Evidence.Line = 40
	if err := arch.CheckGraphDocs(root, g); err != nil {
		t.Fatalf("after a line moved: %v", err)
	}
	g.Edges = append(g.Edges, arch.Edge{From: "b", To: "a", Kind: arch.KindEvent, Evidence: arch.Evidence{File: "modules/b/y.go", Line: 1}})
	err = arch.CheckGraphDocs(root, g)
	if !errors.Is(err, arch.ErrStaleDocs) || !strings.Contains(err.Error(), arch.GraphDocsPath+": ") ||
		!strings.Contains(err.Error(), arch.DocsCommand) {
		t.Fatalf("new edge: err = %v", err)
	}
}

// plantedRepo is a small repository whose modules depend on each other in every way the graph detects.
var plantedRepo = map[string]string{
	"go.mod": "module example.com/shop\n\ngo 1.26\n",
	"modules/orders/api/api.go": `package ordersapi

const SubjectOrderPlaced = "orders.events.order_placed"

const EventOrderPlaced = "order_placed"

type OrderPlaced struct{ ID string }

type Orders interface{ Get(id string) (Order, error) }

type Order struct{ ID string }
`,
	"modules/orders/orders.go": "package orders\n",
	// stock calls orders through its contract (aliased import) and subscribes to its events.
	"modules/stock/stock.go": `package stock

import (
	oapi "example.com/shop/modules/orders/api"
	"example.com/shop/platform/bus"
	"example.com/shop/platform/inbox"
)

func subs() []inbox.Subscription {
	return []inbox.Subscription{{
		Name:     "stock-orders",
		Stream:   bus.StreamName("orders"),
		Subjects: []string{oapi.SubjectOrderPlaced},
	}}
}

var _ oapi.Orders
`,
	// mail only consumes orders' events, named by literals, and reads their payload type.
	"modules/mail/domain/mail.go": `package maildomain

import ordersapi "example.com/shop/modules/orders/api"

func handle(ev ordersapi.OrderPlaced) string { return ev.ID }
`,
	"modules/mail/events.go": `package mail

import in "example.com/shop/platform/inbox"

var sub = &in.Subscription{Stream: "ORDERS", Subjects: []string{"orders.events.order_placed"}}
`,
	// A test file's imports are no dependency.
	"modules/mail/mail_test.go": `package mail

import "example.com/shop/modules/stock"

var _ = stock.X
`,
	// billing reaches into orders' domain (a boundary violation, but still a dependency) without an alias.
	"modules/orders/domain/domain.go": "package ordersdomain\n\nfunc Total() int { return 0 }\n",
	"modules/billing/billing.go": `package billing

import "example.com/shop/modules/orders/domain"

var total = ordersdomain.Total
`,
}

func TestGraphFindsEveryKindOfDependency(t *testing.T) {
	root := t.TempDir()
	for name, content := range plantedRepo {
		archtest.WriteFile(t, root, name, content)
	}
	g, err := arch.BuildGraph(root, []string{"orders", "stock", "mail", "billing"})
	if err != nil {
		t.Fatal(err)
	}
	want := []arch.Edge{
		{From: "billing", To: "orders", Kind: arch.KindCall, Evidence: arch.Evidence{File: "modules/billing/billing.go", Line: 5}},
		{From: "mail", To: "orders", Kind: arch.KindEvent, Evidence: arch.Evidence{File: "modules/mail/events.go", Line: 5}},
		{From: "stock", To: "orders", Kind: arch.KindCall, Evidence: arch.Evidence{File: "modules/stock/stock.go", Line: 17}},
		{From: "stock", To: "orders", Kind: arch.KindEvent, Evidence: arch.Evidence{File: "modules/stock/stock.go", Line: 12}},
	}
	if diff := cmp.Diff(want, g.Edges); diff != "" {
		t.Errorf("edges (-want +got):\n%s", diff)
	}
	deps := map[string]arch.ModuleDeps{}
	for _, d := range g.Deps() {
		deps[d.Name] = d
	}
	orders := deps["orders"]
	if diff := cmp.Diff([]string{"billing", "stock"}, orders.CalledBy); diff != "" {
		t.Errorf("orders called by (-want +got):\n%s", diff)
	}
	if want := 2*arch.WeightCaller + 2*arch.WeightConsumer; orders.Score != want {
		t.Errorf("orders' score = %d, want %d", orders.Score, want)
	}
	if r := g.Ranking(); r[len(r)-1].Name != "orders" {
		t.Errorf("hardest to extract = %s, want orders", r[len(r)-1].Name)
	}

	text := g.Text()
	for _, s := range []string{"modules/stock/stock.go:17", "score = 3 × callers", "1.  mail", "4.  orders"} {
		if !strings.Contains(text, s) {
			t.Errorf("text output lacks %q:\n%s", s, text)
		}
	}
	if m := g.Mermaid(); !strings.Contains(m, "m_mail -.->|event| m_orders") || !strings.Contains(m, "m_stock -->|call| m_orders") {
		t.Errorf("mermaid:\n%s", m)
	}
	if d := g.DOT(); !strings.Contains(d, `"stock" -> "orders" [label="event", style=dashed, tooltip="modules/stock/stock.go:12"];`) {
		t.Errorf("dot:\n%s", d)
	}
}

func TestBuildGraphReportsUnparsableFiles(t *testing.T) {
	root := t.TempDir()
	archtest.WriteFile(t, root, "go.mod", "module example.com/x\n")
	archtest.WriteFile(t, root, "modules/a/a.go", "package a\n\nfunc {\n")
	_, err := arch.BuildGraph(root, []string{"a"})
	if err == nil || !strings.Contains(err.Error(), filepath.Join("modules", "a", "a.go")) {
		t.Fatalf("err = %v, want one naming modules/a/a.go", err)
	}
	if err := os.Remove(filepath.Join(root, "go.mod")); err != nil {
		t.Fatal(err)
	}
	if _, err := arch.BuildGraph(root, nil); err == nil || !strings.Contains(err.Error(), "go.mod") {
		t.Fatalf("without go.mod: err = %v", err)
	}
}
