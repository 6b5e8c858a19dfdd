package authdomain

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"

	authapi "github.com/seamkit/seam/modules/auth/api"
	"github.com/seamkit/seam/platform/errs"
	"github.com/seamkit/seam/platform/failpoint"
)

// MaxGrantIDLength is the longest grant id GrantPlan accepts.
const MaxGrantIDLength = 200

// FailpointGrantPlan is the failpoint GrantPlan passes before granting, so fault tests can make the grant
// fail (or the process die) and watch billing's plan-upgrade saga refund the charge.
const FailpointGrantPlan = "auth.grant_plan"

// PlanGrant is one plan granted to a user, identified by the caller's grant id.
type PlanGrant struct {
	GrantID   string
	UserID    string
	Plan      string
	GrantedAt time.Time
}

// GrantPlan puts userID on plan once per grantID (see authapi.Auth.GrantPlan).
func (s *Service) GrantPlan(ctx context.Context, userID, plan, grantID string) error {
	if err := failpoint.Inject(FailpointGrantPlan); err != nil {
		return fmt.Errorf("grant plan: %w", err)
	}
	if plan != authapi.PlanPro && plan != authapi.PlanTeam {
		return fmt.Errorf("grant plan %q: %w", plan, authapi.ErrInvalidPlan)
	}
	var c errs.Collector
	c.Check(grantID != "" && len(grantID) <= MaxGrantIDLength, "grant_id", "must be 1 to %d bytes", MaxGrantIDLength)
	if err := c.Err(); err != nil {
		return err
	}
	if _, err := uuid.Parse(userID); err != nil {
		return authapi.ErrUserNotFound
	}
	g := PlanGrant{GrantID: grantID, UserID: userID, Plan: plan, GrantedAt: s.now().UTC().Truncate(time.Microsecond)}
	if err := s.repo.GrantPlan(ctx, g); err != nil {
		return fmt.Errorf("grant plan %s to %s: %w", plan, userID, err)
	}
	s.logger.InfoContext(ctx, "plan granted", slog.String("user_id", userID), slog.String("plan", plan),
		slog.String("grant_id", grantID))
	return nil
}
