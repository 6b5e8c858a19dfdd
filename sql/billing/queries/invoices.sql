-- name: InsertInvoice :one
INSERT INTO billing.invoices (id, user_id, amount_minor, currency, description, status, created_at)
VALUES ($1, $2, $3, $4, $5, 'open', $6)
RETURNING *;

-- name: GetInvoice :one
SELECT * FROM billing.invoices
WHERE id = $1 AND user_id = $2;

-- name: LockInvoice :one
SELECT * FROM billing.invoices
WHERE id = $1 AND user_id = $2
FOR UPDATE;

-- name: ListInvoices :many
SELECT * FROM billing.invoices
WHERE user_id = $1
ORDER BY created_at DESC, id DESC
LIMIT $2;

-- name: MarkInvoicePaid :one
UPDATE billing.invoices
SET status = 'paid', paid_at = $2
WHERE id = $1 AND status = 'open'
RETURNING *;
