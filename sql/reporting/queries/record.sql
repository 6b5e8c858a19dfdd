-- name: AddSignup :exec
INSERT INTO reporting.signups_daily AS s (day, count)
VALUES (@day, 1)
ON CONFLICT (day) DO UPDATE SET count = s.count + 1;

-- name: AddInvoice :exec
INSERT INTO reporting.invoices_daily AS i (day, currency, count, amount_minor)
VALUES (@day, @currency, 1, @amount_minor)
ON CONFLICT (day, currency) DO UPDATE
    SET count = i.count + 1, amount_minor = i.amount_minor + EXCLUDED.amount_minor;

-- name: AddPayment :exec
INSERT INTO reporting.revenue_daily AS r (day, currency, payments, amount_minor)
VALUES (@day, @currency, 1, @amount_minor)
ON CONFLICT (day, currency) DO UPDATE
    SET payments = r.payments + 1, amount_minor = r.amount_minor + EXCLUDED.amount_minor;

-- name: AddFailedPayment :exec
INSERT INTO reporting.failed_payments_daily AS f (day, currency, count, amount_minor)
VALUES (@day, @currency, 1, @amount_minor)
ON CONFLICT (day, currency) DO UPDATE
    SET count = f.count + 1, amount_minor = f.amount_minor + EXCLUDED.amount_minor;
