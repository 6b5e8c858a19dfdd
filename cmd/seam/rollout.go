package main

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/seamkit/seam/platform/route"
)

// window is one side's measurements as the admin API returns them.
type window struct {
	Calls  uint64 `json:"calls"`
	Errors uint64 `json:"errors"`
	P50    int64  `json:"p50_ns"`
	P95    int64  `json:"p95_ns"`
	P99    int64  `json:"p99_ns"`
}

// routedModule is a module's routing as the admin API returns it.
type routedModule struct {
	Name          string  `json:"name"`
	Mode          string  `json:"mode"`
	Percent       float64 `json:"percent"`
	Shadow        bool    `json:"shadow"`
	WindowSeconds int     `json:"window_seconds"`
	Local         window  `json:"local"`
	Remote        window  `json:"remote"`
	Methods       []struct {
		Name       string  `json:"name"`
		Percent    float64 `json:"percent"`
		Shadow     bool    `json:"shadow"`
		Overridden bool    `json:"overridden"`
		Local      window  `json:"local"`
		Remote     window  `json:"remote"`
	} `json:"methods"`
	LastChange *route.Change `json:"last_change"`
}

func rolloutCommand() *cobra.Command {
	var method, reason string
	var shadow string
	cmd := &cobra.Command{
		Use:   "rollout [<module> <percent>]",
		Short: "Show or change the share of a split module's callers sent to its extracted instances",
		Long: "A module in split mode (modules.<name>.mode: split) runs both in the process and in its extracted\n" +
			"binary; a sticky share of its callers (by user) goes remote. Without arguments, rollout shows every\n" +
			"module's routing and the last window's traffic, errors and latency per side. With a module and a\n" +
			"percentage (0 to 100, e.g. 10 or 12.5) it changes the module's share live, in every process of the\n" +
			"application, and records who and why in the audit trail (`rollout audit <module>`). A module-wide\n" +
			"change also clears per-method overrides, so `seam rollout billing 0 --reason ...` sends all of billing\n" +
			"back to local in one command.",
		Example: "  seam rollout\n  seam rollout billing 10 --reason \"first 10% of users\"\n" +
			"  seam rollout billing 0 --reason \"back out\"\n  seam rollout auth 100 --method GetUser --shadow=true --reason \"compare reads\"",
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 0 && len(args) != 2 {
				return fmt.Errorf("want no arguments (show) or <module> <percent>, got %d", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newAdminClient(cmd)
			if err != nil {
				return err
			}
			if len(args) == 0 {
				var out struct {
					Modules []routedModule `json:"modules"`
				}
				if err := c.do(cmd.Context(), http.MethodGet, "/routes", nil, &out); err != nil {
					return err
				}
				return printRoutes(cmd.OutOrStdout(), out.Modules)
			}
			bp, err := route.ParsePercent(args[1])
			if err != nil {
				return fmt.Errorf("percent %q: want a number from 0 to 100 with at most two decimals", args[1])
			}
			if strings.TrimSpace(reason) == "" {
				return fmt.Errorf("--reason is required: say why the rollout changes (it goes into the audit trail)")
			}
			pct := float64(bp) / 100
			req := map[string]any{"percent": pct, "reason": reason, "method": method}
			if shadow != "" {
				b, err := strconv.ParseBool(shadow)
				if err != nil {
					return fmt.Errorf("--shadow=%q: want true or false", shadow)
				}
				req["shadow"] = b
			}
			var m routedModule
			if err := c.do(cmd.Context(), http.MethodPut, "/routes/"+url.PathEscape(args[0]), req, &m); err != nil {
				return err
			}
			return printRoutes(cmd.OutOrStdout(), []routedModule{m})
		},
	}
	addAdminFlags(cmd)
	cmd.Flags().StringVar(&reason, "reason", "", "why the rollout changes (required to change it)")
	cmd.Flags().StringVar(&method, "method", "", "change one api method (or \"http\": the HTTP routes) instead of the whole module")
	cmd.Flags().StringVar(&shadow, "shadow", "", "true or false: shadow read-only calls on the other side (default: unchanged)")
	cmd.AddCommand(rolloutAuditCommand())
	return cmd
}

func printRoutes(w io.Writer, mods []routedModule) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MODULE\tMETHOD\tMODE\tREMOTE %\tSHADOW\tLOCAL CALLS\tLOCAL ERR\tLOCAL P95\tREMOTE CALLS\tREMOTE ERR\tREMOTE P95")
	row := func(mod, method, mode string, pct float64, shadow bool, l, r window) {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%t\t%d\t%d\t%s\t%d\t%d\t%s\n", mod, method, mode,
			strconv.FormatFloat(pct, 'f', -1, 64), shadow, l.Calls, l.Errors, latency(l), r.Calls, r.Errors, latency(r))
	}
	for _, m := range mods {
		row(m.Name, "*", m.Mode, m.Percent, m.Shadow, m.Local, m.Remote)
		for _, mm := range m.Methods {
			if mm.Overridden || mm.Local.Calls+mm.Remote.Calls > 0 {
				row(m.Name, mm.Name, "", mm.Percent, mm.Shadow, mm.Local, mm.Remote)
			}
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, m := range mods {
		if lc := m.LastChange; lc != nil {
			fmt.Fprintf(w, "%s: last changed by %s at %s: %s\n", m.Name, lc.Actor, lc.At.UTC().Format(time.RFC3339), lc.Reason)
		}
	}
	if len(mods) > 0 {
		_, err := fmt.Fprintf(w, "(traffic over the last %ds)\n", mods[0].WindowSeconds)
		return err
	}
	return nil
}

func latency(w window) string {
	if w.Calls == 0 || w.P95 == 0 {
		return "-"
	}
	return time.Duration(w.P95).String()
}

func rolloutAuditCommand() *cobra.Command {
	var limit int
	cmd := &cobra.Command{
		Use:   "audit <module>",
		Short: "List the changes of a module's rollout: who, when, from what to what, and why",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newAdminClient(cmd)
			if err != nil {
				return err
			}
			var out struct {
				Audit []route.AuditEntry `json:"audit"`
			}
			if err := c.do(cmd.Context(), http.MethodGet, fmt.Sprintf("/routes/%s/audit?limit=%d", url.PathEscape(args[0]), limit), nil, &out); err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "AT\tACTOR\tMETHOD\tFROM\tTO\tREASON")
			for _, e := range out.Audit {
				method := e.Method
				if method == "" {
					method = "*"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", e.At.UTC().Format(time.RFC3339), e.Actor, method,
					stateText(e.From), stateText(route.State{RemoteBP: e.RemoteBP, Shadow: e.Shadow}), oneLine(e.Reason, 80))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 20, "how many changes, newest first (1 to 1000)")
	return cmd
}

func stateText(s route.State) string {
	t := strconv.FormatFloat(s.Percent(), 'f', -1, 64) + "%"
	if s.Shadow {
		t += " +shadow"
	}
	return t
}
