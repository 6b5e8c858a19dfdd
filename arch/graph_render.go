package arch

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
)

// Weights of the extraction-difficulty score.
const (
	// WeightCaller is what each module calling a module adds to its score: those calls turn remote.
	WeightCaller = 3
	// WeightConsumer is what each module consuming a module's events adds: they already go over the bus.
	WeightConsumer = 1
	// WeightCallee is what each module a module calls adds: its own calls turn remote.
	WeightCallee = 1
)

// ScoreExplanation is the one-line explanation of the extraction-difficulty score printed with the ranking.
var ScoreExplanation = fmt.Sprintf("score = %d × callers + %d × consumers + %d × modules it calls: callers' "+
	"synchronous calls become network calls, consumers already receive its events over the bus, and its own "+
	"calls become remote too; lower is easier to extract first", WeightCaller, WeightConsumer, WeightCallee)

// ModuleDeps are one module's dependencies in both directions, and its extraction-difficulty score.
type ModuleDeps struct {
	Name string
	// Calls and Consumes are the modules this one depends on, by call and by event.
	Calls, Consumes []string
	// CalledBy and ConsumedBy are the modules depending on this one, by call and by event.
	CalledBy, ConsumedBy []string
	// Score is the extraction difficulty (see ScoreExplanation).
	Score int
}

// Deps returns every module's dependencies, in module name order.
func (g *Graph) Deps() []ModuleDeps {
	byName := map[string]*ModuleDeps{}
	out := make([]ModuleDeps, len(g.Modules))
	for i, m := range g.Modules {
		out[i].Name = m
		byName[m] = &out[i]
	}
	for _, e := range g.Edges {
		from, to := byName[e.From], byName[e.To]
		if from == nil || to == nil {
			continue
		}
		switch e.Kind {
		case KindCall:
			from.Calls = append(from.Calls, e.To)
			to.CalledBy = append(to.CalledBy, e.From)
		case KindEvent:
			from.Consumes = append(from.Consumes, e.To)
			to.ConsumedBy = append(to.ConsumedBy, e.From)
		}
	}
	for i := range out {
		d := &out[i]
		for _, l := range []*[]string{&d.Calls, &d.Consumes, &d.CalledBy, &d.ConsumedBy} {
			slices.Sort(*l)
			*l = slices.Compact(*l)
		}
		d.Score = WeightCaller*len(d.CalledBy) + WeightConsumer*len(d.ConsumedBy) + WeightCallee*len(d.Calls)
	}
	return out
}

// Ranking returns the modules easiest to extract first: by score, then by fewer callers, then by name.
func (g *Graph) Ranking() []ModuleDeps {
	deps := g.Deps()
	slices.SortStableFunc(deps, func(a, b ModuleDeps) int {
		return cmp.Or(cmp.Compare(a.Score, b.Score), cmp.Compare(len(a.CalledBy), len(b.CalledBy)), cmp.Compare(a.Name, b.Name))
	})
	return deps
}

func joinOrDash(names []string) string {
	if len(names) == 0 {
		return "-"
	}
	return strings.Join(names, ", ")
}

// Text renders the graph as the report `seam graph` prints: a table of each module's dependencies, the
// extraction ranking and the evidence for every edge.
func (g *Graph) Text() string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "Module dependencies (%d modules, %d edges): call = uses the other module's Go contract "+
		"(synchronous), event = consumes its events (asynchronous)\n\n", len(g.Modules), len(g.Edges))
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MODULE\tCALLS\tCONSUMES EVENTS OF\tCALLED BY\tEVENTS CONSUMED BY")
	for _, d := range g.Deps() {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", d.Name, joinOrDash(d.Calls), joinOrDash(d.Consumes), joinOrDash(d.CalledBy), joinOrDash(d.ConsumedBy))
	}
	_ = tw.Flush()
	fmt.Fprintf(&b, "\nExtraction difficulty, easiest first (%s):\n", ScoreExplanation)
	tw = tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	for i, d := range g.Ranking() {
		fmt.Fprintf(tw, "  %d.\t%s\tscore %d\t(callers %d, consumers %d, calls %d)\n",
			i+1, d.Name, d.Score, len(d.CalledBy), len(d.ConsumedBy), len(d.Calls))
	}
	_ = tw.Flush()
	if len(g.Edges) > 0 {
		b.WriteString("\nEdges (one piece of evidence each):\n")
		tw = tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
		for _, e := range g.Edges {
			fmt.Fprintf(tw, "  %s -> %s\t%s\t%s\n", e.From, e.To, e.Kind, e.Evidence)
		}
		_ = tw.Flush()
	}
	return b.String()
}

// mermaidID is a node id that no Mermaid keyword (end, graph, ...) can collide with.
func mermaidID(module string) string { return "m_" + module }

// Mermaid renders the graph as a Mermaid flowchart: solid arrows for calls, dotted ones for events, each
// node labelled with its extraction score.
func (g *Graph) Mermaid() string {
	var b strings.Builder
	b.WriteString("flowchart LR\n")
	for _, d := range g.Deps() {
		fmt.Fprintf(&b, "  %s[\"%s<br/>score %d\"]\n", mermaidID(d.Name), d.Name, d.Score)
	}
	for _, e := range g.Edges {
		arrow := "-->"
		if e.Kind == KindEvent {
			arrow = "-.->"
		}
		fmt.Fprintf(&b, "  %s %s|%s| %s\n", mermaidID(e.From), arrow, e.Kind, mermaidID(e.To))
	}
	return b.String()
}

// DOT renders the graph in Graphviz DOT: solid edges for calls, dashed ones for events, the evidence as
// each edge's tooltip.
func (g *Graph) DOT() string {
	var b strings.Builder
	b.WriteString("digraph modules {\n  rankdir=LR;\n  node [shape=box, style=rounded];\n")
	for _, d := range g.Deps() {
		fmt.Fprintf(&b, "  %q [label=\"%s\\nscore %d\"];\n", d.Name, d.Name, d.Score)
	}
	for _, e := range g.Edges {
		style := "solid"
		if e.Kind == KindEvent {
			style = "dashed"
		}
		fmt.Fprintf(&b, "  %q -> %q [label=%q, style=%s, tooltip=%q];\n", e.From, e.To, string(e.Kind), style, e.Evidence.String())
	}
	b.WriteString("}\n")
	return b.String()
}

// Paths of the generated module-graph documentation, relative to the repository root.
const (
	GraphDocsPath = "docs/module-graph.md"
	GraphDOTPath  = "docs/module-graph.dot"
)

// DocsCommand is the command that regenerates the module-graph documentation.
const DocsCommand = "make docs"

// ErrStaleDocs is returned (wrapped, naming the file) by CheckGraphDocs when a generated file differs from
// what the code gives.
var ErrStaleDocs = errors.New("module graph documentation is stale")

// withoutLines returns a copy of g whose evidence names files only, so that the committed documentation
// does not go stale whenever a line moves.
func (g *Graph) withoutLines() *Graph {
	c := &Graph{Modules: g.Modules, Edges: slices.Clone(g.Edges)}
	for i := range c.Edges {
		c.Edges[i].Evidence.Line = 0
	}
	return c
}

// GraphDocs returns the generated documentation files (GraphDocsPath and GraphDOTPath) and their content.
func (g *Graph) GraphDocs() map[string][]byte {
	d := g.withoutLines()
	var md bytes.Buffer
	md.WriteString("<!-- Code generated by `seam graph --write-docs` (" + DocsCommand + "). DO NOT EDIT. -->\n\n")
	md.WriteString("# Module graph\n\n")
	md.WriteString("Which module depends on which, read from the code by `seam graph` (`go run ./cmd/seam graph` prints\n" +
		"the same with line numbers; `--format mermaid|dot` prints the diagram alone). A **call** edge (solid) means\n" +
		"the module uses the other module's Go contract (`modules/<m>/api`: interface, types, errors): a synchronous\n" +
		"dependency that becomes a network call once either module runs on its own. An **event** edge (dotted) means\n" +
		"the module consumes the other module's events (an `inbox.Subscription` on its stream, or its event\n" +
		"subjects and payload types): asynchronous, already over the bus. `make lint` fails when this page or\n" +
		"[module-graph.dot](module-graph.dot) is stale; `" + DocsCommand + "` regenerates both.\n\n")
	md.WriteString("```mermaid\n" + d.Mermaid() + "```\n\n")
	md.WriteString("## Dependencies\n\n")
	md.WriteString("| module | calls | consumes events of | called by | events consumed by |\n|---|---|---|---|---|\n")
	for _, m := range d.Deps() {
		fmt.Fprintf(&md, "| %s | %s | %s | %s | %s |\n", m.Name, joinOrDash(m.Calls), joinOrDash(m.Consumes), joinOrDash(m.CalledBy), joinOrDash(m.ConsumedBy))
	}
	md.WriteString("\n## Extraction difficulty, easiest first\n\n")
	md.WriteString(strings.ToUpper(ScoreExplanation[:1]) + ScoreExplanation[1:] + ".\n\n")
	md.WriteString("| rank | module | score | callers | consumers | calls |\n|---|---|---|---|---|---|\n")
	for i, m := range d.Ranking() {
		fmt.Fprintf(&md, "| %d | %s | %d | %d | %d | %d |\n", i+1, m.Name, m.Score, len(m.CalledBy), len(m.ConsumedBy), len(m.Calls))
	}
	if len(d.Edges) > 0 {
		md.WriteString("\n## Evidence\n\nOne reference per edge (`seam graph` prints its line).\n\n")
		md.WriteString("| from | to | kind | where |\n|---|---|---|---|\n")
		for _, e := range d.Edges {
			fmt.Fprintf(&md, "| %s | %s | %s | `%s` |\n", e.From, e.To, e.Kind, e.Evidence)
		}
	}
	dot := "// Code generated by `seam graph --write-docs` (" + DocsCommand + "). DO NOT EDIT.\n" + d.DOT()
	return map[string][]byte{GraphDocsPath: md.Bytes(), GraphDOTPath: []byte(dot)}
}

// WriteGraphDocs writes the generated module-graph documentation of g under root.
func WriteGraphDocs(root string, g *Graph) error {
	docs := g.GraphDocs()
	for _, name := range slices.Sorted(maps.Keys(docs)) {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fmt.Errorf("arch: write %s: %w", name, err)
		}
		if err := os.WriteFile(p, docs[name], 0o644); err != nil {
			return fmt.Errorf("arch: write %s: %w", name, err)
		}
	}
	return nil
}

// CheckGraphDocs compares the module-graph documentation under root with what g gives; a missing or
// different file is an error wrapping ErrStaleDocs that names the file and the command to fix it.
func CheckGraphDocs(root string, g *Graph) error {
	docs := g.GraphDocs()
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(docs)) {
		got, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(name)))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			errs = append(errs, fmt.Errorf("%s: %w (missing): run `%s`", name, ErrStaleDocs, DocsCommand))
		case err != nil:
			errs = append(errs, fmt.Errorf("arch: read %s: %w", name, err))
		case !bytes.Equal(got, docs[name]):
			errs = append(errs, fmt.Errorf("%s: %w: run `%s`", name, ErrStaleDocs, DocsCommand))
		}
	}
	return errors.Join(errs...)
}
