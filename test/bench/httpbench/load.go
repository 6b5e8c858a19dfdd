// Package httpbench measures Seam end to end over HTTP on the reference application: an authenticated read
// (GET /api/billing/invoices) and the pay flow (create an invoice, then pay it with a fresh Idempotency-Key),
// at a constant arrival rate with latencies free of coordinated omission (vegeta's attacker) and at the
// maximum throughput of a closed loop, for the monolith, for every module extracted behind the monolith as
// gateway, and for a bare chi+pgx handler running the same SQL with the same token check.
package httpbench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/seamkit/seam/test/bench/cluster"
	"github.com/seamkit/seam/test/bench/stats"
)

// Scenario is one kind of request.
type Scenario string

// The scenarios.
const (
	// Read is GET /api/billing/invoices with a bearer token (each reader has seedInvoices invoices).
	Read Scenario = "read"
	// Pay is one pay flow: POST /api/billing/invoices, then POST .../pay with a fresh Idempotency-Key.
	Pay Scenario = "pay"
)

// Scenarios are measured in this order.
var Scenarios = []Scenario{Read, Pay}

// Target is a deployment under load.
type Target struct {
	// Name identifies the deployment.
	Name string
	// Client calls it.
	Client *cluster.Client
	// Readers and Payers are the tokens of the users each scenario uses.
	Readers, Payers []string
	// PIDs returns its processes, whose CPU time is measured.
	PIDs func() []int
	// Names name those processes, in the same order.
	Names []string
	// DatabaseURL is its database, watched for background work (events) to settle after a run; empty when
	// nothing runs in the background.
	DatabaseURL string
	// Database names its database, whose statements are counted.
	Database string
}

// flowPath is the pseudo path vegeta's pay targets carry; flowTransport turns each into a pay flow.
const flowPath = "/bench/pay-flow"

// payerHeader says which payer a pay target is for.
const payerHeader = "Bench-Payer"

// op returns worker's operation of scenario s on t.
func (t *Target) op(s Scenario, worker int) stats.Op {
	if s == Read {
		token := t.Readers[worker%len(t.Readers)]
		return func(ctx context.Context) error { return t.Client.ListInvoices(ctx, token) }
	}
	token := t.Payers[worker%len(t.Payers)]
	return func(ctx context.Context) error { return t.payFlow(ctx, token) }
}

func (t *Target) payFlow(ctx context.Context, token string) error {
	id, err := t.Client.CreateInvoice(ctx, token)
	if err != nil {
		return err
	}
	return t.Client.Pay(ctx, token, id, uuid.NewString())
}

// flowTransport performs a pay flow for each request vegeta sends to flowPath, and answers 200 when the
// flow succeeded (or the failing step's status).
type flowTransport struct{ t *Target }

// RoundTrip runs one pay flow.
func (f flowTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	i, err := strconv.Atoi(req.Header.Get(payerHeader))
	if err != nil {
		return nil, fmt.Errorf("httpbench: pay target without a payer: %w", err)
	}
	status := http.StatusOK
	err = f.t.payFlow(req.Context(), f.t.Payers[i%len(f.t.Payers)])
	var se *cluster.StatusError
	switch {
	case errors.As(err, &se):
		status = se.Status
	case err != nil:
		return nil, err
	}
	return &http.Response{StatusCode: status, Status: http.StatusText(status), Body: io.NopCloser(bytes.NewReader(nil)),
		Header: http.Header{}, Request: req, ProtoMajor: 1, ProtoMinor: 1}, nil
}

// targeter returns vegeta's targets for scenario s: reads rotate over the readers' tokens, pay flows over
// the payers.
func (t *Target) targeter(s Scenario) vegeta.Targeter {
	var n atomic.Uint64
	return func(tgt *vegeta.Target) error {
		i := int(n.Add(1))
		if s == Read {
			tgt.Method, tgt.URL = http.MethodGet, t.Client.BaseURL+"/api/billing/invoices"
			tgt.Header = http.Header{"Authorization": {"Bearer " + t.Readers[i%len(t.Readers)]}}
			return nil
		}
		tgt.Method, tgt.URL = http.MethodPost, t.Client.BaseURL+flowPath
		tgt.Header = http.Header{payerHeader: {strconv.Itoa(i)}}
		return nil
	}
}

// OpenLoop sends scenario s to t at rate per second for d with vegeta's attacker, which starts every request
// on schedule whatever the earlier ones are doing (more workers when they are all busy), so the latencies
// include the time a request would have waited behind slow ones: no coordinated omission.
func (t *Target) OpenLoop(s Scenario, rate int, d time.Duration) stats.Latencies {
	client := t.Client.HTTP
	if s == Pay {
		client = &http.Client{Transport: flowTransport{t: t}, Timeout: t.Client.HTTP.Timeout}
	}
	atk := vegeta.NewAttacker(vegeta.Client(client))
	var lat stats.Latencies
	start := time.Now()
	for res := range atk.Attack(t.targeter(s), vegeta.Rate{Freq: rate, Per: time.Second}, d, string(s)) {
		if res.Error != "" || res.Code != http.StatusOK {
			lat.Errors++
			if lat.FirstError == nil {
				lat.FirstError = fmt.Errorf("%s %s: status %d: %s", res.Method, res.URL, res.Code, res.Error)
			}
			continue
		}
		lat.Sorted = append(lat.Sorted, res.Latency)
	}
	lat.Elapsed = time.Since(start)
	slices.Sort(lat.Sorted)
	return lat
}

// ClosedLoop runs scenario s on t from workers clients, each sending its next request when the previous
// one answered, for d after warmup.
func (t *Target) ClosedLoop(ctx context.Context, s Scenario, workers int, warmup, d time.Duration) (stats.Latencies, error) {
	lat, err := stats.ClosedLoop(ctx, workers, warmup, d, func(w int) (stats.Op, error) { return t.op(s, w), nil })
	if err != nil {
		return stats.Latencies{}, fmt.Errorf("httpbench: %s %s: %w", t.Name, s, err)
	}
	return lat, nil
}
