-- +goose Up

-- Accounts. Emails are stored trimmed and lower-cased, so the UNIQUE constraint is case-insensitive.
CREATE TABLE auth.users (
    id            uuid        PRIMARY KEY,
    email         text        NOT NULL,
    password_hash text        NOT NULL CHECK (password_hash <> ''),
    role          text        NOT NULL CHECK (role IN ('user', 'admin')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_email_key UNIQUE (email),
    CONSTRAINT users_email_normalized CHECK (email = lower(btrim(email)) AND email <> '' AND char_length(email) <= 254)
);

-- Finding whether an admin exists must not scan every account.
CREATE INDEX users_admins_idx ON auth.users (created_at) WHERE role = 'admin';

-- Per-account login throttling state; a successful login deletes the row.
CREATE TABLE auth.login_attempts (
    user_id       uuid        PRIMARY KEY REFERENCES auth.users (id) ON DELETE CASCADE,
    failures      integer     NOT NULL CHECK (failures >= 0),
    first_failure timestamptz NOT NULL,
    locked_until  timestamptz NULL
);

-- Ed25519 keys that sign access tokens; private_key is the 32-byte RFC 8032 seed. Every key not retired
-- verifies tokens; the newest one signs.
CREATE TABLE auth.signing_keys (
    kid         text        PRIMARY KEY CHECK (kid <> ''),
    private_key bytea       NOT NULL CHECK (octet_length(private_key) = 32),
    created_at  timestamptz NOT NULL DEFAULT now(),
    retired_at  timestamptz NULL,
    CHECK (retired_at IS NULL OR retired_at >= created_at)
);

-- +goose Down
DROP TABLE auth.signing_keys;
DROP TABLE auth.login_attempts;
DROP TABLE auth.users;
