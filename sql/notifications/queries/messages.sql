-- name: InsertMessage :execrows
-- Stores a message; no row is inserted when a message for the same event exists already.
INSERT INTO notifications.messages
    (id, user_id, recipient, template, subject, body, event_id, channel, status, created_at, sent_at)
VALUES
    (@id, @user_id, @recipient, @template, @subject, @body, @event_id, @channel, @status, @created_at, @sent_at)
ON CONFLICT (event_id) DO NOTHING;

-- name: MarkMessageFailed :execrows
UPDATE notifications.messages
SET status = 'failed', sent_at = NULL
WHERE id = @id;

-- name: ListMessagesByUser :many
-- A user's messages, newest first.
SELECT id, user_id, recipient, template, subject, body, event_id, channel, status, created_at, sent_at
FROM notifications.messages
WHERE user_id = @user_id
ORDER BY created_at DESC, id DESC
LIMIT @max_rows;
