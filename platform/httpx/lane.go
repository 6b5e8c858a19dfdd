package httpx

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/seamkit/seam/platform/rpc"
)

// Forwarded HTTP on direct lanes. Where a module's instance serves its api with direct lanes (rpc.Config),
// it also serves the HTTP requests gateways forward on those lanes, as the raw rpc endpoint LaneMethod, and a
// gateway given the caller's lanes (Gateway.UseLanes) sends each request on a lane when one is open, NATS
// (ServeNATS) carrying it otherwise. A lane needs no acknowledgement or heartbeat: a broken lane tells the
// gateway at once that the instance serving its request is gone.

// LaneMethod is the raw rpc endpoint (rpc.Endpoint.Raw) an instance serves forwarded HTTP requests on.
const LaneMethod = "_http"

// errMalformedForward is a forwarded request or response on a lane that does not parse.
var errMalformedForward = errors.New("malformed forwarded HTTP message")

// LaneEndpoint returns the raw rpc endpoint that serves forwarded HTTP requests with h (the process's whole
// handler), each bounded by timeout, as ServeNATS does over NATS; pass it to the module's rpc.Serve with
// rpc.AlsoServe.
func LaneEndpoint(h http.Handler, timeout time.Duration, logger *slog.Logger) rpc.Endpoint {
	return rpc.Endpoint{Method: LaneMethod, Raw: true, Handler: func(ctx context.Context, body []byte) (any, error) {
		req, err := parseForwardedRequest(body)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", rpc.ErrBadRequest, err)
		}
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		rec := serveRequest(ctx, req, h, logger)
		return appendForwardedResponse(make([]byte, 0, 64+rec.body.Len()), rec.status, rec.header, rec.body.Bytes()), nil
	}}
}

// forwardedRequest is what a gateway sends of an HTTP request: its method, target (path and query), the
// client's address, its headers (hop-by-hop ones removed) and its body.
type forwardedRequest struct {
	method, target, remoteAddr string
	header                     http.Header
	body                       []byte
}

// appendForwardedRequest encodes req: method, target and remote address, then the headers as a count of
// name/value pairs, then the body; every string is prefixed with its uvarint length.
func appendForwardedRequest(buf []byte, req forwardedRequest) []byte {
	buf = appendLaneString(buf, req.method)
	buf = appendLaneString(buf, req.target)
	buf = appendLaneString(buf, req.remoteAddr)
	buf = appendLaneHeader(buf, req.header)
	return append(buf, req.body...)
}

// parseForwardedRequest decodes what appendForwardedRequest encoded.
func parseForwardedRequest(p []byte) (forwardedRequest, error) {
	var req forwardedRequest
	var err error
	if req.method, p, err = cutLaneString(p); err != nil {
		return req, err
	}
	if req.target, p, err = cutLaneString(p); err != nil {
		return req, err
	}
	if req.remoteAddr, p, err = cutLaneString(p); err != nil {
		return req, err
	}
	if req.header, p, err = cutLaneHeader(p); err != nil {
		return req, err
	}
	req.body = p
	return req, nil
}

// appendForwardedResponse encodes a response: its status as a uvarint, its headers as
// appendForwardedRequest writes them, then its body.
func appendForwardedResponse(buf []byte, status int, header http.Header, body []byte) []byte {
	buf = binary.AppendUvarint(buf, uint64(status)) //nolint:gosec // a status is 100..999
	buf = appendLaneHeader(buf, header)
	return append(buf, body...)
}

// parseForwardedResponse decodes what appendForwardedResponse encoded.
func parseForwardedResponse(p []byte) (ForwardedResponse, error) {
	status, n := binary.Uvarint(p)
	if n <= 0 || status < 100 || status > 999 {
		return ForwardedResponse{}, fmt.Errorf("%w: status", errMalformedForward)
	}
	h, body, err := cutLaneHeader(p[n:])
	if err != nil {
		return ForwardedResponse{}, err
	}
	return ForwardedResponse{Status: int(status), Header: h, Body: body}, nil
}

// appendLaneString appends s with its uvarint length.
func appendLaneString(buf []byte, s string) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(s)))
	return append(buf, s...)
}

// cutLaneString reads one uvarint-length-prefixed string off the front of p.
func cutLaneString(p []byte) (string, []byte, error) {
	l, n := binary.Uvarint(p)
	if n <= 0 || l > uint64(len(p)-n) {
		return "", nil, errMalformedForward
	}
	return string(p[n : n+int(l)]), p[n+int(l):], nil
}

// appendLaneHeader appends h as the number of its name/value pairs, then each name and value.
func appendLaneHeader(buf []byte, h http.Header) []byte {
	pairs := 0
	for _, vs := range h {
		pairs += len(vs)
	}
	buf = binary.AppendUvarint(buf, uint64(pairs)) //nolint:gosec // a count
	for k, vs := range h {
		for _, v := range vs {
			buf = appendLaneString(buf, k)
			buf = appendLaneString(buf, v)
		}
	}
	return buf
}

// cutLaneHeader reads what appendLaneHeader wrote off the front of p.
func cutLaneHeader(p []byte) (http.Header, []byte, error) {
	pairs, n := binary.Uvarint(p)
	// Each pair takes at least two bytes, which bounds a count that would not fit.
	if n <= 0 || pairs > uint64(len(p)-n)/2 {
		return nil, nil, errMalformedForward
	}
	p = p[n:]
	h := make(http.Header, pairs)
	for range pairs {
		var k, v string
		var err error
		if k, p, err = cutLaneString(p); err != nil {
			return nil, nil, err
		}
		if v, p, err = cutLaneString(p); err != nil {
			return nil, nil, err
		}
		h[k] = append(h[k], v)
	}
	return h, p, nil
}
