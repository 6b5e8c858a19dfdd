// Package rollout moves a module between the monolith and its extracted process while traffic flows: the
// seeds scenario (0% → 1% → 10% → 50% → 100% → 0% of billing with `seam rollout`, no request failing),
// and the automatic rollback when the extracted side fails.
package rollout

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seamkit/seam/test/deploy"
	"github.com/seamkit/seam/test/harness"
)

func TestMain(m *testing.M) {
	code := m.Run()
	harness.Cleanup()
	os.Exit(code)
}

const (
	adminEmail    = "admin@example.test"
	adminPassword = "admin-password-for-tests"
	userPassword  = "correct horse battery"
)

// start runs d with the test settings every process shares (plus extra) and returns its gateway.
func start(t *testing.T, d deploy.Deployment, extra ...string) *harness.Process {
	t.Helper()
	if testing.Short() {
		t.Skip("rollout test: skipped with -short")
	}
	seed := make([]byte, 32)
	for i := range seed {
		seed[i] = byte(i * 7)
	}
	env := append([]string{
		"SEAM_AUTH_ADMIN_EMAIL=" + adminEmail,
		"SEAM_AUTH_ADMIN_PASSWORD=" + adminPassword,
		"SEAM_AUTH_SIGNING_KEY_SEED=" + base64.StdEncoding.EncodeToString(seed),
		"SEAM_LOG_LEVEL=warn",
	}, extra...)
	return deploy.Start(t, d, env)
}

// client calls a process over HTTP from any goroutine: failures are returned, never fatal.
type client struct {
	base string
	http *http.Client
}

func newClient(base string) *client {
	return &client{base: base, http: &http.Client{Timeout: 30 * time.Second}}
}

// do sends method path with body (JSON-encoded unless nil) and returns the status and body.
func (c *client) do(method, path, token string, body any, header map[string]string) (int, []byte, error) {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, r)
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
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(resp.Body)
	return resp.StatusCode, data, err
}

// must is do for the test goroutine: any other status than want fails the test; the body is decoded into
// out when out is not nil.
func (c *client) must(t *testing.T, method, path, token string, body any, want int, out any) {
	t.Helper()
	status, data, err := c.do(method, path, token, body, nil)
	if err != nil || status != want {
		t.Fatalf("%s %s: %d %v; want %d; body %s", method, path, status, err, want, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: %v; body %s", method, path, err, data)
		}
	}
}

func (c *client) login(t *testing.T, email, password string) string {
	t.Helper()
	var out struct {
		AccessToken string `json:"access_token"`
	}
	c.must(t, "POST", "/api/auth/login", "", map[string]string{"email": email, "password": password}, http.StatusOK, &out)
	return out.AccessToken
}

// users signs up and logs in n users, four at a time, returning their tokens.
func (c *client) users(t *testing.T, n int) []string {
	t.Helper()
	tokens := make([]string, n)
	var wg sync.WaitGroup
	var failed atomic.Value
	sem := make(chan struct{}, 4)
	stamp := time.Now().UnixNano()
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			email := fmt.Sprintf("user-%d-%d@example.test", stamp, i)
			creds := map[string]string{"email": email, "password": userPassword}
			if status, body, err := c.do("POST", "/api/auth/signup", "", creds, nil); err != nil || status != http.StatusCreated {
				failed.Store(fmt.Sprintf("signup %s: %d %v %s", email, status, err, body))
				return
			}
			status, body, err := c.do("POST", "/api/auth/login", "", creds, nil)
			var out struct {
				AccessToken string `json:"access_token"`
			}
			if err != nil || status != http.StatusOK || json.Unmarshal(body, &out) != nil {
				failed.Store(fmt.Sprintf("login %s: %d %v %s", email, status, err, body))
				return
			}
			tokens[i] = out.AccessToken
		}()
	}
	wg.Wait()
	if f := failed.Load(); f != nil {
		t.Fatal(f)
	}
	return tokens
}

// failure is one request of the load that did not get the answer it expected.
type failure struct {
	at     time.Time
	what   string
	status int
	body   string
}

// load sends billing requests for the users in tokens at a steady rate until stopped: list invoices,
// create one, read it back, pay it with an Idempotency-Key. Every answer other than the expected one is a
// failure.
type load struct {
	c       *client
	tokens  []string
	stop    chan struct{}
	stopped sync.Once
	done    sync.WaitGroup
	sent    atomic.Int64

	mu       sync.Mutex
	failures []failure
}

// startLoad runs workers workers, each sending one request every interval.
func startLoad(c *client, tokens []string, workers int, interval time.Duration) *load {
	l := &load{c: c, tokens: tokens, stop: make(chan struct{})}
	for w := range workers {
		l.done.Add(1)
		go l.worker(w, workers, interval)
	}
	return l
}

func (l *load) fail(what string, status int, body []byte, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		body = []byte(err.Error())
	}
	l.failures = append(l.failures, failure{at: time.Now(), what: what, status: status, body: string(body)})
}

func (l *load) worker(w, workers int, interval time.Duration) {
	defer l.done.Done()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for i := w; ; i += workers {
		select {
		case <-l.stop:
			return
		case <-tick.C:
		}
		token := l.tokens[i%len(l.tokens)]
		switch (i / len(l.tokens)) % 3 {
		case 0:
			l.expect("list invoices", http.StatusOK, "GET", "/api/billing/invoices", token, nil, nil)
		case 1:
			var inv struct {
				ID string `json:"id"`
			}
			// Even amounts: the simulated provider fails those ending in 13 on purpose.
			body := map[string]any{"amount_minor": 2000 + 2*(i%100), "currency": "EUR", "description": "load"}
			if !l.expect("create invoice", http.StatusCreated, "POST", "/api/billing/invoices", token, body, &inv) {
				continue
			}
			if !l.expect("read invoice", http.StatusOK, "GET", "/api/billing/invoices/"+inv.ID, token, nil, nil) {
				continue
			}
			l.expectHeader("pay invoice", http.StatusOK, "POST", "/api/billing/invoices/"+inv.ID+"/pay", token,
				map[string]string{"payment_method": "pm_card_visa"}, map[string]string{"Idempotency-Key": "load-" + inv.ID})
		default:
			l.expect("list notifications", http.StatusOK, "GET", "/api/notifications", token, nil, nil)
		}
	}
}

func (l *load) expect(what string, want int, method, path, token string, body, out any) bool {
	return l.request(what, want, method, path, token, body, nil, out)
}

func (l *load) expectHeader(what string, want int, method, path, token string, body any, header map[string]string) bool {
	return l.request(what, want, method, path, token, body, header, nil)
}

func (l *load) request(what string, want int, method, path, token string, body any, header map[string]string, out any) bool {
	l.sent.Add(1)
	status, data, err := l.c.do(method, path, token, body, header)
	if err != nil || status != want {
		l.fail(what, status, data, err)
		return false
	}
	if out != nil && json.Unmarshal(data, out) != nil {
		l.fail(what+": bad JSON", status, data, nil)
		return false
	}
	return true
}

// end stops the load (if it runs) and returns its failures.
func (l *load) end() []failure {
	l.stopped.Do(func() { close(l.stop) })
	l.done.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.failures
}

// routed is a module's routing as GET /api/admin/routes/{module} returns it.
type routed struct {
	Percent float64 `json:"percent"`
	Methods []struct {
		Name   string `json:"name"`
		Local  counts `json:"local"`
		Remote counts `json:"remote"`
	} `json:"methods"`
}

type counts struct {
	Calls  uint64 `json:"calls"`
	Errors uint64 `json:"errors"`
}

// metric returns the value of the sample of name whose labels include every one of labels in the
// process's /metrics.
func metric(t *testing.T, c *client, name string, labels ...string) float64 {
	t.Helper()
	status, body, err := c.do("GET", "/metrics", "", nil, nil)
	if err != nil || status != http.StatusOK {
		t.Fatalf("GET /metrics: %d %v", status, err)
	}
	var total float64
	for line := range strings.Lines(string(body)) {
		if !strings.HasPrefix(line, name+"{") {
			continue
		}
		match := true
		for _, l := range labels {
			match = match && strings.Contains(line, l)
		}
		if !match {
			continue
		}
		var v float64
		if _, err := fmt.Sscan(line[strings.LastIndexByte(line, ' ')+1:], &v); err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		total += v
	}
	return total
}

// seam runs the seam CLI built from cmd/seam with args.
func seam(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(context.Background(), harness.Build(t, "./cmd/seam"), args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("seam %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}
