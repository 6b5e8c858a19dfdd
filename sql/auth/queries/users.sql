-- name: InsertUser :one
INSERT INTO auth.users (id, email, password_hash, role, created_at, updated_at)
VALUES (@id, @email, @password_hash, @role, @created_at, @created_at)
RETURNING *;

-- name: GetUserByID :one
SELECT * FROM auth.users WHERE id = @id;

-- name: GetUserByEmail :one
SELECT * FROM auth.users WHERE email = @email;

-- name: UpdatePasswordHash :execrows
UPDATE auth.users SET password_hash = @password_hash, updated_at = @updated_at WHERE id = @id;

-- name: AdminExists :one
SELECT EXISTS (SELECT 1 FROM auth.users WHERE role = 'admin');

-- name: AdvisoryXactLock :exec
SELECT pg_advisory_xact_lock(@key::bigint);
