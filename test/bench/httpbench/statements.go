package httpbench

import (
	"fmt"
	"strings"
	"time"

	"github.com/seamkit/seam/test/bench/cluster"
	"github.com/seamkit/seam/test/bench/report"
	"github.com/seamkit/seam/test/bench/stats"
)

// Share is whose work a statement is, for dividing PostgreSQL's execution time among them.
type Share int

// The shares, in table order.
const (
	// RequestPath is billing's and auth's statements, which the HTTP requests run (the outbox INSERT
	// included: the bare handler runs it too).
	RequestPath Share = iota
	// ConsumersWork is the notifications and reporting modules' own statements, run for billing's events.
	ConsumersWork
	// SeamEvents is Seam's machinery around events and in the background: inbox records, the relay's reads,
	// sent marks and locks, and the polls of sagas and routes.
	SeamEvents
	// TransactionControl is BEGIN, COMMIT, ROLLBACK and savepoints.
	TransactionControl
	shareCount
)

var shareLabels = [shareCount]string{
	RequestPath:        "request path (billing's and auth's SQL, the outbox INSERT)",
	ConsumersWork:      "consumers' work (notifications' and reporting's SQL)",
	SeamEvents:         "Seam's relay, inbox and polls",
	TransactionControl: "transaction control (BEGIN, COMMIT)",
}

// seamMarkers are what Seam's own statements name: its inbox and outbox tables (an outbox INSERT aside),
// its locks, and the tables its background loops poll.
var seamMarkers = []string{"inbox", "outbox", "advisory_xact_lock", "lock_timeout", "sagas", "route_", "dead_letter"}

// shareOf says whose work the statement q is.
func shareOf(q string) Share {
	lq := strings.ToLower(strings.TrimSpace(q))
	for _, kw := range []string{"begin", "commit", "rollback", "savepoint", "release"} {
		if strings.HasPrefix(lq, kw) {
			return TransactionControl
		}
	}
	if strings.HasPrefix(lq, "insert into") && strings.Contains(lq, "outbox") {
		return RequestPath
	}
	for _, m := range seamMarkers {
		if strings.Contains(lq, m) {
			return SeamEvents
		}
	}
	if strings.Contains(lq, "notifications.") || strings.Contains(lq, "reporting.") {
		return ConsumersWork
	}
	return RequestPath
}

// Statements is PostgreSQL's execution time per request (or flow) in one run, divided among the shares.
type Statements struct {
	// Exec is each share's execution time per request; Calls its statements per request.
	Exec  [shareCount]time.Duration
	Calls [shareCount]float64
}

// statementsPer divides stmts, less the benchmark's own settle query, among the shares, per one of n requests.
func statementsPer(stmts []cluster.Statement, n float64) *Statements {
	if len(stmts) == 0 || n <= 0 {
		return nil
	}
	var st Statements
	for _, s := range stmts {
		if s.Query == settleQuery {
			continue
		}
		sh := shareOf(s.Query)
		st.Exec[sh] += time.Duration(float64(s.Exec) / n)
		st.Calls[sh] += float64(s.Calls) / n
	}
	return &st
}

// statementMedians are dep's medians in scenario s of each share's execution time per request and of their
// sum, in µs; ok is false when the server counted no statements.
func (f Figures) statementMedians(dep string, s Scenario) (shares [shareCount]float64, total, calls float64, ok bool) {
	var exec [shareCount][]float64
	var totals, counts []float64
	for _, c := range f.Capacity[dep][s] {
		if c.Statements == nil {
			continue
		}
		var sum, n float64
		for sh := range shareCount {
			exec[sh] = append(exec[sh], report.Micros(c.Statements.Exec[sh]))
			sum += report.Micros(c.Statements.Exec[sh])
			n += c.Statements.Calls[sh]
		}
		totals, counts = append(totals, sum), append(counts, n)
	}
	if len(totals) == 0 {
		return shares, 0, 0, false
	}
	for sh := range shareCount {
		shares[sh] = stats.Median(exec[sh])
	}
	return shares, stats.Median(totals), stats.Median(counts), true
}

// statementsSummary compares the monolith's and the bare handler's execution time per request in scenario s,
// share by share; empty when the server counted no statements.
func (f Figures) statementsSummary(s Scenario) string {
	mono, monoTotal, _, okM := f.statementMedians(Monolith, s)
	bare, bareTotal, _, okB := f.statementMedians(Bare, s)
	if !okM || !okB {
		return ""
	}
	var parts []string
	for sh := range shareCount {
		parts = append(parts, fmt.Sprintf("%s %s against %s", shareLabels[sh], report.Num(mono[sh]), report.Num(bare[sh])))
	}
	return fmt.Sprintf(" PostgreSQL spent %s µs executing the monolith's statements per %s against %s µs for the bare "+
		"handler's (pg_stat_statements; µs, the monolith's first): %s.", report.Num(monoTotal), s, report.Num(bareTotal),
		strings.Join(parts, "; "))
}

// statementsTable shows, for scenario s, each deployment's medians of PostgreSQL's execution time per
// request by share; nil when the server counted no statements.
func (f Figures) statementsTable(s Scenario) *report.Table {
	t := report.Table{Header: []string{"deployment"}}
	for _, label := range shareLabels {
		t.Header = append(t.Header, label)
	}
	t.Header = append(t.Header, "in all", "statements")
	for _, dep := range deployments {
		shares, total, calls, ok := f.statementMedians(dep, s)
		if !ok {
			return nil
		}
		row := []string{deploymentLabels[dep]}
		for _, v := range shares {
			row = append(row, report.Num(v))
		}
		t.Rows = append(t.Rows, append(row, report.Num(total), report.Num(calls)))
	}
	t.Caption = fmt.Sprintf("PostgreSQL's execution time per %s in µs, by whose statements they are (pg_stat_statements "+
		"over the closed-loop runs and the wait for their events to settle; medians), and the statements per %s.", s, s)
	return &t
}
