package authdata

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	authapi "github.com/seamkit/seam/modules/auth/api"
	authdomain "github.com/seamkit/seam/modules/auth/domain"
)

// GrantPlan records g and sets its user's plan in one transaction, once per grant id.
func (r *Repository) GrantPlan(ctx context.Context, g authdomain.PlanGrant) error {
	uid, err := toUUID(g.UserID)
	if err != nil {
		return authapi.ErrUserNotFound
	}
	return pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
		q := r.q.WithTx(tx)
		n, err := q.InsertPlanGrant(ctx, InsertPlanGrantParams{GrantID: g.GrantID, UserID: uid, Plan: g.Plan, GrantedAt: g.GrantedAt})
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == foreignKeyViolation {
			return authapi.ErrUserNotFound
		}
		if err != nil {
			return fmt.Errorf("auth data: insert plan grant: %w", err)
		}
		if n == 0 {
			prior, err := q.GetPlanGrant(ctx, g.GrantID)
			if err != nil {
				return fmt.Errorf("auth data: read plan grant: %w", err)
			}
			if fromUUID(prior.UserID) != g.UserID || prior.Plan != g.Plan {
				return authapi.ErrGrantConflict
			}
			return nil
		}
		if _, err := q.SetUserPlan(ctx, SetUserPlanParams{ID: uid, Plan: g.Plan, UpdatedAt: g.GrantedAt}); err != nil {
			return fmt.Errorf("auth data: set plan: %w", err)
		}
		return nil
	})
}
