// Package billingdomain holds the billing module's business logic: invoices, payments and idempotent payment
// requests.
package billingdomain
