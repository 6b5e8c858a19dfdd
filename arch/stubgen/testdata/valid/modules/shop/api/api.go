// Package shopapi is a representative module api for the stub generator's golden test.
package shopapi

import (
	"context"
	"time"

	"github.com/seamkit/seam/platform/errs"
)

// Shop is the module's remote contract.
type Shop interface {
	// GetOrder returns one order, or ErrOrderNotFound.
	//
	//seam:idempotent
	GetOrder(ctx context.Context, orderID string) (Order, error)
	// ListOrders returns a user's orders placed since a time, at most limit of them.
	//
	//seam:readonly
	//seam:key userID
	ListOrders(ctx context.Context, userID string, since time.Time, limit int) ([]Order, error)
	// PlaceOrder places an order and returns it.
	PlaceOrder(ctx context.Context, userID string, lines []Line, note *string) (*Order, error)
	// Cancel cancels an order.
	Cancel(ctx context.Context, orderID, reason string) error
	// Ping has only a context.
	//
	//seam:readonly
	Ping(context.Context) error
	// Tags shadows the client's own names and leaves one parameter unnamed.
	Tags(ctx context.Context, err string, _ int, byKey map[string][]string) (map[string]int64, error)
}

// Auditor is an in-process hook, not part of the remote contract.
//
//seam:local
type Auditor interface {
	Audit(order Order)
}

// Order is an order as callers see it.
type Order struct {
	ID       string     `json:"id"`
	UserID   string     `json:"user_id"`
	Lines    []Line     `json:"lines"`
	PlacedAt time.Time  `json:"placed_at"`
	PaidAt   *time.Time `json:"paid_at,omitempty"`
}

// Line is one product in an order.
type Line struct {
	SKU      string `json:"sku"`
	Quantity int    `json:"quantity"`
}

// ErrOrderNotFound means no order has that id.
var ErrOrderNotFound = errs.New(errs.NotFound, "shop.order_not_found", "order not found")
