package prof

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/google/pprof/profile"
)

// Component is a part of a program recognised by the names of its functions.
type Component struct {
	// Name says what the component is, e.g. "JSON codec (encoding/json)".
	Name string
	// Prefixes are prefixes of the fully qualified function names that belong to it.
	Prefixes []string
}

func (c Component) owns(fn string) bool {
	for _, p := range c.Prefixes {
		if strings.HasPrefix(fn, p) {
			return true
		}
	}
	return false
}

// ReplyPermissions names the component of the NATS server that expires the reply subjects a user with
// allow_responses may still answer.
const ReplyPermissions = "NATS server: pruning the responder's reply permissions"

// RPCComponents are the parts of a remote call's processes a profile is broken down into; a function that
// matches none is "other", and the runtime's remaining functions (scheduler, timers, ...) are the last.
var RPCComponents = []Component{
	syscalls,
	jsonCodec,
	{Name: "Seam rpc, observe, identity", Prefixes: []string{"github.com/seamkit/seam/platform/rpc", "github.com/seamkit/seam/platform/observe",
		"github.com/seamkit/seam/platform/identity", "github.com/seamkit/seam/platform/errs"}},
	{Name: "NATS client (nats.go, micro)", Prefixes: []string{"github.com/nats-io/nats.go"}},
	{Name: ReplyPermissions, Prefixes: []string{"github.com/nats-io/nats-server/v2/server.(*client).pruneReplyPerms"}},
	{Name: "NATS server (embedded)", Prefixes: []string{"github.com/nats-io/nats-server"}},
	{Name: "gRPC and HTTP/2", Prefixes: []string{"google.golang.org/grpc", "golang.org/x/net/http2", "google.golang.org/protobuf"}},
	{Name: "net/http and chi", Prefixes: []string{"net/http.", "github.com/go-chi/"}},
	{Name: "context, OpenTelemetry", Prefixes: []string{"context.", "go.opentelemetry.io/"}},
	allocation,
	runtimeRest,
}

// HTTPComponents are the parts of a process serving HTTP on PostgreSQL a profile is broken down into.
var HTTPComponents = []Component{
	syscalls,
	jsonCodec,
	{Name: "PostgreSQL driver (pgx, puddle)", Prefixes: []string{"github.com/jackc/"}},
	{Name: "net/http and chi", Prefixes: []string{"net/http.", "github.com/go-chi/", "net/textproto.", "bufio."}},
	{Name: "JWT verification (golang-jwt, ed25519)", Prefixes: []string{"github.com/golang-jwt/", "crypto/ed25519", "crypto/internal/fips140/edwards25519",
		"crypto/internal/fips140/ed25519", "crypto/internal/fips140/sha512", "crypto/sha512", "crypto/internal/fips140/nistec"}},
	{Name: "logging (log/slog)", Prefixes: []string{"log/slog."}},
	{Name: "Seam HTTP layer (platform/httpx)", Prefixes: []string{"github.com/seamkit/seam/platform/httpx"}},
	{Name: "Seam routing and metrics (platform/route, prometheus)", Prefixes: []string{"github.com/seamkit/seam/platform/route",
		"github.com/prometheus/", "github.com/seamkit/seam/platform/observe"}},
	{Name: "Seam events (platform/outbox, platform/inbox, JetStream client)", Prefixes: []string{"github.com/seamkit/seam/platform/outbox",
		"github.com/seamkit/seam/platform/inbox", "github.com/nats-io/nats.go/jetstream"}},
	{Name: "NATS client and embedded server", Prefixes: []string{"github.com/nats-io/"}},
	{Name: "Seam rpc and bus (platform/rpc, platform/bus)", Prefixes: []string{"github.com/seamkit/seam/platform/rpc", "github.com/seamkit/seam/platform/bus"}},
	{Name: "the modules (modules/...)", Prefixes: []string{"github.com/seamkit/seam/modules/"}},
	{Name: "the bare handler (test/bench/httpbench)", Prefixes: []string{"github.com/seamkit/seam/test/bench/httpbench"}},
	{Name: "crypto (sha256, uuid, rand)", Prefixes: []string{"crypto/", "github.com/google/uuid"}},
	{Name: "context, OpenTelemetry", Prefixes: []string{"context.", "go.opentelemetry.io/"}},
	allocation,
	runtimeRest,
}

var (
	syscalls = Component{Name: "syscalls (socket reads and writes, futex)", Prefixes: []string{"syscall.", "internal/runtime/syscall",
		"runtime/internal/syscall", "golang.org/x/sys/unix.", "runtime.futex", "runtime.epollwait", "runtime.netpoll", "runtime.usleep",
		"runtime.nanotime"}}
	jsonCodec  = Component{Name: "JSON codec (encoding/json)", Prefixes: []string{"encoding/json."}}
	allocation = Component{Name: "memory allocation and GC", Prefixes: []string{"runtime.mallocgc", "runtime.gc", "runtime.scanobject", "runtime.greyobject",
		"runtime.markBits", "runtime.sweep", "runtime.(*mspan)", "runtime.(*mcache)", "runtime.(*mcentral)", "runtime.(*mheap)",
		"runtime.(*gcWork)", "runtime.(*gcControllerState)", "runtime.bgsweep", "runtime.bgscavenge", "runtime.markroot", "runtime.newobject",
		"runtime.makeslice", "runtime.growslice", "runtime.memclrNoHeapPointers", "runtime.heapBits", "runtime.findObject",
		"runtime.wbBuf", "runtime.(*gcBits)", "runtime.nextFree", "runtime.deductAssistCredit", "runtime.(*sweepLocked)",
		"runtime.scanblock", "runtime.scanstack", "runtime.(*mSpanList)", "runtime.(*pageAlloc)", "runtime.typePointers",
		"runtime.bulkBarrierPreWrite", "runtime.refill", "runtime.(*stkframe)"}}
	runtimeRest = Component{Name: "goroutine scheduling and the rest of the runtime", Prefixes: []string{"runtime.", "internal/runtime/", "sync.", "internal/sync."}}
)

// otherComponent names what no Component owns.
const otherComponent = "other"

// Share is a part of a profile's total.
type Share struct {
	// Name names the component or function.
	Name string
	// Self is the fraction of the total whose innermost recognised frame is this one's.
	Self float64
	// Inclusive is the fraction of the total with this one anywhere on the stack.
	Inclusive float64
}

// Breakdown is a profile broken down by component and by function.
type Breakdown struct {
	// Total is the profile's total in its unit (nanoseconds of CPU, or allocated objects).
	Total float64
	// Components are the components' shares (plus "other"), in their order.
	Components []Share
	// Top are the functions with the largest self shares, largest first.
	Top []Share
}

// Component returns the share of the component called name.
func (b Breakdown) Component(name string) Share {
	for _, s := range b.Components {
		if s.Name == name {
			return s
		}
	}
	return Share{Name: name}
}

// CPU breaks a CPU profile down by components, keeping the top n functions.
func CPU(data []byte, components []Component, n int) (Breakdown, error) {
	p, err := profile.Parse(bytes.NewReader(data))
	if err != nil {
		return Breakdown{}, fmt.Errorf("prof: parse CPU profile: %w", err)
	}
	return breakdown(p, sampleIndex(p, "cpu"), components, n), nil
}

// Allocs breaks down what was allocated between two allocation profiles (by objects) by components, keeping
// the top n functions.
func Allocs(before, after []byte, components []Component, n int) (Breakdown, error) {
	b, err := profile.Parse(bytes.NewReader(before))
	if err != nil {
		return Breakdown{}, fmt.Errorf("prof: parse allocation profile: %w", err)
	}
	a, err := profile.Parse(bytes.NewReader(after))
	if err != nil {
		return Breakdown{}, fmt.Errorf("prof: parse allocation profile: %w", err)
	}
	b.Scale(-1)
	delta, err := profile.Merge([]*profile.Profile{a, b})
	if err != nil {
		return Breakdown{}, fmt.Errorf("prof: difference of allocation profiles: %w", err)
	}
	return breakdown(delta, sampleIndex(delta, "alloc_objects"), components, n), nil
}

// sampleIndex is the index of the sample type called name, else the last.
func sampleIndex(p *profile.Profile, name string) int {
	for i, st := range p.SampleType {
		if st.Type == name {
			return i
		}
	}
	return len(p.SampleType) - 1
}

func breakdown(p *profile.Profile, idx int, components []Component, n int) Breakdown {
	names := make([]string, 0, len(components)+1)
	for _, c := range components {
		names = append(names, c.Name)
	}
	names = append(names, otherComponent)
	self := map[string]float64{}
	incl := map[string]float64{}
	fnSelf := map[string]float64{}
	fnIncl := map[string]float64{}
	var total float64
	for _, s := range p.Sample {
		v := float64(s.Value[idx])
		if v == 0 {
			continue
		}
		total += v
		frames := stackFunctions(s)
		seenComp := map[string]bool{}
		seenFn := map[string]bool{}
		selfComp := ""
		for _, fn := range frames {
			comp := componentOf(components, fn)
			if selfComp == "" {
				selfComp = comp
			}
			if !seenComp[comp] {
				seenComp[comp] = true
				incl[comp] += v
			}
			if !seenFn[fn] {
				seenFn[fn] = true
				fnIncl[fn] += v
			}
		}
		if len(frames) > 0 {
			self[selfComp] += v
			fnSelf[frames[0]] += v
		}
	}
	b := Breakdown{Total: total}
	if total == 0 {
		return b
	}
	for _, name := range names {
		b.Components = append(b.Components, Share{Name: name, Self: self[name] / total, Inclusive: incl[name] / total})
	}
	for fn, v := range fnSelf {
		if v <= 0 {
			continue
		}
		b.Top = append(b.Top, Share{Name: fn, Self: v / total, Inclusive: fnIncl[fn] / total})
	}
	slices.SortFunc(b.Top, func(x, y Share) int {
		return cmp.Or(cmp.Compare(y.Self, x.Self), strings.Compare(x.Name, y.Name))
	})
	b.Top = b.Top[:min(n, len(b.Top))]
	return b
}

// stackFunctions lists the functions of a sample's stack, innermost first (inlined frames included).
func stackFunctions(s *profile.Sample) []string {
	var fns []string
	for _, loc := range s.Location {
		for _, line := range loc.Line {
			if line.Function != nil {
				// Profiles escape the dots of a module path's last element (nats%2ego for nats.go).
				fns = append(fns, strings.ReplaceAll(line.Function.Name, "%2e", "."))
			}
		}
	}
	return fns
}

func componentOf(components []Component, fn string) string {
	for _, c := range components {
		if c.owns(fn) {
			return c.Name
		}
	}
	return otherComponent
}

// Summary lists a breakdown's components whose inclusive share is at least floor, leaving out the runtime's
// catch-all (which is on every stack) and "other".
func Summary(b Breakdown, floor float64) string {
	var parts []string
	for _, s := range b.Components {
		if s.Inclusive < floor || s.Name == runtimeRest.Name || s.Name == otherComponent {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s %.1f%%", s.Name, 100*s.Inclusive))
	}
	if len(parts) == 0 {
		return "no samples"
	}
	return strings.Join(parts, ", ")
}
