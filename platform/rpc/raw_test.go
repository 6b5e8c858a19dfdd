package rpc_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/seamkit/seam/platform/observe"
	"github.com/seamkit/seam/platform/rpc"
	"github.com/seamkit/seam/platform/rpc/rpctest"
)

// serveRaw serves the "test" module with a raw endpoint Raw (besides Echo) that answers its request body
// reversed, prefixed with the request id it was called with, on lanes; it returns the caller's lanes, not
// yet open.
func serveRaw(t *testing.T, conn *nats.Conn, raw rpc.Handler) *rpc.Lanes {
	t.Helper()
	svc, err := rpc.Serve(conn, rpc.Service{
		Module:    "test",
		Logger:    discardLogger(),
		Endpoints: []rpc.Endpoint{{Method: "Echo", Handler: rpc.Handle(echo)}},
	}, rpc.ServeLanes(rpc.Config{Lanes: true, Listen: "127.0.0.1:0"}), rpc.AlsoServe(rpc.Endpoint{Method: "Raw", Raw: true, Handler: raw}))
	if err != nil {
		t.Fatalf("Serve: %v", err)
	}
	t.Cleanup(func() {
		if err := svc.Stop(); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	lanes := rpc.NewLanes(discardLogger())
	t.Cleanup(func() { _ = lanes.Close() })
	return lanes
}

// echo answers Echo with its request's text.
func echo(_ context.Context, req *echoReq) (echoResp, error) { return echoResp{Text: req.Text}, nil }

// TestRawEndpointTakesAndGivesBytesOnLanesOnly: Lanes.Send carries bytes as they are to a raw endpoint and
// back, with the caller's request id; it sends nothing while no lane is open, and NATS does not serve the
// raw endpoint.
func TestRawEndpointTakesAndGivesBytesOnLanesOnly(t *testing.T) {
	conn := rpctest.Connect(t)
	lanes := serveRaw(t, conn, func(ctx context.Context, body []byte) (any, error) {
		out := []byte(observe.RequestID(ctx) + ":")
		for i := len(body) - 1; i >= 0; i-- {
			out = append(out, body[i])
		}
		return out, nil
	})
	ctx := observe.WithRequestID(context.Background(), "req-7")
	if _, err := lanes.Send(ctx, conn, "test", "Raw", []byte("abc")); !errors.Is(err, rpc.ErrNoLane) {
		t.Fatalf("Send before any lane is open: %v, want ErrNoLane", err)
	}
	if n, err := lanes.Open(ctx, conn, "test"); err != nil || n != 1 {
		t.Fatalf("Open = %d, %v; want one lane", n, err)
	}
	got, err := lanes.Send(ctx, conn, "test", "Raw", []byte{'a', 0, 'b', '{'})
	if err != nil || !bytes.Equal(got, []byte{'r', 'e', 'q', '-', '7', ':', '{', 'b', 0, 'a'}) {
		t.Fatalf("Send = %q, %v; want the body reversed after the request id", got, err)
	}
	if _, err := conn.Request(rpc.Subject("test", "Raw"), []byte("abc"), time.Second); !errors.Is(err, nats.ErrNoResponders) {
		t.Fatalf("raw endpoint over NATS: %v, want no responders", err)
	}
	// The interface's own endpoints are still served, over NATS too.
	var resp echoResp
	if err := rpc.Call(ctx, conn, rpc.Subject("test", "Echo"), echoReq{Text: "hi"}, &resp); err != nil || resp.Text != "hi" {
		t.Fatalf("Echo over NATS = %+v, %v", resp, err)
	}
}

// TestRawEndpointFailures: a raw endpoint's error reaches the caller as Call rebuilds it, a handler that
// returns something other than bytes fails the call, and a lane broken mid-call is ErrLaneLost.
func TestRawEndpointFailures(t *testing.T) {
	conn := rpctest.Connect(t)
	started := make(chan struct{}, 1)
	lanes := serveRaw(t, conn, func(ctx context.Context, body []byte) (any, error) {
		switch string(body) {
		case "fail":
			return nil, rpc.ErrBadRequest
		case "not bytes":
			return "text", nil
		default:
			started <- struct{}{}
			<-ctx.Done()
			return nil, ctx.Err()
		}
	})
	ctx := context.Background()
	if n, err := lanes.Open(ctx, conn, "test"); err != nil || n != 1 {
		t.Fatalf("Open = %d, %v; want one lane", n, err)
	}
	if _, err := lanes.Send(ctx, conn, "test", "Raw", []byte("fail")); !errors.Is(err, rpc.ErrBadRequest) {
		t.Fatalf("failing handler: %v, want ErrBadRequest", err)
	}
	if _, err := lanes.Send(ctx, conn, "test", "Raw", []byte("not bytes")); !errors.Is(err, rpc.ErrRemote) {
		t.Fatalf("handler answering a string: %v, want ErrRemote", err)
	}
	go func() {
		<-started
		_ = lanes.Close() // the lane's sockets close, as a dead process's would
	}()
	if _, err := lanes.Send(ctx, conn, "test", "Raw", []byte("hang")); !errors.Is(err, rpc.ErrLaneLost) {
		t.Fatalf("lane lost mid-call: %v, want ErrLaneLost", err)
	}
}
