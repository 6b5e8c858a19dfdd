package billingdata_test

import "context"

// GrantPlan accepts every grant.
func (fakeAuth) GrantPlan(context.Context, string, string, string) error { return nil }
