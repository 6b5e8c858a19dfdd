package rpc

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
)

// Discovery timing: how long a caller collects announcements, how long it waits for more after each one,
// how often it looks again while it has no lane to a module (and while it has some, for new instances), and
// how long it leaves an instance whose lane could not be opened.
const (
	discoveryWait      = 250 * time.Millisecond
	discoverySettle    = 25 * time.Millisecond
	rediscoverNoLanes  = time.Second
	rediscoverWithLane = 15 * time.Second
	refusedFor         = 30 * time.Second
	dialTimeout        = 2 * time.Second
)

// errLaneGone means a call was not run on the lane (closing, closed, or its server stopping), so it may be
// sent elsewhere whatever its method.
var errLaneGone = errors.New("rpc: lane gone")

// ErrLaneLost means the lane broke while the call was in flight: it may or may not have run.
var ErrLaneLost = errors.New("rpc: lane lost with the call in flight")

// ErrNoLane means Lanes.Send sent nothing: no lane to the module is open (one is being looked for), or the
// one it tried took no call; the caller may send the request another way, whatever its method.
var ErrNoLane = errors.New("rpc: no lane to the module took the call")

// Lanes are a process's direct lanes to the instances of the modules it calls, found over NATS on first use
// and kept up to date while in use; calls made with OverLanes take them, and NATS carries a call whenever no
// lane does. Close them when the process stops.
type Lanes struct {
	logger  *slog.Logger
	modules sync.Map // module name → *moduleLanes

	mu     sync.Mutex
	closed bool
}

// NewLanes returns an empty set of lanes; failures to open one are logged at debug level on logger.
func NewLanes(logger *slog.Logger) *Lanes { return &Lanes{logger: logger} }

// OverLanes makes calls travel on l's direct lanes whenever one to the module is open.
func OverLanes(l *Lanes) CallOption { return func(o *callOptions) { o.lanes = l } }

// Close closes every lane; calls in flight on them fail as unavailable.
func (ls *Lanes) Close() error {
	ls.mu.Lock()
	ls.closed = true
	ls.mu.Unlock()
	ls.modules.Range(func(_, v any) bool {
		v.(*moduleLanes).closeAll()
		return true
	})
	return nil
}

// isClosed reports whether Close was called.
func (ls *Lanes) isClosed() bool {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	return ls.closed
}

// pick returns an open lane to module, or nil; it starts looking for lanes over conn when it is time to.
func (ls *Lanes) pick(conn *nats.Conn, module string) *clientLane {
	return ls.module(module).pick(conn)
}

// Open looks for module's instances over conn now, opens lanes to those it has none to, and returns how
// many lanes to module are open. Calls open lanes on their own, in the background, so their first calls go
// over NATS; Open is for a caller that wants its lanes before calling.
func (ls *Lanes) Open(ctx context.Context, conn *nats.Conn, module string) (int, error) {
	m := ls.module(module)
	m.discovery.Lock()
	defer m.discovery.Unlock()
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("rpc: open lanes to %s: %w", module, err)
	}
	return m.discoverNow(conn), nil
}

// Send sends body as it is to the raw endpoint method (see Endpoint.Raw) of one of module's instances on an
// open lane, with the request id, principal, deadline and trace context of ctx, and returns the answer's
// body as it is. It never uses NATS for the call: when no lane takes it, it returns ErrNoLane and sends
// nothing (and starts looking for lanes over conn when it is time to). Other errors: ErrLaneLost (the call
// may have run), the context's error, and the endpoint's failure rebuilt as Call rebuilds it.
func (ls *Lanes) Send(ctx context.Context, conn *nats.Conn, module, method string, body []byte) ([]byte, error) {
	if len(body) >= maxFrame/2 {
		return nil, ErrNoLane
	}
	l := ls.pick(conn, module)
	if l == nil {
		return nil, ErrNoLane
	}
	h := make(laneHeaders, 0, 8)
	if err := setHeaders(ctx, &h); err != nil {
		return nil, fmt.Errorf("rpc: %s: %w", Subject(module, method), err)
	}
	typ, payload, err := l.call(ctx, method, h, body)
	switch {
	case errors.Is(err, errLaneGone):
		return nil, ErrNoLane
	case err != nil:
		return nil, fmt.Errorf("rpc: %s: %w", Subject(module, method), err)
	}
	switch typ {
	case frameResult:
		return payload, nil
	case frameFailure:
		subject := Subject(module, method)
		return nil, fmt.Errorf("rpc: %s: %w", subject, decodeError(subject, h.Get(HeaderRequestID), payload))
	case frameRejected:
		return nil, ErrNoLane
	default:
		return nil, fmt.Errorf("rpc: %s: %w", Subject(module, method), ErrLaneLost)
	}
}

// module returns the lanes to module, creating an empty set on first use.
func (ls *Lanes) module(module string) *moduleLanes {
	v, ok := ls.modules.Load(module)
	if !ok {
		v, _ = ls.modules.LoadOrStore(module, &moduleLanes{owner: ls, module: module, byInstance: map[string]*clientLane{},
			refused: map[string]time.Time{}})
	}
	return v.(*moduleLanes)
}

// moduleLanes are the lanes to the instances of one module.
type moduleLanes struct {
	owner  *Lanes
	module string
	// live is the current lanes, read without a lock on every call.
	live atomic.Pointer[[]*clientLane]
	next atomic.Uint64
	// due is when to look for instances next (Unix nanoseconds); 0 means now.
	due atomic.Int64

	// discovery is held by the discovery under way.
	discovery sync.Mutex

	mu         sync.Mutex
	byInstance map[string]*clientLane
	refused    map[string]time.Time
}

// pick returns one of the live lanes in turn, or nil; it starts a discovery when one is due.
func (m *moduleLanes) pick(conn *nats.Conn) *clientLane {
	if conn != nil {
		if due := m.due.Load(); due == 0 || time.Now().UnixNano() >= due {
			m.discover(conn)
		}
	}
	live := m.live.Load()
	if live == nil || len(*live) == 0 {
		return nil
	}
	return (*live)[m.next.Add(1)%uint64(len(*live))]
}

// discover looks for the module's instances in the background, unless a discovery is under way; calls keep
// going over what they have meanwhile.
func (m *moduleLanes) discover(conn *nats.Conn) {
	if m.owner.isClosed() || !m.discovery.TryLock() {
		return
	}
	go func() {
		defer m.discovery.Unlock()
		m.discoverNow(conn)
	}()
}

// discoverNow asks every instance of the module for its announcement, opens lanes to the new ones, schedules
// the next discovery and returns how many lanes are open; m.discovery is held.
func (m *moduleLanes) discoverNow(conn *nats.Conn) int {
	for _, a := range m.announcements(conn) {
		m.open(a)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	next := rediscoverWithLane
	if len(m.byInstance) == 0 {
		next = rediscoverNoLanes
	}
	m.due.Store(time.Now().Add(next).UnixNano())
	return len(m.byInstance)
}

// announcements collects the instances' answers on seam.rpc.<module>._lanes.
func (m *moduleLanes) announcements(conn *nats.Conn) []announcement {
	inbox := conn.NewInbox()
	sub, err := conn.SubscribeSync(inbox)
	if err != nil {
		return nil
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := conn.PublishRequest(Subject(m.module, lanesMethod), inbox, nil); err != nil {
		return nil
	}
	var found []announcement
	deadline := time.Now().Add(discoveryWait)
	for wait := discoveryWait; wait > 0; wait = min(discoverySettle, time.Until(deadline)) {
		msg, err := sub.NextMsg(wait)
		if err != nil {
			break
		}
		var a announcement
		if json.Unmarshal(msg.Data, &a) == nil && a.Instance != "" {
			found = append(found, a)
		}
	}
	return found
}

// open opens a lane to the announced instance unless there is one already, it is on another machine behind
// a loopback address, or it refused recently.
func (m *moduleLanes) open(a announcement) {
	m.mu.Lock()
	_, have := m.byInstance[a.Instance]
	until, refused := m.refused[a.Instance]
	m.mu.Unlock()
	if have || (refused && time.Now().Before(until)) || (isLoopback(a.Addr) && a.Host != hostID()) {
		return
	}
	l, err := dialLane(a)
	if err != nil {
		m.owner.logger.Debug("rpc: open a lane", slog.String("module", m.module), slog.String("addr", a.Addr),
			slog.Any("error", err))
		m.mu.Lock()
		m.refused[a.Instance] = time.Now().Add(refusedFor)
		m.mu.Unlock()
		return
	}
	l.m = m
	m.mu.Lock()
	if m.owner.isClosed() {
		m.mu.Unlock()
		_ = l.conn.Close()
		return
	}
	m.byInstance[a.Instance] = l
	m.publish()
	m.mu.Unlock()
	go l.read()
}

// publish refreshes the live snapshot from byInstance; m.mu is held.
func (m *moduleLanes) publish() {
	live := make([]*clientLane, 0, len(m.byInstance))
	for _, l := range m.byInstance {
		live = append(live, l)
	}
	m.live.Store(&live)
}

// retire removes l from the live lanes, so no new call takes it.
func (m *moduleLanes) retire(l *clientLane) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.byInstance[l.instance] == l {
		delete(m.byInstance, l.instance)
		m.publish()
		// Look for the module's instances again on the next call: one may have taken this one's place.
		m.due.Store(0)
	}
}

// closeAll closes every lane of the module.
func (m *moduleLanes) closeAll() {
	m.mu.Lock()
	lanes := make([]*clientLane, 0, len(m.byInstance))
	for _, l := range m.byInstance {
		lanes = append(lanes, l)
	}
	m.mu.Unlock()
	for _, l := range lanes {
		_ = l.conn.Close()
	}
}

// dialLane connects to the announced instance and presents its token.
func dialLane(a announcement) (*clientLane, error) {
	conn, err := net.DialTimeout("tcp", a.Addr, dialTimeout)
	if err != nil {
		return nil, err
	}
	if tcp, ok := conn.(*net.TCPConn); ok {
		_ = tcp.SetNoDelay(true)
	}
	l := &clientLane{instance: a.Instance, conn: conn, w: newFrameWriter(conn), r: bufio.NewReaderSize(conn, 64<<10),
		calls: map[uint64]*laneCall{}}
	if err := l.w.send(func(b []byte) []byte { return appendFrame(b, frameHello, 0, []byte(a.Token)) }); err != nil {
		_ = conn.Close()
		return nil, err
	}
	_ = conn.SetReadDeadline(time.Now().Add(dialTimeout))
	welcome, err := readFrame(l.r)
	if err != nil || welcome.typ != frameWelcome {
		_ = conn.Close()
		return nil, errors.Join(errors.New("rpc: the instance did not welcome the lane"), err)
	}
	_ = conn.SetReadDeadline(time.Time{})
	return l, nil
}

// clientLane is one lane from this process to one instance.
type clientLane struct {
	m        *moduleLanes
	instance string
	conn     net.Conn
	w        *frameWriter
	r        *bufio.Reader

	mu     sync.Mutex
	calls  map[uint64]*laneCall
	nextID uint64
	// gone means the lane takes no new calls: its server is stopping, or it broke.
	gone bool
	// sending counts the calls taken before the lane was gone whose frame is still being written.
	sending sync.WaitGroup
}

// laneCall is one call waiting for its answer; done receives once the answer (or the lane's loss) is in.
type laneCall struct {
	done    chan struct{}
	typ     byte
	payload []byte
}

// laneCalls recycles laneCalls, whose channel is reused.
var laneCalls = sync.Pool{New: func() any { return &laneCall{done: make(chan struct{}, 1)} }}

// frameLost is the type a call's answer takes when the lane broke before it came.
const frameLost byte = 0

// call sends one call on the lane and waits for its answer (the type and payload of the answering frame)
// or for ctx to end, in which case the server is told to cancel the call.
func (l *clientLane) call(ctx context.Context, method string, h laneHeaders, body []byte) (byte, []byte, error) {
	c := laneCalls.Get().(*laneCall)
	l.mu.Lock()
	if l.gone {
		l.mu.Unlock()
		laneCalls.Put(c)
		return 0, nil, errLaneGone
	}
	l.nextID++
	id := l.nextID
	l.calls[id] = c
	among := len(l.calls) > 1
	l.sending.Add(1)
	l.mu.Unlock()
	send := l.w.send
	if among {
		send = l.w.sendAmong
	}
	if err := send(func(b []byte) []byte { return appendRequest(b, id, method, h, body) }); err != nil {
		// The reader ends on the closed connection and answers every call in flight as lost.
		_ = l.conn.Close()
	}
	l.sending.Done()
	select {
	case <-c.done:
		typ, payload := c.typ, c.payload
		c.payload = nil
		laneCalls.Put(c)
		return typ, payload, nil
	case <-ctx.Done():
		l.mu.Lock()
		_, waiting := l.calls[id]
		delete(l.calls, id)
		l.mu.Unlock()
		if waiting {
			_ = l.w.send(func(b []byte) []byte { return appendFrame(b, frameCancel, id, nil) })
		} else {
			<-c.done
		}
		c.payload = nil
		laneCalls.Put(c)
		return 0, nil, ctx.Err()
	}
}

// read delivers answers to their calls until the lane breaks or closes, then answers the rest as lost.
func (l *clientLane) read() {
	for l.readOne() {
	}
	l.m.retire(l)
	l.mu.Lock()
	l.gone = true
	calls := l.calls
	l.calls = map[uint64]*laneCall{}
	l.mu.Unlock()
	for _, c := range calls {
		c.typ = frameLost
		c.done <- struct{}{}
	}
	_ = l.conn.Close()
}

// readOne handles one frame; it reports whether the lane is still readable.
func (l *clientLane) readOne() bool {
	f, err := readFrame(l.r)
	if err != nil {
		return false
	}
	switch f.typ {
	case frameResult, frameFailure, frameRejected:
		l.mu.Lock()
		c := l.calls[f.id]
		delete(l.calls, f.id)
		l.mu.Unlock()
		if c != nil {
			c.typ, c.payload = f.typ, f.payload
			c.done <- struct{}{}
		}
		return true
	case frameGoAway:
		l.mu.Lock()
		l.gone = true
		l.mu.Unlock()
		l.m.retire(l)
		// Sent back once the calls taken before are written: the server then knows it has read them all.
		l.sending.Wait()
		return l.w.send(func(b []byte) []byte { return appendFrame(b, frameGoAway, 0, nil) }) == nil
	default:
		return false
	}
}

// splitSubject returns the module and method of an endpoint subject (seam.rpc.<module>.<Method>).
func splitSubject(subject string) (module, method string, ok bool) {
	rest, ok := strings.CutPrefix(subject, SubjectPrefix)
	if !ok {
		return "", "", false
	}
	return strings.Cut(rest, ".")
}
