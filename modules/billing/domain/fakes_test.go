package billingdomain_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	authapi "github.com/seamkit/seam/modules/auth/api"
	billingapi "github.com/seamkit/seam/modules/billing/api"
	billingdomain "github.com/seamkit/seam/modules/billing/domain"
	"github.com/seamkit/seam/platform/errs"
)

const (
	alice = "0190a000-0000-7000-8000-00000000a11c"
	bob   = "0190a000-0000-7000-8000-000000000b0b"
)

// fakeStore is the state a fakeRepo holds, as the database would.
type fakeStore struct {
	invoices map[string]billingapi.Invoice
	payments []billingapi.Payment
	events   []billingdomain.Event
	keys     map[string]billingdomain.IdempotencyRecord
}

func (s fakeStore) clone() fakeStore {
	return fakeStore{
		invoices: maps.Clone(s.invoices),
		payments: slices.Clone(s.payments),
		events:   slices.Clone(s.events),
		keys:     maps.Clone(s.keys),
	}
}

func keyID(userID, key string) string { return userID + "\x00" + key }

// fakeRepo is an in-memory billingdomain.Repository. A key's liveness lock is an entry in locks, held until
// its fakeHold is released (as a dead process's database session would end). Payment transactions run one at
// a time (standing in for the invoice row lock) on a copy of the state that replaces it on commit, so a
// failed transaction leaves nothing behind.
type fakeRepo struct {
	txMu sync.Mutex // serialises payment transactions
	mu   sync.Mutex // guards st, locks and failures
	st   fakeStore
	// locks holds the keyIDs whose lock a fakeHold holds.
	locks map[string]bool
	// failures makes the named method (HoldIdempotencyKey, or a PaymentTx method) fail once with the error.
	failures map[string]error
}

func newFakeRepo() *fakeRepo {
	return &fakeRepo{
		st:       fakeStore{invoices: map[string]billingapi.Invoice{}, keys: map[string]billingdomain.IdempotencyRecord{}},
		locks:    map[string]bool{},
		failures: map[string]error{},
	}
}

// heldKeys returns the keyIDs whose lock is held, sorted.
func (r *fakeRepo) heldKeys() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Sorted(maps.Keys(r.locks))
}

func (r *fakeRepo) failOnce(method string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failures[method] = err
}

func (r *fakeRepo) injected(method string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	err := r.failures[method]
	delete(r.failures, method)
	return err
}

func (r *fakeRepo) snapshot() fakeStore {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.st.clone()
}

func (r *fakeRepo) CreateInvoice(_ context.Context, inv billingapi.Invoice, ev billingdomain.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.st.invoices[inv.ID] = inv
	r.st.events = append(r.st.events, ev)
	return nil
}

func (r *fakeRepo) GetInvoice(_ context.Context, userID, invoiceID string) (billingapi.Invoice, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	inv, ok := r.st.invoices[invoiceID]
	if !ok || inv.UserID != userID {
		return billingapi.Invoice{}, billingapi.ErrInvoiceNotFound
	}
	return inv, nil
}

func (r *fakeRepo) ListInvoices(_ context.Context, userID string, limit int) ([]billingapi.Invoice, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []billingapi.Invoice
	for _, inv := range r.st.invoices {
		if inv.UserID == userID {
			out = append(out, inv)
		}
	}
	slices.SortFunc(out, func(a, b billingapi.Invoice) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return compareStrings(b.ID, a.ID)
	})
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (r *fakeRepo) GetIdempotencyKey(_ context.Context, userID, key string) (billingdomain.IdempotencyRecord, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.st.key(keyID(userID, key))
}

// key returns the row of the pair id; r.mu must be held.
func (s fakeStore) key(id string) (billingdomain.IdempotencyRecord, error) {
	rec, ok := s.keys[id]
	if !ok {
		return billingdomain.IdempotencyRecord{}, billingdomain.ErrIdempotencyKeyNotFound
	}
	return rec, nil
}

func (r *fakeRepo) HoldIdempotencyKey(_ context.Context, userID, key string) (billingdomain.KeyHold, error) {
	if err := r.injected("HoldIdempotencyKey"); err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	id := keyID(userID, key)
	if r.locks[id] {
		return nil, billingdomain.ErrIdempotencyKeyHeld
	}
	r.locks[id] = true
	return &fakeHold{repo: r, id: id}, nil
}

// errHoldReleased is what a fakeHold answers once released: nothing may use a hold after its Release.
var errHoldReleased = errors.New("fake: idempotency key hold used after its release")

// fakeHold is a fakeRepo's billingdomain.KeyHold of the pair id.
type fakeHold struct {
	repo     *fakeRepo
	id       string
	released bool // guarded by repo.mu
}

// lock locks the repository for an operation on the held key; it fails, unlocked, once the hold is released
// or when rec (if given) is another key's.
func (h *fakeHold) lock(recs ...billingdomain.IdempotencyRecord) error {
	h.repo.mu.Lock()
	if h.released {
		h.repo.mu.Unlock()
		return errHoldReleased
	}
	for _, rec := range recs {
		if keyID(rec.UserID, rec.Key) != h.id {
			h.repo.mu.Unlock()
			return fmt.Errorf("fake: key %q of %s is not the held one", rec.Key, rec.UserID)
		}
	}
	return nil
}

func (h *fakeHold) CreateIdempotencyKey(_ context.Context, rec billingdomain.IdempotencyRecord) error {
	if err := h.lock(rec); err != nil {
		return err
	}
	defer h.repo.mu.Unlock()
	if _, ok := h.repo.st.keys[h.id]; ok {
		return billingdomain.ErrIdempotencyKeyExists
	}
	h.repo.st.keys[h.id] = rec
	return nil
}

func (h *fakeHold) GetIdempotencyKey(context.Context) (billingdomain.IdempotencyRecord, error) {
	if err := h.lock(); err != nil {
		return billingdomain.IdempotencyRecord{}, err
	}
	defer h.repo.mu.Unlock()
	return h.repo.st.key(h.id)
}

func (h *fakeHold) TakeOverIdempotencyKey(_ context.Context, now time.Time) (billingdomain.IdempotencyRecord, error) {
	if err := h.lock(); err != nil {
		return billingdomain.IdempotencyRecord{}, err
	}
	defer h.repo.mu.Unlock()
	rec, ok := h.repo.st.keys[h.id]
	if !ok || rec.State != billingdomain.KeyStateInProgress {
		return billingdomain.IdempotencyRecord{}, billingdomain.ErrIdempotencyKeyNotFound
	}
	rec.UpdatedAt = rec.UpdatedAt.Add(time.Microsecond)
	if now.After(rec.UpdatedAt) {
		rec.UpdatedAt = now
	}
	h.repo.st.keys[h.id] = rec
	return rec, nil
}

// holds reports whether claim still holds the key's row; r.mu must be held.
func (s fakeStore) holds(claim billingdomain.IdempotencyRecord) bool {
	rec, ok := s.keys[keyID(claim.UserID, claim.Key)]
	return ok && rec.State == billingdomain.KeyStateInProgress && rec.UpdatedAt.Equal(claim.UpdatedAt)
}

func (h *fakeHold) DeleteIdempotencyKey(_ context.Context, claim billingdomain.IdempotencyRecord) error {
	if err := h.lock(claim); err != nil {
		return err
	}
	defer h.repo.mu.Unlock()
	if !h.repo.st.holds(claim) {
		return billingdomain.ErrIdempotencyKeyLost
	}
	delete(h.repo.st.keys, h.id)
	return nil
}

func (h *fakeHold) InPaymentTx(ctx context.Context, fn func(context.Context, billingdomain.PaymentTx) error) error {
	if err := h.lock(); err != nil {
		return err
	}
	h.repo.mu.Unlock()
	r := h.repo
	r.txMu.Lock()
	defer r.txMu.Unlock()
	tx := &fakeTx{repo: r, st: r.snapshot()}
	if err := fn(ctx, tx); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, inv := range tx.invoiceWrites {
		r.st.invoices[id] = inv
	}
	for id, rec := range tx.keyWrites {
		r.st.keys[id] = rec
	}
	r.st.payments = append(r.st.payments, tx.newPayments...)
	r.st.events = append(r.st.events, tx.newEvents...)
	return nil
}

// Release frees the lock; like the real hold, it must be called once.
func (h *fakeHold) Release() {
	h.repo.mu.Lock()
	defer h.repo.mu.Unlock()
	if h.released {
		panic("fake: idempotency key hold released twice")
	}
	h.released = true
	delete(h.repo.locks, h.id)
}

// fakeTx is one payment transaction of a fakeRepo: it reads a snapshot taken at its start (with its own
// writes) and keeps its writes apart until commit.
type fakeTx struct {
	repo          *fakeRepo
	st            fakeStore
	invoiceWrites map[string]billingapi.Invoice
	keyWrites     map[string]billingdomain.IdempotencyRecord
	newPayments   []billingapi.Payment
	newEvents     []billingdomain.Event
}

func (t *fakeTx) LockInvoice(_ context.Context, userID, invoiceID string) (billingapi.Invoice, error) {
	if err := t.repo.injected("LockInvoice"); err != nil {
		return billingapi.Invoice{}, err
	}
	inv, ok := t.st.invoices[invoiceID]
	if !ok || inv.UserID != userID {
		return billingapi.Invoice{}, billingapi.ErrInvoiceNotFound
	}
	return inv, nil
}

func (t *fakeTx) InsertPayment(_ context.Context, p billingapi.Payment) error {
	if err := t.repo.injected("InsertPayment"); err != nil {
		return err
	}
	for _, q := range t.st.payments {
		if q.ID == p.ID {
			return errors.New("duplicate payment id")
		}
		if q.InvoiceID == p.InvoiceID && q.Status == billingapi.PaymentStatusSucceeded && p.Status == billingapi.PaymentStatusSucceeded {
			return billingapi.ErrInvoiceAlreadyPaid
		}
	}
	t.st.payments = append(t.st.payments, p)
	t.newPayments = append(t.newPayments, p)
	return nil
}

func (t *fakeTx) MarkInvoicePaid(_ context.Context, invoiceID string, paidAt time.Time) (billingapi.Invoice, error) {
	inv, ok := t.st.invoices[invoiceID]
	if !ok || inv.Status != billingapi.StatusOpen {
		return billingapi.Invoice{}, billingapi.ErrInvoiceAlreadyPaid
	}
	inv.Status = billingapi.StatusPaid
	inv.PaidAt = &paidAt
	t.st.invoices[invoiceID] = inv
	if t.invoiceWrites == nil {
		t.invoiceWrites = map[string]billingapi.Invoice{}
	}
	t.invoiceWrites[invoiceID] = inv
	return inv, nil
}

func (t *fakeTx) Publish(_ context.Context, ev billingdomain.Event) error {
	t.newEvents = append(t.newEvents, ev)
	return nil
}

func (t *fakeTx) CompleteIdempotencyKey(_ context.Context, claim billingdomain.IdempotencyRecord, resp billingdomain.Response, now time.Time) error {
	if err := t.repo.injected("CompleteIdempotencyKey"); err != nil {
		return err
	}
	t.repo.mu.Lock()
	defer t.repo.mu.Unlock()
	if !t.repo.st.holds(claim) {
		return billingdomain.ErrIdempotencyKeyLost
	}
	rec := t.repo.st.keys[keyID(claim.UserID, claim.Key)]
	rec.State = billingdomain.KeyStateDone
	rec.Response = billingdomain.Response{Status: resp.Status, Body: slices.Clone(resp.Body)}
	rec.UpdatedAt = now
	if t.keyWrites == nil {
		t.keyWrites = map[string]billingdomain.IdempotencyRecord{}
	}
	t.keyWrites[keyID(claim.UserID, claim.Key)] = rec
	return nil
}

// fakeProvider wraps SimulatedProvider, records every charge and can play unavailable or run a hook.
type fakeProvider struct {
	mu    sync.Mutex
	calls []billingdomain.PaymentRequest
	down  bool
	hook  func(ctx context.Context)
}

func (p *fakeProvider) setDown(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
}

func (p *fakeProvider) charges() []billingdomain.PaymentRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.calls)
}

func (p *fakeProvider) Charge(ctx context.Context, req billingdomain.PaymentRequest) (billingdomain.PaymentResult, error) {
	p.mu.Lock()
	p.calls = append(p.calls, req)
	down, hook := p.down, p.hook
	p.mu.Unlock()
	if hook != nil {
		hook(ctx)
	}
	if down {
		return billingdomain.PaymentResult{}, fmt.Errorf("fake: %w", billingdomain.ErrProviderUnavailable)
	}
	return billingdomain.SimulatedProvider{}.Charge(ctx, req)
}

func (p *fakeProvider) Refund(ctx context.Context, ref string, amount billingdomain.Money) (string, error) {
	return billingdomain.SimulatedProvider{}.Refund(ctx, ref, amount)
}

// fakeAuth knows a fixed set of users.
type fakeAuth struct {
	mu    sync.Mutex
	users map[string]authapi.User
}

func (a *fakeAuth) VerifyToken(context.Context, string) (authapi.Identity, error) {
	return authapi.Identity{}, authapi.ErrInvalidToken
}

func (a *fakeAuth) GetUser(_ context.Context, id string) (authapi.User, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	u, ok := a.users[id]
	if !ok {
		return authapi.User{}, authapi.ErrUserNotFound
	}
	return u, nil
}

func (a *fakeAuth) remove(id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.users, id)
}

// fakeClock is a clock that moves on a microsecond at every reading.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(time.Microsecond)
	return c.now
}

// env is a Service over fakes.
type env struct {
	svc      *billingdomain.Service
	repo     *fakeRepo
	provider *fakeProvider
	auth     *fakeAuth
	clock    *fakeClock
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{
		repo:     newFakeRepo(),
		provider: &fakeProvider{},
		auth: &fakeAuth{users: map[string]authapi.User{
			alice: {ID: alice, Email: "alice@example.com", Role: "user"},
			bob:   {ID: bob, Email: "bob@example.com", Role: "user"},
		}},
		clock: &fakeClock{now: time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)},
	}
	logger := slog.New(slog.DiscardHandler)
	e.svc = billingdomain.NewService(e.repo, e.provider, e.auth, logger, billingdomain.Options{
		PaymentTimeout: 10 * time.Second,
		Now:            e.clock.Now,
	})
	t.Cleanup(func() {
		if held := e.repo.heldKeys(); len(held) != 0 {
			t.Errorf("idempotency keys still held when the test ended: %q", held)
		}
	})
	return e
}

func (e *env) invoice(t *testing.T, userID string, amount int64) billingapi.Invoice {
	t.Helper()
	inv, err := e.svc.CreateInvoice(t.Context(), userID, billingdomain.NewInvoice{AmountMinor: amount, Currency: "EUR", Description: "consulting"})
	if err != nil {
		t.Fatalf("CreateInvoice: %v", err)
	}
	return inv
}

// pay pays invoiceID as userID with key and method, fingerprinting the request like the HTTP layer.
func (e *env) pay(ctx context.Context, userID, invoiceID, key, method string) (billingdomain.Response, error) {
	body, _ := json.Marshal(map[string]string{"payment_method": method})
	return e.svc.Pay(ctx, billingdomain.PayRequest{
		UserID:         userID,
		InvoiceID:      invoiceID,
		PaymentMethod:  method,
		IdempotencyKey: key,
		RequestHash:    billingdomain.RequestHash(http.MethodPost, "/api/billing/invoices/"+invoiceID+"/pay", body),
	}, respond)
}

// testBody is what respond stores.
type testBody struct {
	Code    string                   `json:"code,omitempty"`
	Message string                   `json:"message,omitempty"`
	Result  *billingdomain.PayResult `json:"result,omitempty"`
}

// respond renders outcomes the way the HTTP layer would, simplified.
func respond(res billingdomain.PayResult, err error) (billingdomain.Response, error) {
	if err == nil {
		body, err := json.Marshal(testBody{Result: &res})
		return billingdomain.Response{Status: http.StatusOK, Body: body}, err
	}
	e, ok := errs.As(err)
	if !ok {
		return billingdomain.Response{}, fmt.Errorf("not a client error: %w", err)
	}
	status := map[errs.Kind]int{
		errs.NotFound:        http.StatusNotFound,
		errs.Conflict:        http.StatusConflict,
		errs.PaymentRequired: http.StatusPaymentRequired,
		errs.Unprocessable:   http.StatusUnprocessableEntity,
	}[e.Kind]
	body, merr := json.Marshal(testBody{Code: e.Code, Message: e.Message})
	return billingdomain.Response{Status: status, Body: body}, merr
}

func decodeBody(t *testing.T, resp billingdomain.Response) testBody {
	t.Helper()
	var b testBody
	if err := json.Unmarshal(resp.Body, &b); err != nil {
		t.Fatalf("stored body %q: %v", resp.Body, err)
	}
	return b
}
