// Package reportingapi is the reporting module's public contract: the activity summary it builds from other
// modules' events.
package reportingapi

import "context"

// Reports is what may be asked of the reporting module. Every method is remotable: ctx first, error last,
// plain serialisable types.
type Reports interface {
	// Summary totals the activity of the days from..to, inclusive dates as "YYYY-MM-DD" (UTC). Either may
	// be empty: to defaults to today and from to DefaultDays-1 days before to. An invalid date, from after
	// to, or a range of more than MaxDays days is a validation error.
	//seam:readonly
	Summary(ctx context.Context, from, to string) (Summary, error)
}

// Limits of Summary's date range.
const (
	// DefaultDays is how many days a summary covers when from is not given (today included).
	DefaultDays = 30
	// MaxDays is the longest range one summary covers.
	MaxDays = 366
)

// DateLayout is how dates are written in requests and responses.
const DateLayout = "2006-01-02"

// Summary is the activity of a range of days: totals over the range and a breakdown per day with activity.
type Summary struct {
	From           string            `json:"from"`
	To             string            `json:"to"`
	Signups        int64             `json:"signups"`
	Invoices       []CurrencyCount   `json:"invoices"`
	Revenue        []CurrencyRevenue `json:"revenue"`
	FailedPayments []CurrencyCount   `json:"failed_payments"`
	Days           []Day             `json:"days"`
}

// Day is the activity of one day; Summary lists only days with some.
type Day struct {
	Day            string            `json:"day"`
	Signups        int64             `json:"signups"`
	Invoices       []CurrencyCount   `json:"invoices"`
	Revenue        []CurrencyRevenue `json:"revenue"`
	FailedPayments []CurrencyCount   `json:"failed_payments"`
}

// CurrencyCount is how many invoices (or failed payments) there were in one currency and their amount in
// minor units.
type CurrencyCount struct {
	Currency    string `json:"currency"`
	Count       int64  `json:"count"`
	AmountMinor int64  `json:"amount_minor"`
}

// CurrencyRevenue is how many payments were received in one currency and their amount in minor units.
type CurrencyRevenue struct {
	Currency    string `json:"currency"`
	Payments    int64  `json:"payments"`
	AmountMinor int64  `json:"amount_minor"`
}
