-- +goose Up

-- The plan each account is on; billing's plan-upgrade saga grants paid plans through authapi.Auth.GrantPlan.
ALTER TABLE auth.users
    ADD COLUMN plan text NOT NULL DEFAULT 'free' CHECK (plan IN ('free', 'pro', 'team'));

-- One row per grant, keyed by the caller's grant id (the saga id), so a retried grant applies once.
CREATE TABLE auth.plan_grants (
    grant_id   text        PRIMARY KEY CHECK (char_length(grant_id) BETWEEN 1 AND 200),
    user_id    uuid        NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
    plan       text        NOT NULL CHECK (plan IN ('pro', 'team')),
    granted_at timestamptz NOT NULL
);

CREATE INDEX plan_grants_user_idx ON auth.plan_grants (user_id);

-- +goose Down
DROP TABLE auth.plan_grants;
ALTER TABLE auth.users DROP COLUMN plan;
