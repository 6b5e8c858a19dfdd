package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/fx"

	"github.com/seamkit/seam/platform/bus"
	"github.com/seamkit/seam/platform/errs"
	"github.com/seamkit/seam/platform/inbox"
	"github.com/seamkit/seam/platform/observe"
)

// InboxConfig is the inbox section: process-wide overrides of the consumers' retry policy.
type InboxConfig struct {
	// MaxDeliver, when set, replaces every subscription's MaxDeliver: how many failed deliveries move an
	// event to the dead-letter store (-1 retries forever).
	MaxDeliver int `yaml:"max_deliver"`
	// RetryDelay, when set, replaces every subscription's Backoff with this one delay between retries.
	RetryDelay time.Duration `yaml:"retry_delay"`
}

// Validate checks the section; errors name the key.
func (c InboxConfig) Validate() error {
	if c.MaxDeliver < -1 {
		return fmt.Errorf("inbox.max_deliver: must be positive or -1, got %d", c.MaxDeliver)
	}
	if c.RetryDelay < 0 {
		return fmt.Errorf("inbox.retry_delay: must not be negative, got %s", c.RetryDelay)
	}
	return nil
}

// apply overrides sub's retry policy with the configured one.
func (c InboxConfig) apply(sub inbox.Subscription) inbox.Subscription {
	if c.MaxDeliver != 0 {
		sub.MaxDeliver = c.MaxDeliver
	}
	if c.RetryDelay > 0 {
		sub.Backoff = []time.Duration{c.RetryDelay}
	}
	return sub
}

var (
	// ErrUnknownModule is returned by the admin API for a module whose consumers this process does not run.
	ErrUnknownModule = errs.New(errs.NotFound, "admin.unknown_module", "this process runs no consumers of that module")
	// ErrNoReadModel is returned when replaying a module that declared no read model (app.ReadModel).
	ErrNoReadModel = errs.New(errs.Conflict, "admin.no_read_model", "the module declares no read model to replay")
	// ErrReplayInProgress is returned when a replay of the module is already running.
	ErrReplayInProgress = errs.New(errs.Conflict, "admin.replay_in_progress", "a replay of this module is already running")
)

// Consumers is the registry of the durable consumers this process runs, by module: the admin API re-drives
// their dead letters and replays read models through it.
type Consumers struct {
	cfg    InboxConfig
	bus    *bus.Bus
	logger *slog.Logger

	mu      sync.Mutex
	modules map[string]*moduleConsumers
}

// moduleConsumers are one module's consumers, its pool and its read model's reset hook.
type moduleConsumers struct {
	name      string
	pool      *pgxpool.Pool
	reset     func(ctx context.Context, tx pgx.Tx) error
	consumers []*consumerEntry
	replaying bool
}

// consumerEntry is one durable consumer; its running instance is replaced when the module is replayed.
type consumerEntry struct {
	module string
	pool   *pgxpool.Pool
	sub    inbox.Subscription
	logger *slog.Logger

	mu      sync.Mutex
	js      jetstream.JetStream
	current *inbox.Consumer
}

// NewConsumers returns an empty registry for the process configured by cfg.
func NewConsumers(cfg *Config, b *bus.Bus, logger *slog.Logger) *Consumers {
	return &Consumers{cfg: cfg.Inbox, bus: b, logger: logger, modules: map[string]*moduleConsumers{}}
}

// registerConsumerMetrics exposes the consumers' lag and dead letters at /metrics.
func registerConsumerMetrics(c *Consumers, metrics *observe.Metrics) error {
	if err := metrics.Registry().Register(consumerMetrics{c}); err != nil {
		return fmt.Errorf("consumers: register metrics: %w", err)
	}
	return nil
}

func (c *Consumers) module(name string) *moduleConsumers {
	c.mu.Lock()
	defer c.mu.Unlock()
	m, ok := c.modules[name]
	if !ok {
		m = &moduleConsumers{name: name}
		c.modules[name] = m
	}
	return m
}

func (c *Consumers) add(module string, pool *pgxpool.Pool, sub inbox.Subscription, logger *slog.Logger) *consumerEntry {
	m := c.module(module)
	c.mu.Lock()
	defer c.mu.Unlock()
	m.pool = pool
	e := &consumerEntry{module: module, pool: pool, sub: c.cfg.apply(sub), logger: logger}
	m.consumers = append(m.consumers, e)
	return e
}

// lookup returns the module's consumers, or ErrUnknownModule.
func (c *Consumers) lookup(module string) (*moduleConsumers, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m, ok := c.modules[module]
	if !ok || len(m.consumers) == 0 {
		return nil, ErrUnknownModule
	}
	return m, nil
}

// names returns the modules with consumers in this process, sorted.
func (c *Consumers) names() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for name, m := range c.modules {
		if len(m.consumers) > 0 {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

func (e *consumerEntry) start(ctx context.Context, js jetstream.JetStream) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	c := inbox.NewConsumer(e.pool, js, e.module, e.sub, e.logger)
	if err := c.Start(ctx); err != nil {
		return err
	}
	e.js, e.current = js, c
	return nil
}

func (e *consumerEntry) stop(ctx context.Context) error {
	e.mu.Lock()
	c := e.current
	e.mu.Unlock()
	if c == nil {
		return nil
	}
	return c.Stop(ctx)
}

func (e *consumerEntry) consumer() (*inbox.Consumer, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.current == nil {
		return nil, fmt.Errorf("consumer %s is not running", e.sub.Name)
	}
	return e.current, nil
}

// ReadModel declares that module name keeps a read model built only from its consumers' events, and how to
// empty it: reset runs in the transaction that also forgets the consumers' inbox records, before they
// re-consume their streams from the start (POST /api/admin/replay/<name>, `seam replay <name>`).
func ReadModel(name string, reset func(ctx context.Context, tx pgx.Tx) error) fx.Option {
	return fx.Invoke(func(c *Consumers) {
		m := c.module(name)
		c.mu.Lock()
		defer c.mu.Unlock()
		m.reset = reset
	})
}

// ModuleDeadLetter is a dead letter with the module that holds it.
type ModuleDeadLetter struct {
	Module string
	inbox.DeadLetter
}

// DeadLetters lists the dead letters of module (every module with consumers here when empty), with status
// only unless status is empty.
func (c *Consumers) DeadLetters(ctx context.Context, module, status string) ([]ModuleDeadLetter, error) {
	modules := c.names()
	if module != "" {
		if _, err := c.lookup(module); err != nil {
			return nil, err
		}
		modules = []string{module}
	}
	out := []ModuleDeadLetter{}
	for _, name := range modules {
		m, err := c.lookup(name)
		if err != nil {
			return nil, err
		}
		dls, err := inbox.ListDeadLetters(ctx, m.pool, name, status)
		if err != nil {
			return nil, err
		}
		for _, d := range dls {
			out = append(out, ModuleDeadLetter{Module: name, DeadLetter: d})
		}
	}
	return out, nil
}

// DeadLetter returns one dead letter of module.
func (c *Consumers) DeadLetter(ctx context.Context, module string, id uuid.UUID) (ModuleDeadLetter, error) {
	m, err := c.lookup(module)
	if err != nil {
		return ModuleDeadLetter{}, err
	}
	d, err := inbox.GetDeadLetter(ctx, m.pool, module, id)
	if err != nil {
		return ModuleDeadLetter{}, err
	}
	return ModuleDeadLetter{Module: module, DeadLetter: d}, nil
}

// Retry re-drives a pending dead letter of module through its consumer's handler (see inbox.Consumer.Retry).
func (c *Consumers) Retry(ctx context.Context, module string, id uuid.UUID) (bool, error) {
	d, err := c.DeadLetter(ctx, module, id)
	if err != nil {
		return false, err
	}
	m, _ := c.lookup(module)
	for _, e := range m.consumers {
		if e.sub.Name != d.Consumer {
			continue
		}
		cons, err := e.consumer()
		if err != nil {
			return false, err
		}
		return cons.Retry(ctx, id)
	}
	return false, fmt.Errorf("dead letter %s: consumer %s does not run in this process", id, d.Consumer)
}

// Discard gives up for good on a pending dead letter of module.
func (c *Consumers) Discard(ctx context.Context, module string, id uuid.UUID) error {
	m, err := c.lookup(module)
	if err != nil {
		return err
	}
	return inbox.DiscardDeadLetter(ctx, m.pool, module, id)
}

// ConsumerStatus is what the bus reports of one durable consumer.
type ConsumerStatus struct {
	Module      string `json:"module"`
	Consumer    string `json:"consumer"`
	Stream      string `json:"stream"`
	Pending     uint64 `json:"pending"`
	AckPending  int    `json:"ack_pending"`
	Redelivered int    `json:"redelivered"`
	Delivered   uint64 `json:"delivered"`
}

// Status reports every consumer this process runs, by module then name.
func (c *Consumers) Status(ctx context.Context) ([]ConsumerStatus, error) {
	js := c.bus.JetStream()
	out := []ConsumerStatus{}
	for _, name := range c.names() {
		m, err := c.lookup(name)
		if err != nil {
			return nil, err
		}
		for _, e := range m.consumers {
			cons, err := js.Consumer(ctx, e.sub.Stream, e.sub.Name)
			if err != nil {
				return nil, fmt.Errorf("consumer %s: %w", e.sub.Name, err)
			}
			info, err := cons.Info(ctx)
			if err != nil {
				return nil, fmt.Errorf("consumer %s: %w", e.sub.Name, err)
			}
			out = append(out, ConsumerStatus{Module: name, Consumer: e.sub.Name, Stream: e.sub.Stream,
				Pending: info.NumPending, AckPending: info.NumAckPending, Redelivered: info.NumRedelivered,
				Delivered: info.Delivered.Stream})
		}
	}
	return out, nil
}

// replayTimeout bounds the stop-reset-restart part of a replay (not the catching up).
const replayTimeout = 2 * time.Minute

// Replay rebuilds module's read model from its streams: it stops the module's consumers, resets the read
// model and forgets their inbox records in one transaction, recreates the durable consumers on the bus from
// the start of their streams (on the platform's connection, which may manage consumers) and starts them.
// It returns once they run, with how many inbox records it forgot (the events to apply again); they then
// catch up in the background.
func (c *Consumers) Replay(ctx context.Context, module string) (int64, error) {
	m, err := c.lookup(module)
	if err != nil {
		return 0, err
	}
	c.mu.Lock()
	if m.reset == nil {
		c.mu.Unlock()
		return 0, ErrNoReadModel
	}
	if m.replaying {
		c.mu.Unlock()
		return 0, ErrReplayInProgress
	}
	m.replaying = true
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		m.replaying = false
		c.mu.Unlock()
	}()
	// Once begun, a replay runs to the end even if the caller goes away: stopped consumers must start again.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), replayTimeout)
	defer cancel()
	logger := c.logger.With(slog.String("module", module))
	logger.Info("replay: stopping consumers")
	names := make([]string, len(m.consumers))
	for i, e := range m.consumers {
		names[i] = e.sub.Name
		if err := e.stop(ctx); err != nil {
			return 0, fmt.Errorf("replay %s: stop %s: %w", module, e.sub.Name, err)
		}
	}
	var forgotten int64
	if err := pgx.BeginFunc(ctx, m.pool, func(tx pgx.Tx) error {
		if err := m.reset(ctx, tx); err != nil {
			return fmt.Errorf("reset read model: %w", err)
		}
		tag, err := tx.Exec(ctx, `DELETE FROM `+pgx.Identifier{module, "inbox"}.Sanitize()+` WHERE consumer = ANY($1)`, names)
		forgotten = tag.RowsAffected()
		return err
	}); err != nil {
		return 0, errors.Join(fmt.Errorf("replay %s: %w", module, err), c.restart(ctx, m))
	}
	js := c.bus.JetStream()
	for _, e := range m.consumers {
		if err := js.DeleteConsumer(ctx, e.sub.Stream, e.sub.Name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return 0, errors.Join(fmt.Errorf("replay %s: delete consumer %s: %w", module, e.sub.Name, err), c.restart(ctx, m))
		}
	}
	if err := c.restart(ctx, m); err != nil {
		return 0, fmt.Errorf("replay %s: %w", module, err)
	}
	logger.Info("replay: read model reset; consumers re-consuming from the start", slog.Any("consumers", names),
		slog.Int64("inbox_records_forgotten", forgotten))
	return forgotten, nil
}

// restart starts fresh instances of the module's consumers.
func (c *Consumers) restart(ctx context.Context, m *moduleConsumers) error {
	var errList []error
	for _, e := range m.consumers {
		e.mu.Lock()
		js := e.js
		e.mu.Unlock()
		if err := e.start(ctx, js); err != nil {
			errList = append(errList, fmt.Errorf("start %s: %w", e.sub.Name, err))
		}
	}
	return errors.Join(errList...)
}
