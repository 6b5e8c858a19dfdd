package rpc

import (
	"bytes"
	"slices"
	"testing"
)

// TestRequestFrameRoundTrip: parseRequest gives back what appendRequest wrote, and refuses every truncation
// of it that cuts into the method or the headers.
func TestRequestFrameRoundTrip(t *testing.T) {
	h := laneHeaders{HeaderRequestID, "req-1", HeaderDeadline, "1700000000000000000", "traceparent", ""}
	body := []byte(`{"text":"hi"}`)
	frame := appendRequest(nil, 7, "Echo", h, body)
	payload := frame[4+frameHeaderLen:]
	method, got, gotBody, err := parseRequest(payload)
	if err != nil || string(method) != "Echo" || !slices.Equal(got, h) || !bytes.Equal(gotBody, body) {
		t.Fatalf("parseRequest = %q %q %q %v", method, got, gotBody, err)
	}
	headersEnd := len(payload) - len(body)
	for cut := range headersEnd {
		if _, _, _, err := parseRequest(payload[:cut]); err == nil {
			t.Errorf("a payload cut to %d of its %d header bytes parsed", cut, headersEnd)
		}
	}
}
