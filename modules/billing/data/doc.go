// Package billingdata is billing's storage: sqlc-generated queries on the billing schema and the Repository
// adapter that implements billingdomain's ports, writing each state change and its outbox event in one
// transaction.
package billingdata
