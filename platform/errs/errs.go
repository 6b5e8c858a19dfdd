// Package errs is the error contract shared by every module: typed, client-safe errors whose identity (a
// stable code) survives logging, HTTP and remote calls, so callers match them with errors.Is.
package errs

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Kind classifies an error by what the caller can do about it; transports map it to a status code.
type Kind int

// The kinds of error a module may return to its callers.
const (
	// Internal is an unexpected failure; its details never reach a client.
	Internal Kind = iota
	// Invalid means the request itself is malformed (bad JSON, missing header).
	Invalid
	// Unprocessable means the request is well-formed but its content fails validation or a business rule.
	Unprocessable
	// Unauthenticated means no valid credentials were presented.
	Unauthenticated
	// Forbidden means the caller is known but not allowed to do this.
	Forbidden
	// NotFound means the resource does not exist or is not visible to the caller.
	NotFound
	// Conflict means the request conflicts with the current state (duplicate, concurrent use).
	Conflict
	// TooManyRequests means the caller must slow down or wait.
	TooManyRequests
	// PaymentRequired means a payment was declined.
	PaymentRequired
	// Unavailable means a dependency is down; retrying later may succeed.
	Unavailable
)

var kindNames = [...]string{"internal", "invalid", "unprocessable", "unauthenticated", "forbidden",
	"not_found", "conflict", "too_many_requests", "payment_required", "unavailable"}

// String names the kind in lower snake case (used on the wire).
func (k Kind) String() string {
	if int(k) < len(kindNames) && k >= 0 {
		return kindNames[k]
	}
	return "internal"
}

// ParseKind reverses Kind.String; unknown names are Internal.
func ParseKind(s string) Kind {
	for i, n := range kindNames {
		if n == s {
			return Kind(i)
		}
	}
	return Internal
}

// FieldError says which input field is wrong and why.
type FieldError struct {
	Field  string `json:"field"`
	Detail string `json:"detail"`
}

// Error is a client-safe error: Code identifies it (e.g. "billing.invoice_not_found"), Message is safe to
// show to a client, Fields lists invalid inputs.
type Error struct {
	Kind    Kind
	Code    string
	Message string
	Fields  []FieldError
	// RetryAfter, when set, tells the client how long to wait before trying again.
	RetryAfter time.Duration
}

// New declares a sentinel error; modules declare theirs in their api package.
func New(kind Kind, code, message string) *Error {
	return &Error{Kind: kind, Code: code, Message: message}
}

// Error returns the client-safe message with its code.
func (e *Error) Error() string {
	if len(e.Fields) == 0 {
		return e.Code + ": " + e.Message
	}
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.Field + " " + f.Detail
	}
	return e.Code + ": " + e.Message + " (" + strings.Join(parts, "; ") + ")"
}

// Is matches by code, so an error rebuilt from the wire matches the sentinel it was made from.
func (e *Error) Is(target error) bool {
	var t *Error
	if !errors.As(target, &t) {
		return false
	}
	return t.Code == e.Code
}

// CodeValidation is the code of every input-validation error.
const CodeValidation = "validation_failed"

// ErrValidation is the sentinel every validation error matches.
var ErrValidation = New(Unprocessable, CodeValidation, "the request has invalid fields")

// Validation reports invalid input fields; it matches ErrValidation.
func Validation(fields ...FieldError) *Error {
	return &Error{Kind: Unprocessable, Code: CodeValidation, Message: ErrValidation.Message, Fields: fields}
}

// Field builds one FieldError with a formatted detail.
func Field(field, format string, args ...any) FieldError {
	return FieldError{Field: field, Detail: fmt.Sprintf(format, args...)}
}

// Collector gathers field errors during validation.
type Collector struct{ fields []FieldError }

// Add records that field is invalid.
func (c *Collector) Add(field, format string, args ...any) {
	c.fields = append(c.fields, Field(field, format, args...))
}

// Check records the field error when ok is false.
func (c *Collector) Check(ok bool, field, format string, args ...any) {
	if !ok {
		c.Add(field, format, args...)
	}
}

// Err returns a validation error when any field was recorded, else nil.
func (c *Collector) Err() error {
	if len(c.fields) == 0 {
		return nil
	}
	return Validation(c.fields...)
}

// WithRetryAfter returns a copy of e (same code, so it still matches e) that asks the client to wait d.
func (e *Error) WithRetryAfter(d time.Duration) *Error {
	c := *e
	c.RetryAfter = d
	return &c
}

// As returns the *Error in err's chain, if any.
func As(err error) (*Error, bool) {
	var e *Error
	if errors.As(err, &e) {
		return e, true
	}
	return nil, false
}
