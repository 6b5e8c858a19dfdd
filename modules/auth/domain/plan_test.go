package authdomain_test

import (
	"context"
	"errors"
	"testing"

	authapi "github.com/seamkit/seam/modules/auth/api"
	authdomain "github.com/seamkit/seam/modules/auth/domain"
	"github.com/seamkit/seam/platform/errs"
	"github.com/seamkit/seam/platform/failpoint"
)

func (f *fakeRepo) GrantPlan(_ context.Context, g authdomain.PlanGrant) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	u, ok := f.users[g.UserID]
	if !ok {
		return authapi.ErrUserNotFound
	}
	if f.grants == nil {
		f.grants = map[string]authdomain.PlanGrant{}
	}
	if prior, ok := f.grants[g.GrantID]; ok {
		if prior.UserID != g.UserID || prior.Plan != g.Plan {
			return authapi.ErrGrantConflict
		}
		return nil
	}
	f.grants[g.GrantID] = g
	u.Plan = g.Plan
	f.users[g.UserID] = u
	return nil
}

func TestGrantPlan(t *testing.T) {
	f := newFixture(t, nil)
	alice := f.signup(t, "alice@example.com")
	ctx := context.Background()
	if err := f.svc.GrantPlan(ctx, alice.ID, authapi.PlanPro, "saga-1"); err != nil {
		t.Fatalf("GrantPlan: %v", err)
	}
	if err := f.svc.GrantPlan(ctx, alice.ID, authapi.PlanPro, "saga-1"); err != nil {
		t.Fatalf("GrantPlan retried: %v", err)
	}
	if u, err := f.svc.GetUser(ctx, alice.ID); err != nil || u.Plan != authapi.PlanPro {
		t.Fatalf("GetUser = %+v, %v; want plan pro", u, err)
	}
	if len(f.repo.grants) != 1 {
		t.Errorf("grants = %v, want one", f.repo.grants)
	}
	if err := f.svc.GrantPlan(ctx, alice.ID, authapi.PlanTeam, "saga-1"); !errors.Is(err, authapi.ErrGrantConflict) {
		t.Errorf("same grant id, other plan: %v, want ErrGrantConflict", err)
	}
	for _, plan := range []string{"", authapi.PlanFree, "enterprise", "PRO"} {
		if err := f.svc.GrantPlan(ctx, alice.ID, plan, "saga-2"); !errors.Is(err, authapi.ErrInvalidPlan) {
			t.Errorf("plan %q: %v, want ErrInvalidPlan", plan, err)
		}
	}
	if err := f.svc.GrantPlan(ctx, alice.ID, authapi.PlanPro, ""); !errors.Is(err, errs.ErrValidation) {
		t.Errorf("empty grant id: %v, want a validation error", err)
	}
	for _, id := range []string{"not-a-uuid", "0190a000-0000-7000-8000-000000000000"} {
		if err := f.svc.GrantPlan(ctx, id, authapi.PlanPro, "saga-3"); !errors.Is(err, authapi.ErrUserNotFound) {
			t.Errorf("user %q: %v, want ErrUserNotFound", id, err)
		}
	}
}

func TestGrantPlanFailpoint(t *testing.T) {
	f := newFixture(t, nil)
	alice := f.signup(t, "alice@example.com")
	if err := failpoint.Configure(authdomain.FailpointGrantPlan + "=error"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = failpoint.Configure("") })
	if err := f.svc.GrantPlan(context.Background(), alice.ID, authapi.PlanPro, "saga-1"); !errors.Is(err, failpoint.ErrInjected) {
		t.Fatalf("GrantPlan = %v, want the injected failure", err)
	}
	if len(f.repo.grants) != 0 {
		t.Errorf("a failed grant was recorded")
	}
}
