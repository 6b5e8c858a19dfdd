package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

// deadLetter is a dead letter as the admin API returns it.
type deadLetter struct {
	ID            string              `json:"id"`
	Module        string              `json:"module"`
	Consumer      string              `json:"consumer"`
	EventID       string              `json:"event_id"`
	Subject       string              `json:"subject"`
	EventType     string              `json:"event_type"`
	Data          json.RawMessage     `json:"data"`
	Headers       map[string][]string `json:"headers"`
	Error         string              `json:"error"`
	Attempts      int                 `json:"attempts"`
	FirstFailedAt time.Time           `json:"first_failed_at"`
	LastFailedAt  time.Time           `json:"last_failed_at"`
	Status        string              `json:"status"`
	ResolvedAt    *time.Time          `json:"resolved_at"`
}

func dlqCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dlq",
		Short: "Inspect and re-drive the dead letters of a running Seam process (admin API)",
		Long: "Events a consumer gave up on (after its maximum deliveries, or a permanent failure) wait in their\n" +
			"module's dead-letter store. list and show inspect them; retry applies one again with the consumer's\n" +
			"handler (once, whatever the bus does meanwhile); discard gives up on it for good.",
	}
	addAdminFlags(cmd)
	cmd.AddCommand(dlqListCommand(), dlqShowCommand(), dlqActionCommand("retry"), dlqActionCommand("discard"))
	return cmd
}

func dlqListCommand() *cobra.Command {
	var module, status string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List dead letters (every module the process runs, or --module), newest failure first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newAdminClient(cmd)
			if err != nil {
				return err
			}
			q := url.Values{}
			if module != "" {
				q.Set("module", module)
			}
			if status != "" {
				q.Set("status", status)
			}
			var out struct {
				DeadLetters []deadLetter `json:"dead_letters"`
			}
			if err := c.do(cmd.Context(), http.MethodGet, "/dlq?"+q.Encode(), nil, &out); err != nil {
				return err
			}
			return printDeadLetters(cmd.OutOrStdout(), out.DeadLetters)
		},
	}
	cmd.Flags().StringVar(&module, "module", "", "only this module's dead letters")
	cmd.Flags().StringVar(&status, "status", "pending", "pending, retried or discarded; empty for all")
	return cmd
}

func printDeadLetters(w io.Writer, dls []deadLetter) error {
	if len(dls) == 0 {
		_, err := fmt.Fprintln(w, "no dead letters")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MODULE\tID\tCONSUMER\tSUBJECT\tATTEMPTS\tLAST FAILED\tSTATUS\tERROR")
	for _, d := range dls {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", d.Module, d.ID, d.Consumer, d.Subject, d.Attempts,
			d.LastFailedAt.UTC().Format(time.RFC3339), d.Status, oneLine(d.Error, 60))
	}
	return tw.Flush()
}

// oneLine keeps the first line of s, cut to n runes.
func oneLine(s string, n int) string {
	s, _, _ = strings.Cut(s, "\n")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

func dlqShowCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "show <module> <id>",
		Short: "Show one dead letter with its payload, headers and error",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newAdminClient(cmd)
			if err != nil {
				return err
			}
			var d deadLetter
			if err := c.do(cmd.Context(), http.MethodGet, "/dlq/"+url.PathEscape(args[0])+"/"+url.PathEscape(args[1]), nil, &d); err != nil {
				return err
			}
			return printDeadLetter(cmd.OutOrStdout(), d)
		},
	}
}

func printDeadLetter(w io.Writer, d deadLetter) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	resolved := "-"
	if d.ResolvedAt != nil {
		resolved = d.ResolvedAt.UTC().Format(time.RFC3339)
	}
	for _, row := range [][2]string{
		{"id", d.ID}, {"module", d.Module}, {"consumer", d.Consumer}, {"event id", d.EventID},
		{"subject", d.Subject}, {"event type", d.EventType}, {"status", d.Status},
		{"attempts", fmt.Sprint(d.Attempts)},
		{"first failed", d.FirstFailedAt.UTC().Format(time.RFC3339)},
		{"last failed", d.LastFailedAt.UTC().Format(time.RFC3339)},
		{"resolved", resolved}, {"error", d.Error},
	} {
		fmt.Fprintf(tw, "%s:\t%s\n", row[0], row[1])
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	headers, err := json.MarshalIndent(d.Headers, "", "  ")
	if err != nil {
		return err
	}
	data, err := indentJSON(d.Data)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "headers:\n%s\ndata:\n%s\n", headers, data)
	return err
}

func indentJSON(raw json.RawMessage) (string, error) {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return string(raw), nil //nolint:nilerr // shown as it is when not JSON
	}
	out, err := json.MarshalIndent(v, "", "  ")
	return string(out), err
}

func dlqActionCommand(action string) *cobra.Command {
	short := map[string]string{
		"retry":   "Apply a pending dead letter again with its consumer's handler (once) and mark it retried",
		"discard": "Give up on a pending dead letter for good and mark it discarded",
	}[action]
	return &cobra.Command{
		Use:   action + " <module> <id>",
		Short: short,
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newAdminClient(cmd)
			if err != nil {
				return err
			}
			var out struct {
				Applied    *bool      `json:"applied"`
				DeadLetter deadLetter `json:"dead_letter"`
			}
			path := "/dlq/" + url.PathEscape(args[0]) + "/" + url.PathEscape(args[1]) + "/" + action
			if err := c.do(cmd.Context(), http.MethodPost, path, nil, &out); err != nil {
				return err
			}
			msg := fmt.Sprintf("dead letter %s of %s: %s", args[1], args[0], out.DeadLetter.Status)
			if out.Applied != nil && !*out.Applied {
				msg += " (the event had already been applied; nothing ran again)"
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), msg)
			return err
		},
	}
}
