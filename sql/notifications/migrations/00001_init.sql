-- +goose Up
-- Who to write to: learned from auth's UserRegistered and the email carried by billing's events.
CREATE TABLE notifications.recipients (
    user_id    uuid        PRIMARY KEY,
    email      text        NOT NULL CHECK (email <> '' AND length(email) <= 320),
    -- The timestamp of the event the address came from, so an older event never overwrites a newer address.
    updated_at timestamptz NOT NULL
);

-- Every message rendered for an event: one per event (event_id is unique), kept whether or not it could be
-- delivered.
CREATE TABLE notifications.messages (
    id         uuid        PRIMARY KEY,
    user_id    uuid        NOT NULL,
    recipient  text        NOT NULL,
    template   text        NOT NULL
        CHECK (template IN ('welcome', 'invoice_created', 'payment_received', 'payment_failed')),
    subject    text        NOT NULL CHECK (subject <> ''),
    body       text        NOT NULL CHECK (body <> ''),
    event_id   uuid        NOT NULL UNIQUE,
    channel    text        NOT NULL CHECK (channel IN ('log', 'smtp')),
    status     text        NOT NULL CHECK (status IN ('sent', 'failed')),
    created_at timestamptz NOT NULL,
    sent_at    timestamptz,
    CHECK ((status = 'sent') = (sent_at IS NOT NULL)),
    CHECK (status = 'failed' OR recipient <> '')
);

-- A user's messages, newest first.
CREATE INDEX messages_user_created_idx ON notifications.messages (user_id, created_at DESC, id DESC);

-- +goose Down
DROP TABLE notifications.messages;
DROP TABLE notifications.recipients;
