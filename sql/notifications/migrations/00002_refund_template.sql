-- +goose Up

-- Refunds (billing.events.payment_refunded) are written to users too.
ALTER TABLE notifications.messages DROP CONSTRAINT messages_template_check;
ALTER TABLE notifications.messages ADD CONSTRAINT messages_template_check
    CHECK (template IN ('welcome', 'invoice_created', 'payment_received', 'payment_failed', 'payment_refunded'));

-- +goose Down
ALTER TABLE notifications.messages DROP CONSTRAINT messages_template_check;
ALTER TABLE notifications.messages ADD CONSTRAINT messages_template_check
    CHECK (template IN ('welcome', 'invoice_created', 'payment_received', 'payment_failed'));
