package httpx

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"
)

// HandlerFunc is an HTTP handler that returns its error instead of writing it; Errors turns it into a
// http.Handler that writes problem+json.
type HandlerFunc func(w http.ResponseWriter, r *http.Request) error

// Errors adapts h to http.Handler, writing any returned error as problem+json.
func Errors(logger *slog.Logger, h HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			WriteError(w, r, logger, err)
		}
	}
}

// Validatable is implemented by request bodies that check their own fields after decoding.
type Validatable interface{ Validate() error }

// DecodeJSON reads a JSON request body into dst: the content type must be application/json, unknown fields
// and trailing data are refused, the body limit applies, and dst.Validate runs when dst implements it.
func DecodeJSON(r *http.Request, dst any) error {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return ErrUnsupportedMediaType
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return ErrBodyTooLarge
		}
		return decodeError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return ErrBodyTooLarge
		}
		return ErrMalformedBody
	}
	if v, ok := dst.(Validatable); ok {
		return v.Validate()
	}
	return nil
}

// decodeError keeps the field-level reason (unknown field, wrong type) without echoing the input.
func decodeError(err error) error {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) && typeErr.Field != "" {
		e := *ErrMalformedBody
		e.Message = "field " + typeErr.Field + " must be a JSON " + jsonKind(typeErr.Type.Kind().String())
		return &e
	}
	if msg := err.Error(); strings.HasPrefix(msg, "json: unknown field ") {
		e := *ErrMalformedBody
		e.Message = "unknown field " + strings.TrimPrefix(msg, "json: unknown field ")
		return &e
	}
	return ErrMalformedBody
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "string"
	case "bool":
		return "boolean"
	case "slice", "array":
		return "array"
	case "struct", "map":
		return "object"
	default:
		return "number"
	}
}

// WriteJSON writes v as a JSON response with the given status.
func WriteJSON(w http.ResponseWriter, status int, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return err
	}
	WriteRawJSON(w, status, body)
	return nil
}

// WriteRawJSON writes an already-encoded JSON body (for stored responses replayed byte for byte).
func WriteRawJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
