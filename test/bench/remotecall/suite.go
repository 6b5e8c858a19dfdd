package remotecall

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/seamkit/seam/platform/bus"
	"github.com/seamkit/seam/platform/rpc"
	"github.com/seamkit/seam/test/bench/proc"
	"github.com/seamkit/seam/test/bench/prof"
	"github.com/seamkit/seam/test/bench/stats"
)

// Options sizes the benchmark.
type Options struct {
	// Latency is how long the one-caller run that measures p50 and p99 lasts.
	Latency time.Duration
	// Throughput is how long each run with 16 and 64 callers lasts.
	Throughput time.Duration
	// Warmup precedes every run, uncounted.
	Warmup time.Duration
	// Profile is how long the profiled 64-caller run of Seam lasts.
	Profile time.Duration
	// ProfileDir receives the profiles.
	ProfileDir string
	// StoreDir holds the embedded NATS server's JetStream store.
	StoreDir string
	// Stderr receives the children's error output.
	Stderr io.Writer
}

// Peer identifiers, in table order: the two-process peers, then Seam's one-process variants.
const (
	peerSeamShared   = "seam-1proc-shared"
	peerSeamSeparate = "seam-1proc-separate"
)

// Peers are the peers measured, in table order.
var Peers = []string{PeerSeam, PeerSeamNATS, PeerGRPC, PeerHTTP, PeerNATS, PeerTCP, peerSeamSeparate, peerSeamShared}

// twoProcess reports whether peer's server runs in a child process.
func twoProcess(peer string) bool { return peer != peerSeamShared && peer != peerSeamSeparate }

// Run is one run's figures for one peer.
type Run struct {
	// P50 and P99 are the one-caller latencies.
	P50, P99 time.Duration
	// Rate16 and Rate64 are the calls per second with 16 and 64 concurrent callers.
	Rate16, Rate64 float64
	// CallerCPU and ServerCPU are the CPU time per call of the caller's and the server's process in the
	// 64-caller run (ServerCPU is 0 for the one-process variants, whose server is in the caller's process).
	CallerCPU, ServerCPU time.Duration
	// Errors counts failed calls over all the runs.
	Errors int
}

// Bench is the running benchmark: the embedded bus, the peers' servers and their clients.
type Bench struct {
	opts     Options
	bus      *bus.Bus
	children map[string]*proc.Child
	clients  map[string]client
	services []micro.Service
	conns    []*nats.Conn
	lanes    *rpc.Lanes
}

// Start starts the embedded NATS server in this process as the monolith does (bus.Bus, with JetStream and
// a user per module), the children serving each two-process peer, and the one-process variants' responders.
func Start(ctx context.Context, o Options) (_ *Bench, err error) {
	b := &Bench{opts: o, children: map[string]*proc.Child{}, clients: map[string]client{}}
	defer func() {
		if err != nil {
			b.Close()
		}
	}()
	secret := rand.Text()
	var cfg bus.Config
	cfg.SetDefaults()
	cfg.Port = -1
	cfg.StoreDir = o.StoreDir
	cfg.CredentialsSecret = secret
	b.bus = bus.New(cfg, slog.New(slog.DiscardHandler))
	for _, module := range []string{Module, ModuleNATS} {
		if err := b.bus.DeclareElsewhere(bus.Declaration{Module: module}); err != nil {
			return nil, fmt.Errorf("remotecall: %w", err)
		}
	}
	if err := b.bus.Start(ctx); err != nil {
		return nil, fmt.Errorf("remotecall: %w", err)
	}
	for _, peer := range Peers {
		if !twoProcess(peer) {
			continue
		}
		child, err := proc.Spawn(ctx, proc.Spec{Role: ServerRole, Params: ServerParams(peer, b.bus, secret)}, nil, o.Stderr)
		if err != nil {
			return nil, err
		}
		b.children[peer] = child
	}
	// The caller's lanes, as a Seam process holds them; opened before the runs so that none of them is
	// spent on the calls made over NATS while the first lane opens.
	b.lanes = rpc.NewLanes(slog.New(slog.DiscardHandler))
	if n, err := b.lanes.Open(ctx, b.bus.Conn(), Module); err != nil || n != 1 {
		return nil, fmt.Errorf("remotecall: open a lane to the server: %d lanes (%w)", n, err)
	}
	b.clients[PeerSeam] = seamClient(ctx, b.bus.Conn(), Module, rpc.OverLanes(b.lanes))
	b.clients[PeerSeamNATS] = seamClient(ctx, b.bus.Conn(), ModuleNATS)
	b.clients[PeerNATS] = natsClient(b.bus.Conn())
	if b.clients[PeerGRPC], err = grpcClient(b.children[PeerGRPC].Addr); err != nil {
		return nil, err
	}
	b.clients[PeerHTTP] = httpClient(b.children[PeerHTTP].Addr)
	if b.clients[PeerTCP], err = tcpClient(b.children[PeerTCP].Addr); err != nil {
		return nil, err
	}
	dial := func() (*nats.Conn, error) {
		c, err := nats.Connect(b.bus.ClientURL(), nats.UserInfo(bus.SystemUser, bus.Password(secret, bus.SystemUser)))
		if err != nil {
			return nil, fmt.Errorf("remotecall: connect: %w", err)
		}
		b.conns = append(b.conns, c)
		return c, nil
	}
	shared, err := dial()
	if err != nil {
		return nil, err
	}
	callSide, err := dial()
	if err != nil {
		return nil, err
	}
	serveSide, err := dial()
	if err != nil {
		return nil, err
	}
	for module, conn := range map[string]*nats.Conn{"benchshared": shared, "benchseparate": serveSide} {
		svc, err := inProcess(conn, module)
		if err != nil {
			return nil, err
		}
		b.services = append(b.services, svc)
	}
	b.clients[peerSeamShared] = seamClient(ctx, shared, "benchshared")
	b.clients[peerSeamSeparate] = seamClient(ctx, callSide, "benchseparate")
	return b, nil
}

// Close stops the clients, the responders, the children and the bus.
func (b *Bench) Close() {
	for _, c := range b.clients {
		c.close()
	}
	if b.lanes != nil {
		_ = b.lanes.Close()
	}
	for _, s := range b.services {
		_ = s.Stop()
	}
	for _, c := range b.conns {
		c.Close()
	}
	for _, c := range b.children {
		c.Stop()
	}
	if b.bus != nil {
		_ = b.bus.Close(context.Background())
	}
}

// Measure runs peer's one-caller, 16-caller and 64-caller runs once.
func (b *Bench) Measure(ctx context.Context, peer string) (Run, error) {
	c := b.clients[peer]
	var r Run
	lat, err := stats.ClosedLoop(ctx, 1, b.opts.Warmup, b.opts.Latency, c.newOp)
	if err != nil {
		return Run{}, fmt.Errorf("remotecall: %s: %w", peer, err)
	}
	r.P50, r.P99, r.Errors = lat.P(0.50), lat.P(0.99), lat.Errors
	t16, err := stats.ClosedLoop(ctx, 16, b.opts.Warmup, b.opts.Throughput, c.newOp)
	if err != nil {
		return Run{}, fmt.Errorf("remotecall: %s: %w", peer, err)
	}
	r.Rate16, r.Errors = t16.Rate(), r.Errors+t16.Errors
	serverCalls0, serverCPU0, err := b.serverStats(peer)
	if err != nil {
		return Run{}, err
	}
	callerCPU0 := prof.ProcessCPU()
	t64, err := stats.ClosedLoop(ctx, 64, b.opts.Warmup, b.opts.Throughput, c.newOp)
	if err != nil {
		return Run{}, fmt.Errorf("remotecall: %s: %w", peer, err)
	}
	callerCPU := prof.ProcessCPU() - callerCPU0
	serverCalls, serverCPU, err := b.serverStats(peer)
	if err != nil {
		return Run{}, err
	}
	r.Rate64, r.Errors = t64.Rate(), r.Errors+t64.Errors
	// CPU is counted over the warm-up too, so it is divided by every call made in the run: the server's count
	// where there is one, else the caller's completions scaled to the whole run.
	calls := float64(serverCalls - serverCalls0)
	if !twoProcess(peer) {
		calls = t64.Rate() * (b.opts.Warmup + b.opts.Throughput).Seconds()
	}
	if calls > 0 {
		r.CallerCPU = time.Duration(float64(callerCPU) / calls)
		r.ServerCPU = time.Duration(float64(serverCPU-serverCPU0) / calls)
	}
	if r.Errors > 0 {
		first := errors.Join(lat.FirstError, t16.FirstError, t64.FirstError)
		return r, fmt.Errorf("remotecall: %s: %d calls failed: %w", peer, r.Errors, first)
	}
	return r, nil
}

// serverStats returns the calls served and the CPU time used so far by peer's child (zero without one).
func (b *Bench) serverStats(peer string) (int64, time.Duration, error) {
	child, ok := b.children[peer]
	if !ok {
		return 0, 0, nil
	}
	answer, err := child.Command("stats")
	if err != nil {
		return 0, 0, err
	}
	f := strings.Fields(answer)
	if len(f) != 2 {
		return 0, 0, fmt.Errorf("remotecall: stats: unexpected answer %q", answer)
	}
	calls, err1 := strconv.ParseInt(f[0], 10, 64)
	cpu, err2 := strconv.ParseInt(f[1], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, 0, fmt.Errorf("remotecall: stats: %w", err)
	}
	return calls, time.Duration(cpu), nil
}

// ProcessProfile is a profiled process's breakdowns and exact counts per call.
type ProcessProfile struct {
	// CPU and Allocs break the process's CPU time and allocated objects down.
	CPU, Allocs prof.Breakdown
	// CPUPerCall is the process's CPU time per call.
	CPUPerCall time.Duration
	// AllocsPerCall is its heap allocations per call.
	AllocsPerCall float64
	// BytesPerCall is the bytes it allocated per call.
	BytesPerCall float64
}

// Profiles are the caller's and the server's profiles of Seam's 64-caller run.
type Profiles struct {
	// Caller is the caller's process (which also runs the embedded NATS server); Server the responder's.
	Caller, Server ProcessProfile
	// Calls is how many calls the profiled run completed.
	Calls int64
	// Rate is its calls per second.
	Rate float64
}

// Profile runs Seam's 64-caller run once more with both processes profiled (CPU and allocations), saves the
// profiles in ProfileDir and breaks them down.
func (b *Bench) Profile(ctx context.Context) (Profiles, error) {
	child := b.children[PeerSeam]
	if _, err := stats.ClosedLoop(ctx, 64, 0, b.opts.Warmup, b.clients[PeerSeam].newOp); err != nil {
		return Profiles{}, fmt.Errorf("remotecall: warm up: %w", err)
	}
	if err := prof.StartRemote(child, b.opts.ProfileDir, "seam-server"); err != nil {
		return Profiles{}, err
	}
	capture, err := prof.Start()
	if err != nil {
		_, _ = prof.StopRemote(child, b.opts.ProfileDir, "seam-server")
		return Profiles{}, err
	}
	run, runErr := stats.ClosedLoop(ctx, 64, 0, b.opts.Profile, b.clients[PeerSeam].newOp)
	caller, stopErr := capture.Stop()
	server, childErr := prof.StopRemote(child, b.opts.ProfileDir, "seam-server")
	if err := errors.Join(runErr, stopErr, childErr); err != nil {
		return Profiles{}, fmt.Errorf("remotecall: profile: %w", err)
	}
	if err := caller.Save(b.opts.ProfileDir, "seam-caller"); err != nil {
		return Profiles{}, err
	}
	// Both processes count the whole profiled interval; the server counts every call it answered in it.
	calls := max(server.Count, 1)
	out := Profiles{Calls: int64(len(run.Sorted)), Rate: run.Rate()}
	if out.Caller, err = breakdown(caller, calls); err != nil {
		return Profiles{}, err
	}
	if out.Server, err = breakdown(server.Profile, calls); err != nil {
		return Profiles{}, err
	}
	return out, nil
}

func breakdown(p prof.Profile, calls int64) (ProcessProfile, error) {
	cpu, err := prof.CPU(p.CPU, prof.RPCComponents, 12)
	if err != nil {
		return ProcessProfile{}, err
	}
	allocs, err := prof.Allocs(p.AllocsBefore, p.AllocsAfter, prof.RPCComponents, 10)
	if err != nil {
		return ProcessProfile{}, err
	}
	return ProcessProfile{
		CPU:           cpu,
		Allocs:        allocs,
		CPUPerCall:    p.CPUTime / time.Duration(calls),
		AllocsPerCall: float64(p.Mallocs) / float64(calls),
		BytesPerCall:  float64(p.Bytes) / float64(calls),
	}, nil
}

// codecSink keeps the codec benchmark's results alive.
var codecSink Response

// CodecCost measures encoding and decoding the request and the response with encoding/json once (a
// testing.Benchmark), the codec work every peer but raw TCP does per call.
func CodecCost() (time.Duration, error) {
	var failure error
	res := testing.Benchmark(func(tb *testing.B) {
		tb.ReportAllocs()
		for tb.Loop() {
			data, err := json.Marshal(sampleRequest)
			if err != nil {
				failure = err
				tb.FailNow()
			}
			var req Request
			if err := json.Unmarshal(data, &req); err != nil {
				failure = err
				tb.FailNow()
			}
			data, err = json.Marshal(answer(&req))
			if err != nil {
				failure = err
				tb.FailNow()
			}
			if err := json.Unmarshal(data, &codecSink); err != nil {
				failure = err
				tb.FailNow()
			}
		}
	})
	if failure != nil {
		return 0, fmt.Errorf("remotecall: codec: %w", failure)
	}
	if res.N == 0 {
		return 0, errors.New("remotecall: codec benchmark did not run")
	}
	return time.Duration(res.T.Nanoseconds() / int64(res.N)), nil
}
