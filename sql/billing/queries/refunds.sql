-- name: RefundPayment :execrows
UPDATE billing.payments
SET status = 'refunded', refund_ref = sqlc.arg(refund_ref), refunded_at = sqlc.arg(refunded_at)
WHERE id = sqlc.arg(id) AND status = 'succeeded';

-- name: MarkInvoiceRefunded :execrows
UPDATE billing.invoices
SET status = 'refunded'
WHERE id = $1 AND status = 'paid';
