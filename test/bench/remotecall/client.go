package remotecall

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/seamkit/seam/platform/identity"
	"github.com/seamkit/seam/platform/observe"
	"github.com/seamkit/seam/platform/rpc"
	"github.com/seamkit/seam/test/bench/stats"
)

// errWrongAnswer is a call whose answer is not the expected invoice.
var errWrongAnswer = errors.New("remotecall: wrong answer")

// callTimeout bounds one call of the peers whose API takes a timeout.
const callTimeout = 10 * time.Second

// client makes one peer's calls.
type client struct {
	// newOp returns a worker's call.
	newOp func(worker int) (stats.Op, error)
	// close releases what the client holds.
	close func()
}

// callerContext is the context a call is made with: a request id and a principal, as an HTTP handler's
// context carries them, which Seam's calls send along as headers.
func callerContext(ctx context.Context) context.Context {
	ctx = observe.WithRequestID(ctx, "0193a6a4-7f5e-7c1a-9c1e-request00001")
	return identity.With(ctx, identity.Principal{UserID: sampleRequest.UserID, Email: "alice@example.com", Role: identity.RoleUser})
}

func check(resp *Response) error {
	if resp.Result.ID != sampleRequest.InvoiceID || resp.Result.AmountMinor != invoiceTemplate.AmountMinor {
		return errWrongAnswer
	}
	return nil
}

// seamClient calls with rpc.Call over conn (and on the lanes extra gives it), exactly as a generated
// client's method does for a //seam:readonly method (which passes rpc.Idempotent()).
func seamClient(ctx context.Context, conn *nats.Conn, module string, extra ...rpc.CallOption) client {
	subject := rpc.Subject(module, Method)
	opts := append([]rpc.CallOption{rpc.Idempotent()}, extra...)
	callCtx := callerContext(ctx)
	return client{newOp: func(int) (stats.Op, error) {
		return func(context.Context) error {
			var resp Response
			req := sampleRequest
			if err := rpc.Call(callCtx, conn, subject, &req, &resp, opts...); err != nil {
				return err
			}
			return check(&resp)
		}, nil
	}, close: func() {}}
}

// natsClient sends a JSON request with nats.go's Request and decodes the JSON reply.
func natsClient(conn *nats.Conn) client {
	return client{newOp: func(int) (stats.Op, error) {
		return func(context.Context) error {
			data, err := json.Marshal(sampleRequest)
			if err != nil {
				return fmt.Errorf("encode: %w", err)
			}
			msg, err := conn.Request(natsSubject, data, callTimeout)
			if err != nil {
				return fmt.Errorf("request: %w", err)
			}
			var resp Response
			if err := json.Unmarshal(msg.Data, &resp); err != nil {
				return fmt.Errorf("decode: %w", err)
			}
			return check(&resp)
		}, nil
	}, close: func() {}}
}

// grpcClient makes unary calls on one client connection (HTTP/2 streams multiplexed over one TCP
// connection) with the JSON codec.
func grpcClient(addr string) (client, error) {
	cc, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.ForceCodec(jsonCodec{})))
	if err != nil {
		return client{}, fmt.Errorf("remotecall: gRPC client: %w", err)
	}
	return client{newOp: func(int) (stats.Op, error) {
		return func(ctx context.Context) error {
			var resp Response
			req := sampleRequest
			if err := cc.Invoke(ctx, grpcMethod, &req, &resp); err != nil {
				return fmt.Errorf("invoke: %w", err)
			}
			return check(&resp)
		}, nil
	}, close: func() { _ = cc.Close() }}, nil
}

// httpClient POSTs the JSON request with a keep-alive client (one connection per concurrent caller).
func httpClient(addr string) client {
	tr := &http.Transport{MaxIdleConns: 512, MaxIdleConnsPerHost: 256, IdleConnTimeout: time.Minute, DisableCompression: true}
	hc := &http.Client{Transport: tr, Timeout: callTimeout}
	url := "http://" + addr + "/billing/invoice"
	return client{newOp: func(int) (stats.Op, error) {
		return func(ctx context.Context) error {
			data, err := json.Marshal(sampleRequest)
			if err != nil {
				return fmt.Errorf("encode: %w", err)
			}
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(data))
			if err != nil {
				return fmt.Errorf("request: %w", err)
			}
			req.Header.Set("Content-Type", "application/json")
			res, err := hc.Do(req)
			if err != nil {
				return fmt.Errorf("post: %w", err)
			}
			defer func() { _ = res.Body.Close() }()
			var resp Response
			if err := json.NewDecoder(res.Body).Decode(&resp); err != nil {
				return fmt.Errorf("decode: %w", err)
			}
			if _, err := io.Copy(io.Discard, res.Body); err != nil {
				return fmt.Errorf("read: %w", err)
			}
			return check(&resp)
		}, nil
	}, close: tr.CloseIdleConnections}
}

// tcpClient gives each worker its own connection, sending the request's bytes in a length-prefixed frame and
// reading the answer's frame, without encoding or decoding anything.
func tcpClient(addr string) (client, error) {
	reqData, err := json.Marshal(sampleRequest)
	if err != nil {
		return client{}, fmt.Errorf("remotecall: encode: %w", err)
	}
	frame := make([]byte, 4+len(reqData))
	binary.BigEndian.PutUint32(frame, uint32(len(reqData)))
	copy(frame[4:], reqData)
	var conns []net.Conn
	return client{newOp: func(int) (stats.Op, error) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("remotecall: dial: %w", err)
		}
		conns = append(conns, c)
		r := bufio.NewReader(c)
		buf := make([]byte, maxFrame)
		return func(context.Context) error {
			if _, err := c.Write(frame); err != nil {
				return fmt.Errorf("write: %w", err)
			}
			if _, err := readFrame(r, buf); err != nil {
				return err
			}
			return nil
		}, nil
	}, close: func() {
		for _, c := range conns {
			_ = c.Close()
		}
		conns = nil
	}}, nil
}

// inProcess serves the method with rpc.Serve in this process on serveConn under module, for the variants
// where caller and responder share a process.
func inProcess(serveConn *nats.Conn, module string) (micro.Service, error) {
	svc, err := rpc.Serve(serveConn, rpc.Service{
		Module: module,
		Logger: slog.New(slog.DiscardHandler),
		Endpoints: []rpc.Endpoint{{Method: Method, Handler: rpc.Handle(func(_ context.Context, req *Request) (*Response, error) {
			return answer(req), nil
		})}},
	})
	if err != nil {
		return nil, fmt.Errorf("remotecall: serve %s: %w", module, err)
	}
	return svc, nil
}
