package httpbench

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/seamkit/seam/modules/auth"
	"github.com/seamkit/seam/modules/billing"
	"github.com/seamkit/seam/modules/notifications"
	"github.com/seamkit/seam/modules/reporting"
	"github.com/seamkit/seam/platform/app"
	"github.com/seamkit/seam/test/bench/proc"
	"github.com/seamkit/seam/test/bench/prof"
)

// MonolithRole is the child role that runs the monolith as cmd/monolith does (the same modules through
// app.Run, configured from SEAM_* variables) and profiles it on request: the HTTP benchmark's profiled run.
const MonolithRole = "monolith"

// paramLog is the monolith child's log file.
const paramLog = "log"

// monolithReadyTimeout bounds the profiled monolith's start.
const monolithReadyTimeout = 2 * time.Minute

// RunMonolith is the child's main for MonolithRole: it runs the monolith until its input closes, then stops
// it gracefully.
func RunMonolith(params map[string]string) error {
	cfg, err := app.LoadConfig("", os.Environ())
	if err != nil {
		return fmt.Errorf("httpbench: monolith: %w", err)
	}
	log, err := os.Create(params[paramLog])
	if err != nil {
		return fmt.Errorf("httpbench: monolith: %w", err)
	}
	defer func() { _ = log.Close() }()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- app.Run(ctx, cfg, log, auth.Module, billing.Module, notifications.Module, reporting.Module)
	}()
	base := "http://" + cfg.HTTP.Addr
	if err := waitReady(base, done); err != nil {
		return err
	}
	serveErr := proc.Serve(base, prof.Commands(func() int64 { return 0 }))
	cancel()
	return errors.Join(serveErr, <-done)
}

// waitReady polls base's /readyz until it answers 200, or the monolith ends (its error on done).
func waitReady(base string, done <-chan error) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(monolithReadyTimeout)
	for time.Now().Before(deadline) {
		select {
		case err := <-done:
			return fmt.Errorf("httpbench: monolith ended before it was ready: %w", err)
		default:
		}
		if resp, err := client.Get(base + "/readyz"); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("httpbench: monolith not ready within %s", monolithReadyTimeout)
}

// MonolithParams are the parameters of a monolith child logging to logPath.
func MonolithParams(logPath string) map[string]string { return map[string]string{paramLog: logPath} }
