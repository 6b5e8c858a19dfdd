-- +goose Up
-- A read model built only from other modules' events. Each row is keyed by the UTC date of the event's own
-- timestamp, so replaying the same events gives the same tables.

-- Accounts registered per day (auth's UserRegistered).
CREATE TABLE reporting.signups_daily (
    day   date   PRIMARY KEY,
    count bigint NOT NULL CHECK (count >= 0)
);

-- Invoices created per day and currency (billing's InvoiceCreated).
CREATE TABLE reporting.invoices_daily (
    day          date   NOT NULL,
    currency     text   NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    count        bigint NOT NULL CHECK (count >= 0),
    amount_minor bigint NOT NULL,
    PRIMARY KEY (day, currency)
);

-- Payments received per day and currency (billing's PaymentCompleted).
CREATE TABLE reporting.revenue_daily (
    day          date   NOT NULL,
    currency     text   NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    payments     bigint NOT NULL CHECK (payments >= 0),
    amount_minor bigint NOT NULL,
    PRIMARY KEY (day, currency)
);

-- Declined payments per day and currency (billing's PaymentFailed).
CREATE TABLE reporting.failed_payments_daily (
    day          date   NOT NULL,
    currency     text   NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    count        bigint NOT NULL CHECK (count >= 0),
    amount_minor bigint NOT NULL,
    PRIMARY KEY (day, currency)
);

-- +goose Down
DROP TABLE reporting.failed_payments_daily;
DROP TABLE reporting.revenue_daily;
DROP TABLE reporting.invoices_daily;
DROP TABLE reporting.signups_daily;
