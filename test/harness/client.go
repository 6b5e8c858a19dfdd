package harness

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"
)

// Client calls a Seam process over HTTP for a test.
type Client struct {
	t       testing.TB
	BaseURL string
	HTTP    *http.Client
}

// NewClient returns a client for baseURL.
func NewClient(t testing.TB, baseURL string) *Client {
	return &Client{t: t, BaseURL: baseURL, HTTP: &http.Client{Timeout: 30 * time.Second}}
}

// Request is one HTTP call.
type Request struct {
	Method      string
	Path        string
	Token       string
	Body        any    // marshalled as JSON unless it is a string or []byte (sent as is)
	ContentType string // defaults to application/json when there is a body
	Header      map[string]string
}

// Response is what came back.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into v, failing the test if it is not JSON.
func (r Response) JSON(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("response body is not JSON (%v): %s", err, r.Body)
	}
}

// Do performs the request; transport errors fail the test.
func (c *Client) Do(req Request) Response {
	c.t.Helper()
	var body io.Reader
	switch b := req.Body.(type) {
	case nil:
	case string:
		body = bytes.NewBufferString(b)
	case []byte:
		body = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			c.t.Fatal(err)
		}
		body = bytes.NewReader(data)
	}
	hr, err := http.NewRequest(req.Method, c.BaseURL+req.Path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	if body != nil {
		ct := req.ContentType
		if ct == "" {
			ct = "application/json"
		}
		hr.Header.Set("Content-Type", ct)
	}
	if req.Token != "" {
		hr.Header.Set("Authorization", "Bearer "+req.Token)
	}
	for k, v := range req.Header {
		hr.Header.Set(k, v)
	}
	resp, err := c.HTTP.Do(hr)
	if err != nil {
		c.t.Fatalf("%s %s: %v", req.Method, req.Path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("%s %s: read body: %v", req.Method, req.Path, err)
	}
	return Response{Status: resp.StatusCode, Header: resp.Header, Body: data}
}
