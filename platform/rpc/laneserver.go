package rpc

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// helloTimeout bounds how long an accepted connection may take to present its hello.
const helloTimeout = 5 * time.Second

// laneServer accepts the lanes of one served module and runs their calls on the server's endpoints.
type laneServer struct {
	srv       *server
	listener  net.Listener
	endpoints map[string]endpoint
	announce  []byte
	token     []byte
	discovery *nats.Subscription

	mu    sync.Mutex
	lanes map[*serverLane]struct{}
	// goingAway is set once goAway has told the lanes to send no more calls; closed once close has begun.
	goingAway, closed bool
	// readers counts the accept loop and every lane's reader, so close returns once they are gone.
	readers sync.WaitGroup
}

// listenLanes listens on cfg.Listen and answers seam.rpc.<module>._lanes with where and how to reach it.
func listenLanes(srv *server, module string, endpoints map[string]endpoint, cfg Config) (*laneServer, error) {
	listener, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("lanes: listen on %s: %w", cfg.Listen, err)
	}
	secret := make([]byte, 32)
	_, _ = rand.Read(secret) // never fails (crypto/rand)
	instance := make([]byte, 8)
	_, _ = rand.Read(instance)
	addr := cfg.Advertise
	if addr == "" {
		addr = listener.Addr().String()
	}
	token := hex.EncodeToString(secret)
	announce, err := json.Marshal(announcement{Instance: hex.EncodeToString(instance), Addr: addr, Host: hostID(), Token: token})
	if err != nil {
		_ = listener.Close()
		return nil, fmt.Errorf("lanes: announcement: %w", err)
	}
	ls := &laneServer{srv: srv, listener: listener, endpoints: endpoints, announce: announce, token: []byte(token),
		lanes: map[*serverLane]struct{}{}}
	// Not in a queue group: every instance answers, so a caller learns them all.
	ls.discovery, err = srv.conn.Subscribe(Subject(module, lanesMethod), func(m *nats.Msg) {
		if m.Reply != "" {
			_ = srv.conn.Publish(m.Reply, ls.announce)
		}
	})
	if err != nil {
		_ = listener.Close()
		return nil, fmt.Errorf("lanes: announce: %w", err)
	}
	ls.readers.Add(1)
	go ls.accept()
	return ls, nil
}

// accept takes lanes until the listener closes.
func (ls *laneServer) accept() {
	defer ls.readers.Done()
	for {
		conn, err := ls.listener.Accept()
		if err != nil {
			return
		}
		ls.readers.Add(1)
		go ls.open(conn)
	}
}

// open checks a new connection's hello, welcomes it and reads its calls until it closes.
func (ls *laneServer) open(conn net.Conn) {
	defer ls.readers.Done()
	r := bufio.NewReaderSize(conn, 64<<10)
	_ = conn.SetReadDeadline(time.Now().Add(helloTimeout))
	hello, err := readFrame(r)
	if err != nil || hello.typ != frameHello || subtle.ConstantTimeCompare(hello.payload, ls.token) != 1 {
		_ = conn.Close()
		return
	}
	_ = conn.SetReadDeadline(time.Time{})
	l := &serverLane{ls: ls, conn: conn, w: newFrameWriter(conn), r: r, readTurn: make(chan struct{}),
		done: make(chan struct{}), drained: make(chan struct{}), calls: map[uint64]context.CancelCauseFunc{}}
	ls.mu.Lock()
	if ls.closed {
		ls.mu.Unlock()
		_ = conn.Close()
		return
	}
	ls.lanes[l] = struct{}{}
	goingAway := ls.goingAway
	ls.mu.Unlock()
	if l.w.send(func(b []byte) []byte { return appendFrame(b, frameWelcome, 0, nil) }) != nil {
		l.finish()
		return
	}
	// A lane accepted while the server began stopping missed the go-away sent to the others.
	if goingAway && l.w.send(func(b []byte) []byte { return appendFrame(b, frameGoAway, 0, nil) }) != nil {
		l.finish()
		return
	}
	l.work()
}

// work takes turns reading the lane and running the calls that arrive, until the lane is finished or no
// turn came for idleWorker.
func (l *serverLane) work() {
	handOver := time.AfterFunc(time.Hour, l.handOver)
	handOver.Stop()
	for l.read(handOver) {
		t := time.NewTimer(idleWorker)
		select {
		case <-l.readTurn:
			t.Stop()
		case <-t.C:
			return
		case <-l.done:
			t.Stop()
			return
		}
	}
}

// handOver gives the reading to an idle goroutine of the lane, or to a new one.
func (l *serverLane) handOver() {
	select {
	case l.readTurn <- struct{}{}:
	default:
		l.ls.readers.Add(1)
		go func() {
			defer l.ls.readers.Done()
			l.work()
		}()
	}
}

// finish cleans up after a lane that failed or closed: the calls in flight are cancelled (nobody waits for
// their answers) and the connection closed.
func (l *serverLane) finish() {
	l.mu.Lock()
	for _, cancel := range l.calls {
		cancel(ErrCallerCanceled)
	}
	l.mu.Unlock()
	l.ls.mu.Lock()
	delete(l.ls.lanes, l)
	l.ls.mu.Unlock()
	close(l.done)
	_ = l.conn.Close()
}

// goAway stops announcing, stops accepting and tells every lane to send no more calls.
func (ls *laneServer) goAway() {
	if err := ls.discovery.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		ls.srv.logger.Warn("rpc: stop announcing lanes", slog.Any("error", err))
	}
	_ = ls.listener.Close()
	ls.mu.Lock()
	ls.goingAway = true
	lanes := ls.lanesNow()
	ls.mu.Unlock()
	for _, l := range lanes {
		_ = l.w.send(func(b []byte) []byte { return appendFrame(b, frameGoAway, 0, nil) })
	}
}

// lanesNow lists the open lanes; ls.mu is held.
func (ls *laneServer) lanesNow() []*serverLane {
	lanes := make([]*serverLane, 0, len(ls.lanes))
	for l := range ls.lanes {
		lanes = append(lanes, l)
	}
	return lanes
}

// drainWait bounds how long close waits for the callers to send the go-away back (a caller that never
// does, or is gone, holds the stop up no longer).
const drainWait = 2 * time.Second

// close closes every lane, once the calls in flight are answered (its caller waits for them) and the lane's
// caller has sent the go-away back or drainWait has passed, and waits for their readers. Calls that reach
// the server meanwhile are rejected (the server is stopped), so the caller sends them elsewhere.
func (ls *laneServer) close() {
	ls.mu.Lock()
	ls.closed = true
	lanes := ls.lanesNow()
	ls.mu.Unlock()
	deadline := time.NewTimer(drainWait)
	defer deadline.Stop()
wait:
	for _, l := range lanes {
		select {
		case <-l.drained:
		case <-l.done:
		case <-deadline.C:
			break wait
		}
	}
	for _, l := range lanes {
		_ = l.conn.Close()
	}
	ls.readers.Wait()
}

// idleWorker is how long a lane's goroutine waits for its next turn to read before it exits.
const idleWorker = 10 * time.Second

// serverLane is one accepted lane. Its goroutines take turns: the one reading, when a call arrives, hands
// the reading to an idle one (or a new one) and runs the call itself, then waits for its next turn; so a
// call starts without waiting to be scheduled, on a goroutine whose stack has already grown to fit a call.
// A call alone on the lane hands the reading over only if it runs past lazyHandOver, so that a quick call
// wakes no other goroutine.
type serverLane struct {
	ls   *laneServer
	conn net.Conn
	w    *frameWriter
	r    *bufio.Reader
	// readTurn hands the reading to an idle goroutine of the lane.
	readTurn chan struct{}
	// done is closed when the lane is finished, so idle goroutines exit.
	done chan struct{}
	// drained is closed when the caller sends the go-away back: every call it sent has been read.
	drained chan struct{}

	mu sync.Mutex
	// calls holds the cancel function of every call in flight, by call id.
	calls map[uint64]context.CancelCauseFunc
	// wasDrained is whether drained is closed.
	wasDrained bool
}

// lazyHandOver is how long a call alone on its lane may keep the lane's reading before it is handed over.
const lazyHandOver = 50 * time.Microsecond

// read reads the lane's frames and runs the calls that arrive, handing the reading over (at once, or through
// handOver, a stopped timer, when a call alone on the lane runs long); it returns true once it has handed the
// reading over and run its call, false when the lane failed or closed, after finishing it.
func (l *serverLane) read(handOver *time.Timer) bool {
	srv := l.ls.srv
	for {
		f, err := readFrame(l.r)
		if err != nil {
			l.finish()
			return false
		}
		switch f.typ {
		case frameRequest:
			method, headers, body, err := parseRequest(f.payload)
			if err != nil {
				l.finish()
				return false
			}
			ep, ok := l.ls.endpoints[string(method)]
			if !ok {
				l.answer(f.id, nil, &wireError{Kind: ErrBadRequest.Kind.String(), Code: ErrBadRequest.Code,
					Message: "no such method"})
				continue
			}
			if !srv.begin() {
				_ = l.w.send(func(b []byte) []byte { return appendFrame(b, frameRejected, f.id, nil) })
				continue
			}
			srv.slots <- struct{}{}
			// Registered before the call starts, so a cancel frame or the lane closing reaches it.
			ctx, stop := context.WithCancelCause(context.Background())
			l.mu.Lock()
			l.calls[f.id] = stop
			alone := len(l.calls) == 1
			l.mu.Unlock()
			// With other calls in flight or frames already waiting, the reading is handed over now; a call
			// alone on the lane keeps it unless it runs past lazyHandOver, so a quick one costs no hand-off.
			lazy := alone && l.r.Buffered() == 0
			if lazy {
				handOver.Reset(lazyHandOver)
			} else {
				l.handOver()
			}
			l.serve(ctx, f.id, ep, headers, body)
			l.mu.Lock()
			delete(l.calls, f.id)
			l.mu.Unlock()
			stop(nil)
			<-srv.slots
			srv.wg.Done()
			if lazy && handOver.Stop() {
				continue // the reading was never handed over: read on
			}
			return true
		case frameCancel:
			l.mu.Lock()
			cancel := l.calls[f.id]
			l.mu.Unlock()
			if cancel != nil {
				cancel(ErrCallerCanceled)
			}
		case frameGoAway:
			l.mu.Lock()
			if !l.wasDrained {
				l.wasDrained = true
				close(l.drained)
			}
			l.mu.Unlock()
		default:
			l.finish()
			return false
		}
	}
}

// serve runs one call in ctx (which a cancel frame cancels) and answers it.
func (l *serverLane) serve(ctx context.Context, id uint64, ep endpoint, headers laneHeaders, data []byte) {
	ctx, cancel, err := requestContext(ctx, &headers)
	defer cancel()
	body, w := l.ls.srv.outcome(ctx, ep, data, err)
	l.answer(id, body, w)
}

// answer sends a call's response, or its failure when w is set.
func (l *serverLane) answer(id uint64, body []byte, w *wireError) {
	t := frameResult
	if w == nil && len(body) > maxFrame-frameHeaderLen {
		werr, _ := encodeError(nil)
		l.ls.srv.logger.Error("rpc: response too long for a lane", slog.Int("bytes", len(body)))
		w = &werr
	}
	if w != nil {
		t, body = frameFailure, w.encode()
	}
	l.mu.Lock()
	among := len(l.calls) > 1
	l.mu.Unlock()
	send := l.w.send
	if among {
		send = l.w.sendAmong
	}
	if err := send(func(b []byte) []byte { return appendFrame(b, t, id, body) }); err != nil {
		l.ls.srv.logger.Debug("rpc: answer on a lane", slog.Any("error", err))
	}
}
