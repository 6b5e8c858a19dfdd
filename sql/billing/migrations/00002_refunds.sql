-- +goose Up

-- A paid invoice can be refunded (the plan-upgrade saga refunds the charge when the plan cannot be granted).
ALTER TABLE billing.invoices DROP CONSTRAINT invoices_status_check;
ALTER TABLE billing.invoices DROP CONSTRAINT invoices_paid_at_iff_paid;
ALTER TABLE billing.invoices
    ADD CONSTRAINT invoices_status_check CHECK (status IN ('open', 'paid', 'refunded')),
    ADD CONSTRAINT invoices_paid_at_iff_paid CHECK ((status IN ('paid', 'refunded')) = (paid_at IS NOT NULL));

-- A succeeded payment can be refunded once: it then carries the provider's refund reference and time.
ALTER TABLE billing.payments DROP CONSTRAINT payments_status_check;
ALTER TABLE billing.payments
    ADD COLUMN refund_ref  text CHECK (refund_ref <> ''),
    ADD COLUMN refunded_at timestamptz,
    ADD CONSTRAINT payments_status_check CHECK (status IN ('succeeded', 'failed', 'refunded')),
    ADD CONSTRAINT payments_refund_iff_refunded
        CHECK ((status = 'refunded') = (refund_ref IS NOT NULL AND refunded_at IS NOT NULL));

-- A refunded payment still counts as the invoice's one success: an invoice is paid (and refunded) once.
DROP INDEX billing.payments_one_success_per_invoice;
CREATE UNIQUE INDEX payments_one_success_per_invoice ON billing.payments (invoice_id)
    WHERE status IN ('succeeded', 'refunded');

-- +goose Down
DROP INDEX billing.payments_one_success_per_invoice;
CREATE UNIQUE INDEX payments_one_success_per_invoice ON billing.payments (invoice_id) WHERE status = 'succeeded';
ALTER TABLE billing.payments DROP CONSTRAINT payments_refund_iff_refunded;
ALTER TABLE billing.payments DROP CONSTRAINT payments_status_check;
ALTER TABLE billing.payments DROP COLUMN refunded_at;
ALTER TABLE billing.payments DROP COLUMN refund_ref;
ALTER TABLE billing.payments ADD CONSTRAINT payments_status_check CHECK (status IN ('succeeded', 'failed'));
ALTER TABLE billing.invoices DROP CONSTRAINT invoices_paid_at_iff_paid;
ALTER TABLE billing.invoices DROP CONSTRAINT invoices_status_check;
ALTER TABLE billing.invoices
    ADD CONSTRAINT invoices_status_check CHECK (status IN ('open', 'paid')),
    ADD CONSTRAINT invoices_paid_at_iff_paid CHECK ((status = 'paid') = (paid_at IS NOT NULL));
