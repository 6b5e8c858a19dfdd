// Package reportingdata stores the reporting module's read model in its own schema: sqlc-generated queries
// and the adapter that implements reportingdomain's ports.
package reportingdata

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	reportingdomain "github.com/seamkit/seam/modules/reporting/domain"
)

// Repository implements reportingdomain.Reader on a pool and reportingdomain.Recorder on a transaction.
type Repository struct {
	q *Queries
	// pool, when set, lets Activity read every table in one snapshot.
	pool *pgxpool.Pool
}

var (
	_ reportingdomain.Reader   = (*Repository)(nil)
	_ reportingdomain.Recorder = (*Repository)(nil)
)

// NewRepository returns a Repository that runs each query on pool.
func NewRepository(pool *pgxpool.Pool) *Repository {
	return &Repository{q: New(pool), pool: pool}
}

// InTx returns a Repository whose queries run inside tx, so their effect commits or rolls back with it.
func InTx(tx pgx.Tx) *Repository {
	return &Repository{q: New(tx)}
}

// Reset empties the read model inside tx, before it is rebuilt from the events (a replay).
func Reset(ctx context.Context, tx pgx.Tx) error {
	for _, table := range []string{"signups_daily", "invoices_daily", "revenue_daily", "failed_payments_daily"} {
		if _, err := tx.Exec(ctx, `DELETE FROM `+pgx.Identifier{"reporting", table}.Sanitize()); err != nil {
			return fmt.Errorf("reset %s: %w", table, err)
		}
	}
	return nil
}

// AddSignup counts one registration on day.
func (r *Repository) AddSignup(ctx context.Context, day time.Time) error {
	if err := r.q.AddSignup(ctx, day); err != nil {
		return fmt.Errorf("add signup: %w", err)
	}
	return nil
}

// AddInvoice counts one invoice on day.
func (r *Repository) AddInvoice(ctx context.Context, day time.Time, currency string, amountMinor int64) error {
	err := r.q.AddInvoice(ctx, AddInvoiceParams{Day: day, Currency: currency, AmountMinor: amountMinor})
	if err != nil {
		return fmt.Errorf("add invoice: %w", err)
	}
	return nil
}

// AddPayment counts one payment on day.
func (r *Repository) AddPayment(ctx context.Context, day time.Time, currency string, amountMinor int64) error {
	err := r.q.AddPayment(ctx, AddPaymentParams{Day: day, Currency: currency, AmountMinor: amountMinor})
	if err != nil {
		return fmt.Errorf("add payment: %w", err)
	}
	return nil
}

// AddFailedPayment counts one declined payment on day.
func (r *Repository) AddFailedPayment(ctx context.Context, day time.Time, currency string, amountMinor int64) error {
	err := r.q.AddFailedPayment(ctx, AddFailedPaymentParams{Day: day, Currency: currency, AmountMinor: amountMinor})
	if err != nil {
		return fmt.Errorf("add failed payment: %w", err)
	}
	return nil
}

// Activity returns the rows of the days from..to, inclusive, all read from one snapshot.
func (r *Repository) Activity(ctx context.Context, from, to time.Time) (reportingdomain.Activity, error) {
	if r.pool == nil {
		return activity(ctx, r.q, from, to)
	}
	tx, err := r.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return reportingdomain.Activity{}, fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	act, err := activity(ctx, r.q.WithTx(tx), from, to)
	if err != nil {
		return act, err
	}
	return act, tx.Commit(ctx)
}

func activity(ctx context.Context, q *Queries, from, to time.Time) (reportingdomain.Activity, error) {
	var act reportingdomain.Activity
	signups, err := q.SignupsByDay(ctx, SignupsByDayParams{FromDay: from, ToDay: to})
	if err != nil {
		return act, fmt.Errorf("signups: %w", err)
	}
	for _, s := range signups {
		act.Signups = append(act.Signups, reportingdomain.DayCount{Day: s.Day, Count: s.Count})
	}
	invoices, err := q.InvoicesByDay(ctx, InvoicesByDayParams{FromDay: from, ToDay: to})
	if err != nil {
		return act, fmt.Errorf("invoices: %w", err)
	}
	for _, i := range invoices {
		act.Invoices = append(act.Invoices, reportingdomain.DayAmount{Day: i.Day, Currency: i.Currency, Count: i.Count, AmountMinor: i.AmountMinor})
	}
	revenue, err := q.RevenueByDay(ctx, RevenueByDayParams{FromDay: from, ToDay: to})
	if err != nil {
		return act, fmt.Errorf("revenue: %w", err)
	}
	for _, p := range revenue {
		act.Revenue = append(act.Revenue, reportingdomain.DayAmount{Day: p.Day, Currency: p.Currency, Count: p.Payments, AmountMinor: p.AmountMinor})
	}
	failed, err := q.FailedPaymentsByDay(ctx, FailedPaymentsByDayParams{FromDay: from, ToDay: to})
	if err != nil {
		return act, fmt.Errorf("failed payments: %w", err)
	}
	for _, f := range failed {
		act.FailedPayments = append(act.FailedPayments, reportingdomain.DayAmount{Day: f.Day, Currency: f.Currency, Count: f.Count, AmountMinor: f.AmountMinor})
	}
	return act, nil
}
