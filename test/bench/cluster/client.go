package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// Client calls a Seam application's HTTP API (or the bare handler's, which serves the same routes).
type Client struct {
	// BaseURL is where the application serves, e.g. http://127.0.0.1:8080.
	BaseURL string
	// HTTP makes the requests.
	HTTP *http.Client
}

// NewClient returns a client for baseURL whose transport keeps up to conns connections per host open.
func NewClient(baseURL string, conns int) *Client {
	tr := &http.Transport{MaxIdleConns: 2 * conns, MaxIdleConnsPerHost: conns, IdleConnTimeout: time.Minute, DisableCompression: true}
	return &Client{BaseURL: baseURL, HTTP: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

// StatusError is an answer with an unexpected status.
type StatusError struct {
	// Method and Path say which request.
	Method, Path string
	// Status is the status received.
	Status int
	// Body is the start of the body received.
	Body string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s %s: status %d: %s", e.Method, e.Path, e.Status, e.Body)
}

// Do sends a JSON request (body nil for none) with token as bearer (empty for none) and extra headers, and
// decodes the JSON answer into out (nil to discard it) when its status is want.
func (c *Client) Do(ctx context.Context, method, path, token string, body any, header map[string]string, want int, out any) error {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("%s %s: encode: %w", method, path, err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.BaseURL+path, rd)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
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
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s %s: read: %w", method, path, err)
	}
	if resp.StatusCode != want {
		return &StatusError{Method: method, Path: path, Status: resp.StatusCode, Body: string(data[:min(len(data), 300)])}
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s %s: decode: %w", method, path, err)
		}
	}
	return nil
}

// SignUp creates an account and returns its access token.
func (c *Client) SignUp(ctx context.Context, email, password string) (string, error) {
	creds := map[string]string{"email": email, "password": password}
	if err := c.Do(ctx, http.MethodPost, "/api/auth/signup", "", creds, nil, http.StatusCreated, nil); err != nil {
		return "", err
	}
	var login struct {
		AccessToken string `json:"access_token"`
	}
	if err := c.Do(ctx, http.MethodPost, "/api/auth/login", "", creds, nil, http.StatusOK, &login); err != nil {
		return "", err
	}
	return login.AccessToken, nil
}

// InvoiceBody is the body of a new invoice.
var InvoiceBody = map[string]any{"amount_minor": 1250, "currency": "EUR", "description": "Pro plan, November"}

// CreateInvoice creates an invoice for the token's user and returns its id.
func (c *Client) CreateInvoice(ctx context.Context, token string) (string, error) {
	var inv struct {
		ID string `json:"id"`
	}
	if err := c.Do(ctx, http.MethodPost, "/api/billing/invoices", token, InvoiceBody, nil, http.StatusCreated, &inv); err != nil {
		return "", err
	}
	return inv.ID, nil
}

// PayBody is the body of a payment.
var PayBody = map[string]string{"payment_method": "pm_card_visa"}

// Pay pays an invoice with a fresh idempotency key.
func (c *Client) Pay(ctx context.Context, token, invoiceID, key string) error {
	return c.Do(ctx, http.MethodPost, "/api/billing/invoices/"+invoiceID+"/pay", token, PayBody,
		map[string]string{"Idempotency-Key": key}, http.StatusOK, nil)
}

// ListInvoices reads the token's user's invoices.
func (c *Client) ListInvoices(ctx context.Context, token string) error {
	return c.Do(ctx, http.MethodGet, "/api/billing/invoices", token, nil, nil, http.StatusOK, nil)
}
