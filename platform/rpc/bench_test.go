package rpc_test

import (
	"bytes"
	"context"
	"encoding/gob"
	"encoding/json"
	"testing"
	"time"

	gojson "github.com/goccy/go-json"

	"github.com/seamkit/seam/platform/identity"
	"github.com/seamkit/seam/platform/observe"
	"github.com/seamkit/seam/platform/rpc"
	"github.com/seamkit/seam/platform/rpc/rpctest"
)

// benchInvoice has the shape of a typical api result (billingapi.Invoice).
type benchInvoice struct {
	ID          string     `json:"id"`
	UserID      string     `json:"user_id"`
	AmountMinor int64      `json:"amount_minor"`
	Currency    string     `json:"currency"`
	Description string     `json:"description"`
	Status      string     `json:"status"`
	CreatedAt   time.Time  `json:"created_at"`
	PaidAt      *time.Time `json:"paid_at,omitempty"`
}

type benchResponse struct {
	Result benchInvoice `json:"result"`
}

func sampleResponse() benchResponse {
	now := time.Date(2026, 11, 22, 1, 2, 3, 456, time.UTC)
	return benchResponse{Result: benchInvoice{ID: "0193a6a4-7f5e-7c1a-9c1e-1b2d3e4f5a6b", UserID: "0193a6a4-7f5e-7c1a-9c1e-000000000001",
		AmountMinor: 1250, Currency: "EUR", Description: "Pro plan, November", Status: "paid", CreatedAt: now, PaidAt: &now}}
}

// BenchmarkCodecJSON encodes and decodes one response with encoding/json, the standard library's codec.
func BenchmarkCodecJSON(b *testing.B) {
	in := sampleResponse()
	b.ReportAllocs()
	for b.Loop() {
		data, err := json.Marshal(in)
		if err != nil {
			b.Fatal(err)
		}
		var out benchResponse
		if err := json.Unmarshal(data, &out); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCodecGoJSON encodes and decodes one response with github.com/goccy/go-json, the codec Call and
// Serve use for bodies.
func BenchmarkCodecGoJSON(b *testing.B) {
	in := sampleResponse()
	b.ReportAllocs()
	for b.Loop() {
		data, err := gojson.Marshal(in)
		if err != nil {
			b.Fatal(err)
		}
		var out benchResponse
		if err := gojson.Unmarshal(data, &out); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCodecGob is the standard library's binary alternative, for comparison; a fresh encoder per
// message, as each RPC is independent.
func BenchmarkCodecGob(b *testing.B) {
	in := sampleResponse()
	b.ReportAllocs()
	for b.Loop() {
		var buf bytes.Buffer
		if err := gob.NewEncoder(&buf).Encode(in); err != nil {
			b.Fatal(err)
		}
		var out benchResponse
		if err := gob.NewDecoder(&buf).Decode(&out); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCallRoundTrip is one full remote call through an embedded NATS server on loopback, and on a
// direct lane (found through that server).
func BenchmarkCallRoundTrip(b *testing.B) {
	for _, tr := range []transport{{}, {lanes: rpc.NewLanes(discardLogger())}} {
		name := "nats"
		if tr.lanes != nil {
			name = "lanes"
			b.Cleanup(func() { _ = tr.lanes.Close() })
		}
		b.Run(name, func(b *testing.B) {
			conn := rpctest.Connect(b)
			in := sampleResponse()
			svc, err := rpc.Serve(conn, rpc.Service{Module: "bench", Logger: discardLogger(),
				Endpoints: []rpc.Endpoint{{Method: "Get", Handler: rpc.Handle(func(context.Context, *echoReq) (benchResponse, error) {
					return in, nil
				})}}}, tr.serveOpts()...)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = svc.Stop() })
			if tr.lanes != nil {
				if n, err := tr.lanes.Open(context.Background(), conn, "bench"); err != nil || n != 1 {
					b.Fatalf("open a lane: %d, %v", n, err)
				}
			}
			subject := rpc.Subject("bench", "Get")
			ctx := identity.With(observe.WithRequestID(context.Background(), "req-1"), identity.Principal{UserID: "u-1", Role: identity.RoleUser})
			b.ReportAllocs()
			for b.Loop() {
				var out benchResponse
				if err := tr.call(ctx, conn, subject, echoReq{Text: "inv"}, &out); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
