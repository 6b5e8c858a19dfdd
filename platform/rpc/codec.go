package rpc

import gojson "github.com/goccy/go-json"

// Request and response bodies are JSON, encoded and decoded with github.com/goccy/go-json: encoding/json's
// format, tags and Marshaler/Unmarshaler methods at about a quarter of its cost per call (BenchmarkCodec*),
// which on a lane is a large part of a call's CPU. Everything else on the wire (error bodies, principals,
// announcements) is small or cached and stays with encoding/json.

// encodeBody encodes a request or response body.
func encodeBody(v any) ([]byte, error) { return gojson.Marshal(v) }

// decodeBody decodes a request or response body into v.
func decodeBody(data []byte, v any) error { return gojson.Unmarshal(data, v) }
