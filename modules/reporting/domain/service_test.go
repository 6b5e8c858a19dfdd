package reportingdomain

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	reportingapi "github.com/seamkit/seam/modules/reporting/api"
	"github.com/seamkit/seam/platform/errs"
)

// fakeReader answers with act and remembers the range it was asked for.
type fakeReader struct {
	act      Activity
	from, to time.Time
	calls    int
}

func (f *fakeReader) Activity(_ context.Context, from, to time.Time) (Activity, error) {
	f.from, f.to = from, to
	f.calls++
	return f.act, nil
}

func newTestService(r Reader) *Service {
	s := NewService(r)
	s.now = func() time.Time { return time.Date(2026, 3, 10, 23, 59, 0, 0, time.FixedZone("X", -5*3600)) } // 2026-03-11 UTC
	return s
}

func TestSummaryDefaultRangeIsTheLast30Days(t *testing.T) {
	r := &fakeReader{}
	sum, err := newTestService(r).Summary(context.Background(), "", "")
	if err != nil {
		t.Fatal(err)
	}
	if sum.From != "2026-02-10" || sum.To != "2026-03-11" || !r.from.Equal(date(2026, 2, 10)) || !r.to.Equal(date(2026, 3, 11)) {
		t.Fatalf("range = %s..%s (read %s..%s)", sum.From, sum.To, r.from, r.to)
	}
	if sum.Invoices == nil || sum.Revenue == nil || sum.FailedPayments == nil || sum.Days == nil {
		t.Fatalf("empty lists must be empty arrays, not null: %+v", sum)
	}
}

func TestSummaryRanges(t *testing.T) {
	tests := []struct {
		from, to         string
		wantFrom, wantTo string
	}{
		{"2026-01-01", "2026-01-31", "2026-01-01", "2026-01-31"},
		{"2026-03-01", "", "2026-03-01", "2026-03-11"},
		{"", "2026-01-31", "2026-01-02", "2026-01-31"},
		{"2026-01-01", "2026-01-01", "2026-01-01", "2026-01-01"},
		{"2024-01-01", "2024-12-31", "2024-01-01", "2024-12-31"}, // 366 days, a leap year
		{"", "0001-01-05", "0001-01-01", "0001-01-05"},
	}
	for _, tt := range tests {
		sum, err := newTestService(&fakeReader{}).Summary(context.Background(), tt.from, tt.to)
		if err != nil || sum.From != tt.wantFrom || sum.To != tt.wantTo {
			t.Errorf("Summary(%q, %q) = %s..%s, %v; want %s..%s", tt.from, tt.to, sum.From, sum.To, err, tt.wantFrom, tt.wantTo)
		}
	}
}

func TestSummaryRefusesBadRanges(t *testing.T) {
	tests := []struct {
		from, to string
		fields   []string
	}{
		{"yesterday", "", []string{"from"}},
		{"", "2026-13-01", []string{"to"}},
		{"2026-02-30", "", []string{"from"}},
		{"2026-1-1", "", []string{"from"}},
		{"2026-01-01T00:00:00Z", "", []string{"from"}},
		{"bad", "worse", []string{"from", "to"}},
		{"2026-02-01", "2026-01-01", []string{"from"}},
		{"2026-04-01", "", []string{"from"}},
		{"2024-01-01", "2025-01-01", []string{"to"}}, // 367 days
		{"0001-01-01", "9999-12-31", []string{"to"}},
	}
	for _, tt := range tests {
		r := &fakeReader{}
		_, err := newTestService(r).Summary(context.Background(), tt.from, tt.to)
		e, ok := errs.As(err)
		if !errors.Is(err, errs.ErrValidation) || !ok {
			t.Errorf("Summary(%q, %q): err = %v, want a validation error", tt.from, tt.to, err)
			continue
		}
		var fields []string
		for _, f := range e.Fields {
			fields = append(fields, f.Field)
		}
		if !cmp.Equal(fields, tt.fields) {
			t.Errorf("Summary(%q, %q): fields %v, want %v", tt.from, tt.to, fields, tt.fields)
		}
		if r.calls != 0 {
			t.Errorf("Summary(%q, %q) read the database", tt.from, tt.to)
		}
	}
}

func TestSummaryTotalsAndDays(t *testing.T) {
	d1, d2, d3 := date(2026, 3, 1), date(2026, 3, 2), date(2026, 3, 3)
	r := &fakeReader{act: Activity{
		Signups:        []DayCount{{d1, 2}, {d3, 1}},
		Invoices:       []DayAmount{{d1, "EUR", 1, 1250}, {d1, "USD", 2, 2000}, {d2, "EUR", 1, 750}},
		Revenue:        []DayAmount{{d2, "EUR", 1, 1250}, {d2, "JPY", 1, 500}},
		FailedPayments: []DayAmount{{d3, "USD", 1, 990}},
	}}
	sum, err := newTestService(r).Summary(context.Background(), "2026-03-01", "2026-03-31")
	if err != nil {
		t.Fatal(err)
	}
	none := []reportingapi.CurrencyCount{}
	want := reportingapi.Summary{
		From: "2026-03-01", To: "2026-03-31", Signups: 3,
		Invoices:       []reportingapi.CurrencyCount{cc("EUR", 2, 2000), cc("USD", 2, 2000)},
		Revenue:        []reportingapi.CurrencyRevenue{cr("EUR", 1, 1250), cr("JPY", 1, 500)},
		FailedPayments: []reportingapi.CurrencyCount{cc("USD", 1, 990)},
		Days: []reportingapi.Day{
			{Day: "2026-03-01", Signups: 2, Invoices: []reportingapi.CurrencyCount{cc("EUR", 1, 1250), cc("USD", 2, 2000)},
				Revenue: []reportingapi.CurrencyRevenue{}, FailedPayments: none},
			{Day: "2026-03-02", Invoices: []reportingapi.CurrencyCount{cc("EUR", 1, 750)},
				Revenue: []reportingapi.CurrencyRevenue{cr("EUR", 1, 1250), cr("JPY", 1, 500)}, FailedPayments: none},
			{Day: "2026-03-03", Signups: 1, Invoices: none, Revenue: []reportingapi.CurrencyRevenue{},
				FailedPayments: []reportingapi.CurrencyCount{cc("USD", 1, 990)}},
		},
	}
	if diff := cmp.Diff(want, sum); diff != "" {
		t.Errorf("summary (-want +got):\n%s", diff)
	}
}

func cc(currency string, count, amount int64) reportingapi.CurrencyCount {
	return reportingapi.CurrencyCount{Currency: currency, Count: count, AmountMinor: amount}
}

func cr(currency string, payments, amount int64) reportingapi.CurrencyRevenue {
	return reportingapi.CurrencyRevenue{Currency: currency, Payments: payments, AmountMinor: amount}
}

func TestSummaryOverflowIsAnError(t *testing.T) {
	r := &fakeReader{act: Activity{Revenue: []DayAmount{
		{date(2026, 3, 1), "EUR", 1, math.MaxInt64}, {date(2026, 3, 2), "EUR", 1, 1}}}}
	if _, err := newTestService(r).Summary(context.Background(), "2026-03-01", "2026-03-02"); !errors.Is(err, errOverflow) {
		t.Fatalf("err = %v, want errOverflow", err)
	}
}
