// Package reportingdomain is the reporting module's business logic: how events become rows of the read
// model, and how a date range of those rows becomes a summary.
package reportingdomain

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	reportingapi "github.com/seamkit/seam/modules/reporting/api"
	"github.com/seamkit/seam/platform/errs"
)

// DayCount is the number of registrations on one day.
type DayCount struct {
	Day   time.Time
	Count int64
}

// DayAmount is how many events (invoices, payments, failed payments) there were on one day in one currency,
// and their amount in minor units.
type DayAmount struct {
	Day         time.Time
	Currency    string
	Count       int64
	AmountMinor int64
}

// Activity is the read model's rows for a range of days, each list ordered by day then currency.
type Activity struct {
	Signups        []DayCount
	Invoices       []DayAmount
	Revenue        []DayAmount
	FailedPayments []DayAmount
}

// Reader reads the read model.
type Reader interface {
	// Activity returns the rows of the days from..to (UTC midnights, inclusive).
	Activity(ctx context.Context, from, to time.Time) (Activity, error)
}

// errOverflow means a total does not fit in 64 bits.
var errOverflow = errors.New("reporting: total overflows int64")

// Service answers summaries; it implements reportingapi.Reports.
type Service struct {
	reader Reader
	now    func() time.Time
}

var _ reportingapi.Reports = (*Service)(nil)

// NewService returns a Service reading through reader.
func NewService(reader Reader) *Service {
	return &Service{reader: reader, now: time.Now}
}

// Summary totals the activity of the days from..to (see reportingapi.Reports).
func (s *Service) Summary(ctx context.Context, from, to string) (reportingapi.Summary, error) {
	first, last, err := s.dateRange(from, to)
	if err != nil {
		return reportingapi.Summary{}, err
	}
	act, err := s.reader.Activity(ctx, first, last)
	if err != nil {
		return reportingapi.Summary{}, fmt.Errorf("read activity: %w", err)
	}
	sum, err := summarize(act)
	if err != nil {
		return reportingapi.Summary{}, err
	}
	sum.From, sum.To = first.Format(reportingapi.DateLayout), last.Format(reportingapi.DateLayout)
	return sum, nil
}

// dateRange parses and checks the requested range, filling in the defaults.
func (s *Service) dateRange(from, to string) (time.Time, time.Time, error) {
	var c errs.Collector
	var first, last time.Time
	if from != "" {
		d, ok := parseDate(from)
		c.Check(ok, "from", "must be a date as YYYY-MM-DD")
		first = d
	}
	if to != "" {
		d, ok := parseDate(to)
		c.Check(ok, "to", "must be a date as YYYY-MM-DD")
		last = d
	}
	if err := c.Err(); err != nil {
		return time.Time{}, time.Time{}, err
	}
	if to == "" {
		last = Day(s.now())
	}
	if from == "" {
		first = last.AddDate(0, 0, -(reportingapi.DefaultDays - 1))
		if first.Before(firstDay) {
			first = firstDay
		}
	}
	switch {
	case first.After(last):
		c.Add("from", "must not be after to (%s)", last.Format(reportingapi.DateLayout))
	case last.Sub(first) >= reportingapi.MaxDays*24*time.Hour:
		c.Add("to", "must be less than %d days after from: a summary covers at most %d days", reportingapi.MaxDays, reportingapi.MaxDays)
	}
	return first, last, c.Err()
}

// firstDay is the earliest date a summary covers.
var firstDay = time.Date(1, time.January, 1, 0, 0, 0, 0, time.UTC)

// parseDate reads a YYYY-MM-DD date as UTC midnight.
func parseDate(s string) (time.Time, bool) {
	d, err := time.Parse(reportingapi.DateLayout, s)
	return d, err == nil
}

// summarize totals act over the range and per day.
func summarize(act Activity) (reportingapi.Summary, error) {
	days := map[time.Time]*reportingapi.Day{}
	day := func(d time.Time) *reportingapi.Day {
		if days[d] == nil {
			days[d] = &reportingapi.Day{Day: d.Format(reportingapi.DateLayout), Invoices: []reportingapi.CurrencyCount{},
				Revenue: []reportingapi.CurrencyRevenue{}, FailedPayments: []reportingapi.CurrencyCount{}}
		}
		return days[d]
	}
	var sum reportingapi.Summary
	var ok bool
	for _, r := range act.Signups {
		if r.Count == 0 {
			continue
		}
		if sum.Signups, ok = add(sum.Signups, r.Count); !ok {
			return reportingapi.Summary{}, errOverflow
		}
		day(r.Day).Signups = r.Count
	}
	var err error
	if sum.Invoices, err = totals(act.Invoices, func(r DayAmount) {
		d := day(r.Day)
		d.Invoices = append(d.Invoices, reportingapi.CurrencyCount{Currency: r.Currency, Count: r.Count, AmountMinor: r.AmountMinor})
	}); err != nil {
		return reportingapi.Summary{}, err
	}
	if sum.FailedPayments, err = totals(act.FailedPayments, func(r DayAmount) {
		d := day(r.Day)
		d.FailedPayments = append(d.FailedPayments, reportingapi.CurrencyCount{Currency: r.Currency, Count: r.Count, AmountMinor: r.AmountMinor})
	}); err != nil {
		return reportingapi.Summary{}, err
	}
	revenue, err := totals(act.Revenue, func(r DayAmount) {
		d := day(r.Day)
		d.Revenue = append(d.Revenue, reportingapi.CurrencyRevenue{Currency: r.Currency, Payments: r.Count, AmountMinor: r.AmountMinor})
	})
	if err != nil {
		return reportingapi.Summary{}, err
	}
	sum.Revenue = make([]reportingapi.CurrencyRevenue, len(revenue))
	for i, t := range revenue {
		sum.Revenue[i] = reportingapi.CurrencyRevenue{Currency: t.Currency, Payments: t.Count, AmountMinor: t.AmountMinor}
	}
	sum.Days = make([]reportingapi.Day, 0, len(days))
	for _, d := range days {
		sum.Days = append(sum.Days, *d)
	}
	slices.SortFunc(sum.Days, func(a, b reportingapi.Day) int { return cmp.Compare(a.Day, b.Day) })
	return sum, nil
}

// totals adds rows up per currency (ordered by currency) and calls each for every row with activity.
func totals(rows []DayAmount, each func(DayAmount)) ([]reportingapi.CurrencyCount, error) {
	byCurrency := map[string]*reportingapi.CurrencyCount{}
	for _, r := range rows {
		if r.Count == 0 {
			continue
		}
		each(r)
		t := byCurrency[r.Currency]
		if t == nil {
			t = &reportingapi.CurrencyCount{Currency: r.Currency}
			byCurrency[r.Currency] = t
		}
		var okCount, okAmount bool
		t.Count, okCount = add(t.Count, r.Count)
		t.AmountMinor, okAmount = add(t.AmountMinor, r.AmountMinor)
		if !okCount || !okAmount {
			return nil, errOverflow
		}
	}
	out := make([]reportingapi.CurrencyCount, 0, len(byCurrency))
	for _, t := range byCurrency {
		out = append(out, *t)
	}
	slices.SortFunc(out, func(a, b reportingapi.CurrencyCount) int { return cmp.Compare(a.Currency, b.Currency) })
	return out, nil
}

// add returns a+b and whether it fits in an int64.
func add(a, b int64) (int64, bool) {
	if (b > 0 && a > math.MaxInt64-b) || (b < 0 && a < math.MinInt64-b) {
		return 0, false
	}
	return a + b, true
}
