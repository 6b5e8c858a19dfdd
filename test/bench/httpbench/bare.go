package httpbench

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	billingapi "github.com/seamkit/seam/modules/billing/api"
	"github.com/seamkit/seam/test/bench/proc"
	"github.com/seamkit/seam/test/bench/prof"
)

// BareRole is the child role that serves the bare handler.
const BareRole = "bare-http"

// Bare handler parameters.
const (
	paramDatabaseURL = "database_url"
	paramSeed        = "signing_key_seed"
	// poolSize is each of the bare handler's two pools' size: the monolith's per-module default
	// (database.max_conns), one pool for billing's queries and one for auth's, as the monolith has.
	poolSize = 10
)

// RunBare is the child's main for BareRole: a chi router with pgx serving billing's list, create and pay
// routes with the SQL the billing and auth modules run, behind the same JWT check with the same key, on the
// database the params name, until its input closes.
func RunBare(params map[string]string) error {
	seed, err := base64.StdEncoding.DecodeString(params[paramSeed])
	if err != nil || len(seed) != ed25519.SeedSize {
		return errors.New("httpbench: bare: bad signing key seed")
	}
	ctx := context.Background()
	open := func() (*pgxpool.Pool, error) {
		cfg, err := pgxpool.ParseConfig(params[paramDatabaseURL])
		if err != nil {
			return nil, fmt.Errorf("httpbench: bare: %w", err)
		}
		cfg.MaxConns = poolSize
		pool, err := pgxpool.NewWithConfig(ctx, cfg)
		if err != nil {
			return nil, fmt.Errorf("httpbench: bare: %w", err)
		}
		return pool, nil
	}
	billingPool, err := open()
	if err != nil {
		return err
	}
	defer billingPool.Close()
	authPool, err := open()
	if err != nil {
		return err
	}
	defer authPool.Close()
	h := &bare{billing: billingPool, auth: authPool, key: ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey),
		parser: jwt.NewParser(jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}), jwt.WithIssuer("seam"),
			jwt.WithAudience("seam"), jwt.WithExpirationRequired(), jwt.WithIssuedAt(), jwt.WithLeeway(30*time.Second),
			jwt.WithStrictDecoding())}
	r := chi.NewRouter()
	r.Route("/api/billing", func(r chi.Router) {
		r.Get("/invoices", h.authed(h.list))
		r.Post("/invoices", h.authed(h.create))
		r.Post("/invoices/{id}/pay", h.authed(h.pay))
	})
	r.Get("/readyz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("httpbench: bare: %w", err)
	}
	srv := &http.Server{Handler: r, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(lis) }()
	defer func() { _ = srv.Close() }()
	return proc.Serve("http://"+lis.Addr().String(), prof.Commands(served.Load))
}

// served counts the requests the bare handler answered.
var served atomic.Int64

// bare is the bare handler: no framework beyond chi and pgx.
type bare struct {
	billing, auth *pgxpool.Pool
	key           ed25519.PublicKey
	parser        *jwt.Parser
}

// claims are the access token's claims.
type claims struct {
	jwt.RegisteredClaims
	Email string `json:"email"`
	Role  string `json:"role"`
}

// authed verifies the bearer token as auth does (EdDSA, issuer, audience, exp, iat) and passes its subject on.
func (b *bare) authed(next func(w http.ResponseWriter, r *http.Request, userID string) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok {
			http.Error(w, `{"code":"unauthenticated"}`, http.StatusUnauthorized)
			return
		}
		var c claims
		_, err := b.parser.ParseWithClaims(strings.TrimSpace(token), &c, func(*jwt.Token) (any, error) { return b.key, nil })
		if err != nil || (c.Role != "user" && c.Role != "admin") {
			http.Error(w, `{"code":"auth.invalid_token"}`, http.StatusUnauthorized)
			return
		}
		defer served.Add(1)
		if err := next(w, r, c.Subject); err != nil {
			var he httpError
			if errors.As(err, &he) {
				http.Error(w, he.msg, he.status)
				return
			}
			http.Error(w, `{"code":"internal"}`, http.StatusInternalServerError)
		}
	}
}

type httpError struct {
	status int
	msg    string
}

func (e httpError) Error() string { return e.msg }

func writeJSON(w http.ResponseWriter, status int, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(data)
	return nil
}

// The SQL billing's and auth's sqlc queries and the outbox run (sql/billing/queries, sql/auth/queries,
// platform/outbox).
const (
	sqlListInvoices = `SELECT * FROM billing.invoices
WHERE user_id = $1
ORDER BY created_at DESC, id DESC
LIMIT $2`
	sqlGetUser       = `SELECT * FROM auth.users WHERE id = $1`
	sqlInsertInvoice = `INSERT INTO billing.invoices (id, user_id, amount_minor, currency, description, status, created_at)
VALUES ($1, $2, $3, $4, $5, 'open', $6)
RETURNING *`
	sqlEnqueue = `INSERT INTO "billing"."outbox" (id, subject, event_type, aggregate_key, payload, headers)
VALUES ($1, $2, $3, $4, $5, $6)`
	sqlTryLock   = `SELECT pg_try_advisory_lock($1::bigint) AS locked`
	sqlUnlock    = `SELECT pg_advisory_unlock($1::bigint) AS unlocked`
	sqlInsertKey = `INSERT INTO billing.idempotency_keys (user_id, key, request_hash, payment_id, state, created_at, updated_at)
VALUES ($1, $2, $3, $4, 'in_progress', $5, $5)
ON CONFLICT (user_id, key) DO NOTHING`
	sqlLockInvoice = `SELECT * FROM billing.invoices
WHERE id = $1 AND user_id = $2
FOR UPDATE`
	sqlInsertPayment = `INSERT INTO billing.payments (id, invoice_id, user_id, amount_minor, currency, status, provider_ref, decline_code, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`
	sqlMarkPaid = `UPDATE billing.invoices
SET status = 'paid', paid_at = $2
WHERE id = $1 AND status = 'open'
RETURNING *`
	sqlCompleteKey = `UPDATE billing.idempotency_keys
SET state = 'done', response_status = $1, response_body = $2,
    updated_at = $3
WHERE user_id = $4 AND key = $5
  AND state = 'in_progress' AND updated_at = $6`
)

// listInvoiceLimit is billing's default list size.
const listInvoiceLimit = 50

func (b *bare) list(w http.ResponseWriter, r *http.Request, userID string) error {
	uid, err := uuid.Parse(userID)
	if err != nil {
		return httpError{http.StatusUnauthorized, "bad subject"}
	}
	rows, err := b.billing.Query(r.Context(), sqlListInvoices, uid, listInvoiceLimit)
	if err != nil {
		return fmt.Errorf("list: %w", err)
	}
	invs, err := pgx.CollectRows(rows, scanInvoice)
	if err != nil {
		return fmt.Errorf("list: %w", err)
	}
	return writeJSON(w, http.StatusOK, map[string][]billingapi.Invoice{"invoices": invs})
}

func scanInvoice(row pgx.CollectableRow) (billingapi.Invoice, error) {
	var inv billingapi.Invoice
	var id, uid uuid.UUID
	var paidAt *time.Time
	if err := row.Scan(&id, &uid, &inv.AmountMinor, &inv.Currency, &inv.Description, &inv.Status, &inv.CreatedAt, &paidAt); err != nil {
		return inv, fmt.Errorf("scan invoice: %w", err)
	}
	inv.ID, inv.UserID = id.String(), uid.String()
	inv.CreatedAt = inv.CreatedAt.UTC()
	if paidAt != nil {
		t := paidAt.UTC()
		inv.PaidAt = &t
	}
	return inv, nil
}

// user reads the caller's account as auth's GetUser does, for the email events carry.
func (b *bare) user(ctx context.Context, uid uuid.UUID) (string, error) {
	var (
		id                      uuid.UUID
		email, hash, role, plan string
		createdAt, updatedAt    time.Time
	)
	err := b.auth.QueryRow(ctx, sqlGetUser, uid).Scan(&id, &email, &hash, &role, &createdAt, &updatedAt, &plan)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", httpError{http.StatusUnauthorized, `{"code":"billing.account_not_found"}`}
	}
	if err != nil {
		return "", fmt.Errorf("get user: %w", err)
	}
	return email, nil
}

func enqueue(ctx context.Context, tx pgx.Tx, subject, eventType, key string, payload any) error {
	id, err := uuid.NewV7()
	if err != nil {
		return fmt.Errorf("event id: %w", err)
	}
	data, err := json.Marshal(payload)
	if err != nil {
		return fmt.Errorf("event payload: %w", err)
	}
	if _, err := tx.Exec(ctx, sqlEnqueue, id.String(), subject, eventType, key, data, map[string]string{}); err != nil {
		return fmt.Errorf("enqueue: %w", err)
	}
	return nil
}

type createRequest struct {
	AmountMinor int64  `json:"amount_minor"`
	Currency    string `json:"currency"`
	Description string `json:"description"`
}

func (b *bare) create(w http.ResponseWriter, r *http.Request, userID string) error {
	ctx := r.Context()
	uid, err := uuid.Parse(userID)
	if err != nil {
		return httpError{http.StatusUnauthorized, "bad subject"}
	}
	var req createRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		return httpError{http.StatusBadRequest, `{"code":"bad_request"}`}
	}
	if req.AmountMinor <= 0 || len(req.Currency) != 3 || strings.TrimSpace(req.Description) == "" {
		return httpError{http.StatusUnprocessableEntity, `{"code":"validation_failed"}`}
	}
	email, err := b.user(ctx, uid)
	if err != nil {
		return err
	}
	id, err := uuid.NewV7()
	if err != nil {
		return fmt.Errorf("invoice id: %w", err)
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	var inv billingapi.Invoice
	err = pgx.BeginFunc(ctx, b.billing, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, sqlInsertInvoice, id, uid, req.AmountMinor, req.Currency, req.Description, now)
		if err != nil {
			return fmt.Errorf("insert invoice: %w", err)
		}
		if inv, err = pgx.CollectExactlyOneRow(rows, scanInvoice); err != nil {
			return fmt.Errorf("insert invoice: %w", err)
		}
		return enqueue(ctx, tx, billingapi.SubjectInvoiceCreated, billingapi.EventInvoiceCreated, inv.ID, billingapi.InvoiceCreated{
			InvoiceID: inv.ID, UserID: inv.UserID, Email: email, AmountMinor: inv.AmountMinor, Currency: inv.Currency,
			Description: inv.Description, CreatedAt: inv.CreatedAt,
		})
	})
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/billing/invoices/"+inv.ID)
	return writeJSON(w, http.StatusCreated, inv)
}

// idempotencyLockSpace is billing's namespace of idempotency-key advisory locks.
const idempotencyLockSpace = "seam/billing/idempotency-key\x00"

func lockID(uid uuid.UUID, key string) int64 {
	h := sha256.New()
	h.Write([]byte(idempotencyLockSpace))
	h.Write(uid[:])
	h.Write([]byte(key))
	return int64(binary.BigEndian.Uint64(h.Sum(nil)))
}

type payRequest struct {
	PaymentMethod string `json:"payment_method"`
}

// pay pays an invoice under its idempotency key with billing's statements: the key's advisory lock on a held
// connection, the key's row, the caller's account, then one transaction locking the invoice, recording the
// payment, marking the invoice paid, enqueueing the event and storing the response on the key.
func (b *bare) pay(w http.ResponseWriter, r *http.Request, userID string) error {
	ctx := r.Context()
	uid, err := uuid.Parse(userID)
	if err != nil {
		return httpError{http.StatusUnauthorized, "bad subject"}
	}
	key := r.Header.Get("Idempotency-Key")
	if key == "" || len(key) > 255 {
		return httpError{http.StatusBadRequest, `{"code":"billing.idempotency_key_missing"}`}
	}
	var req payRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.PaymentMethod == "" {
		return httpError{http.StatusUnprocessableEntity, `{"code":"validation_failed"}`}
	}
	canonical, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("canonical body: %w", err)
	}
	hash := sha256.New()
	hash.Write([]byte(r.Method + "\x00" + r.URL.Path + "\x00"))
	hash.Write(canonical)
	invoiceID, err := uuid.Parse(chi.URLParam(r, "id"))
	if err != nil {
		return httpError{http.StatusNotFound, `{"code":"billing.invoice_not_found"}`}
	}
	conn, err := b.billing.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("acquire: %w", err)
	}
	lock := lockID(uid, key)
	var locked bool
	if err := conn.QueryRow(ctx, sqlTryLock, lock).Scan(&locked); err != nil {
		_ = conn.Hijack().Close(ctx)
		return fmt.Errorf("lock key: %w", err)
	}
	if !locked {
		conn.Release()
		return httpError{http.StatusConflict, `{"code":"billing.idempotency_key_in_use"}`}
	}
	defer func() {
		var unlocked bool
		if err := conn.QueryRow(context.WithoutCancel(ctx), sqlUnlock, lock).Scan(&unlocked); err != nil || !unlocked {
			_ = conn.Hijack().Close(ctx)
			return
		}
		conn.Release()
	}()
	paymentID, err := uuid.NewV7()
	if err != nil {
		return fmt.Errorf("payment id: %w", err)
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	tag, err := conn.Exec(ctx, sqlInsertKey, uid, key, hash.Sum(nil), paymentID, now)
	if err != nil {
		return fmt.Errorf("insert key: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return httpError{http.StatusConflict, `{"code":"billing.idempotency_key_reused"}`}
	}
	email, err := b.user(ctx, uid)
	if err != nil {
		return err
	}
	var body []byte
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, sqlLockInvoice, invoiceID, uid)
		if err != nil {
			return fmt.Errorf("lock invoice: %w", err)
		}
		inv, err := pgx.CollectExactlyOneRow(rows, scanInvoice)
		if err != nil {
			return fmt.Errorf("lock invoice: %w", err)
		}
		if inv.Status != billingapi.StatusOpen {
			return httpError{http.StatusConflict, `{"code":"billing.invoice_already_paid"}`}
		}
		paidAt := time.Now().UTC().Truncate(time.Microsecond)
		p := billingapi.Payment{ID: paymentID.String(), InvoiceID: inv.ID, UserID: inv.UserID, Status: billingapi.PaymentStatusSucceeded,
			AmountMinor: inv.AmountMinor, Currency: inv.Currency, ProviderRef: "sim_" + paymentID.String(), CreatedAt: paidAt}
		if _, err := tx.Exec(ctx, sqlInsertPayment, paymentID, invoiceID, uid, p.AmountMinor, p.Currency, p.Status, p.ProviderRef, nil, paidAt); err != nil {
			return fmt.Errorf("insert payment: %w", err)
		}
		rows, err = tx.Query(ctx, sqlMarkPaid, invoiceID, paidAt)
		if err != nil {
			return fmt.Errorf("mark paid: %w", err)
		}
		if inv, err = pgx.CollectExactlyOneRow(rows, scanInvoice); err != nil {
			return fmt.Errorf("mark paid: %w", err)
		}
		err = enqueue(ctx, tx, billingapi.SubjectPaymentCompleted, billingapi.EventPaymentCompleted, inv.ID, billingapi.PaymentCompleted{
			PaymentID: p.ID, InvoiceID: inv.ID, UserID: inv.UserID, Email: email, AmountMinor: p.AmountMinor, Currency: p.Currency, PaidAt: paidAt,
		})
		if err != nil {
			return err
		}
		if body, err = json.Marshal(struct {
			Payment billingapi.Payment `json:"payment"`
			Invoice billingapi.Invoice `json:"invoice"`
		}{p, inv}); err != nil {
			return fmt.Errorf("encode: %w", err)
		}
		tag, err := tx.Exec(ctx, sqlCompleteKey, int32(http.StatusOK), body, time.Now().UTC().Truncate(time.Microsecond), uid, key, now)
		if err != nil {
			return fmt.Errorf("complete key: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return errors.New("complete key: claim lost")
		}
		return nil
	})
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
	return nil
}

// BareParams are the parameters of a bare handler on the database at url, verifying tokens signed with the
// key seed (standard base64).
func BareParams(url, seed string) map[string]string {
	return map[string]string{paramDatabaseURL: url, paramSeed: seed}
}
