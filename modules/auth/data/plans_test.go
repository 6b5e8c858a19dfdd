package authdata_test

import (
	"context"
	"errors"
	"testing"

	"github.com/google/uuid"

	authapi "github.com/seamkit/seam/modules/auth/api"
	authdomain "github.com/seamkit/seam/modules/auth/domain"
	"github.com/seamkit/seam/platform/identity"
)

func TestGrantPlanAppliesOncePerGrantID(t *testing.T) {
	repo, pool := newRepo(t)
	ctx := context.Background()
	nu := newUser("alice@example.test", identity.RoleUser)
	if _, err := repo.CreateUser(ctx, nu); err != nil {
		t.Fatal(err)
	}
	g := authdomain.PlanGrant{GrantID: "saga-1", UserID: nu.ID, Plan: authapi.PlanPro, GrantedAt: testTime}
	for i := range 2 {
		if err := repo.GrantPlan(ctx, g); err != nil {
			t.Fatalf("GrantPlan #%d: %v", i+1, err)
		}
	}
	u, err := repo.UserByID(ctx, nu.ID)
	if err != nil || u.Plan != authapi.PlanPro {
		t.Fatalf("user = %+v, %v; want plan pro", u, err)
	}
	if n := count(t, pool, "SELECT count(*) FROM auth.plan_grants WHERE grant_id = 'saga-1'"); n != 1 {
		t.Errorf("%d grant rows, want 1", n)
	}
	other := g
	other.Plan = authapi.PlanTeam
	if err := repo.GrantPlan(ctx, other); !errors.Is(err, authapi.ErrGrantConflict) {
		t.Errorf("same grant id, other plan: %v, want ErrGrantConflict", err)
	}
	if u, _ := repo.UserByID(ctx, nu.ID); u.Plan != authapi.PlanPro {
		t.Errorf("a conflicting grant changed the plan to %q", u.Plan)
	}
	missing := authdomain.PlanGrant{GrantID: "saga-2", UserID: uuid.NewString(), Plan: authapi.PlanPro, GrantedAt: testTime}
	if err := repo.GrantPlan(ctx, missing); !errors.Is(err, authapi.ErrUserNotFound) {
		t.Errorf("unknown user: %v, want ErrUserNotFound", err)
	}
	if _, err := pool.Exec(ctx, "UPDATE auth.users SET plan = 'enterprise' WHERE id = $1", nu.ID); err == nil {
		t.Error("the database accepted an unknown plan")
	}
}
