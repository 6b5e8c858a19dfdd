package billing

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/go-chi/chi/v5"

	billingapi "github.com/seamkit/seam/modules/billing/api"
	billingdomain "github.com/seamkit/seam/modules/billing/domain"
	"github.com/seamkit/seam/platform/httpx"
)

// Prefix is where billing's routes are mounted.
const Prefix = "/api/billing"

// Header names of idempotent pay requests.
const (
	// IdempotencyKeyHeader carries the client's key for a pay request.
	IdempotencyKeyHeader = "Idempotency-Key"
	// IdempotentReplayedHeader is set to "true" on a response replayed from an earlier request with the
	// same key.
	IdempotentReplayedHeader = "Idempotent-Replayed"
)

type handlers struct {
	svc      *billingdomain.Service
	upgrades *billingdomain.Upgrades
	logger   *slog.Logger
}

// newRoutes mounts billing's HTTP API; every route needs a signed-in caller.
func newRoutes(svc *billingdomain.Service, upgrades *billingdomain.Upgrades, logger *slog.Logger) httpx.Routes {
	h := handlers{svc: svc, upgrades: upgrades, logger: logger}
	return httpx.Routes{Prefix: Prefix, Mount: func(r chi.Router) {
		r.Group(func(r chi.Router) {
			r.Use(httpx.RequireUser(logger))
			r.Post("/invoices", httpx.Errors(logger, h.createInvoice))
			r.Get("/invoices", httpx.Errors(logger, h.listInvoices))
			r.Get("/invoices/{id}", httpx.Errors(logger, h.getInvoice))
			r.Post("/invoices/{id}/pay", httpx.Errors(logger, h.pay))
			r.Post("/plan-upgrade", httpx.Errors(logger, h.upgradePlan))
			r.Get("/plan-upgrades/{id}", httpx.Errors(logger, h.getPlanUpgrade))
		})
	}}
}

// createInvoiceRequest is the body of POST /invoices.
type createInvoiceRequest struct {
	AmountMinor int64  `json:"amount_minor"`
	Currency    string `json:"currency"`
	Description string `json:"description"`
}

func (c createInvoiceRequest) invoice() billingdomain.NewInvoice {
	return billingdomain.NewInvoice{AmountMinor: c.AmountMinor, Currency: c.Currency, Description: c.Description}
}

// Validate reports every invalid field.
func (c createInvoiceRequest) Validate() error { return c.invoice().Validate() }

func (h handlers) createInvoice(w http.ResponseWriter, r *http.Request) error {
	caller, err := httpx.Caller(r)
	if err != nil {
		return err
	}
	var req createInvoiceRequest
	if err := httpx.DecodeJSON(r, &req); err != nil {
		return err
	}
	inv, err := h.svc.CreateInvoice(r.Context(), caller.UserID, req.invoice())
	if err != nil {
		return err
	}
	w.Header().Set("Location", Prefix+"/invoices/"+inv.ID)
	return httpx.WriteJSON(w, http.StatusCreated, inv)
}

// invoiceList is the body of GET /invoices.
type invoiceList struct {
	Invoices []billingapi.Invoice `json:"invoices"`
}

func (h handlers) listInvoices(w http.ResponseWriter, r *http.Request) error {
	caller, err := httpx.Caller(r)
	if err != nil {
		return err
	}
	limit := billingdomain.DefaultListLimit
	if raw, ok := r.URL.Query()["limit"]; ok {
		// Anything but one integer is as invalid as an integer out of range; the service says so.
		limit = 0
		if n, err := strconv.Atoi(raw[0]); err == nil && len(raw) == 1 {
			limit = n
		}
	}
	invs, err := h.svc.ListInvoices(r.Context(), caller.UserID, limit)
	if err != nil {
		return err
	}
	if invs == nil {
		invs = []billingapi.Invoice{}
	}
	return httpx.WriteJSON(w, http.StatusOK, invoiceList{Invoices: invs})
}

func (h handlers) getInvoice(w http.ResponseWriter, r *http.Request) error {
	caller, err := httpx.Caller(r)
	if err != nil {
		return err
	}
	inv, err := h.svc.GetInvoice(r.Context(), caller.UserID, chi.URLParam(r, "id"))
	if err != nil {
		return err
	}
	return httpx.WriteJSON(w, http.StatusOK, inv)
}

// payRequest is the body of POST /invoices/{id}/pay.
type payRequest struct {
	PaymentMethod string `json:"payment_method"`
}

// Validate checks that a payment method was given.
func (p payRequest) Validate() error { return billingdomain.ValidatePaymentMethod(p.PaymentMethod) }

// payResponse is the body of a successful payment.
type payResponse struct {
	Payment billingapi.Payment `json:"payment"`
	Invoice billingapi.Invoice `json:"invoice"`
}

// pay pays an invoice idempotently (see billingdomain.Service.Pay). Requests that fail before the key is
// claimed (no or bad key, bad body) store nothing. Business outcomes are rendered here, problems with
// httpx.RenderProblem, so the exact bytes can be stored on the key and replayed.
func (h handlers) pay(w http.ResponseWriter, r *http.Request) error {
	caller, err := httpx.Caller(r)
	if err != nil {
		return err
	}
	key := r.Header.Get(IdempotencyKeyHeader)
	if err := billingdomain.ValidateIdempotencyKey(key); err != nil {
		return err
	}
	var req payRequest
	if err := httpx.DecodeJSON(r, &req); err != nil {
		return err
	}
	canonical, err := json.Marshal(req)
	if err != nil {
		return err
	}
	resp, err := h.svc.Pay(r.Context(), billingdomain.PayRequest{
		UserID:         caller.UserID,
		InvoiceID:      chi.URLParam(r, "id"),
		PaymentMethod:  req.PaymentMethod,
		IdempotencyKey: key,
		RequestHash:    billingdomain.RequestHash(r.Method, r.URL.Path, canonical),
	}, func(res billingdomain.PayResult, outcome error) (billingdomain.Response, error) {
		if outcome != nil {
			status, body := httpx.RenderProblem(r, outcome)
			return billingdomain.Response{Status: status, Body: body}, nil
		}
		body, err := json.Marshal(payResponse{Payment: res.Payment, Invoice: res.Invoice})
		return billingdomain.Response{Status: http.StatusOK, Body: body}, err
	})
	if err != nil {
		return err
	}
	if resp.Replayed {
		w.Header().Set(IdempotentReplayedHeader, "true")
	}
	if resp.Status >= http.StatusBadRequest {
		httpx.WriteProblemBody(w, resp.Status, resp.Body, 0)
		return nil
	}
	httpx.WriteRawJSON(w, resp.Status, resp.Body)
	return nil
}
