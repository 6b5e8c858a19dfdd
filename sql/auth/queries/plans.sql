-- name: InsertPlanGrant :execrows
INSERT INTO auth.plan_grants (grant_id, user_id, plan, granted_at)
VALUES (@grant_id, @user_id, @plan, @granted_at)
ON CONFLICT (grant_id) DO NOTHING;

-- name: GetPlanGrant :one
SELECT * FROM auth.plan_grants WHERE grant_id = @grant_id;

-- name: SetUserPlan :execrows
UPDATE auth.users SET plan = @plan, updated_at = @updated_at WHERE id = @id;
