package httpbench

import (
	"testing"
	"time"

	"github.com/seamkit/seam/test/bench/cluster"
)

func TestShareOfNamesWhoseWorkAStatementIs(t *testing.T) {
	for _, c := range []struct {
		query string
		want  Share
	}{
		{"-- name: InsertPayment :exec\nINSERT INTO billing.payments (id, invoice_id) VALUES ($1, $2)", RequestPath},
		{`INSERT INTO "billing"."outbox" (id, subject, event_type, aggregate_key, payload, headers) VALUES ($1, $2, $3, $4, $5, $6)`, RequestPath},
		{"-- name: GetUserByID :one\nSELECT id, email FROM auth.users WHERE id = $1", RequestPath},
		{"-- name: InsertMessage :execrows\nINSERT INTO notifications.messages (id) VALUES ($1) ON CONFLICT (event_id) DO NOTHING", ConsumersWork},
		{"-- name: AddPayment :exec\nINSERT INTO reporting.revenue_daily AS r (day) VALUES ($1)", ConsumersWork},
		{`INSERT INTO "notifications"."inbox" (consumer, event_id, subject) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`, SeamEvents},
		{`UPDATE "billing"."outbox" SET sent_at = now() WHERE seq = ANY($1)`, SeamEvents},
		{"SELECT pg_try_advisory_xact_lock($1)", SeamEvents},
		{`SELECT id FROM "billing"."sagas" WHERE status IN ($1, $2) AND next_attempt_at <= now()`, SeamEvents},
		{"begin", TransactionControl},
		{"COMMIT", TransactionControl},
		{"SAVEPOINT inbox_event", TransactionControl},
	} {
		if got := shareOf(c.query); got != c.want {
			t.Errorf("shareOf(%q) = %s, want %s", c.query, shareLabels[got], shareLabels[c.want])
		}
	}
}

func TestStatementsPerDividesByRequestsAndLeavesOutTheSettleQuery(t *testing.T) {
	st := statementsPer([]cluster.Statement{
		{Query: "INSERT INTO billing.invoices (id) VALUES ($1)", Calls: 100, Exec: 50 * time.Millisecond},
		{Query: "SELECT * FROM auth.users WHERE id = $1", Calls: 100, Exec: 10 * time.Millisecond},
		{Query: `INSERT INTO "reporting"."inbox" (consumer, event_id, subject) VALUES ($1, $2, $3)`, Calls: 200, Exec: 20 * time.Millisecond},
		{Query: settleQuery, Calls: 7, Exec: time.Second},
	}, 100)
	if st == nil {
		t.Fatal("no statements")
	}
	if st.Exec[RequestPath] != 600*time.Microsecond || st.Calls[RequestPath] != 2 {
		t.Errorf("request path = %s, %.1f calls; want 600µs, 2", st.Exec[RequestPath], st.Calls[RequestPath])
	}
	if st.Exec[SeamEvents] != 200*time.Microsecond || st.Calls[SeamEvents] != 2 {
		t.Errorf("Seam's = %s, %.1f calls; want 200µs, 2", st.Exec[SeamEvents], st.Calls[SeamEvents])
	}
	if st.Exec[ConsumersWork] != 0 || st.Exec[TransactionControl] != 0 {
		t.Errorf("other shares = %v", st.Exec)
	}
	if statementsPer(nil, 100) != nil {
		t.Error("statementsPer(nil) is not nil")
	}
}
