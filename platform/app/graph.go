package app

import (
	"slices"
	"sort"
	"strings"
	"sync"

	"go.uber.org/fx"

	"github.com/seamkit/seam/platform/bus"
)

// Kinds of edge of the module graph.
const (
	// EdgeCall is a module using another module's api (a Go call, or a network call when either runs
	// elsewhere).
	EdgeCall = "call"
	// EdgeEvent is a module consuming another module's events.
	EdgeEvent = "event"
)

// GraphEdge is one dependency between modules.
type GraphEdge struct {
	From string `json:"from"`
	To   string `json:"to"`
	Kind string `json:"kind"`
}

// GraphNode is one module of the graph with where this process runs it.
type GraphNode struct {
	Name string `json:"name"`
	Mode Mode   `json:"mode"`
}

// ModuleGraph is the module dependency graph as this process assembled it: call edges are recorded when a
// module's constructors take another module's api (fx resolves it in the module's scope), event edges
// from the consumers the modules declare to the bus. It covers the modules this process runs; the graph
// read from the code is `seam graph` (docs/module-graph.md).
type ModuleGraph struct {
	mu    sync.Mutex
	nodes []GraphNode
	calls map[GraphEdge]bool
	bus   *bus.Bus
}

// newModuleGraph returns the graph of modules, each in its mode.
func newModuleGraph(nodes []GraphNode) *ModuleGraph {
	return &ModuleGraph{nodes: nodes, calls: map[GraphEdge]bool{}}
}

func (g *ModuleGraph) call(from, to string) {
	if from == to {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.calls[GraphEdge{From: from, To: to, Kind: EdgeCall}] = true
}

// Nodes returns the modules, sorted by name.
func (g *ModuleGraph) Nodes() []GraphNode {
	nodes := slices.Clone(g.nodes)
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].Name < nodes[j].Name })
	return nodes
}

// Edges returns every edge, sorted.
func (g *ModuleGraph) Edges() []GraphEdge {
	g.mu.Lock()
	edges := make([]GraphEdge, 0, len(g.calls))
	for e := range g.calls {
		edges = append(edges, e)
	}
	b := g.bus
	g.mu.Unlock()
	if b != nil {
		seen := map[GraphEdge]bool{}
		streams := map[string]string{}
		for _, n := range g.nodes {
			streams[bus.StreamName(n.Name)] = n.Name
		}
		for _, d := range b.Declarations() {
			for _, c := range d.Consumes {
				to, ok := streams[c.Stream]
				e := GraphEdge{From: d.Module, To: to, Kind: EdgeEvent}
				if ok && to != d.Module && !seen[e] {
					seen[e] = true
					edges = append(edges, e)
				}
			}
		}
	}
	sort.Slice(edges, func(i, j int) bool {
		a, b := edges[i], edges[j]
		return strings.Join([]string{a.From, a.To, a.Kind}, "\x00") < strings.Join([]string{b.From, b.To, b.Kind}, "\x00")
	})
	return edges
}

// scoped runs m's options in a scope of their own where every other module's api, when m's constructors take
// it, records a call edge from m.
func scoped(m Module, opts fx.Option, modules []Module) fx.Option {
	uses := []fx.Option{opts}
	for _, other := range modules {
		if other.Name != m.Name && other.Remote.uses != nil {
			uses = append(uses, other.Remote.uses(m.Name, other.Name))
		}
	}
	return fx.Module("seam."+m.Name, uses...)
}
