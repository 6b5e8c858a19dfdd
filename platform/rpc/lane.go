package rpc

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
)

// A lane is a direct TCP connection from a calling process to one instance of a module, which carries that
// process's calls to the instance as length-prefixed frames, many calls at once. NATS stays the way calls
// find their lanes (every instance answers seam.rpc.<module>._lanes with its address and a secret, to those
// NATS lets call the module) and the way calls travel when no lane can be had. A lane skips the NATS server's
// two socket hops and its per-request subscriptions, which is where a call over NATS spends most of its time.

// Config is the rpc section of a Seam process's configuration: whether this process's calls and api servers
// use direct lanes, and where its api servers listen for them.
type Config struct {
	// Lanes turns direct lanes on (the default): api servers listen for them and calls use them.
	Lanes bool `yaml:"lanes"`
	// Listen is the TCP address api servers accept lanes on; the default, 127.0.0.1:0, is a free loopback
	// port, reachable from the processes on this machine only.
	Listen string `yaml:"listen"`
	// Advertise is the host:port callers dial, when it differs from the listener's own address (behind NAT,
	// or listening on 0.0.0.0); empty advertises the listener's address.
	Advertise string `yaml:"advertise"`
}

// SetDefaults fills the defaults into a Config before it is decoded.
func (c *Config) SetDefaults() {
	c.Lanes = true
	if c.Listen == "" {
		c.Listen = "127.0.0.1:0"
	}
}

// Validate checks the addresses; errors name the key.
func (c Config) Validate() error {
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("rpc.listen: %q is not a host:port address: %w", c.Listen, err)
	}
	if c.Advertise != "" {
		host, port, err := net.SplitHostPort(c.Advertise)
		if err != nil || host == "" || port == "0" || port == "" {
			return fmt.Errorf("rpc.advertise: %q must be a host:port address with a port", c.Advertise)
		}
	}
	return nil
}

// lanesMethod is the pseudo-method whose subject, seam.rpc.<module>._lanes, every instance of the module
// serving lanes answers with its announcement.
const lanesMethod = "_lanes"

// announcement is an instance's answer on seam.rpc.<module>._lanes: where to dial it and what to present.
type announcement struct {
	// Instance identifies the serving instance (one rpc.Serve).
	Instance string `json:"instance"`
	// Addr is the host:port to dial.
	Addr string `json:"addr"`
	// Host identifies the machine, so a loopback address is dialled from that machine only.
	Host string `json:"host"`
	// Token is the secret the caller presents in its hello; only those allowed to call the module over NATS
	// learn it.
	Token string `json:"token"`
}

// Frame types. Every frame is a 4-byte big-endian length n, then n bytes: the type, an 8-byte call id and
// the type's payload.
const (
	// frameHello opens a lane (caller to server, call id 0): the payload is the token.
	frameHello byte = iota + 1
	// frameWelcome accepts a hello (server to caller, call id 0): the payload is the instance id.
	frameWelcome
	// frameRequest is a call: method, headers, body (see appendRequest).
	frameRequest
	// frameCancel tells the server the caller gave up on the call.
	frameCancel
	// frameResult answers a call: the payload is the JSON response.
	frameResult
	// frameFailure answers a call that failed: the payload is the JSON wireError.
	frameFailure
	// frameRejected answers a call the server did not run because it is stopping: it is safe to send again,
	// elsewhere.
	frameRejected
	// frameGoAway from the server tells the caller it is stopping: send no more calls on this lane. The
	// caller sends it back once every call it sent on the lane is written, so the server knows it has read
	// them all (and answered each, or rejected it) before it closes the lane.
	frameGoAway
)

// frameHeaderLen is the type and call id every frame starts with, after its length.
const frameHeaderLen = 1 + 8

// maxFrame bounds a frame's length; a longer call goes over NATS, and a peer announcing a longer frame is
// cut off.
const maxFrame = 8 << 20

// errFrameTooLong is a frame above maxFrame.
var errFrameTooLong = errors.New("rpc: lane frame too long")

// appendFrameStart starts a frame of type t for call id in buf, with a length to be patched by
// finishFrame; it returns buf and the frame's offset.
func appendFrameStart(buf []byte, t byte, id uint64) ([]byte, int) {
	at := len(buf)
	buf = append(buf, 0, 0, 0, 0, t)
	return binary.BigEndian.AppendUint64(buf, id), at
}

// finishFrame writes the length of the frame started at offset at.
func finishFrame(buf []byte, at int) {
	binary.BigEndian.PutUint32(buf[at:], uint32(len(buf)-at-4)) //nolint:gosec // frames stay below maxFrame
}

// appendString appends s with its uvarint length.
func appendString(buf []byte, s string) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(s)))
	return append(buf, s...)
}

// appendRequest appends a request frame: the method, the headers as name/value pairs, then the body.
func appendRequest(buf []byte, id uint64, method string, h laneHeaders, body []byte) []byte {
	buf, at := appendFrameStart(buf, frameRequest, id)
	buf = appendString(buf, method)
	buf = binary.AppendUvarint(buf, uint64(len(h)/2))
	for _, s := range h {
		buf = appendString(buf, s)
	}
	buf = append(buf, body...)
	finishFrame(buf, at)
	return buf
}

// appendFrame appends a frame of type t for call id carrying payload.
func appendFrame(buf []byte, t byte, id uint64, payload []byte) []byte {
	buf, at := appendFrameStart(buf, t, id)
	buf = append(buf, payload...)
	finishFrame(buf, at)
	return buf
}

// frame is one frame read from a lane; payload is the reader's own copy.
type frame struct {
	typ     byte
	id      uint64
	payload []byte
}

// readFrame reads the next frame from r.
func readFrame(r *bufio.Reader) (frame, error) {
	var head [4]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return frame{}, err
	}
	n := binary.BigEndian.Uint32(head[:])
	if n < frameHeaderLen {
		return frame{}, fmt.Errorf("rpc: lane frame of %d bytes is shorter than its header", n)
	}
	if n > maxFrame {
		return frame{}, errFrameTooLong
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		return frame{}, err
	}
	return frame{typ: buf[0], id: binary.BigEndian.Uint64(buf[1:frameHeaderLen]), payload: buf[frameHeaderLen:]}, nil
}

// errMalformedRequest is a request frame that does not parse.
var errMalformedRequest = errors.New("rpc: malformed lane request")

// parseRequest splits a request frame's payload into its method, headers and body.
func parseRequest(p []byte) (method []byte, h laneHeaders, body []byte, err error) {
	method, p, err = cutString(p)
	if err != nil {
		return nil, nil, nil, err
	}
	pairs, n := binary.Uvarint(p)
	if n <= 0 || pairs > 64 {
		return nil, nil, nil, errMalformedRequest
	}
	p = p[n:]
	// The headers are checked first, then copied into one string that every name and value is a part of:
	// one allocation for all of them.
	rest := p
	for range 2 * pairs {
		if _, rest, err = cutString(rest); err != nil {
			return nil, nil, nil, err
		}
	}
	block := string(p[:len(p)-len(rest)])
	h = make(laneHeaders, 0, 2*pairs)
	for at := 0; at < len(block); {
		l, n := binary.Uvarint(p[at:])
		at += n
		h = append(h, block[at:at+int(l)]) //nolint:gosec // l was checked against the frame by cutString
		at += int(l)                       //nolint:gosec // as above
	}
	return method, h, rest, nil
}

// cutString reads one uvarint-length-prefixed string off the front of p.
func cutString(p []byte) (s, rest []byte, err error) {
	l, n := binary.Uvarint(p)
	if n <= 0 || l > uint64(len(p)-n) {
		return nil, nil, errMalformedRequest
	}
	return p[n : n+int(l)], p[n+int(l):], nil
}

// laneHeaders are a call's headers on a lane, as name, value, name, value...; they are the
// propagation.TextMapCarrier of its trace context.
type laneHeaders []string

// Get returns the value of the header key, whatever its case.
func (h laneHeaders) Get(key string) string {
	for i := 0; i+1 < len(h); i += 2 {
		if strings.EqualFold(h[i], key) {
			return h[i+1]
		}
	}
	return ""
}

// Set adds or replaces the header key.
func (h *laneHeaders) Set(key, value string) {
	for i := 0; i+1 < len(*h); i += 2 {
		if strings.EqualFold((*h)[i], key) {
			(*h)[i+1] = value
			return
		}
	}
	*h = append(*h, key, value)
}

// Keys lists the header names.
func (h laneHeaders) Keys() []string {
	keys := make([]string, 0, len(h)/2)
	for i := 0; i < len(h); i += 2 {
		keys = append(keys, h[i])
	}
	return keys
}

// frameWriter sends frames on a lane from many goroutines: a sender appends its frame to the pending
// buffer, and whoever finds no write in progress writes everything pending, so frames sent while a write
// is under way go out together in the next one. Senders wait while maxPending bytes are already queued.
type frameWriter struct {
	conn net.Conn

	mu      sync.Mutex
	drained sync.Cond
	pending []byte
	spare   []byte
	writing bool
	err     error
}

// send appends one frame with fill and makes sure it is written; it returns the lane's write error, if
// writing has failed before.
func (w *frameWriter) send(fill func([]byte) []byte) error { return w.push(fill, false) }

// sendAmong is send for a frame sent while other calls are in flight on the lane: if it has to write, it
// first lets the goroutines about to send theirs append them, so that one write carries them all.
func (w *frameWriter) sendAmong(fill func([]byte) []byte) error { return w.push(fill, true) }

// push appends one frame with fill and, unless a write is under way, writes everything pending (after one
// yield of the processor when gather is set).
func (w *frameWriter) push(fill func([]byte) []byte, gather bool) error {
	w.mu.Lock()
	for w.writing && w.err == nil && len(w.pending) >= maxPending {
		w.drained.Wait()
	}
	if w.err != nil {
		err := w.err
		w.mu.Unlock()
		return err
	}
	w.pending = fill(w.pending)
	if w.writing {
		w.mu.Unlock()
		return nil
	}
	w.writing = true
	if gather {
		w.mu.Unlock()
		runtime.Gosched()
		w.mu.Lock()
	}
	for len(w.pending) > 0 && w.err == nil {
		out := w.pending
		w.pending = w.spare[:0]
		w.mu.Unlock()
		_, err := w.conn.Write(out)
		w.mu.Lock()
		w.spare = out[:0]
		if err != nil {
			w.err = err
		}
		w.drained.Broadcast()
	}
	w.writing = false
	err := w.err
	w.mu.Unlock()
	return err
}

// maxPending is how many bytes of frames may wait for a lane's write in progress before senders wait too.
const maxPending = 4 << 20

// newFrameWriter returns the writer of conn.
func newFrameWriter(conn net.Conn) *frameWriter {
	w := &frameWriter{conn: conn}
	w.drained.L = &w.mu
	return w
}

// hostID identifies this machine: its hostname and, on Linux, its boot id.
var hostID = sync.OnceValue(func() string {
	name, _ := os.Hostname()
	if boot, err := os.ReadFile("/proc/sys/kernel/random/boot_id"); err == nil {
		name += "/" + strings.TrimSpace(string(boot))
	}
	return name
})

// isLoopback reports whether addr's host is a loopback address or localhost.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
