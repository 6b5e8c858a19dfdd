package fault

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seamkit/seam/platform/pgserver"
	"github.com/seamkit/seam/test/harness"
)

// TestPostgresRestartUnderLoad is fault test 6 (docs/reliability.md): the monolith runs on an external
// PostgreSQL, which is stopped midway through payments sent at a steady rate and started again once requests
// have failed against it. Requests during the outage get 503 problem+json (code "unavailable", no driver
// detail), never 500; nothing acknowledged is lost or applied twice; the relays and consumers resume on their
// own.
func TestPostgresRestartUnderLoad(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("fault test: skipped with -short")
	}
	ctx := t.Context()
	pgDir := filepath.Join(harness.DataDir(t), "external-pg")
	pg, err := pgserver.Start(ctx, pgserver.Options{Dir: pgDir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pg.Stop(context.Background()) })
	p := startSeam(t, "", "", "SEAM_DATABASE_URL="+pg.URL("postgres"), "SEAM_DATABASE_CONNECT_TIMEOUT=1s")
	users := newUsers(t, p, "pg", 10*soak(), 10)

	// The outage: stop the server, keep it down until a few requests have failed against it, then start it
	// again on the same directory and port.
	var unavailable atomic.Int64
	outage := make(chan error, 1)
	var outageFrom, outageTo time.Time
	countUnavailable := func(pm *payment) {
		if pm.err == nil && pm.status == http.StatusServiceUnavailable {
			unavailable.Add(1)
		}
	}
	all := payAll(ctx, p.BaseURL, users, 4, 20*time.Millisecond, func() {
		go func() {
			outageFrom = time.Now()
			if err := pg.Stop(ctx); err != nil {
				outage <- err
				return
			}
			for unavailable.Load() < 5 && time.Since(outageFrom) < deadline {
				time.Sleep(10 * time.Millisecond)
			}
			var err error
			pg, err = pgserver.Start(ctx, pgserver.Options{Dir: pgDir})
			outageTo = time.Now()
			outage <- err
		}()
	}, countUnavailable)
	if err := <-outage; err != nil {
		t.Fatalf("restarting PostgreSQL: %v", err)
	}
	t.Logf("PostgreSQL was down for %s", outageTo.Sub(outageFrom).Round(time.Millisecond))

	var fiveHundreds, problems int
	for _, pm := range all {
		if pm.err != nil || pm.status < 500 {
			continue
		}
		var prob struct {
			Code string `json:"code"`
		}
		if pm.status != http.StatusServiceUnavailable || json.Unmarshal(pm.body, &prob) != nil ||
			(prob.Code != "unavailable" && prob.Code != "timeout") || strings.Contains(string(pm.body), "SQLSTATE") {
			fiveHundreds++
			t.Logf("answer during the outage: %d %s", pm.status, pm.body)
			continue
		}
		problems++
	}
	o := checkPayments(t, p, users, acknowledged(all))
	t.Logf("fault 6 (PostgreSQL restarted under load): %s; %d answered 503 problem+json, %d other 5xx",
		o, problems, fiveHundreds)
	if o.Lost != 0 || o.Duplicated != 0 || fiveHundreds != 0 || problems == 0 {
		t.Fatalf("PostgreSQL restart: %s, %d 503 problems, %d other 5xx; want nothing lost or duplicated, only 503s",
			o, problems, fiveHundreds)
	}
}
