-- name: UpsertRecipient :exec
-- Records a user's address unless a newer one is already known.
INSERT INTO notifications.recipients (user_id, email, updated_at)
VALUES (@user_id, @email, @updated_at)
ON CONFLICT (user_id) DO UPDATE
    SET email = EXCLUDED.email, updated_at = EXCLUDED.updated_at
    WHERE notifications.recipients.updated_at <= EXCLUDED.updated_at;

-- name: GetRecipient :one
SELECT user_id, email, updated_at
FROM notifications.recipients
WHERE user_id = @user_id;
