-- name: SignupsByDay :many
SELECT day, count
FROM reporting.signups_daily
WHERE day BETWEEN @from_day AND @to_day
ORDER BY day;

-- name: InvoicesByDay :many
SELECT day, currency, count, amount_minor
FROM reporting.invoices_daily
WHERE day BETWEEN @from_day AND @to_day
ORDER BY day, currency;

-- name: RevenueByDay :many
SELECT day, currency, payments, amount_minor
FROM reporting.revenue_daily
WHERE day BETWEEN @from_day AND @to_day
ORDER BY day, currency;

-- name: FailedPaymentsByDay :many
SELECT day, currency, count, amount_minor
FROM reporting.failed_payments_daily
WHERE day BETWEEN @from_day AND @to_day
ORDER BY day, currency;
