package billing

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	authapi "github.com/seamkit/seam/modules/auth/api"
	billingapi "github.com/seamkit/seam/modules/billing/api"
	billingdata "github.com/seamkit/seam/modules/billing/data"
	billingdomain "github.com/seamkit/seam/modules/billing/domain"
	"github.com/seamkit/seam/platform/errs"
	"github.com/seamkit/seam/platform/httpx"
	"github.com/seamkit/seam/platform/identity"
	"github.com/seamkit/seam/platform/migrate"
	"github.com/seamkit/seam/platform/pgtest"
	"github.com/seamkit/seam/platform/saga"
	sqlfs "github.com/seamkit/seam/sql"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const (
	alice = "0190a000-0000-7000-8000-00000000a11c"
	bob   = "0190a000-0000-7000-8000-000000000b0b"
)

// tokens verifies tokens for httpx: a token is its user's id.
type tokens struct{}

func (tokens) VerifyToken(_ context.Context, token string) (identity.Principal, error) {
	if token != alice && token != bob {
		return identity.Principal{}, authapi.ErrInvalidToken
	}
	return identity.Principal{UserID: token, Role: identity.RoleUser}, nil
}

// users is authapi.Auth knowing alice and bob.
type users struct{}

func (users) VerifyToken(context.Context, string) (authapi.Identity, error) {
	return authapi.Identity{}, authapi.ErrInvalidToken
}

func (users) GetUser(_ context.Context, id string) (authapi.User, error) {
	if id != alice && id != bob {
		return authapi.User{}, authapi.ErrUserNotFound
	}
	return authapi.User{ID: id, Email: id[len(id)-4:] + "@example.com", Role: identity.RoleUser}, nil
}

type api struct {
	t       *testing.T
	handler http.Handler
	pool    *pgxpool.Pool
}

func newAPI(t *testing.T) *api {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: needs PostgreSQL")
	}
	logger := slog.New(slog.DiscardHandler)
	pool := pgtest.NewPool(t)
	if err := migrate.Up(t.Context(), pool, Name, sqlfs.Migrations(Name), logger); err != nil {
		t.Fatal(err)
	}
	var cfg Config
	cfg.SetDefaults()
	provider, err := newProvider(cfg)
	if err != nil {
		t.Fatal(err)
	}
	svc := newService(billingdata.NewRepository(pool), provider, users{}, logger, cfg)
	runner, err := saga.NewRunner(pool, Name, logger, saga.Options{})
	if err != nil {
		t.Fatal(err)
	}
	upgrades, err := newUpgrades(runner, billingdata.NewUpgradeStore(pool), provider, users{}, logger)
	if err != nil {
		t.Fatal(err)
	}
	var httpCfg httpx.Config
	httpCfg.SetDefaults()
	srv, err := httpx.NewServer(httpx.ServerParams{Config: httpCfg, Logger: logger, Verifier: tokens{},
		Routes: []httpx.Routes{newRoutes(svc, upgrades, logger)}})
	if err != nil {
		t.Fatal(err)
	}
	return &api{t: t, handler: srv.Handler(), pool: pool}
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (a *api) do(method, path, token, body string, header map[string]string) response {
	a.t.Helper()
	req := httptest.NewRequestWithContext(a.t.Context(), method, path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	a.handler.ServeHTTP(rec, req)
	return response{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
}

func (a *api) createInvoice(token string, amount int64, currency string) billingapi.Invoice {
	a.t.Helper()
	r := a.do("POST", "/api/billing/invoices", token,
		`{"amount_minor":`+jsonNumber(amount)+`,"currency":"`+currency+`","description":"consulting"}`, nil)
	if r.status != http.StatusCreated {
		a.t.Fatalf("create invoice = %d %s", r.status, r.body)
	}
	var inv billingapi.Invoice
	if err := json.Unmarshal(r.body, &inv); err != nil {
		a.t.Fatal(err)
	}
	return inv
}

func (a *api) pay(token, invoiceID, key, method string) response {
	a.t.Helper()
	header := map[string]string{}
	if key != "" {
		header[IdempotencyKeyHeader] = key
	}
	return a.do("POST", "/api/billing/invoices/"+invoiceID+"/pay", token, `{"payment_method":"`+method+`"}`, header)
}

func (a *api) count(sql string, args ...any) int {
	a.t.Helper()
	var n int
	if err := a.pool.QueryRow(a.t.Context(), sql, args...).Scan(&n); err != nil {
		a.t.Fatal(err)
	}
	return n
}

func jsonNumber(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// problem decodes a problem+json response and checks its status and code.
func problem(t *testing.T, r response, status int, code string) httpx.Problem {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d (%s), want %d", r.status, r.body, status)
	}
	if ct := r.header.Get("Content-Type"); ct != httpx.ProblemContentType {
		t.Errorf("content type = %q, want %q", ct, httpx.ProblemContentType)
	}
	var p httpx.Problem
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatalf("problem body %q: %v", r.body, err)
	}
	if code != "" && p.Code != code {
		t.Errorf("problem code = %q, want %q (%s)", p.Code, code, r.body)
	}
	return p
}

func TestInvoiceEndpoints(t *testing.T) {
	a := newAPI(t)
	first := a.createInvoice(alice, 1250, "EUR")
	if first.UserID != alice || first.Status != billingapi.StatusOpen || first.AmountMinor != 1250 {
		t.Fatalf("created invoice = %+v", first)
	}
	second := a.createInvoice(alice, 500, "JPY")

	t.Run("create answers 201 with its location", func(t *testing.T) {
		r := a.do("POST", "/api/billing/invoices", alice, `{"amount_minor":1,"currency":"KWD","description":"fils"}`, nil)
		if r.status != http.StatusCreated || !strings.HasPrefix(r.header.Get("Location"), "/api/billing/invoices/") {
			t.Fatalf("create = %d, Location %q", r.status, r.header.Get("Location"))
		}
	})

	t.Run("bad create input", func(t *testing.T) {
		before := a.count(`SELECT count(*) FROM billing.invoices`)
		tests := []struct {
			name, token, body string
			status            int
			code              string
			fields            []string
		}{
			{"anonymous", "", `{"amount_minor":100,"currency":"EUR","description":"x"}`, 401, httpx.ErrUnauthenticated.Code, nil},
			{"bad token", "nope", `{"amount_minor":100,"currency":"EUR","description":"x"}`, 401, authapi.ErrInvalidToken.Code, nil},
			{"negative amount", alice, `{"amount_minor":-5,"currency":"EUR","description":"x"}`, 422, errs.CodeValidation, []string{"amount_minor"}},
			{"zero amount", alice, `{"amount_minor":0,"currency":"EUR","description":"x"}`, 422, errs.CodeValidation, []string{"amount_minor"}},
			{"absurd amount", alice, `{"amount_minor":9000000000000000000,"currency":"EUR","description":"x"}`, 422, errs.CodeValidation, []string{"amount_minor"}},
			{"amount overflow", alice, `{"amount_minor":99999999999999999999,"currency":"EUR","description":"x"}`, 400, httpx.ErrMalformedBody.Code, nil},
			{"fractional amount", alice, `{"amount_minor":12.5,"currency":"EUR","description":"x"}`, 400, httpx.ErrMalformedBody.Code, nil},
			{"string amount", alice, `{"amount_minor":"100","currency":"EUR","description":"x"}`, 400, httpx.ErrMalformedBody.Code, nil},
			{"unknown currency", alice, `{"amount_minor":100,"currency":"XYZ","description":"x"}`, 422, errs.CodeValidation, []string{"currency"}},
			{"lower-case currency", alice, `{"amount_minor":100,"currency":"eur","description":"x"}`, 422, errs.CodeValidation, []string{"currency"}},
			{"long description", alice, `{"amount_minor":100,"currency":"EUR","description":"` + strings.Repeat("x", 501) + `"}`, 422, errs.CodeValidation, []string{"description"}},
			{"missing fields", alice, `{}`, 422, errs.CodeValidation, []string{"amount_minor", "currency", "description"}},
			{"unknown field", alice, `{"amount_minor":1,"currency":"EUR","description":"x","status":"paid"}`, 400, httpx.ErrMalformedBody.Code, nil},
			{"malformed", alice, `{"amount_minor":1,`, 400, httpx.ErrMalformedBody.Code, nil},
			{"trailing data", alice, `{"amount_minor":1,"currency":"EUR","description":"x"} {}`, 400, httpx.ErrMalformedBody.Code, nil},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				p := problem(t, a.do("POST", "/api/billing/invoices", tt.token, tt.body, nil), tt.status, tt.code)
				var fields []string
				for _, f := range p.Errors {
					fields = append(fields, f.Field)
				}
				if strings.Join(fields, ",") != strings.Join(tt.fields, ",") {
					t.Errorf("invalid fields = %v, want %v", fields, tt.fields)
				}
			})
		}
		r := a.do("POST", "/api/billing/invoices", alice, "", map[string]string{"Content-Type": "text/plain"})
		problem(t, r, http.StatusUnsupportedMediaType, httpx.ErrUnsupportedMediaType.Code)
		if after := a.count(`SELECT count(*) FROM billing.invoices`); after != before {
			t.Errorf("bad input created %d invoices", after-before)
		}
	})

	t.Run("list", func(t *testing.T) {
		r := a.do("GET", "/api/billing/invoices?limit=2", alice, "", nil)
		var list struct {
			Invoices []billingapi.Invoice `json:"invoices"`
		}
		if err := json.Unmarshal(r.body, &list); err != nil || r.status != http.StatusOK {
			t.Fatalf("list = %d %s", r.status, r.body)
		}
		if len(list.Invoices) != 2 || list.Invoices[1].ID != second.ID {
			t.Errorf("list = %+v, want two, newest first", list.Invoices)
		}
		if r := a.do("GET", "/api/billing/invoices", bob, "", nil); r.status != http.StatusOK || string(r.body) != `{"invoices":[]}` {
			t.Errorf("bob's empty list = %d %s", r.status, r.body)
		}
		for _, q := range []string{"limit=-1", "limit=0", "limit=101", "limit=abc", "limit=", "limit=1&limit=2", "limit=1.5"} {
			p := problem(t, a.do("GET", "/api/billing/invoices?"+q, alice, "", nil), http.StatusUnprocessableEntity, errs.CodeValidation)
			if len(p.Errors) != 1 || p.Errors[0].Field != "limit" {
				t.Errorf("%s: errors = %+v, want one on limit", q, p.Errors)
			}
		}
		problem(t, a.do("GET", "/api/billing/invoices", "", "", nil), http.StatusUnauthorized, "")
		problem(t, a.do("DELETE", "/api/billing/invoices", alice, "", nil), http.StatusMethodNotAllowed, httpx.ErrMethodNotAllowed.Code)
	})

	t.Run("get", func(t *testing.T) {
		r := a.do("GET", "/api/billing/invoices/"+first.ID, alice, "", nil)
		var got billingapi.Invoice
		if err := json.Unmarshal(r.body, &got); err != nil || r.status != http.StatusOK || got.ID != first.ID || !got.CreatedAt.Equal(first.CreatedAt) {
			t.Fatalf("get = %d %s", r.status, r.body)
		}
		for _, tc := range []struct{ token, id string }{
			{bob, first.ID},
			{alice, "00000000-0000-4000-8000-000000000000"},
			{alice, "'%20OR%201=1"},
		} {
			problem(t, a.do("GET", "/api/billing/invoices/"+tc.id, tc.token, "", nil), http.StatusNotFound, billingapi.ErrInvoiceNotFound.Code)
		}
	})
}

func TestPayEndpoint(t *testing.T) {
	a := newAPI(t)
	inv := a.createInvoice(alice, 1250, "EUR")
	keys := func() int { return a.count(`SELECT count(*) FROM billing.idempotency_keys`) }

	t.Run("refused before the key is claimed", func(t *testing.T) {
		problem(t, a.pay(alice, inv.ID, "", "pm_card_visa"), http.StatusBadRequest, billingapi.ErrIdempotencyKeyMissing.Code)
		problem(t, a.pay(alice, inv.ID, strings.Repeat("k", 256), "pm_card_visa"), http.StatusBadRequest, billingapi.ErrIdempotencyKeyInvalid.Code)
		problem(t, a.pay("", inv.ID, "k-anon", "pm_card_visa"), http.StatusUnauthorized, "")
		problem(t, a.do("POST", "/api/billing/invoices/"+inv.ID+"/pay", alice, `{"payment_method":`, map[string]string{IdempotencyKeyHeader: "k-malformed"}),
			http.StatusBadRequest, httpx.ErrMalformedBody.Code)
		p := problem(t, a.pay(alice, inv.ID, "k-empty", ""), http.StatusUnprocessableEntity, errs.CodeValidation)
		if len(p.Errors) != 1 || p.Errors[0].Field != "payment_method" {
			t.Errorf("errors = %+v, want one on payment_method", p.Errors)
		}
		if n := keys(); n != 0 {
			t.Errorf("%d keys stored by refused requests, want 0", n)
		}
	})

	t.Run("declined, stored and replayed", func(t *testing.T) {
		r := a.pay(alice, inv.ID, "k-declined", "pm_card_declined")
		p := problem(t, r, http.StatusPaymentRequired, billingapi.ErrPaymentDeclined.Code)
		if !strings.Contains(p.Detail, "card_declined") {
			t.Errorf("detail %q does not name the decline code", p.Detail)
		}
		again := a.pay(alice, inv.ID, "k-declined", "pm_card_declined")
		if again.status != r.status || !bytes.Equal(again.body, r.body) || again.header.Get(IdempotentReplayedHeader) != "true" ||
			again.header.Get("Content-Type") != httpx.ProblemContentType {
			t.Errorf("replay = %d %q %v, want the stored %d %q with Idempotent-Replayed", again.status, again.body, again.header, r.status, r.body)
		}
		if r.header.Get(IdempotentReplayedHeader) != "" {
			t.Errorf("the first response is marked replayed")
		}
	})

	t.Run("unknown payment method", func(t *testing.T) {
		problem(t, a.pay(alice, inv.ID, "k-unknown", "pm_card_made_up"), http.StatusUnprocessableEntity, billingapi.ErrUnknownPaymentMethod.Code)
	})

	t.Run("another user's invoice", func(t *testing.T) {
		problem(t, a.pay(bob, inv.ID, "bob-steals", "pm_card_visa"), http.StatusNotFound, billingapi.ErrInvoiceNotFound.Code)
	})

	t.Run("provider unavailable frees the key", func(t *testing.T) {
		down := a.createInvoice(alice, 1013, "EUR")
		problem(t, a.pay(alice, down.ID, "k-down", "pm_card_visa"), http.StatusServiceUnavailable, billingapi.ErrProviderUnavailable.Code)
		if n := a.count(`SELECT count(*) FROM billing.idempotency_keys WHERE key = 'k-down'`); n != 0 {
			t.Errorf("the key of a failed request was kept")
		}
	})

	var paid response
	t.Run("success, stored and replayed", func(t *testing.T) {
		paid = a.pay(alice, inv.ID, "k-visa", "pm_card_visa")
		if paid.status != http.StatusOK || paid.header.Get("Content-Type") != "application/json" {
			t.Fatalf("pay = %d %s", paid.status, paid.body)
		}
		var body struct {
			Payment map[string]any     `json:"payment"`
			Invoice billingapi.Invoice `json:"invoice"`
		}
		if err := json.Unmarshal(paid.body, &body); err != nil {
			t.Fatal(err)
		}
		for _, field := range []string{"id", "invoice_id", "status", "amount_minor", "currency", "provider_ref", "created_at"} {
			if _, ok := body.Payment[field]; !ok {
				t.Errorf("payment has no %q: %s", field, paid.body)
			}
		}
		if body.Payment["status"] != "succeeded" || body.Invoice.Status != billingapi.StatusPaid || body.Invoice.PaidAt == nil {
			t.Errorf("pay body = %s", paid.body)
		}
		again := a.pay(alice, inv.ID, "k-visa", "pm_card_visa")
		if again.status != http.StatusOK || !bytes.Equal(again.body, paid.body) || again.header.Get(IdempotentReplayedHeader) != "true" {
			t.Errorf("replay = %d %q, want the stored response byte for byte", again.status, again.body)
		}
		// Spacing and key order do not make another request.
		spaced := a.do("POST", "/api/billing/invoices/"+inv.ID+"/pay", alice, "{ \"payment_method\" : \"pm_card_visa\" }\n",
			map[string]string{IdempotencyKeyHeader: "k-visa"})
		if !bytes.Equal(spaced.body, paid.body) {
			t.Errorf("a reformatted body was not recognised as the same request: %d %s", spaced.status, spaced.body)
		}
	})

	t.Run("after payment", func(t *testing.T) {
		problem(t, a.pay(alice, inv.ID, "k-again", "pm_card_visa"), http.StatusConflict, billingapi.ErrInvoiceAlreadyPaid.Code)
		problem(t, a.pay(alice, inv.ID, "k-visa", "pm_card_mastercard"), http.StatusUnprocessableEntity, billingapi.ErrIdempotencyKeyReused.Code)
		other := a.createInvoice(alice, 300, "EUR")
		problem(t, a.pay(alice, other.ID, "k-visa", "pm_card_visa"), http.StatusUnprocessableEntity, billingapi.ErrIdempotencyKeyReused.Code)
		if n := a.count(`SELECT count(*) FROM billing.payments WHERE invoice_id = $1 AND status = 'succeeded'`, inv.ID); n != 1 {
			t.Errorf("succeeded payments = %d, want 1", n)
		}
	})

	t.Run("in use while its holder lives, taken over at once when it dies", func(t *testing.T) {
		// A request that another instance is serving: that instance holds the key's lock and claimed its row.
		other := a.createInvoice(alice, 700, "EUR")
		holder, err := billingdata.NewRepository(a.pool).HoldIdempotencyKey(t.Context(), alice, "k-busy")
		if err != nil {
			t.Fatal(err)
		}
		claim := billingdomain.IdempotencyRecord{UserID: alice, Key: "k-busy",
			RequestHash: billingdomain.RequestHash("POST", "/api/billing/invoices/"+other.ID+"/pay", []byte(`{"payment_method":"pm_card_visa"}`)),
			PaymentID:   "0190a000-0000-7000-8000-0000000dead0", State: billingdomain.KeyStateInProgress,
			CreatedAt: time.Now().UTC().Truncate(time.Microsecond)}
		claim.UpdatedAt = claim.CreatedAt
		if err := holder.CreateIdempotencyKey(t.Context(), claim); err != nil {
			t.Fatal(err)
		}
		problem(t, a.pay(alice, other.ID, "k-busy", "pm_card_visa"), http.StatusConflict, billingapi.ErrIdempotencyKeyInUse.Code)
		// The instance dies before it completes (its session ends, freeing the lock); the gateway's resend a
		// moment later takes the key over and completes it under the claim's payment id.
		holder.Release()
		r := a.pay(alice, other.ID, "k-busy", "pm_card_visa")
		var body struct {
			Payment billingapi.Payment `json:"payment"`
		}
		if err := json.Unmarshal(r.body, &body); err != nil || r.status != http.StatusOK {
			t.Fatalf("retry after the holder died = %d %s, want 200", r.status, r.body)
		}
		if body.Payment.ID != claim.PaymentID {
			t.Errorf("the retry paid under payment id %s, want the claim's %s", body.Payment.ID, claim.PaymentID)
		}
	})
}
