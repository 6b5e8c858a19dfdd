package remotecall

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/nats-io/nats.go"
	"google.golang.org/grpc"

	"github.com/seamkit/seam/platform/bus"
	"github.com/seamkit/seam/platform/rpc"
	"github.com/seamkit/seam/test/bench/proc"
	"github.com/seamkit/seam/test/bench/prof"
)

// ServerRole is the child role that serves one peer's side of the call.
const ServerRole = "remote-server"

// Peer names.
const (
	PeerSeam     = "seam"
	PeerSeamNATS = "seam-nats"
	PeerGRPC     = "grpc"
	PeerHTTP     = "http"
	PeerNATS     = "nats"
	PeerTCP      = "tcp"
)

// Module is the module name Seam's peer serves as; its endpoint is rpc.Subject(Module, Method).
const Module = "bench"

// ModuleNATS is the module name the NATS-only Seam peer serves as.
const ModuleNATS = "benchnats"

// Method is the one method served.
const Method = "GetInvoice"

// natsSubject is the plain NATS peer's subject.
const natsSubject = "bench.plain.GetInvoice"

// grpcMethod is the gRPC peer's full method name.
const grpcMethod = "/seambench.Billing/GetInvoice"

// Server parameters passed to the child.
const (
	paramPeer     = "peer"
	paramNATSURL  = "nats_url"
	paramUser     = "user"
	paramPassword = "password"
	paramInbox    = "inbox_prefix"
)

// served counts the calls the child has answered.
var served atomic.Int64

// RunServer is the child's main for ServerRole: it serves params' peer until its input closes.
func RunServer(params map[string]string) error {
	var (
		addr string
		stop func()
		err  error
	)
	switch peer := params[paramPeer]; peer {
	case PeerSeam:
		addr, stop, err = serveSeam(params, Module, true)
	case PeerSeamNATS:
		addr, stop, err = serveSeam(params, ModuleNATS, false)
	case PeerNATS:
		addr, stop, err = serveNATS(params)
	case PeerGRPC:
		addr, stop, err = serveGRPC()
	case PeerHTTP:
		addr, stop, err = serveHTTP()
	case PeerTCP:
		addr, stop, err = serveTCP()
	default:
		err = fmt.Errorf("remotecall: unknown peer %q", peer)
	}
	if err != nil {
		return err
	}
	defer stop()
	return proc.Serve(addr, prof.Commands(served.Load))
}

// serveSeam serves the method as module with rpc.Serve, exactly as a generated ServeX does in a Seam process,
// connected to the caller's embedded NATS server as the module's own user (with the permissions its
// declaration grants), with lanes on as by default (rpc.Config's defaults) or off (rpc.lanes: false).
func serveSeam(params map[string]string, module string, lanes bool) (string, func(), error) {
	conn, err := nats.Connect(params[paramNATSURL], nats.UserInfo(params[paramUser], params[paramPassword]),
		nats.CustomInboxPrefix(params[paramInbox]), nats.Name("seam-"+module))
	if err != nil {
		return "", nil, fmt.Errorf("remotecall: connect: %w", err)
	}
	var cfg rpc.Config
	cfg.SetDefaults()
	cfg.Lanes = lanes
	svc, err := rpc.Serve(conn, rpc.Service{
		Module:      module,
		Description: "benchmark service",
		Logger:      slog.New(slog.DiscardHandler),
		Endpoints: []rpc.Endpoint{{Method: Method, Handler: rpc.Handle(func(_ context.Context, req *Request) (*Response, error) {
			served.Add(1)
			return answer(req), nil
		})}},
	}, rpc.ServeLanes(cfg))
	if err != nil {
		conn.Close()
		return "", nil, fmt.Errorf("remotecall: serve: %w", err)
	}
	return conn.ConnectedUrlRedacted(), func() { _ = svc.Stop(); conn.Close() }, nil
}

// serveNATS answers plain NATS requests with JSON in a queue subscription, one at a time as nats.go
// delivers them.
func serveNATS(params map[string]string) (string, func(), error) {
	conn, err := nats.Connect(params[paramNATSURL], nats.UserInfo(params[paramUser], params[paramPassword]), nats.Name("plain"))
	if err != nil {
		return "", nil, fmt.Errorf("remotecall: connect: %w", err)
	}
	_, err = conn.QueueSubscribe(natsSubject, "plain", func(m *nats.Msg) {
		var req Request
		if err := json.Unmarshal(m.Data, &req); err != nil {
			return
		}
		data, err := json.Marshal(answer(&req))
		if err != nil {
			return
		}
		served.Add(1)
		_ = m.Respond(data)
	})
	if err != nil {
		conn.Close()
		return "", nil, fmt.Errorf("remotecall: subscribe: %w", err)
	}
	if err := conn.Flush(); err != nil {
		conn.Close()
		return "", nil, fmt.Errorf("remotecall: subscribe: %w", err)
	}
	return conn.ConnectedUrlRedacted(), conn.Close, nil
}

// jsonCodec is a gRPC codec that marshals messages as JSON, so that gRPC carries the same bytes as the other
// peers and the comparison is of the transports, not of the encodings.
type jsonCodec struct{}

// Marshal encodes v as JSON.
func (jsonCodec) Marshal(v any) ([]byte, error) { return json.Marshal(v) }

// Unmarshal decodes JSON into v.
func (jsonCodec) Unmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }

// Name is the codec's content subtype.
func (jsonCodec) Name() string { return "json" }

// billingServer is the interface the hand-written gRPC service description dispatches to.
type billingServer interface {
	GetInvoice(ctx context.Context, req *Request) (*Response, error)
}

type grpcBilling struct{}

// GetInvoice answers one call.
func (grpcBilling) GetInvoice(_ context.Context, req *Request) (*Response, error) {
	served.Add(1)
	return answer(req), nil
}

// grpcService is the service description protoc would generate, written by hand.
var grpcService = grpc.ServiceDesc{
	ServiceName: "seambench.Billing",
	HandlerType: (*billingServer)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: Method,
		Handler: func(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
			req := new(Request)
			if err := dec(req); err != nil {
				return nil, err
			}
			s, _ := srv.(billingServer)
			if interceptor == nil {
				return s.GetInvoice(ctx, req)
			}
			info := &grpc.UnaryServerInfo{Server: srv, FullMethod: grpcMethod}
			return interceptor(ctx, req, info, func(ctx context.Context, req any) (any, error) {
				r, _ := req.(*Request)
				return s.GetInvoice(ctx, r)
			})
		},
	}},
	Metadata: "seambench",
}

func serveGRPC() (string, func(), error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("remotecall: listen: %w", err)
	}
	srv := grpc.NewServer(grpc.ForceServerCodec(jsonCodec{}))
	srv.RegisterService(&grpcService, grpcBilling{})
	go func() { _ = srv.Serve(lis) }()
	return lis.Addr().String(), srv.Stop, nil
}

func serveHTTP() (string, func(), error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("remotecall: listen: %w", err)
	}
	r := chi.NewRouter()
	r.Post("/billing/invoice", func(w http.ResponseWriter, r *http.Request) {
		var req Request
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		data, err := json.Marshal(answer(&req))
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		served.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(data)
	})
	srv := &http.Server{Handler: r, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(lis) }()
	return lis.Addr().String(), func() { _ = srv.Close() }, nil
}

// maxFrame bounds a raw TCP frame.
const maxFrame = 1 << 16

// serveTCP answers each length-prefixed frame with a frame the size of the JSON response, without decoding
// anything: the floor of a request-response over loopback.
func serveTCP() (string, func(), error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("remotecall: listen: %w", err)
	}
	_, respSize := sizes()
	resp := make([]byte, 4+respSize)
	binary.BigEndian.PutUint32(resp, uint32(respSize))
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			go pong(c, resp)
		}
	}()
	return lis.Addr().String(), func() { _ = lis.Close() }, nil
}

// pong answers every frame read from c with resp until c closes.
func pong(c net.Conn, resp []byte) {
	defer func() { _ = c.Close() }()
	r := bufio.NewReader(c)
	buf := make([]byte, maxFrame)
	for {
		if _, err := readFrame(r, buf); err != nil {
			return
		}
		served.Add(1)
		if _, err := c.Write(resp); err != nil {
			return
		}
	}
}

// readFrame reads one length-prefixed frame into buf and returns it.
func readFrame(r io.Reader, buf []byte) ([]byte, error) {
	if _, err := io.ReadFull(r, buf[:4]); err != nil {
		return nil, fmt.Errorf("read frame: %w", err)
	}
	n := binary.BigEndian.Uint32(buf[:4])
	if n > maxFrame {
		return nil, errors.New("frame too large")
	}
	if _, err := io.ReadFull(r, buf[:n]); err != nil {
		return nil, fmt.Errorf("read frame: %w", err)
	}
	return buf[:n], nil
}

// seamModule is the module Seam's peer serves as.
func seamModule(peer string) string {
	if peer == PeerSeamNATS {
		return ModuleNATS
	}
	return Module
}

// ServerParams returns the parameters of a child serving peer, connecting to the bus b for the NATS peers.
func ServerParams(peer string, b *bus.Bus, secret string) map[string]string {
	p := map[string]string{paramPeer: peer}
	switch peer {
	case PeerSeam, PeerSeamNATS:
		module := seamModule(peer)
		p[paramNATSURL] = b.ClientURL()
		p[paramUser] = module
		p[paramPassword] = bus.Password(secret, module)
		p[paramInbox] = bus.InboxPrefix(module)
	case PeerNATS:
		p[paramNATSURL] = b.ClientURL()
		p[paramUser] = bus.SystemUser
		p[paramPassword] = bus.Password(secret, bus.SystemUser)
	}
	return p
}
