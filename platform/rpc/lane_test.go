package rpc_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/seamkit/seam/platform/rpc"
	"github.com/seamkit/seam/platform/rpc/rpctest"
)

// lanesOnly serves the "test" module on lanes and returns the caller's lanes, open to it.
func lanesOnly(t *testing.T, conn *nats.Conn, fn func(ctx context.Context, req *echoReq) (echoResp, error)) transport {
	t.Helper()
	tr := transport{lanes: rpc.NewLanes(discardLogger())}
	t.Cleanup(func() { _ = tr.lanes.Close() })
	tr.serve(t, conn, fn)
	return tr
}

func TestCallsTravelOnLanes(t *testing.T) {
	conn := rpctest.Connect(t)
	tr := lanesOnly(t, conn, func(_ context.Context, req *echoReq) (echoResp, error) {
		return echoResp{Text: "lane: " + req.Text}, nil
	})
	// Without a NATS connection only a lane can carry the call.
	var resp echoResp
	if err := tr.call(context.Background(), nil, subject, echoReq{Text: "hi"}, &resp); err != nil || resp.Text != "lane: hi" {
		t.Fatalf("call on the lane = %v, %q", err, resp.Text)
	}
	if err := rpc.Call(context.Background(), nil, subject, echoReq{}, &resp); !errors.Is(err, rpc.ErrUnavailable) {
		t.Fatalf("call without lanes and without NATS: err = %v, want ErrUnavailable", err)
	}
}

func TestLanesFallBackToNATS(t *testing.T) {
	conn := rpctest.Connect(t)
	// The server takes no lanes: the caller's calls keep going over NATS.
	transport{}.serve(t, conn, func(context.Context, *echoReq) (echoResp, error) { return echoResp{Text: "nats"}, nil })
	lanes := rpc.NewLanes(discardLogger())
	t.Cleanup(func() { _ = lanes.Close() })
	if n, err := lanes.Open(context.Background(), conn, "test"); err != nil || n != 0 {
		t.Fatalf("Open = %d, %v; want no lane", n, err)
	}
	var resp echoResp
	if err := rpc.Call(context.Background(), conn, subject, echoReq{}, &resp, rpc.OverLanes(lanes)); err != nil || resp.Text != "nats" {
		t.Fatalf("call = %v, %q", err, resp.Text)
	}
}

func TestLanesReachEveryInstance(t *testing.T) {
	conn := rpctest.Connect(t)
	tr := transport{lanes: rpc.NewLanes(discardLogger())}
	t.Cleanup(func() { _ = tr.lanes.Close() })
	var a, b atomic.Int32
	tr.serve(t, conn, func(context.Context, *echoReq) (echoResp, error) { a.Add(1); return echoResp{}, nil })
	tr.serve(t, rpctest.Dial(t, conn.ConnectedUrl()), func(context.Context, *echoReq) (echoResp, error) { b.Add(1); return echoResp{}, nil })
	if n, err := tr.lanes.Open(context.Background(), conn, "test"); err != nil || n != 2 {
		t.Fatalf("Open = %d, %v; want 2 lanes", n, err)
	}
	for range 40 {
		if err := tr.call(context.Background(), nil, subject, echoReq{}, &echoResp{}); err != nil {
			t.Fatalf("call: %v", err)
		}
	}
	if a.Load() == 0 || b.Load() == 0 {
		t.Fatalf("instances served %d and %d of 40 calls", a.Load(), b.Load())
	}
}

// TestStoppingInstanceLosesNoCall: while calls (not idempotent) run without pause, one of two instances
// stops; every call succeeds, the stopping instance's lane sending new calls elsewhere.
func TestStoppingInstanceLosesNoCall(t *testing.T) {
	conn := rpctest.Connect(t)
	tr := transport{lanes: rpc.NewLanes(discardLogger())}
	t.Cleanup(func() { _ = tr.lanes.Close() })
	tr.serve(t, conn, func(context.Context, *echoReq) (echoResp, error) { return echoResp{Text: "stays"}, nil })
	other := rpctest.Dial(t, conn.ConnectedUrl())
	var servedByLeaving atomic.Int32
	leaving, err := rpc.Serve(other, rpc.Service{Module: "test", Logger: discardLogger(),
		Endpoints: []rpc.Endpoint{{Method: "Echo", Handler: rpc.Handle(func(context.Context, *echoReq) (echoResp, error) {
			servedByLeaving.Add(1)
			time.Sleep(time.Millisecond) // calls are in flight when Stop begins
			return echoResp{Text: "leaves"}, nil
		})}}}, tr.serveOpts()...)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := tr.lanes.Open(context.Background(), conn, "test"); err != nil || n != 2 {
		t.Fatalf("Open = %d, %v; want 2 lanes", n, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var calls, failures atomic.Int32
	for range 8 {
		wg.Go(func() {
			for ctx.Err() == nil {
				calls.Add(1)
				if err := tr.call(context.Background(), conn, subject, echoReq{}, &echoResp{}); err != nil {
					failures.Add(1)
					t.Errorf("call while an instance stops: %v", err)
				}
			}
		})
	}
	waitFor(t, "calls served by the leaving instance", func() bool { return servedByLeaving.Load() >= 20 })
	if err := leaving.Stop(); err != nil {
		t.Errorf("Stop: %v", err)
	}
	after := calls.Load()
	waitFor(t, "calls after the instance stopped", func() bool { return calls.Load() >= after+100 })
	cancel()
	wg.Wait()
	if failures.Load() != 0 {
		t.Fatalf("%d of %d calls failed", failures.Load(), calls.Load())
	}
}

// waitFor polls cond until it holds, failing the test after 10 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestLostLaneIsUnavailable: when a lane breaks with a call in flight, the call ends at once as unavailable
// (an idempotent one is retried elsewhere) and the server cancels it.
func TestLostLaneIsUnavailable(t *testing.T) {
	conn := rpctest.Connect(t)
	started := make(chan struct{}, 1)
	cause := make(chan error, 1)
	other := rpctest.Dial(t, conn.ConnectedUrl())
	tr := transport{lanes: rpc.NewLanes(discardLogger())}
	t.Cleanup(func() { _ = tr.lanes.Close() })
	tr.serve(t, other, func(ctx context.Context, _ *echoReq) (echoResp, error) {
		started <- struct{}{}
		<-ctx.Done()
		cause <- context.Cause(ctx)
		return echoResp{}, ctx.Err()
	})
	go func() {
		<-started
		// The lane's far end goes away as a dead process's would: its sockets close.
		_ = tr.lanes.Close()
	}()
	start := time.Now()
	err := tr.call(context.Background(), nil, subject, echoReq{}, &echoResp{})
	if !errors.Is(err, rpc.ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Fatalf("the call took %s to notice its lane was lost", elapsed)
	}
	// The server, seeing its caller gone, cancels the call.
	if got := <-cause; !errors.Is(got, rpc.ErrCallerCanceled) {
		t.Fatalf("the server's context ended with %v, want rpc.ErrCallerCanceled", got)
	}
}

// TestLaneRefusesAWrongToken: a connection to an instance's lane address that does not present the
// announced token is closed without an answer.
func TestLaneRefusesAWrongToken(t *testing.T) {
	conn := rpctest.Connect(t)
	transport{lanes: rpc.NewLanes(discardLogger())}.serve(t, conn, func(context.Context, *echoReq) (echoResp, error) {
		return echoResp{}, nil
	})
	msg, err := conn.Request(rpc.Subject("test", "_lanes"), nil, 5*time.Second)
	if err != nil {
		t.Fatalf("ask for the lane: %v", err)
	}
	var a struct {
		Addr  string `json:"addr"`
		Token string `json:"token"`
	}
	if err := json.Unmarshal(msg.Data, &a); err != nil || a.Addr == "" || len(a.Token) != 64 {
		t.Fatalf("announcement %s (%v)", msg.Data, err)
	}
	for name, token := range map[string]string{"wrong token": a.Token[:63] + "x", "no token": ""} {
		c, err := net.Dial("tcp", a.Addr)
		if err != nil {
			t.Fatal(err)
		}
		hello := binary.BigEndian.AppendUint32(nil, uint32(9+len(token)))
		hello = append(hello, 1, 0, 0, 0, 0, 0, 0, 0, 0)
		hello = append(hello, token...)
		if _, err := c.Write(hello); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if n, err := bufio.NewReader(c).Read(make([]byte, 16)); !errors.Is(err, io.EOF) {
			t.Errorf("%s: read %d bytes, %v; want the connection closed", name, n, err)
		}
		_ = c.Close()
	}
}
