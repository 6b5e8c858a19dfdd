-- name: InsertIdempotencyKey :execrows
INSERT INTO billing.idempotency_keys (user_id, key, request_hash, payment_id, state, created_at, updated_at)
VALUES ($1, $2, $3, $4, 'in_progress', $5, $5)
ON CONFLICT (user_id, key) DO NOTHING;

-- name: GetIdempotencyKey :one
SELECT * FROM billing.idempotency_keys
WHERE user_id = $1 AND key = $2;

-- name: TakeOverIdempotencyKey :one
UPDATE billing.idempotency_keys
SET updated_at = sqlc.arg(now)
WHERE user_id = sqlc.arg(user_id) AND key = sqlc.arg(key)
  AND state = 'in_progress' AND updated_at < sqlc.arg(stale_before)
RETURNING *;

-- name: CompleteIdempotencyKey :execrows
UPDATE billing.idempotency_keys
SET state = 'done', response_status = sqlc.arg(response_status), response_body = sqlc.arg(response_body),
    updated_at = sqlc.arg(now)
WHERE user_id = sqlc.arg(user_id) AND key = sqlc.arg(key)
  AND state = 'in_progress' AND updated_at = sqlc.arg(claimed_at);

-- name: ReleaseIdempotencyKey :execrows
UPDATE billing.idempotency_keys
SET updated_at = 'epoch'
WHERE user_id = sqlc.arg(user_id) AND key = sqlc.arg(key)
  AND state = 'in_progress' AND updated_at = sqlc.arg(claimed_at);

-- name: DeleteIdempotencyKey :execrows
DELETE FROM billing.idempotency_keys
WHERE user_id = sqlc.arg(user_id) AND key = sqlc.arg(key)
  AND state = 'in_progress' AND updated_at = sqlc.arg(claimed_at);
