-- name: TryLockIdempotencyKey :one
-- Takes a key's liveness lock for this session, without waiting; false when another live session holds it.
-- The statements that read or change the key's row run on the connection that holds its lock.
SELECT pg_try_advisory_lock(sqlc.arg(lock_id)::bigint) AS locked;

-- name: UnlockIdempotencyKey :one
-- Releases a key's liveness lock; false when this session did not hold it.
SELECT pg_advisory_unlock(sqlc.arg(lock_id)::bigint) AS unlocked;

-- name: InsertIdempotencyKey :execrows
INSERT INTO billing.idempotency_keys (user_id, key, request_hash, payment_id, state, created_at, updated_at)
VALUES ($1, $2, $3, $4, 'in_progress', $5, $5)
ON CONFLICT (user_id, key) DO NOTHING;

-- name: GetIdempotencyKey :one
SELECT * FROM billing.idempotency_keys
WHERE user_id = $1 AND key = $2;

-- name: TakeOverIdempotencyKey :one
-- Claims an in-progress row whose process died (the caller holds its free lock). The new updated_at is the
-- claim's fencing token: at least a microsecond past the dead claim's, even when this host's clock is behind.
UPDATE billing.idempotency_keys
SET updated_at = GREATEST(sqlc.arg(now)::timestamptz, updated_at + interval '1 microsecond')
WHERE user_id = sqlc.arg(user_id) AND key = sqlc.arg(key) AND state = 'in_progress'
RETURNING *;

-- name: CompleteIdempotencyKey :execrows
UPDATE billing.idempotency_keys
SET state = 'done', response_status = sqlc.arg(response_status), response_body = sqlc.arg(response_body),
    updated_at = sqlc.arg(now)
WHERE user_id = sqlc.arg(user_id) AND key = sqlc.arg(key)
  AND state = 'in_progress' AND updated_at = sqlc.arg(claimed_at);

-- name: DeleteIdempotencyKey :execrows
DELETE FROM billing.idempotency_keys
WHERE user_id = sqlc.arg(user_id) AND key = sqlc.arg(key)
  AND state = 'in_progress' AND updated_at = sqlc.arg(claimed_at);
