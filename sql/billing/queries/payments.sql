-- name: InsertPayment :exec
INSERT INTO billing.payments (id, invoice_id, user_id, amount_minor, currency, status, provider_ref, decline_code, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9);
