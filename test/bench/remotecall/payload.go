// Package remotecall measures a remote module call between two processes, Seam's (platform/rpc over NATS,
// as the generated stubs make it) next to its peers: gRPC, HTTP/JSON on chi, plain NATS request-reply and a
// raw TCP ping-pong, all with the same ~200-byte request and response. The server of each peer runs in a child
// process (this program re-executed in a server role).
package remotecall

import (
	"encoding/json"
	"strings"
	"time"

	billingapi "github.com/seamkit/seam/modules/billing/api"
)

// Request is the call's argument: about 200 bytes of JSON.
type Request struct {
	// UserID is the caller.
	UserID string `json:"user_id"`
	// InvoiceID is the invoice asked for.
	InvoiceID string `json:"invoice_id"`
	// Locale is the caller's locale.
	Locale string `json:"locale"`
	// Note pads the request to its size, as a free-text field would.
	Note string `json:"note"`
}

// Response is the call's result, shaped as a generated stub's <Method>Response: about 200 bytes of JSON.
type Response struct {
	// Result is the invoice.
	Result billingapi.Invoice `json:"result"`
}

// sampleRequest is the request every caller sends.
var sampleRequest = Request{
	UserID:    "0193a6a4-7f5e-7c1a-9c1e-000000000001",
	InvoiceID: "0193a6a4-7f5e-7c1a-9c1e-1b2d3e4f5a6b",
	Locale:    "en-GB",
	Note:      "invoice for the monthly Pro plan, requested from the billing page" + strings.Repeat(".", 28),
}

// invoiceTemplate is what the servers answer, with the request's ids filled in.
var invoiceTemplate = billingapi.Invoice{
	AmountMinor: 1250,
	Currency:    "EUR",
	Description: "Pro plan, November",
	Status:      billingapi.StatusOpen,
	CreatedAt:   time.Date(2026, 11, 22, 1, 2, 3, 456789000, time.UTC),
}

// answer is the servers' work for one call: the response for req.
func answer(req *Request) *Response {
	inv := invoiceTemplate
	inv.ID, inv.UserID = req.InvoiceID, req.UserID
	return &Response{Result: inv}
}

// sizes returns the JSON sizes of the request and the response.
func sizes() (req, resp int) {
	r, _ := json.Marshal(sampleRequest)
	a, _ := json.Marshal(answer(&sampleRequest))
	return len(r), len(a)
}
