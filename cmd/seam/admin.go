package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// tokenEnv names the variable that holds the admin bearer token when --token is not given.
const tokenEnv = "SEAM_TOKEN"

// adminClient calls a running Seam process's admin API (/api/admin) with an admin's bearer token.
type adminClient struct {
	base  string
	token string
	http  *http.Client
}

// addAdminFlags adds --url and --token to cmd.
func addAdminFlags(cmd *cobra.Command) {
	cmd.PersistentFlags().String("url", "http://localhost:8080", "base URL of the Seam process running the module")
	cmd.PersistentFlags().String("token", "", "an admin's bearer token (default $"+tokenEnv+")")
}

// newAdminClient reads --url and --token (or SEAM_TOKEN) from cmd.
func newAdminClient(cmd *cobra.Command) (*adminClient, error) {
	base, _ := cmd.Flags().GetString("url")
	token, _ := cmd.Flags().GetString("token")
	if token == "" {
		token = os.Getenv(tokenEnv)
	}
	if token == "" {
		return nil, fmt.Errorf("no token: pass --token or set %s to an admin's bearer token", tokenEnv)
	}
	return &adminClient{base: strings.TrimRight(base, "/"), token: token, http: &http.Client{Timeout: 30 * time.Second}}, nil
}

// problem is the part of an RFC 9457 problem+json body the CLI shows.
type problem struct {
	Title  string `json:"title"`
	Detail string `json:"detail"`
	Code   string `json:"code"`
	Status int    `json:"status"`
	Errors []struct {
		Field  string `json:"field"`
		Detail string `json:"detail"`
	} `json:"errors"`
}

// do sends method path (under /api/admin) with in as its JSON body (none when nil) and decodes a 2xx JSON
// answer into out (when not nil).
func (c *adminClient) do(ctx context.Context, method, path string, in, out any) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return fmt.Errorf("encode the request of %s %s: %w", method, path, err)
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+"/api/admin"+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("call %s (is the process running? set --url): %w", c.base, err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("read the answer of %s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		return problemError(resp.StatusCode, answer)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(answer, out); err != nil {
		return fmt.Errorf("decode the answer of %s %s: %w", method, path, err)
	}
	return nil
}

// errAdminAPI is what every error answer of the admin API wraps.
var errAdminAPI = errors.New("admin API")

func problemError(status int, body []byte) error {
	var p problem
	if json.Unmarshal(body, &p) != nil || (p.Detail == "" && p.Title == "") {
		return fmt.Errorf("%w: %s", errAdminAPI, http.StatusText(status))
	}
	msg := p.Detail
	if msg == "" {
		msg = p.Title
	}
	for _, fe := range p.Errors {
		msg += fmt.Sprintf("; %s %s", fe.Field, fe.Detail)
	}
	hint := ""
	switch status {
	case http.StatusUnauthorized:
		hint = " (is the token valid and unexpired?)"
	case http.StatusForbidden:
		hint = " (the token must belong to an admin)"
	}
	if p.Code != "" {
		return fmt.Errorf("%w: %d %s: %s%s", errAdminAPI, status, p.Code, msg, hint)
	}
	return fmt.Errorf("%w: %d: %s%s", errAdminAPI, status, msg, hint)
}
