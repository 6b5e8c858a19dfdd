// Package brokenapi declares methods the stub generator must refuse.
package brokenapi

import (
	"context"
	"unsafe"
)

// Broken mixes remotable and unremotable methods.
type Broken interface {
	// Fine is remotable.
	Fine(ctx context.Context, id string) (string, error)
	// NoContext lacks ctx.
	NoContext(id string) error
	// NoError returns no error.
	NoError(ctx context.Context) string
	// TooMany returns two values besides error.
	TooMany(ctx context.Context) (string, int, error)
	// Stream takes a channel.
	Stream(ctx context.Context, ch chan string) error
	// Callback takes a func.
	Callback(ctx context.Context, fn func()) error
	// Raw returns an unsafe pointer inside a struct.
	Raw(ctx context.Context) (Holder, error)
	// Anything takes an interface value.
	Anything(ctx context.Context, v any) error
	// Many is variadic.
	Many(ctx context.Context, ids ...string) error
	// Unkeyed names a routing key it does not have.
	//seam:key userID
	Unkeyed(ctx context.Context, id string) error
	// Numbered names a routing key that is not a string.
	//seam:key n
	Numbered(ctx context.Context, n int) error
}

// Holder hides an unsafe pointer.
type Holder struct {
	P unsafe.Pointer
}
