package events

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// tpsLine is pgbench's throughput line.
var tpsLine = regexp.MustCompile(`tps = ([0-9.]+) \(without initial connection time\)`)

// Scripts pgbench runs.
const (
	// InsertScript is one single-row INSERT per transaction (autocommit): the single-row commit rate.
	InsertScript = "INSERT INTO commit_bench (v) VALUES (1);\n"
	// InsertNotifyScript adds a pg_notify to each transaction, as outbox.Enqueue does.
	InsertNotifyScript = "BEGIN;\nINSERT INTO commit_bench (v) VALUES (1);\nSELECT pg_notify('bench_channel', '');\nCOMMIT;\n"
)

// PGBench measures a commit rate: pgbench with clients connections running script (one transaction) for d,
// on database url's server; bin is pgbench's path.
func PGBench(ctx context.Context, bin, url, script string, clients int, d time.Duration) (float64, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return 0, fmt.Errorf("events: pgbench: %w", err)
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return 0, fmt.Errorf("events: pgbench: %w", err)
	}
	_, err = conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS commit_bench (id bigserial PRIMARY KEY, v int NOT NULL, created_at timestamptz NOT NULL DEFAULT now())`)
	_ = conn.Close(ctx)
	if err != nil {
		return 0, fmt.Errorf("events: pgbench table: %w", err)
	}
	dir, err := os.MkdirTemp("", "seam-bench-pgbench-")
	if err != nil {
		return 0, fmt.Errorf("events: %w", err)
	}
	defer func() { _ = os.RemoveAll(dir) }()
	file := filepath.Join(dir, "script.sql")
	if err := os.WriteFile(file, []byte(script), 0o644); err != nil {
		return 0, fmt.Errorf("events: %w", err)
	}
	secs := max(int(d.Round(time.Second).Seconds()), 1)
	cmd := exec.CommandContext(ctx, bin, "-n", "-M", "prepared", "-c", strconv.Itoa(clients), "-j", strconv.Itoa(min(clients, 2)),
		"-T", strconv.Itoa(secs), "-f", file, "-h", cfg.Host, "-p", strconv.Itoa(int(cfg.Port)), "-U", cfg.User, cfg.Database)
	cmd.Env = append(os.Environ(), "PGPASSWORD="+cfg.Password)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("events: pgbench: %w\n%s", err, out)
	}
	m := tpsLine.FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("events: pgbench: no tps in its output:\n%s", out)
	}
	tps, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		return 0, fmt.Errorf("events: pgbench: %w", err)
	}
	return tps, nil
}
