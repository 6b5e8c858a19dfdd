package saga

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/seamkit/seam/platform/errs"
	"github.com/seamkit/seam/platform/failpoint"
	"github.com/seamkit/seam/platform/migrate"
	"github.com/seamkit/seam/platform/outbox"
)

// Defaults for Options.
const (
	// DefaultMaxAttempts is how many times one compensation is tried before the saga is marked failed.
	DefaultMaxAttempts = 20
	// DefaultPollInterval is how often the resumer looks for sagas due for another attempt.
	DefaultPollInterval = time.Second
	// DefaultLease is how long a saga a process is running is left alone by the resumers.
	DefaultLease = 30 * time.Second
	// DefaultStepTimeout bounds one step or compensation, its transaction included.
	DefaultStepTimeout = 30 * time.Second
	// MaxIDLength is the longest saga id.
	MaxIDLength = 200
)

// DefaultBackoff is the delay before the n-th retry of a failing compensation, the last value repeating.
var DefaultBackoff = []time.Duration{time.Second, 5 * time.Second, 30 * time.Second, time.Minute, 5 * time.Minute}

// Options tunes a Runner; zero fields take the defaults.
type Options struct {
	// Backoff is the delay before the n-th retry of a failing compensation, the last value repeating;
	// also how the resumer backs off when the database fails.
	Backoff []time.Duration
	// MaxAttempts is how many times one compensation is tried before the saga is marked failed for an
	// operator.
	MaxAttempts int
	// PollInterval is how often the resumer looks for sagas due for another attempt.
	PollInterval time.Duration
	// Lease is how long a saga that a process is running (or has just started) is left alone by the
	// resumers of every process; a saga whose process died is picked up when its lease runs out, or at
	// once by a resumer that starts.
	Lease time.Duration
	// StepTimeout bounds one step or compensation; a step that runs out of time fails.
	StepTimeout time.Duration
}

func (o *Options) setDefaults() {
	if len(o.Backoff) == 0 {
		o.Backoff = DefaultBackoff
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = DefaultMaxAttempts
	}
	if o.PollInterval <= 0 {
		o.PollInterval = DefaultPollInterval
	}
	if o.Lease <= 0 {
		o.Lease = DefaultLease
	}
	if o.StepTimeout <= 0 {
		o.StepTimeout = DefaultStepTimeout
	}
}

// backoff returns the delay after the n-th failure (n >= 1).
func (o Options) backoff(n int) time.Duration {
	return o.Backoff[min(max(n, 1), len(o.Backoff))-1]
}

// Runner starts, runs and resumes the sagas of one module, stored in that module's schema.
type Runner struct {
	pool   *pgxpool.Pool
	schema string
	logger *slog.Logger
	opts   Options
	sagas  string // the sanitized <schema>.sagas
	steps  string // the sanitized <schema>.saga_steps

	mu   sync.RWMutex
	defs map[string]definition

	bgMu   sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
}

// NewRunner returns a Runner keeping sagas in schema (whose platform migrations created the saga tables)
// through pool.
func NewRunner(pool *pgxpool.Pool, schema string, logger *slog.Logger, opts Options) (*Runner, error) {
	if err := migrate.ValidateSchema(schema); err != nil {
		return nil, fmt.Errorf("saga: %w", err)
	}
	if pool == nil {
		return nil, errors.New("saga: pool is required")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	opts.setDefaults()
	return &Runner{
		pool:   pool,
		schema: schema,
		logger: logger,
		opts:   opts,
		sagas:  pgx.Identifier{schema, "sagas"}.Sanitize(),
		steps:  pgx.Identifier{schema, "saga_steps"}.Sanitize(),
		defs:   map[string]definition{},
	}, nil
}

// Register makes d's sagas known to r, so r can start and resume them; register every definition before
// starting sagas or the resumer.
func Register[S any](r *Runner, d Definition[S]) error {
	if err := d.validate(); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.defs[d.Type]; ok {
		return fmt.Errorf("%w: %s is registered twice", ErrInvalidDefinition, d.Type)
	}
	r.defs[d.Type] = typed[S]{d: d}
	return nil
}

func (r *Runner) definition(sagaType string) (definition, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	d, ok := r.defs[sagaType]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownType, sagaType)
	}
	return d, nil
}

// Start records a new saga of sagaType with id and initial state, then runs it: forward until a step fails
// or all are done, then back through the compensations. It returns the saga as it stands afterwards: ended,
// or still compensating when a compensation failed and awaits its retry by the resumer. If a saga with id
// exists already, it is returned as is and nothing runs (so a retried request starts no second saga);
// ErrTypeMismatch when it is of another type. The saga runs to its end even if ctx ends, each step within
// Options.StepTimeout.
func (r *Runner) Start(ctx context.Context, sagaType, id string, state any) (Instance, error) {
	if _, err := r.definition(sagaType); err != nil {
		return Instance{}, err
	}
	if id == "" || len(id) > MaxIDLength {
		return Instance{}, fmt.Errorf("saga: id must be 1 to %d bytes", MaxIDLength)
	}
	raw, err := json.Marshal(state)
	if err != nil {
		return Instance{}, fmt.Errorf("saga %s: encode state: %w", id, err)
	}
	tag, err := r.pool.Exec(ctx, `INSERT INTO `+r.sagas+` (id, saga_type, state, status, next_attempt_at)
VALUES ($1, $2, $3, 'running', now() + $4::interval) ON CONFLICT (id) DO NOTHING`, id, sagaType, raw, r.opts.Lease)
	if err != nil {
		return Instance{}, fmt.Errorf("saga %s: record: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		existing, err := r.Get(ctx, id)
		if err != nil {
			return Instance{}, err
		}
		if existing.Type != sagaType {
			return Instance{}, fmt.Errorf("%w: %s is a %s", ErrTypeMismatch, id, existing.Type)
		}
		return existing, nil
	}
	r.logger.InfoContext(ctx, "saga started", slog.String("saga_id", id), slog.String("saga_type", sagaType))
	return r.advance(context.WithoutCancel(ctx), id)
}

// Get returns the saga with id, or ErrNotFound.
func (r *Runner) Get(ctx context.Context, id string) (Instance, error) {
	inst, err := scan(r.pool.QueryRow(ctx, `SELECT `+columns+` FROM `+r.sagas+` WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Instance{}, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if err != nil {
		return Instance{}, fmt.Errorf("saga %s: read: %w", id, err)
	}
	return inst, nil
}

// Resume runs every saga left running or compensating (by a crash, a shutdown, or a compensation awaiting
// its retry) to its end or its next failed compensation, and returns how many it looked at. Sagas another
// process is running right now are skipped. Errors of single sagas are logged; the error returned is the
// failure to list them.
func (r *Runner) Resume(ctx context.Context) (int, error) {
	return r.resume(ctx, false)
}

// resume runs the active sagas; dueOnly limits it to those whose lease or backoff has run out.
func (r *Runner) resume(ctx context.Context, dueOnly bool) (int, error) {
	q := `SELECT id FROM ` + r.sagas + ` WHERE status IN ('running', 'compensating')`
	if dueOnly {
		q += ` AND next_attempt_at <= now()`
	}
	q += ` ORDER BY next_attempt_at LIMIT 100`
	rows, err := r.pool.Query(ctx, q)
	if err != nil {
		return 0, fmt.Errorf("saga: list active sagas: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, fmt.Errorf("saga: list active sagas: %w", err)
	}
	for _, id := range ids {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		if _, err := r.advance(ctx, id); err != nil && ctx.Err() == nil {
			r.logger.ErrorContext(ctx, "saga: resume", slog.String("saga_id", id), slog.Any("error", err))
		}
	}
	return len(ids), nil
}

// StartResumer runs Resume in the background at once, then every Options.PollInterval for the sagas due,
// backing off while the database fails, until StopResumer.
func (r *Runner) StartResumer() {
	r.bgMu.Lock()
	defer r.bgMu.Unlock()
	if r.cancel != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel, r.done = cancel, make(chan struct{})
	go r.loop(ctx, r.done)
}

// StopResumer stops the background resumer and waits for it (or for ctx) to finish the step in hand.
func (r *Runner) StopResumer(ctx context.Context) error {
	r.bgMu.Lock()
	cancel, done := r.cancel, r.done
	r.cancel, r.done = nil, nil
	r.bgMu.Unlock()
	if cancel == nil {
		return nil
	}
	cancel()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("saga: stop resumer: %w", ctx.Err())
	}
}

func (r *Runner) loop(ctx context.Context, done chan struct{}) {
	defer close(done)
	failures := 0
	dueOnly := false
	for {
		_, err := r.resume(ctx, dueOnly)
		wait := r.opts.PollInterval
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			failures++
			wait = r.opts.backoff(failures)
			r.logger.WarnContext(ctx, "saga: resumer failed; backing off", slog.Any("error", err), slog.Duration("retry_in", wait))
		default:
			failures, dueOnly = 0, true
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// advance runs saga id one transaction at a time until it ends, waits for a retry, or another process
// holds it.
func (r *Runner) advance(ctx context.Context, id string) (Instance, error) {
	for {
		inst, more, err := r.stepOnce(ctx, id)
		if err != nil || !more {
			return inst, err
		}
	}
}

const columns = `id, saga_type, status, state, step, attempts, failed_step, error, error_code, created_at, updated_at`

func scan(row pgx.Row) (Instance, error) {
	var i Instance
	var status string
	err := row.Scan(&i.ID, &i.Type, &status, &i.State, &i.Step, &i.Attempts, &i.FailedStep, &i.Error, &i.ErrorCode,
		&i.CreatedAt, &i.UpdatedAt)
	i.Status = Status(status)
	return i, err
}

// stepOnce locks the saga and takes its next step or compensation, committing its effect, its record and
// the new state together. more reports whether there is more to do now.
func (r *Runner) stepOnce(ctx context.Context, id string) (inst Instance, more bool, err error) {
	sctx, cancel := context.WithTimeout(ctx, r.opts.StepTimeout)
	defer cancel()
	tx, err := r.pool.Begin(sctx)
	if err != nil {
		return Instance{}, false, fmt.Errorf("saga %s: begin: %w", id, err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	inst, err = scan(tx.QueryRow(sctx, `SELECT `+columns+` FROM `+r.sagas+` WHERE id = $1 FOR UPDATE SKIP LOCKED`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		// Another process is running it (or it does not exist): report what is committed.
		inst, err := r.Get(ctx, id)
		return inst, false, err
	}
	if err != nil {
		return Instance{}, false, fmt.Errorf("saga %s: lock: %w", id, err)
	}
	if inst.Status.Terminal() {
		return inst, false, nil
	}
	def, err := r.definition(inst.Type)
	if err != nil {
		// Perhaps a newer version of the process knows the type: leave the saga to it, and do not look at
		// it again before its lease runs out.
		if _, bumpErr := tx.Exec(sctx, `UPDATE `+r.sagas+` SET next_attempt_at = now() + $2::interval WHERE id = $1`,
			id, r.opts.Lease); bumpErr == nil {
			_ = tx.Commit(sctx)
		}
		return inst, false, fmt.Errorf("saga %s: %w", id, err)
	}
	if inst.Status == StatusRunning {
		return r.forward(ctx, sctx, tx, def, inst)
	}
	return r.backward(ctx, sctx, tx, def, inst)
}

// forward runs the next step of a running saga, or completes it.
func (r *Runner) forward(ctx, sctx context.Context, tx pgx.Tx, def definition, inst Instance) (Instance, bool, error) {
	if inst.Step >= def.steps() {
		inst, err := r.finish(ctx, sctx, tx, inst, StatusCompleted)
		return inst, false, err
	}
	i := inst.Step
	name := def.stepName(i)
	state, err := apply(r.point(inst.Type, name, "do"), r.point(inst.Type, name, "done"),
		func() (json.RawMessage, error) { return def.do(sctx, tx, i, inst.State) })
	if err != nil {
		_ = tx.Rollback(context.WithoutCancel(ctx))
		if ctx.Err() != nil {
			// Stopping, not failing: the step runs again on resume.
			return inst, false, fmt.Errorf("saga %s: step %s: %w", inst.ID, name, ctx.Err())
		}
		return r.failForward(ctx, inst, name, err)
	}
	if err := r.record(sctx, tx, inst, i, name, "do", state, i+1, StatusRunning); err != nil {
		return inst, false, err
	}
	r.logger.DebugContext(ctx, "saga step done", slog.String("saga_id", inst.ID), slog.String("step", name))
	return inst, true, nil
}

// backward runs the next compensation of a compensating saga, or ends it compensated.
func (r *Runner) backward(ctx, sctx context.Context, tx pgx.Tx, def definition, inst Instance) (Instance, bool, error) {
	if inst.Step == 0 {
		inst, err := r.finish(ctx, sctx, tx, inst, StatusCompensated)
		return inst, false, err
	}
	i := inst.Step - 1
	name := def.stepName(i)
	state := inst.State
	if def.hasCompensation(i) {
		var err error
		state, err = apply(r.point(inst.Type, name, "compensate"), r.point(inst.Type, name, "compensated"),
			func() (json.RawMessage, error) { return def.compensate(sctx, tx, i, inst.State) })
		if err != nil {
			_ = tx.Rollback(context.WithoutCancel(ctx))
			if ctx.Err() != nil {
				return inst, false, fmt.Errorf("saga %s: compensate %s: %w", inst.ID, name, ctx.Err())
			}
			inst, err := r.retryLater(ctx, inst, name, err)
			return inst, false, err
		}
	}
	if err := r.record(sctx, tx, inst, i, name, "compensate", state, i, StatusCompensating); err != nil {
		return inst, false, err
	}
	r.logger.InfoContext(ctx, "saga step compensated", slog.String("saga_id", inst.ID), slog.String("step", name))
	return inst, true, nil
}

// apply runs fn between the failpoints before and after (the latter fires after the effect, before its
// commit).
func apply(before, after string, fn func() (json.RawMessage, error)) (json.RawMessage, error) {
	if err := failpoint.Inject(before); err != nil {
		return nil, err
	}
	state, err := fn()
	if err != nil {
		return nil, err
	}
	if err := failpoint.Inject(after); err != nil {
		return nil, err
	}
	return state, nil
}

// point names a failpoint of the runner.
func (r *Runner) point(sagaType, step, at string) string {
	return "saga." + sagaType + "." + step + "." + at
}

// record logs step i's action as done (the primary key refuses a second record, which rolls the effect
// back with it) and stores the new state, position and status, then commits.
func (r *Runner) record(ctx context.Context, tx pgx.Tx, inst Instance, i int, name, action string, state json.RawMessage,
	next int, status Status) error {
	if _, err := tx.Exec(ctx, `INSERT INTO `+r.steps+` (saga_id, step, name, action) VALUES ($1, $2, $3, $4)`,
		inst.ID, i, name, action); err != nil {
		return fmt.Errorf("saga %s: record %s of %s: %w", inst.ID, action, name, err)
	}
	if _, err := tx.Exec(ctx, `UPDATE `+r.sagas+` SET state = $2, step = $3, status = $4, attempts = 0,
  next_attempt_at = now() + $5::interval, updated_at = now() WHERE id = $1`,
		inst.ID, state, next, string(status), r.opts.Lease); err != nil {
		return fmt.Errorf("saga %s: update after %s of %s: %w", inst.ID, action, name, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("saga %s: commit %s of %s: %w", inst.ID, action, name, err)
	}
	// The step may have enqueued events in its transaction.
	outbox.WakeRelays(r.schema)
	return nil
}

// finish ends the saga with status.
func (r *Runner) finish(ctx, sctx context.Context, tx pgx.Tx, inst Instance, status Status) (Instance, error) {
	out, err := scan(tx.QueryRow(sctx, `UPDATE `+r.sagas+` SET status = $2, attempts = 0, updated_at = now()
WHERE id = $1 RETURNING `+columns, inst.ID, string(status)))
	if err != nil {
		return inst, fmt.Errorf("saga %s: mark %s: %w", inst.ID, status, err)
	}
	if err := tx.Commit(sctx); err != nil {
		return inst, fmt.Errorf("saga %s: commit %s: %w", inst.ID, status, err)
	}
	outbox.WakeRelays(r.schema)
	attrs := []any{slog.String("saga_id", inst.ID), slog.String("saga_type", inst.Type), slog.String("status", string(status))}
	if status == StatusCompensated {
		attrs = append(attrs, slog.String("failed_step", out.FailedStep), slog.String("error", out.Error))
	}
	r.logger.InfoContext(ctx, "saga ended", attrs...)
	return out, nil
}

// failForward records that step name failed, so the saga compensates its completed steps.
func (r *Runner) failForward(ctx context.Context, inst Instance, name string, cause error) (Instance, bool, error) {
	code := ""
	if e, ok := errs.As(cause); ok {
		code = e.Code
	}
	r.logger.WarnContext(ctx, "saga step failed; compensating", slog.String("saga_id", inst.ID),
		slog.String("saga_type", inst.Type), slog.String("step", name), slog.Any("error", cause))
	tag, err := r.pool.Exec(ctx, `UPDATE `+r.sagas+` SET status = 'compensating', failed_step = $3, error = $4,
  error_code = $5, attempts = 0, updated_at = now() WHERE id = $1 AND status = 'running' AND step = $2`,
		inst.ID, inst.Step, name, truncate(cause.Error()), code)
	if err != nil {
		return inst, false, fmt.Errorf("saga %s: record failure of %s: %w", inst.ID, name, err)
	}
	// Zero rows: another process moved the saga on meanwhile; the next round sees where it is.
	return inst, tag.RowsAffected() > 0, nil
}

// retryLater records a failed compensation and schedules its retry, or marks the saga failed once
// Options.MaxAttempts attempts have failed. It returns the saga as stored.
func (r *Runner) retryLater(ctx context.Context, inst Instance, name string, cause error) (Instance, error) {
	attempts := inst.Attempts + 1
	status := StatusCompensating
	wait := r.opts.backoff(attempts)
	if attempts >= r.opts.MaxAttempts {
		status = StatusFailed
		r.logger.ErrorContext(ctx, "saga compensation keeps failing; saga marked failed for an operator",
			slog.String("saga_id", inst.ID), slog.String("saga_type", inst.Type), slog.String("step", name),
			slog.Int("attempts", attempts), slog.Any("error", cause))
	} else {
		r.logger.WarnContext(ctx, "saga compensation failed; will retry", slog.String("saga_id", inst.ID),
			slog.String("saga_type", inst.Type), slog.String("step", name), slog.Int("attempts", attempts),
			slog.Duration("retry_in", wait), slog.Any("error", cause))
	}
	out, err := scan(r.pool.QueryRow(ctx, `UPDATE `+r.sagas+` SET attempts = $3, status = $4,
  error = $5, next_attempt_at = now() + $6::interval, updated_at = now()
WHERE id = $1 AND status = 'compensating' AND step = $2 RETURNING `+columns,
		inst.ID, inst.Step, attempts, string(status), truncate("compensate "+name+": "+cause.Error()), wait))
	if errors.Is(err, pgx.ErrNoRows) {
		return r.Get(ctx, inst.ID)
	}
	if err != nil {
		return inst, fmt.Errorf("saga %s: record failed compensation of %s: %w", inst.ID, name, err)
	}
	return out, nil
}

// maxErrorLength bounds the error text stored on a saga.
const maxErrorLength = 2000

func truncate(s string) string {
	if len(s) <= maxErrorLength {
		return s
	}
	return strings.ToValidUTF8(s[:maxErrorLength], "")
}
