package fault

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/seamkit/seam/test/harness"
)

const (
	adminEmail    = "admin@fault.test"
	adminPassword = "admin-password-for-fault-tests"
)

// soak is the multiplier SEAM_SOAK applies to the sizes of the load tests (`make soak`); 1 by default.
func soak() int {
	n, err := strconv.Atoi(os.Getenv("SEAM_SOAK"))
	if err != nil || n < 1 {
		return 1
	}
	return n
}

// startSeam runs the monolith on dataDir (fresh when empty) with a known admin, the failpoints spec and
// extra SEAM_* settings.
func startSeam(t *testing.T, dataDir, failpoints string, env ...string) *harness.Process {
	t.Helper()
	if testing.Short() {
		t.Skip("fault test: skipped with -short")
	}
	all := []string{"SEAM_LOG_LEVEL=warn", "SEAM_AUTH_ADMIN_EMAIL=" + adminEmail, "SEAM_AUTH_ADMIN_PASSWORD=" + adminPassword}
	if failpoints != "" {
		all = append(all, "SEAM_FAILPOINTS="+failpoints)
	}
	all = append(all, env...)
	if dataDir == "" {
		dataDir = harness.DataDir(t)
	}
	return harness.Start(t, harness.Options{Binary: harness.Build(t, "./cmd/monolith"), DataDir: dataDir, Env: all})
}

// waitExit waits up to timeout for p to exit (a failpoint's kill, a signal) and returns its exit code.
func waitExit(t *testing.T, p *harness.Process, timeout time.Duration) int {
	t.Helper()
	code := make(chan int, 1)
	go func() { code <- p.ExitCode() }()
	select {
	case c := <-code:
		return c
	case <-time.After(timeout):
		t.Fatalf("the process did not exit within %s:\n%s", timeout, tail(p.Logs()))
		return 0
	}
}

func tail(logs string) string {
	if len(logs) > 4000 {
		return "…" + logs[len(logs)-4000:]
	}
	return logs
}

// raw is an HTTP client for load: it reports transport failures instead of failing the test.
type raw struct {
	base string
	http *http.Client
}

func newRaw(base string) *raw {
	return &raw{base: base, http: &http.Client{Timeout: 30 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
}

// do sends a JSON request and returns the status and body, or the transport error.
func (r *raw) do(ctx context.Context, method, path, token string, body any, header map[string]string) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, r.base+path, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := r.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, err
	}
	return resp.StatusCode, data, nil
}

// callErr describes a call that failed in transport (err) or with an unexpected status.
func callErr(what string, status int, body []byte, err error) error {
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return fmt.Errorf("%s: status %d: %s", what, status, body)
}

// get decodes a 200 answer to GET path into v.
func (r *raw) get(ctx context.Context, path, token string, v any) error {
	status, body, err := r.do(ctx, http.MethodGet, path, token, nil, nil)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("GET %s: status %d: %s", path, status, body)
	}
	return json.Unmarshal(body, v)
}

// adminToken signs in as the admin of p.
func adminToken(t *testing.T, p *harness.Process) string {
	t.Helper()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	resp := harness.NewClient(t, p.BaseURL).Do(harness.Request{Method: "POST", Path: "/api/auth/login",
		Body: map[string]string{"email": adminEmail, "password": adminPassword}})
	if resp.Status != http.StatusOK {
		t.Fatalf("admin login: %d %s", resp.Status, resp.Body)
	}
	resp.JSON(t, &tok)
	return tok.AccessToken
}

type currencyTotal struct {
	Currency    string `json:"currency"`
	Count       int64  `json:"count"`
	Payments    int64  `json:"payments"`
	AmountMinor int64  `json:"amount_minor"`
}

type summary struct {
	Signups  int64           `json:"signups"`
	Invoices []currencyTotal `json:"invoices"`
	Revenue  []currencyTotal `json:"revenue"`
}

func totalFor(list []currencyTotal, currency string) currencyTotal {
	for _, c := range list {
		if c.Currency == currency {
			return c
		}
	}
	return currencyTotal{Currency: currency}
}

func (r *raw) summary(ctx context.Context, admin string) (summary, error) {
	var s summary
	err := r.get(ctx, "/api/reports/summary", admin, &s)
	return s, err
}

// user is a signed-in account used by a load test, with the invoices made for it.
type user struct {
	email, id, token string
	invoices         []string
}

// newUsers signs up n users with perUser EUR invoices each (amounts avoid the simulated provider's outage
// amounts, which end in 13), using a few goroutines.
func newUsers(t *testing.T, p *harness.Process, prefix string, n, perUser int) []*user {
	t.Helper()
	users := make([]*user, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 8)
	for i := range users {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			u, err := makeUser(t.Context(), newRaw(p.BaseURL), fmt.Sprintf("%s-%d-%d@fault.test", prefix, time.Now().UnixNano(), i), perUser)
			users[i] = u
			if err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	return users
}

func makeUser(ctx context.Context, r *raw, email string, perUser int) (*user, error) {
	cred := map[string]string{"email": email, "password": password}
	status, body, err := r.do(ctx, http.MethodPost, "/api/auth/signup", "", cred, nil)
	if err != nil || status != http.StatusCreated {
		return nil, callErr("signup "+email, status, body, err)
	}
	u := &user{email: email}
	var created struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(body, &created); err != nil {
		return nil, err
	}
	u.id = created.ID
	status, body, err = r.do(ctx, http.MethodPost, "/api/auth/login", "", cred, nil)
	if err != nil || status != http.StatusOK {
		return nil, callErr("login "+email, status, body, err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(body, &tok); err != nil {
		return nil, err
	}
	u.token = tok.AccessToken
	for i := range perUser {
		amount := 1000 + 2*i // even: never ends in 13
		status, body, err := r.do(ctx, http.MethodPost, "/api/billing/invoices", u.token,
			map[string]any{"amount_minor": amount, "currency": "EUR", "description": "fault test"}, nil)
		if err != nil || status != http.StatusCreated {
			return nil, callErr("invoice for "+email, status, body, err)
		}
		var inv struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(body, &inv); err != nil {
			return nil, err
		}
		u.invoices = append(u.invoices, inv.ID)
	}
	return u, nil
}

// relogin signs u in again on r (after a restart tokens stay valid, but a fresh one costs nothing).
func (u *user) relogin(ctx context.Context, r *raw) error {
	status, body, err := r.do(ctx, http.MethodPost, "/api/auth/login", "",
		map[string]string{"email": u.email, "password": password}, nil)
	if err != nil || status != http.StatusOK {
		return callErr("login "+u.email, status, body, err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(body, &tok); err != nil {
		return err
	}
	u.token = tok.AccessToken
	return nil
}

// paidInvoices returns u's invoices by status.
func (u *user) invoiceStatuses(ctx context.Context, r *raw) (map[string]string, error) {
	var out struct {
		Invoices []struct {
			ID     string `json:"id"`
			Status string `json:"status"`
		} `json:"invoices"`
	}
	if err := r.get(ctx, "/api/billing/invoices?limit=100", u.token, &out); err != nil {
		return nil, err
	}
	st := make(map[string]string, len(out.Invoices))
	for _, inv := range out.Invoices {
		st[inv.ID] = inv.Status
	}
	return st, nil
}

// templates counts u's notifications by template.
func (u *user) templates(ctx context.Context, r *raw) (map[string]int, error) {
	var out struct {
		Notifications []struct {
			Template string `json:"template"`
		} `json:"notifications"`
	}
	if err := r.get(ctx, "/api/notifications?limit=100", u.token, &out); err != nil {
		return nil, err
	}
	counts := map[string]int{}
	for _, n := range out.Notifications {
		counts[n.Template]++
	}
	return counts, nil
}

// outcome is what a load test counts: requests made, acknowledged (2xx), and after recovery the effects
// lost (acknowledged, or committed, without their effect), duplicated (an effect twice) and unknown
// (unacknowledged requests whose outcome the client cannot know; each had zero or one effect).
type outcome struct {
	Operations, Acknowledged, Lost, Duplicated, Unknown, UnknownApplied int
}

func (o outcome) String() string {
	return fmt.Sprintf("operations=%d acknowledged=%d lost=%d duplicated=%d unknown=%d (applied %d)",
		o.Operations, o.Acknowledged, o.Lost, o.Duplicated, o.Unknown, o.UnknownApplied)
}

// checkPayments waits (up to deadline) for every paid invoice's effects downstream, then counts: an
// acknowledged payment whose invoice is not paid is lost; a user with more payment notifications than paid
// invoices, or a report with more payments than paid invoices, has duplicates; a paid invoice without its
// notification or report increment is lost.
func checkPayments(t *testing.T, p *harness.Process, users []*user, acked map[string]bool) outcome {
	t.Helper()
	ctx := t.Context()
	r := newRaw(p.BaseURL)
	admin := adminToken(t, p)
	for _, u := range users {
		if err := u.relogin(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	var o outcome
	var lastErr error
	end := time.Now().Add(time.Duration(soak()) * deadline)
	for {
		o = outcome{}
		paidTotal, notified, dupNotified := 0, 0, 0
		var amount int64
		lastErr = nil
		for _, u := range users {
			st, err := u.invoiceStatuses(ctx, r)
			if err != nil {
				lastErr = err
				break
			}
			paid := 0
			for i, id := range u.invoices {
				o.Operations++
				isPaid := st[id] == "paid"
				if isPaid {
					paid++
					amount += int64(1000 + 2*i)
				}
				switch {
				case acked[id]:
					o.Acknowledged++
					if !isPaid {
						o.Lost++
					}
				default:
					o.Unknown++
					if isPaid {
						o.UnknownApplied++
					}
				}
			}
			paidTotal += paid
			tm, err := u.templates(ctx, r)
			if err != nil {
				lastErr = err
				break
			}
			notified += min(tm["payment_received"], paid)
			dupNotified += max(tm["payment_received"]-paid, 0)
		}
		var reported currencyTotal
		if lastErr == nil {
			s, err := r.summary(ctx, admin)
			lastErr = err
			reported = totalFor(s.Revenue, "EUR")
		}
		if lastErr == nil {
			missing := (paidTotal - notified) + max(int(int64(paidTotal)-reported.Payments), 0)
			o.Duplicated = dupNotified + max(int(reported.Payments-int64(paidTotal)), 0)
			if reported.Payments == int64(paidTotal) && reported.AmountMinor != amount {
				lastErr = fmt.Errorf("report revenue %d, paid invoices sum to %d", reported.AmountMinor, amount)
			}
			if (missing == 0 && lastErr == nil) || time.Now().After(end) {
				o.Lost += missing
				break
			}
		}
		if time.Now().After(end) {
			t.Fatalf("counting the outcome: %v", lastErr)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if lastErr != nil {
		t.Error(lastErr)
	}
	return o
}

// crashAfterPayment pays an invoice on a process whose failpoints kill it on the way of the payment's
// events, restarts it on the same data directory, pays once more, and checks every payment had exactly one
// effect downstream: one paid invoice, one notification, one report increment.
func crashAfterPayment(t *testing.T, failpoints string) outcome {
	t.Helper()
	dataDir := harness.DataDir(t)
	p := startSeam(t, dataDir, "")
	users := newUsers(t, p, "crash", 1, 3)
	u := users[0]
	r := newRaw(p.BaseURL)
	acked := map[string]bool{}
	pay := func(r *raw, i int) error {
		status, body, err := r.do(t.Context(), http.MethodPost, "/api/billing/invoices/"+u.invoices[i]+"/pay", u.token,
			map[string]string{"payment_method": "pm_card_visa"}, map[string]string{"Idempotency-Key": u.invoices[i]})
		if err == nil && status == http.StatusOK {
			acked[u.invoices[i]] = true
			return nil
		}
		return fmt.Errorf("pay: %d %s %w", status, body, err)
	}
	if err := pay(r, 0); err != nil {
		t.Fatal(err)
	}
	// Let the first payment settle downstream; invoice 1 and 2 are not paid yet, so they count as unknown.
	if o := checkPayments(t, p, users, acked); o.Lost+o.Duplicated != 0 {
		t.Fatalf("before the crash: %s", o)
	}
	p.Stop()

	crashing := startSeam(t, dataDir, failpoints)
	if err := pay(newRaw(crashing.BaseURL), 1); err != nil {
		t.Logf("the crashing payment got no answer: %v", err)
	}
	waitExit(t, crashing, deadline)

	restarted := startSeam(t, dataDir, "")
	if err := u.relogin(t.Context(), newRaw(restarted.BaseURL)); err != nil {
		t.Fatal(err)
	}
	if err := pay(newRaw(restarted.BaseURL), 2); err != nil {
		t.Fatal(err)
	}
	o := checkPayments(t, restarted, users, acked)
	if o.Lost != 0 || o.Duplicated != 0 || o.UnknownApplied != o.Unknown {
		t.Fatalf("after the crash and restart: %s; want nothing lost or duplicated and the crashed payment applied", o)
	}
	// Every effect is there, but the event the crash left unacknowledged may still be on its way back (it is
	// redelivered after the consumer's ack wait): wait until every consumer has acknowledged everything, then
	// count again, so a redelivery applied twice would show.
	settleConsumers(t, restarted)
	if again := checkPayments(t, restarted, users, acked); again != o {
		t.Fatalf("after every consumer acknowledged its events: %s, before: %s", again, o)
	}
	return o
}

// settleConsumers waits until every durable consumer of p has been delivered every event of its stream and
// has acknowledged them all.
func settleConsumers(t *testing.T, p *harness.Process) {
	t.Helper()
	admin := adminToken(t, p)
	r := newRaw(p.BaseURL)
	harness.Wait(t, time.Duration(soak())*deadline, "every consumer to acknowledge its events", func(ctx context.Context) (bool, error) {
		status, body, err := r.do(ctx, http.MethodGet, "/api/admin/consumers", admin, nil, nil)
		if err != nil {
			return false, fmt.Errorf("GET /api/admin/consumers: %w", err)
		}
		if status != http.StatusOK {
			return false, fmt.Errorf("GET /api/admin/consumers: status %d", status)
		}
		var out struct {
			Consumers []struct {
				Consumer   string `json:"consumer"`
				Pending    uint64 `json:"pending"`
				AckPending int    `json:"ack_pending"`
			} `json:"consumers"`
		}
		if err := json.Unmarshal(body, &out); err != nil {
			return false, err
		}
		for _, c := range out.Consumers {
			if c.Pending != 0 || c.AckPending != 0 {
				return false, fmt.Errorf("consumer %s: %d pending, %d unacknowledged", c.Consumer, c.Pending, c.AckPending)
			}
		}
		return len(out.Consumers) > 0, nil
	})
}

// payment is one request of a load test: which invoice, when a worker sent it, and how it ended.
type payment struct {
	user    *user
	invoice string
	sentAt  time.Time
	status  int
	body    []byte
	err     error
}

// payAll pays every invoice of users from workers goroutines at one request per interval, calling
// midway (once half the requests are sent) from the sending goroutine and answered (when not nil) as each
// request ends. It returns every request's outcome.
func payAll(ctx context.Context, base string, users []*user, workers int, interval time.Duration, midway func(),
	answered func(*payment)) []*payment {
	var all []*payment
	for _, u := range users {
		for _, id := range u.invoices {
			all = append(all, &payment{user: u, invoice: id})
		}
	}
	// Interleave the users so each moment has many aggregates in flight.
	for i := range all {
		j := (i * 7919) % len(all)
		all[i], all[j] = all[j], all[i]
	}
	jobs := make(chan *payment)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			r := newRaw(base)
			for p := range jobs {
				p.sentAt = time.Now()
				p.status, p.body, p.err = r.do(ctx, http.MethodPost, "/api/billing/invoices/"+p.invoice+"/pay", p.user.token,
					map[string]string{"payment_method": "pm_card_visa"}, map[string]string{"Idempotency-Key": p.invoice})
				if answered != nil {
					answered(p)
				}
			}
		})
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for i, p := range all {
		if i == len(all)/2 && midway != nil {
			midway()
		}
		<-tick.C
		jobs <- p
	}
	close(jobs)
	wg.Wait()
	return all
}

// acknowledged returns the invoices whose payment was answered 200.
func acknowledged(ps []*payment) map[string]bool {
	acked := map[string]bool{}
	for _, p := range ps {
		if p.err == nil && p.status == http.StatusOK {
			acked[p.invoice] = true
		}
	}
	return acked
}
