package e2e

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/seamkit/seam/test/harness"
)

type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Code   string `json:"code"`
	Detail string `json:"detail"`
	Errors []struct {
		Field string `json:"field"`
	} `json:"errors"`
}

type badCase struct {
	name   string
	req    harness.Request
	status int
	code   string // expected problem code; "" accepts any
}

// checkProblems sends every case and checks the status and that the body is a problem+json document that
// leaks nothing internal.
func checkProblems(t *testing.T, a *api, cases []badCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := a.c.Do(tc.req)
			if resp.Status != tc.status {
				t.Fatalf("status %d, want %d; body %s", resp.Status, tc.status, resp.Body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
				t.Fatalf("content type %q, want application/problem+json; body %s", ct, resp.Body)
			}
			var p problem
			if err := json.Unmarshal(resp.Body, &p); err != nil {
				t.Fatalf("problem is not JSON: %s", resp.Body)
			}
			if p.Status != tc.status || p.Type == "" || p.Title == "" {
				t.Fatalf("incomplete problem: %s", resp.Body)
			}
			if tc.code != "" && p.Code != tc.code {
				t.Fatalf("code %q, want %q; body %s", p.Code, tc.code, resp.Body)
			}
			lower := strings.ToLower(string(resp.Body))
			for _, leak := range []string{"sql", "pgx", "goroutine", ".go:", "panic", "relation", "constraint"} {
				if strings.Contains(lower, leak) {
					t.Fatalf("problem leaks %q: %s", leak, resp.Body)
				}
			}
		})
	}
}

// TestBadInput sends malformed, incomplete, unauthorised and hostile requests to every endpoint; each gets
// the right status as problem+json, and afterwards nothing has changed.
func TestBadInput(t *testing.T) {
	t.Parallel()
	p := startMonolith(t, "")
	a := newAPI(t, p)

	alice := a.newUser("alice")
	bob := a.newUser("bob")
	aliceInv := a.createInvoice(alice.Token, 1000, "EUR")
	paidInv := a.createInvoice(alice.Token, 2000, "EUR")
	a.expect(payRequest(alice.Token, paidInv.ID, "paid-once", "pm_card_visa"), http.StatusOK)
	adminToken := a.login(adminEmail, adminPassword)
	tokens := forgedTokens(t, alice)

	big := `{"email":"x@example.test","password":"` + strings.Repeat("a", 2<<20) + `"}`
	post := func(path, token, body string) harness.Request {
		return harness.Request{Method: "POST", Path: path, Token: token, Body: body}
	}
	get := func(path, token string) harness.Request {
		return harness.Request{Method: "GET", Path: path, Token: token}
	}
	invoiceBody := func(amount, currency string) string {
		return `{"amount_minor":` + amount + `,"currency":"` + currency + `","description":"x"}`
	}
	cases := []badCase{
		// auth: signup
		{"signup malformed json", post("/api/auth/signup", "", `{"email":`), 400, "http.malformed_body"},
		{"signup unknown field", post("/api/auth/signup", "", `{"email":"n@example.test","password":"long enough pw","admin":true}`), 400, "http.malformed_body"},
		{"signup missing fields", post("/api/auth/signup", "", `{}`), 422, "validation_failed"},
		{"signup bad email", post("/api/auth/signup", "", `{"email":"not-an-email","password":"long enough pw"}`), 422, "validation_failed"},
		{"signup short password", post("/api/auth/signup", "", `{"email":"n@example.test","password":"short"}`), 422, "validation_failed"},
		{"signup wrong type", post("/api/auth/signup", "", `{"email":42,"password":"long enough pw"}`), 400, "http.malformed_body"},
		{"signup duplicate email", post("/api/auth/signup", "", `{"email":"`+strings.ToUpper(alice.Email)+`","password":"long enough pw"}`), 409, "auth.email_taken"},
		{"signup wrong content type", harness.Request{Method: "POST", Path: "/api/auth/signup", ContentType: "text/plain", Body: `{"email":"n@example.test","password":"long enough pw"}`}, 415, "http.unsupported_media_type"},
		{"signup oversized body", post("/api/auth/signup", "", big), 413, "http.body_too_large"},
		// auth: login
		{"login wrong password", post("/api/auth/login", "", `{"email":"`+bob.Email+`","password":"wrong password!"}`), 401, "auth.invalid_credentials"},
		{"login unknown email", post("/api/auth/login", "", `{"email":"nobody@example.test","password":"whatever123"}`), 401, "auth.invalid_credentials"},
		{"login malformed", post("/api/auth/login", "", `[]`), 400, "http.malformed_body"},
		// auth: tokens
		{"me without token", get("/api/auth/me", ""), 401, "auth.unauthenticated"},
		{"me basic auth", harness.Request{Method: "GET", Path: "/api/auth/me", Header: map[string]string{"Authorization": "Basic YTpi"}}, 401, ""},
		{"me garbage token", get("/api/auth/me", "not.a.token"), 401, "auth.invalid_token"},
		{"me expired token", get("/api/auth/me", tokens["expired"]), 401, "auth.invalid_token"},
		{"me tampered token", get("/api/auth/me", tokens["tampered"]), 401, "auth.invalid_token"},
		{"me wrong issuer", get("/api/auth/me", tokens["issuer"]), 401, "auth.invalid_token"},
		{"me wrong audience", get("/api/auth/me", tokens["audience"]), 401, "auth.invalid_token"},
		{"me alg none", get("/api/auth/me", tokens["none"]), 401, "auth.invalid_token"},
		{"me alg HS256 with public key", get("/api/auth/me", tokens["hs256"]), 401, "auth.invalid_token"},
		{"me unknown key", get("/api/auth/me", tokens["otherkey"]), 401, "auth.invalid_token"},
		// billing: create
		{"invoice anonymous", post("/api/billing/invoices", "", invoiceBody("100", "EUR")), 401, ""},
		{"invoice negative amount", post("/api/billing/invoices", alice.Token, invoiceBody("-5", "EUR")), 422, "validation_failed"},
		{"invoice zero amount", post("/api/billing/invoices", alice.Token, invoiceBody("0", "EUR")), 422, "validation_failed"},
		{"invoice absurd amount", post("/api/billing/invoices", alice.Token, invoiceBody("9000000000000000000", "EUR")), 422, "validation_failed"},
		{"invoice fractional amount", post("/api/billing/invoices", alice.Token, invoiceBody("12.5", "EUR")), 400, "http.malformed_body"},
		{"invoice amount overflow", post("/api/billing/invoices", alice.Token, invoiceBody("99999999999999999999", "EUR")), 400, "http.malformed_body"},
		{"invoice unknown currency", post("/api/billing/invoices", alice.Token, invoiceBody("100", "XYZ")), 422, "validation_failed"},
		{"invoice lower-case currency", post("/api/billing/invoices", alice.Token, invoiceBody("100", "eur")), 422, "validation_failed"},
		{"invoice missing fields", post("/api/billing/invoices", alice.Token, `{}`), 422, "validation_failed"},
		{"invoice unknown field", post("/api/billing/invoices", alice.Token, `{"amount_minor":1,"currency":"EUR","description":"x","status":"paid"}`), 400, "http.malformed_body"},
		{"invoice malformed", post("/api/billing/invoices", alice.Token, `{"amount_minor":1,`), 400, "http.malformed_body"},
		{"invoice wrong content type", harness.Request{Method: "POST", Path: "/api/billing/invoices", Token: alice.Token, ContentType: "application/x-www-form-urlencoded", Body: "amount_minor=1"}, 415, ""},
		{"invoice expired token", post("/api/billing/invoices", tokens["expired"], invoiceBody("100", "EUR")), 401, "auth.invalid_token"},
		// billing: read
		{"another user's invoice", get("/api/billing/invoices/"+aliceInv.ID, bob.Token), 404, "billing.invoice_not_found"},
		{"unknown invoice", get("/api/billing/invoices/00000000-0000-4000-8000-000000000000", alice.Token), 404, "billing.invoice_not_found"},
		{"non-uuid invoice id", get("/api/billing/invoices/'%20OR%201=1", alice.Token), 404, ""},
		{"invoices bad limit", get("/api/billing/invoices?limit=-1", alice.Token), 422, "validation_failed"},
		{"invoices anonymous", get("/api/billing/invoices", ""), 401, ""},
		// billing: pay
		{"pay without idempotency key", post("/api/billing/invoices/"+aliceInv.ID+"/pay", alice.Token, `{"payment_method":"pm_card_visa"}`), 400, "billing.idempotency_key_missing"},
		{"pay another user's invoice", payRequest(bob.Token, aliceInv.ID, "bob-steals", "pm_card_visa"), 404, "billing.invoice_not_found"},
		{"pay unknown payment method", payRequest(alice.Token, aliceInv.ID, "k-unknown-method", "pm_card_made_up"), 422, ""},
		{"pay already paid", payRequest(alice.Token, paidInv.ID, "k-again", "pm_card_visa"), 409, "billing.invoice_already_paid"},
		{"pay key reused with another body", payRequest(alice.Token, paidInv.ID, "paid-once", "pm_card_mastercard"), 422, "billing.idempotency_key_reused"},
		{"pay malformed body", harness.Request{Method: "POST", Path: "/api/billing/invoices/" + aliceInv.ID + "/pay", Token: alice.Token, Header: map[string]string{"Idempotency-Key": "k-malformed"}, Body: `{"payment_method":`}, 400, ""},
		{"pay anonymous", harness.Request{Method: "POST", Path: "/api/billing/invoices/" + aliceInv.ID + "/pay", Header: map[string]string{"Idempotency-Key": "k-anon"}, Body: `{"payment_method":"pm_card_visa"}`}, 401, ""},
		// notifications
		{"notifications anonymous", get("/api/notifications", ""), 401, ""},
		{"notifications tampered token", get("/api/notifications", tokens["tampered"]), 401, "auth.invalid_token"},
		{"notifications bad limit", get("/api/notifications?limit=1000000", alice.Token), 422, "validation_failed"},
		// reporting
		{"report anonymous", get("/api/reports/summary", ""), 401, ""},
		{"report as user", get("/api/reports/summary", alice.Token), 403, "auth.forbidden"},
		{"report bad date", get("/api/reports/summary?from=yesterday", adminToken), 422, "validation_failed"},
		{"report reversed range", get("/api/reports/summary?from=2026-02-01&to=2026-01-01", adminToken), 422, "validation_failed"},
		// routing
		{"unknown path", get("/api/nothing-here", ""), 404, "http.not_found"},
		{"wrong method", harness.Request{Method: "DELETE", Path: "/api/billing/invoices", Token: alice.Token}, 405, "http.method_not_allowed"},
	}
	cases = append(cases, everyEndpoint(alice, aliceInv.ID, tokens, big)...)

	// The setup's own effects settle first, so that what the bad requests could change is measured against a
	// still picture: the payment in the report, and all of alice's notifications (her welcome, her two
	// invoices' and the payment's), which come on their own consumers.
	const setupNotifications = 4
	harness.Wait(t, eventDeadline, "the setup's payment in the report and its notifications", func(context.Context) (bool, error) {
		return totalFor(a.summary(adminToken).Revenue, "EUR").Payments == 1 && len(a.notifications(alice.Token)) == setupNotifications, nil
	})
	notesBefore, reportBefore := a.notifications(alice.Token), a.summary(adminToken)
	checkProblems(t, a, cases)

	// Nothing changed: alice still has exactly her two invoices, with the unpaid one still open; bob has none;
	// no account was created for the rejected signups; alice's notifications and the report are as they were.
	invs := a.invoices(alice.Token)
	if len(invs) != 2 {
		t.Fatalf("alice has %d invoices after bad input, want 2: %+v", len(invs), invs)
	}
	for _, inv := range invs {
		if inv.ID == aliceInv.ID && inv.Status != "open" {
			t.Fatalf("the unpaid invoice changed: %+v", inv)
		}
	}
	if n := len(a.invoices(bob.Token)); n != 0 {
		t.Fatalf("bob has %d invoices, want 0", n)
	}
	a.expect(post("/api/auth/login", "", `{"email":"n@example.test","password":"long enough pw"}`), http.StatusUnauthorized)
	if notes := a.notifications(alice.Token); len(notes) != len(notesBefore) {
		t.Fatalf("alice has %d notifications after bad input, %d before", len(notes), len(notesBefore))
	}
	if report := a.summary(adminToken); !reflect.DeepEqual(report, reportBefore) {
		t.Fatalf("the report changed after bad input:\n%+v\nbefore:\n%+v", report, reportBefore)
	}
	// A declined card is a business answer, not bad input: 402 as problem+json, and the failed attempt is
	// recorded (so it runs after the checks above); the invoice stays open.
	checkProblems(t, a, []badCase{
		{"pay declined card", payRequest(alice.Token, aliceInv.ID, "k-declined", "pm_card_declined"), 402, "billing.payment_declined"},
	})
	for _, inv := range a.invoices(alice.Token) {
		if inv.ID == aliceInv.ID && inv.Status != "open" {
			t.Fatalf("the declined invoice is %s, want open", inv.Status)
		}
	}
}

// everyEndpoint is the bad input every authenticated endpoint must refuse alike: no token, each forged
// token, and, for those with a body, one over the size limit and one of another content type.
func everyEndpoint(alice user, invoiceID string, tokens map[string]string, big string) []badCase {
	endpoints := []struct {
		method, path, body string
		header             map[string]string
	}{
		{"GET", "/api/auth/me", "", nil},
		{"GET", "/api/billing/invoices", "", nil},
		{"POST", "/api/billing/invoices", `{"amount_minor":100,"currency":"EUR","description":"x"}`, nil},
		{"GET", "/api/billing/invoices/" + invoiceID, "", nil},
		{"POST", "/api/billing/invoices/" + invoiceID + "/pay", `{"payment_method":"pm_card_visa"}`, map[string]string{"Idempotency-Key": "k-every"}},
		{"POST", "/api/billing/plan-upgrade", `{"plan":"pro","payment_method":"pm_card_visa"}`, map[string]string{"Idempotency-Key": "k-every-plan"}},
		{"GET", "/api/notifications", "", nil},
		{"GET", "/api/reports/summary", "", nil},
	}
	forged := make([]string, 0, len(tokens))
	for name := range tokens {
		forged = append(forged, name)
	}
	sort.Strings(forged)
	var cases []badCase
	for _, e := range endpoints {
		req := func(token string) harness.Request {
			return harness.Request{Method: e.method, Path: e.path, Token: token, Header: e.header, Body: e.body}
		}
		cases = append(cases, badCase{e.method + " " + e.path + " anonymous", req(""), 401, ""})
		for _, name := range forged {
			cases = append(cases, badCase{e.method + " " + e.path + " " + name + " token", req(tokens[name]), 401, "auth.invalid_token"})
		}
		if e.body == "" {
			continue
		}
		oversized := req(alice.Token)
		oversized.Body = big
		cases = append(cases, badCase{e.method + " " + e.path + " oversized body", oversized, 413, "http.body_too_large"})
		wrongType := req(alice.Token)
		wrongType.ContentType = "text/plain"
		cases = append(cases, badCase{e.method + " " + e.path + " wrong content type", wrongType, 415, "http.unsupported_media_type"})
	}
	return cases
}

// TestLoginThrottling locks an account after repeated failures with 429 and Retry-After, while other
// accounts are unaffected and the answer never says whether the email exists.
func TestLoginThrottling(t *testing.T) {
	t.Parallel()
	p := startMonolith(t, "")
	a := newAPI(t, p)
	victim := a.newUser("victim")
	other := a.newUser("other")
	wrong := harness.Request{Method: "POST", Path: "/api/auth/login",
		Body: map[string]string{"email": victim.Email, "password": "not the password"}}
	var locked harness.Response
	for i := 0; i < 20; i++ {
		locked = a.c.Do(wrong)
		if locked.Status == http.StatusTooManyRequests {
			break
		}
		if locked.Status != http.StatusUnauthorized {
			t.Fatalf("attempt %d: status %d: %s", i, locked.Status, locked.Body)
		}
	}
	if locked.Status != http.StatusTooManyRequests || locked.Header.Get("Retry-After") == "" {
		t.Fatalf("no lockout after 20 failures: %d %v %s", locked.Status, locked.Header, locked.Body)
	}
	// Even the right password is refused while locked.
	a.expect(harness.Request{Method: "POST", Path: "/api/auth/login",
		Body: map[string]string{"email": victim.Email, "password": "correct horse battery"}}, http.StatusTooManyRequests)
	a.login(other.Email, "correct horse battery")
}

// forgedTokens mints tokens the server must refuse, using its own signing key where the point is
// something else (expiry, issuer, audience, algorithm).
func forgedTokens(t *testing.T, u user) map[string]string {
	t.Helper()
	header, _, ok := strings.Cut(u.Token, ".")
	if !ok {
		t.Fatalf("login token is not a JWT: %q", u.Token)
	}
	var h struct {
		Kid string `json:"kid"`
	}
	raw, err := base64.RawURLEncoding.DecodeString(header)
	if err != nil || json.Unmarshal(raw, &h) != nil || h.Kid == "" {
		t.Fatalf("login token header has no kid: %s", raw)
	}
	key := ed25519.NewKeyFromSeed(signingSeed)
	now := time.Now()
	claims := func(mod func(jwt.MapClaims)) jwt.MapClaims {
		c := jwt.MapClaims{"iss": "seam", "aud": "seam", "sub": u.ID, "email": u.Email, "role": "admin",
			"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix()}
		mod(c)
		return c
	}
	sign := func(method jwt.SigningMethod, c jwt.MapClaims, k any, kid string) string {
		tok := jwt.NewWithClaims(method, c)
		tok.Header["kid"] = kid
		s, err := tok.SignedString(k)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	noop := func(jwt.MapClaims) {}
	out := map[string]string{
		"expired": sign(jwt.SigningMethodEdDSA, claims(func(c jwt.MapClaims) {
			c["iat"], c["nbf"], c["exp"] = now.Add(-3*time.Hour).Unix(), now.Add(-3*time.Hour).Unix(), now.Add(-2*time.Hour).Unix()
		}), key, h.Kid),
		"issuer":   sign(jwt.SigningMethodEdDSA, claims(func(c jwt.MapClaims) { c["iss"] = "evil" }), key, h.Kid),
		"audience": sign(jwt.SigningMethodEdDSA, claims(func(c jwt.MapClaims) { c["aud"] = "other-app" }), key, h.Kid),
		"hs256":    sign(jwt.SigningMethodHS256, claims(noop), []byte(key.Public().(ed25519.PublicKey)), h.Kid),
	}
	_, otherKey, _ := ed25519.GenerateKey(nil)
	out["otherkey"] = sign(jwt.SigningMethodEdDSA, claims(noop), otherKey, "unknown-kid")
	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, claims(noop)).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	out["none"] = none
	// Tampered: alice's real token with the payload swapped for one claiming the admin role.
	parts := strings.Split(u.Token, ".")
	payload, _ := json.Marshal(claims(noop))
	out["tampered"] = parts[0] + "." + base64.RawURLEncoding.EncodeToString(payload) + "." + parts[2]
	return out
}
