-- +goose Up

-- invoices: one bill for one user, in integer minor units of an ISO 4217 currency.
CREATE TABLE billing.invoices (
    id           uuid        PRIMARY KEY,
    user_id      uuid        NOT NULL,
    amount_minor bigint      NOT NULL CHECK (amount_minor > 0),
    currency     char(3)     NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    description  text        NOT NULL CHECK (char_length(description) BETWEEN 1 AND 500),
    status       text        NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'paid')),
    created_at   timestamptz NOT NULL,
    paid_at      timestamptz,
    CONSTRAINT invoices_paid_at_iff_paid CHECK ((status = 'paid') = (paid_at IS NOT NULL))
);

-- A user's invoices, newest first.
CREATE INDEX invoices_user_created_idx ON billing.invoices (user_id, created_at DESC, id DESC);

-- payments: every charge attempt the provider answered, approved or declined.
CREATE TABLE billing.payments (
    id           uuid        PRIMARY KEY,
    invoice_id   uuid        NOT NULL REFERENCES billing.invoices (id),
    user_id      uuid        NOT NULL,
    amount_minor bigint      NOT NULL CHECK (amount_minor > 0),
    currency     char(3)     NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    status       text        NOT NULL CHECK (status IN ('succeeded', 'failed')),
    provider_ref text        NOT NULL CHECK (provider_ref <> ''),
    decline_code text,
    created_at   timestamptz NOT NULL,
    CONSTRAINT payments_decline_code_iff_failed CHECK ((status = 'failed') = (decline_code IS NOT NULL))
);

CREATE INDEX payments_invoice_idx ON billing.payments (invoice_id);

-- An invoice is paid at most once, whatever the application does.
CREATE UNIQUE INDEX payments_one_success_per_invoice ON billing.payments (invoice_id) WHERE status = 'succeeded';

-- idempotency_keys: one row per (user, Idempotency-Key) of a pay request. payment_id is the id the request
-- charges under; a takeover of a stale key reuses it, so the provider (idempotent per payment id) cannot
-- charge twice for one key. Once done, the row holds the exact response replayed to retries.
CREATE TABLE billing.idempotency_keys (
    user_id         uuid        NOT NULL,
    key             text        NOT NULL CHECK (char_length(key) BETWEEN 1 AND 255),
    request_hash    bytea       NOT NULL CHECK (octet_length(request_hash) = 32),
    payment_id      uuid        NOT NULL,
    state           text        NOT NULL CHECK (state IN ('in_progress', 'done')),
    response_status integer     CHECK (response_status BETWEEN 100 AND 599),
    response_body   bytea,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    PRIMARY KEY (user_id, key),
    CONSTRAINT idempotency_keys_response_iff_done
        CHECK ((state = 'done') = (response_status IS NOT NULL AND response_body IS NOT NULL))
);

-- +goose Down
DROP TABLE billing.idempotency_keys;
DROP TABLE billing.payments;
DROP TABLE billing.invoices;
