// Package events measures Seam's event path with JetStream in its durable setting (SyncAlways, the default):
// the latency from a producer's commit of an event in its outbox to the consumer's committed effect, using the
// real platform/outbox relay and platform/inbox consumer, and the relay's sustained throughput, next to the
// database's own single-row commit rate (pgbench) and the disk's flush rate.
package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/seamkit/seam/platform/bus"
	"github.com/seamkit/seam/platform/inbox"
	"github.com/seamkit/seam/platform/migrate"
	"github.com/seamkit/seam/platform/outbox"
	"github.com/seamkit/seam/test/bench/proc"
	"github.com/seamkit/seam/test/bench/prof"
	"github.com/seamkit/seam/test/bench/stats"
)

const (
	producer = "billing"
	consumer = "notifications"
	// latencyType is the event the consumer handles; loadType is relayed but consumed by nobody, so the
	// throughput runs measure the relay alone.
	latencyType = "bench_latency"
	loadType    = "bench_load"
	durable     = "notifications-bench"
	// effectChannel is notified by the consumer's effect, in its transaction: PostgreSQL delivers the
	// notification when the effect commits, which is when the benchmark sees it.
	effectChannel = "bench_effect"
)

// Options sizes the benchmark.
type Options struct {
	// LatencyRate is how many events per second the latency run commits, one at a time.
	LatencyRate int
	// LatencyFor is how long the latency run lasts.
	LatencyFor time.Duration
	// Producers commit events as fast as they can in the throughput run (and pgbench has as many clients).
	Producers int
	// ThroughputFor is how long the throughput run (and pgbench) lasts.
	ThroughputFor time.Duration
	// StoreDir holds the embedded NATS server's JetStream store.
	StoreDir string
	// DatabasePIDs returns the database server's processes, whose CPU time the throughput run measures.
	DatabasePIDs func() []int
}

// Bench is the running benchmark: a database with billing's outbox and notifications' inbox, an embedded bus,
// billing's relay and a notifications consumer.
type Bench struct {
	opts     Options
	pool     *pgxpool.Pool
	bus      *bus.Bus
	relay    *outbox.Relay
	consumer *inbox.Consumer
	// stopListening ends the listener, which closes its connection and then done.
	stopListening context.CancelFunc
	done          chan struct{}
	js            jetstream.JetStream

	mu      sync.Mutex
	waiting map[string]chan time.Time
	effects atomic.Int64
}

// payload is an event's body, about 200 bytes of JSON.
type payload struct {
	InvoiceID   string    `json:"invoice_id"`
	UserID      string    `json:"user_id"`
	Email       string    `json:"email"`
	AmountMinor int64     `json:"amount_minor"`
	Currency    string    `json:"currency"`
	PaidAt      time.Time `json:"paid_at"`
}

// Start migrates the database at url (billing's and notifications' platform tables and an effects table),
// starts the embedded bus with the modules' declarations (so the relay and the consumer use their own
// module connections with their permissions, as in a Seam process), billing's stream, relay and the consumer.
func Start(ctx context.Context, url string, o Options) (_ *Bench, err error) {
	logger := slog.New(slog.DiscardHandler)
	b := &Bench{opts: o, waiting: map[string]chan time.Time{}, done: make(chan struct{})}
	defer func() {
		if err != nil {
			b.Close()
		}
	}()
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	cfg.MaxConns = int32(o.Producers + 4)
	if b.pool, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
		return nil, fmt.Errorf("events: pool: %w", err)
	}
	for _, schema := range []string{producer, consumer} {
		if err := migrate.Up(ctx, b.pool, schema, nil, logger); err != nil {
			return nil, fmt.Errorf("events: migrate %s: %w", schema, err)
		}
	}
	if _, err := b.pool.Exec(ctx, `CREATE TABLE notifications.effects (event_id uuid PRIMARY KEY, key text NOT NULL)`); err != nil {
		return nil, fmt.Errorf("events: effects table: %w", err)
	}
	var bc bus.Config
	bc.SetDefaults() // SyncAlways: every JetStream write is flushed to disk before it is acknowledged
	bc.Port = -1
	bc.StoreDir = o.StoreDir
	decls := []bus.Declaration{{Module: producer}, {Module: consumer, Consumes: []bus.Consumption{{
		Stream: bus.StreamName(producer), Durable: durable, Subjects: []string{bus.EventSubject(producer, latencyType)},
	}}}}
	if b.bus, err = bus.Start(ctx, bc, logger, decls...); err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	if _, err := b.bus.EnsureStream(ctx, producer); err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	pubJS, err := b.bus.ModuleJetStream(producer)
	if err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	subJS, err := b.bus.ModuleJetStream(consumer)
	if err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	if err := b.listen(ctx, url); err != nil {
		return nil, err
	}
	b.js = pubJS
	if err := b.startRelay(ctx); err != nil {
		return nil, err
	}
	b.consumer = inbox.NewConsumer(b.pool, subJS, consumer, inbox.Subscription{
		Name: durable, Stream: bus.StreamName(producer), Subjects: []string{bus.EventSubject(producer, latencyType)},
		Handler: func(ctx context.Context, tx pgx.Tx, m inbox.Message) error {
			if _, err := tx.Exec(ctx, `INSERT INTO notifications.effects (event_id, key) VALUES ($1, $2)`, m.ID, m.Key); err != nil {
				return fmt.Errorf("effect: %w", err)
			}
			if _, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, effectChannel, m.Key); err != nil {
				return fmt.Errorf("effect: %w", err)
			}
			return nil
		},
	}, logger)
	if err := b.consumer.Start(ctx); err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	return b, nil
}

// startRelay starts a new relay of billing's outbox with the default options, as a Seam process runs it.
func (b *Bench) startRelay(ctx context.Context) error {
	b.relay = outbox.NewRelay(b.pool, b.js, producer, slog.New(slog.DiscardHandler), outbox.RelayOptions{})
	if err := b.relay.Start(ctx); err != nil {
		b.relay = nil
		return fmt.Errorf("events: %w", err)
	}
	return nil
}

// Capacity measures what the relay can send when nothing limits it but itself: with the relay stopped, n
// events are committed (100 to a transaction), then a relay is started and timed until all are sent; it
// returns the events sent per second.
func (b *Bench) Capacity(ctx context.Context, n int) (float64, error) {
	stopCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err := b.relay.Stop(stopCtx)
	cancel()
	b.relay = nil
	if err != nil {
		return 0, fmt.Errorf("events: %w", err)
	}
	for done := 0; done < n; {
		batch := min(100, n-done)
		err := pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
			for i := range batch {
				if _, err := outbox.Enqueue(ctx, tx, producer, b.event(loadType, "backlog-"+strconv.Itoa(done+i))); err != nil {
					return fmt.Errorf("events: enqueue: %w", err)
				}
			}
			return nil
		})
		if err != nil {
			return 0, err
		}
		done += batch
	}
	start := time.Now()
	if err := b.startRelay(ctx); err != nil {
		return 0, err
	}
	if err := b.waitSent(ctx); err != nil {
		return 0, err
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// waitSent waits until the outbox has no unsent event.
func (b *Bench) waitSent(ctx context.Context) error {
	start := time.Now()
	for {
		_, unsent, err := b.outboxCounts(ctx)
		if err != nil {
			return err
		}
		if unsent == 0 {
			return nil
		}
		if time.Since(start) > 2*time.Minute {
			return fmt.Errorf("events: the relay left %d events unsent for 2 minutes", unsent)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// listen keeps a connection LISTENing for the consumer's committed effects and passes each one's arrival time
// to whoever waits for its key.
func (b *Bench) listen(ctx context.Context, url string) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return fmt.Errorf("events: listener: %w", err)
	}
	if _, err := conn.Exec(ctx, "LISTEN "+effectChannel); err != nil {
		_ = conn.Close(ctx)
		return fmt.Errorf("events: listen: %w", err)
	}
	listenCtx, cancel := context.WithCancel(context.Background())
	b.stopListening = cancel
	go func() {
		defer close(b.done)
		defer func() { _ = conn.Close(context.Background()) }()
		for {
			n, err := conn.WaitForNotification(listenCtx)
			if err != nil {
				return
			}
			at := time.Now()
			b.effects.Add(1)
			b.mu.Lock()
			ch := b.waiting[n.Payload]
			delete(b.waiting, n.Payload)
			b.mu.Unlock()
			if ch != nil {
				ch <- at
			}
		}
	}()
	return nil
}

// Close stops the consumer, the relay, the bus, the listener and the pool.
func (b *Bench) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if b.consumer != nil {
		_ = b.consumer.Stop(ctx)
	}
	if b.relay != nil {
		_ = b.relay.Stop(ctx)
	}
	if b.bus != nil {
		_ = b.bus.Close(ctx)
	}
	if b.stopListening != nil {
		b.stopListening()
		<-b.done
	}
	if b.pool != nil {
		b.pool.Close()
	}
}

// event is one event of eventType about key.
func (b *Bench) event(eventType, key string) outbox.Event {
	return outbox.Event{Type: eventType, Key: key, Payload: samplePayload()}
}

func samplePayload() payload {
	return payload{InvoiceID: "0193a6a4-7f5e-7c1a-9c1e-1b2d3e4f5a6b", UserID: "0193a6a4-7f5e-7c1a-9c1e-000000000001",
		Email: "alice@example.com", AmountMinor: 1250, Currency: "EUR", PaidAt: time.Now().UTC()}
}

// commit records one event of eventType with key in billing's outbox, in its own transaction, and wakes the
// relay after the commit, as Seam's producers do.
func (b *Bench) commit(ctx context.Context, eventType, key string) error {
	return b.commitMany(ctx, eventType, []string{key})
}

// commitMany records one event of eventType per key in billing's outbox, all in one transaction, and wakes
// the relay after the commit.
func (b *Bench) commitMany(ctx context.Context, eventType string, keys []string) error {
	err := pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
		for _, key := range keys {
			if _, err := outbox.Enqueue(ctx, tx, producer, b.event(eventType, key)); err != nil {
				return fmt.Errorf("events: enqueue: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	outbox.WakeRelays(producer)
	return nil
}

// effectTimeout bounds the wait for one event's effect.
const effectTimeout = 30 * time.Second

// Latency commits LatencyRate events a second for LatencyFor, one at a time, and returns each one's time
// from its commit (when Commit returned to the producer) to its effect's commit (when the notification the
// effect sends in its transaction arrived).
func (b *Bench) Latency(ctx context.Context, run int) (stats.Latencies, error) {
	n := max(int(b.opts.LatencyFor.Seconds()*float64(b.opts.LatencyRate)), 1)
	interval := time.Second / time.Duration(b.opts.LatencyRate)
	type pending struct {
		committed time.Time
		arrived   chan time.Time
	}
	all := make([]pending, 0, n)
	start := time.Now()
	for i := range n {
		if wait := time.Until(start.Add(time.Duration(i) * interval)); wait > 0 {
			time.Sleep(wait)
		}
		key := "run" + strconv.Itoa(run) + "-" + strconv.Itoa(i)
		ch := make(chan time.Time, 1)
		b.mu.Lock()
		b.waiting[key] = ch
		b.mu.Unlock()
		if err := b.commit(ctx, latencyType, key); err != nil {
			return stats.Latencies{}, err
		}
		all = append(all, pending{committed: time.Now(), arrived: ch})
	}
	elapsed := time.Since(start)
	var lat stats.Latencies
	timeout := time.After(effectTimeout)
	for _, p := range all {
		select {
		case at := <-p.arrived:
			lat.Sorted = append(lat.Sorted, at.Sub(p.committed))
		case <-timeout:
			return stats.Latencies{}, fmt.Errorf("events: %d of %d effects not seen within %s", n-len(lat.Sorted), n, effectTimeout)
		case <-ctx.Done():
			return stats.Latencies{}, ctx.Err()
		}
	}
	lat.Elapsed = elapsed
	slices.Sort(lat.Sorted)
	return lat, nil
}

// Throughput is one sustained run's outcome.
type Throughput struct {
	// Committed is the events the producers committed per second.
	Committed float64
	// Relayed is the events per second the relay published and marked sent during the run.
	Relayed float64
	// Backlog is how many committed events were still unsent when the run ended.
	Backlog int64
	// Drain is how long the relay then took to send that backlog.
	Drain time.Duration
	// ProcessCPU and DatabaseCPU are the CPU time this process (producers, relay, NATS server) and the
	// database used per second of the run, in cores.
	ProcessCPU, DatabaseCPU float64
}

// Throughput has Producers goroutines commit perTx events per transaction as fast as they can for
// ThroughputFor while the relay publishes, then waits for the relay to send what is left.
func (b *Bench) Throughput(ctx context.Context, perTx int) (Throughput, error) {
	sent0, _, err := b.outboxCounts(ctx)
	if err != nil {
		return Throughput{}, err
	}
	dbCPU := proc.NewCPUMeter(b.opts.DatabasePIDs())
	cpu0 := prof.ProcessCPU()
	var committed atomic.Int64
	var stop atomic.Bool
	var wg sync.WaitGroup
	errs := make([]error, b.opts.Producers)
	start := time.Now()
	for w := range b.opts.Producers {
		wg.Go(func() {
			keys := make([]string, perTx)
			for i := 0; !stop.Load(); i++ {
				for k := range keys {
					keys[k] = strconv.Itoa(w) + "-" + strconv.Itoa(i) + "-" + strconv.Itoa(k)
				}
				if err := b.commitMany(ctx, loadType, keys); err != nil {
					errs[w] = err
					return
				}
				committed.Add(int64(perTx))
			}
		})
	}
	timer := time.NewTimer(b.opts.ThroughputFor)
	select {
	case <-timer.C:
	case <-ctx.Done():
	}
	stop.Store(true)
	wg.Wait()
	elapsed := time.Since(start)
	processCPU, databaseCPU := prof.ProcessCPU()-cpu0, dbCPU.Used()
	sent1, unsent, err := b.outboxCounts(ctx)
	if err := errors.Join(append(errs, err, ctx.Err())...); err != nil {
		return Throughput{}, err
	}
	drainStart := time.Now()
	if err := b.waitSent(ctx); err != nil {
		return Throughput{}, err
	}
	s := elapsed.Seconds()
	return Throughput{Committed: float64(committed.Load()) / s, Relayed: float64(sent1-sent0) / s,
		Backlog: unsent, Drain: time.Since(drainStart), ProcessCPU: processCPU.Seconds() / s, DatabaseCPU: databaseCPU.Seconds() / s}, nil
}

// outboxCounts returns how many events of the outbox are sent and how many are not.
func (b *Bench) outboxCounts(ctx context.Context) (sent, unsent int64, err error) {
	err = b.pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE sent_at IS NOT NULL), count(*) FILTER (WHERE sent_at IS NULL)
FROM billing.outbox`).Scan(&sent, &unsent)
	if err != nil {
		return 0, 0, fmt.Errorf("events: count the outbox: %w", err)
	}
	return sent, unsent, nil
}

// FlushLatency measures the disk under dir: the mean time of writing 4 KiB and fsync-ing it, over d.
func FlushLatency(dir string, d time.Duration) (time.Duration, error) {
	f, err := os.CreateTemp(dir, "fsync-")
	if err != nil {
		return 0, fmt.Errorf("events: %w", err)
	}
	defer func() { _ = os.Remove(f.Name()); _ = f.Close() }()
	block := make([]byte, 4096)
	n := 0
	start := time.Now()
	for time.Since(start) < d {
		if _, err := f.WriteAt(block, int64(n%256)*4096); err != nil {
			return 0, fmt.Errorf("events: %w", err)
		}
		if err := f.Sync(); err != nil {
			return 0, fmt.Errorf("events: %w", err)
		}
		n++
	}
	return time.Since(start) / time.Duration(n), nil
}

// payloadSize is the JSON size of an event's body.
func payloadSize() int {
	data, _ := json.Marshal(samplePayload())
	return len(data)
}
