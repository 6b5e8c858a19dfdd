package billingdomain_test

import "context"

// GrantPlan accepts every grant; the plan-upgrade saga is tested on PostgreSQL in billingdata.
func (a *fakeAuth) GrantPlan(context.Context, string, string, string) error { return nil }
