package rpc

import (
	"encoding/json"
	"fmt"
	"sync/atomic"

	"github.com/seamkit/seam/platform/identity"
)

// principalHeader is a principal with its Seam-Principal header value: the last one encoded or decoded,
// kept because a process's calls in a row mostly carry the same caller.
type principalHeader struct {
	p identity.Principal
	v string
}

// lastEncoded and lastDecoded are the last principal headers written and read.
var lastEncoded, lastDecoded atomic.Pointer[principalHeader]

// encodePrincipal returns p's Seam-Principal header value.
func encodePrincipal(p identity.Principal) (string, error) {
	if last := lastEncoded.Load(); last != nil && last.p == p {
		return last.v, nil
	}
	b, err := json.Marshal(p)
	if err != nil {
		return "", fmt.Errorf("encode principal: %w", err)
	}
	lastEncoded.Store(&principalHeader{p: p, v: string(b)})
	return string(b), nil
}

// decodePrincipal returns the principal of a Seam-Principal header value.
func decodePrincipal(v string) (identity.Principal, error) {
	if last := lastDecoded.Load(); last != nil && last.v == v {
		return last.p, nil
	}
	var p identity.Principal
	if err := json.Unmarshal([]byte(v), &p); err != nil {
		return identity.Principal{}, err
	}
	lastDecoded.Store(&principalHeader{p: p, v: v})
	return p, nil
}
