package rpc

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"

	"github.com/seamkit/seam/platform/rpc/rpctest"
)

// TestStoppingServerAnswersNotRunOverNATS: a request that reaches an instance over NATS after it began
// stopping is not run, and the answer says so, so the caller can send it elsewhere whatever its method; with
// no other instance, the caller gets ErrUnavailable after a few tries.
func TestStoppingServerAnswersNotRunOverNATS(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a NATS server: skipped with -short")
	}
	conn := rpctest.Connect(t)
	var ran atomic.Int32
	ms, err := Serve(conn, Service{Module: "test", Logger: slog.New(slog.DiscardHandler), Endpoints: []Endpoint{{
		Method: "Echo", Handler: Handle(func(context.Context, *struct{}) (struct{}, error) { ran.Add(1); return struct{}{}, nil }),
	}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ms.Stop() })
	srv := ms.(*server)
	// Stopping, as Stop leaves it between unsubscribing and the NATS server processing that: still subscribed.
	srv.mu.Lock()
	srv.stopped = true
	srv.mu.Unlock()
	err = Call(t.Context(), conn, Subject("test", "Echo"), struct{}{}, &struct{}{})
	if !errors.Is(err, errNotRun) || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("call to a stopping instance: %v; want errNotRun and ErrUnavailable", err)
	}
	if ran.Load() != 0 {
		t.Fatalf("the stopping instance ran %d calls", ran.Load())
	}
}
