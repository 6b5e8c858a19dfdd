-- name: ListActiveSigningKeys :many
SELECT * FROM auth.signing_keys
WHERE retired_at IS NULL
ORDER BY created_at DESC, kid;

-- name: InsertSigningKey :exec
INSERT INTO auth.signing_keys (kid, private_key, created_at)
VALUES (@kid, @private_key, @created_at)
ON CONFLICT (kid) DO NOTHING;
