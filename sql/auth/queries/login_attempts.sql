-- name: EnsureLoginAttempts :exec
INSERT INTO auth.login_attempts (user_id, failures, first_failure)
VALUES (@user_id, 0, now())
ON CONFLICT (user_id) DO NOTHING;

-- name: GetLoginAttemptsForUpdate :one
SELECT * FROM auth.login_attempts WHERE user_id = @user_id FOR UPDATE;

-- name: UpdateLoginAttempts :exec
UPDATE auth.login_attempts
SET failures = @failures, first_failure = @first_failure, locked_until = @locked_until
WHERE user_id = @user_id;

-- name: DeleteLoginAttempts :exec
DELETE FROM auth.login_attempts WHERE user_id = @user_id;
