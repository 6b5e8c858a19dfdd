// Package saga runs sagas: ordered steps, each with an optional compensation, whose typed JSON state and
// progress are persisted in the owning module's schema (tables <schema>.sagas and <schema>.saga_steps), so
// that a forward failure undoes the completed steps in reverse order, each compensation is applied exactly
// once, and a saga interrupted by a crash resumes when the process starts again.
//
// Every step and every compensation runs inside a database transaction that also holds the saga's row lock
// and records the step as done: a step whose effect is local writes it through that transaction, so the
// effect and its record commit together or not at all. A step with a remote effect (a provider, another
// module) must make it idempotent with a key derived from the saga id and the step (see Key), because a crash
// between the remote call and the commit runs the step again.
//
// Failpoints (platform/failpoint) named "saga.<type>.<step>.do", "saga.<type>.<step>.done",
// "saga.<type>.<step>.compensate" and "saga.<type>.<step>.compensated" fire before and after each step and
// compensation (the ".done"/".compensated" ones after the effect, before its commit), so fault tests can fail
// any step or kill the process in the middle of a compensation.
package saga

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Tx is the transaction a step runs in: it holds the saga's row lock and commits the step's record, so a
// step's local writes made through it commit with that record.
type Tx = pgx.Tx

// Status is where a saga stands.
type Status string

// Saga statuses.
const (
	// StatusRunning is a saga running its steps forward.
	StatusRunning Status = "running"
	// StatusCompensating is a saga whose step failed, undoing the completed steps in reverse order.
	StatusCompensating Status = "compensating"
	// StatusCompleted is a saga whose steps all succeeded.
	StatusCompleted Status = "completed"
	// StatusCompensated is a saga whose step failed and whose completed steps were all compensated.
	StatusCompensated Status = "compensated"
	// StatusFailed is a saga a compensation of which kept failing; an operator must look at it.
	StatusFailed Status = "failed"
)

// Terminal reports whether the saga has ended (completed, compensated or failed).
func (s Status) Terminal() bool {
	return s == StatusCompleted || s == StatusCompensated || s == StatusFailed
}

// Step is one step of a saga over state S.
type Step[S any] struct {
	// Name identifies the step in logs, failpoints and keys ("charge"); unique within its saga.
	Name string
	// Do performs the step. It may change *st; the change is persisted with the step's record. Local
	// effects go through tx; remote ones must be idempotent (see Key). An error fails the saga forward:
	// the step's transaction rolls back and the completed steps are compensated, so a failing Do must
	// leave no remote effect behind.
	Do func(ctx context.Context, tx Tx, st *S) error
	// Compensate undoes the step; nil means there is nothing to undo. Like Do it runs in a transaction
	// recording it as done, may change *st, and must make remote effects idempotent. An error is retried
	// with backoff until it succeeds or Options.MaxAttempts is reached.
	Compensate func(ctx context.Context, tx Tx, st *S) error
}

// Definition is a kind of saga: its type name and its steps, in order.
type Definition[S any] struct {
	// Type names the saga kind ("plan_upgrade"); stored with every saga and used to find its steps on
	// resume.
	Type  string
	Steps []Step[S]
}

// Instance is a saga as stored.
type Instance struct {
	ID     string
	Type   string
	Status Status
	// State is the saga's JSON state as the last committed step left it.
	State json.RawMessage
	// Step is the number of forward steps done and not compensated.
	Step int
	// Attempts counts the failed attempts of the current compensation.
	Attempts int
	// FailedStep names the step whose failure started the compensation; empty otherwise.
	FailedStep string
	// Error is the failure's message (internal text: log it, do not show it to clients).
	Error string
	// ErrorCode is the code of the failure when it was a client-safe *errs.Error, else empty.
	ErrorCode string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Decode unmarshals the instance's state into v.
func (i Instance) Decode(v any) error {
	if err := json.Unmarshal(i.State, v); err != nil {
		return fmt.Errorf("saga %s: decode state: %w", i.ID, err)
	}
	return nil
}

// The errors the Runner returns; match them with errors.Is.
var (
	// ErrNotFound means no saga has that id.
	ErrNotFound = errors.New("saga: not found")
	// ErrUnknownType means no definition is registered for the saga's type.
	ErrUnknownType = errors.New("saga: unknown type")
	// ErrTypeMismatch means a saga with that id exists with another type.
	ErrTypeMismatch = errors.New("saga: id used by another saga type")
	// ErrInvalidDefinition means a definition cannot be registered.
	ErrInvalidDefinition = errors.New("saga: invalid definition")
)

// keyNamespace is the UUID namespace of Key.
var keyNamespace = uuid.MustParse("5b0e8a7e-5a6b-4c1f-9e0e-3f6d2a1c9b47")

// Key derives a stable UUID from a saga id and a step (or any further parts), for idempotency keys and ids
// of the step's effects: running the step again yields the same key, so a provider or another module can
// deduplicate it.
func Key(sagaID string, parts ...string) string {
	name := sagaID
	for _, p := range parts {
		name += "\x00" + p
	}
	return uuid.NewSHA1(keyNamespace, []byte(name)).String()
}

// definition is a registered Definition with its state type erased.
type definition interface {
	sagaType() string
	steps() int
	stepName(i int) string
	hasCompensation(i int) bool
	do(ctx context.Context, tx Tx, i int, state json.RawMessage) (json.RawMessage, error)
	compensate(ctx context.Context, tx Tx, i int, state json.RawMessage) (json.RawMessage, error)
}

type typed[S any] struct{ d Definition[S] }

func (t typed[S]) sagaType() string           { return t.d.Type }
func (t typed[S]) steps() int                 { return len(t.d.Steps) }
func (t typed[S]) stepName(i int) string      { return t.d.Steps[i].Name }
func (t typed[S]) hasCompensation(i int) bool { return t.d.Steps[i].Compensate != nil }

func (t typed[S]) do(ctx context.Context, tx Tx, i int, state json.RawMessage) (json.RawMessage, error) {
	return run(ctx, tx, state, t.d.Steps[i].Do)
}

func (t typed[S]) compensate(ctx context.Context, tx Tx, i int, state json.RawMessage) (json.RawMessage, error) {
	return run(ctx, tx, state, t.d.Steps[i].Compensate)
}

// run decodes state, applies fn to it and encodes the result.
func run[S any](ctx context.Context, tx Tx, state json.RawMessage, fn func(context.Context, Tx, *S) error) (json.RawMessage, error) {
	var st S
	if err := json.Unmarshal(state, &st); err != nil {
		return nil, fmt.Errorf("decode state: %w", err)
	}
	if err := fn(ctx, tx, &st); err != nil {
		return nil, err
	}
	out, err := json.Marshal(st)
	if err != nil {
		return nil, fmt.Errorf("encode state: %w", err)
	}
	return out, nil
}

func (d Definition[S]) validate() error {
	if d.Type == "" {
		return fmt.Errorf("%w: empty type", ErrInvalidDefinition)
	}
	if len(d.Steps) == 0 {
		return fmt.Errorf("%w: %s has no steps", ErrInvalidDefinition, d.Type)
	}
	seen := map[string]bool{}
	for i, s := range d.Steps {
		if s.Name == "" || s.Do == nil {
			return fmt.Errorf("%w: %s step %d needs a name and Do", ErrInvalidDefinition, d.Type, i)
		}
		if seen[s.Name] {
			return fmt.Errorf("%w: %s has two steps named %q", ErrInvalidDefinition, d.Type, s.Name)
		}
		seen[s.Name] = true
	}
	return nil
}
