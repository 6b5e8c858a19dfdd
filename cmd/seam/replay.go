package main

import (
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/spf13/cobra"
)

// consumerStatus is one consumer as GET /api/admin/consumers reports it.
type consumerStatus struct {
	Module     string `json:"module"`
	Consumer   string `json:"consumer"`
	Pending    uint64 `json:"pending"`
	AckPending int    `json:"ack_pending"`
}

func replayCommand() *cobra.Command {
	var wait bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "replay <module>",
		Short: "Rebuild a module's read model from its event streams in the running process",
		Long: "replay asks the process running <module> to stop the module's consumers, empty its read model and\n" +
			"inbox records in one transaction, recreate its durable consumers from the start of their streams\n" +
			"and start them again. With --wait it then polls until they have caught up.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newAdminClient(cmd)
			if err != nil {
				return err
			}
			module := args[0]
			var started struct {
				EventsToReapply int64 `json:"events_to_reapply"`
			}
			if err := c.do(cmd.Context(), http.MethodPost, "/replay/"+url.PathEscape(module), nil, &started); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "replay of %s started: read model reset, %d handled events to apply again\n", module, started.EventsToReapply)
			if !wait {
				return nil
			}
			deadline := time.Now().Add(timeout)
			for {
				var st struct {
					Consumers []consumerStatus `json:"consumers"`
				}
				if err := c.do(cmd.Context(), http.MethodGet, "/consumers", nil, &st); err != nil {
					return err
				}
				var left uint64
				for _, s := range st.Consumers {
					if s.Module == module {
						left += s.Pending + uint64(s.AckPending)
					}
				}
				if left == 0 {
					fmt.Fprintf(out, "replay of %s done: its consumers have caught up\n", module)
					return nil
				}
				if time.Now().After(deadline) {
					return fmt.Errorf("replay of %s: %d events still pending after %s", module, left, timeout)
				}
				select {
				case <-cmd.Context().Done():
					return cmd.Context().Err()
				case <-time.After(250 * time.Millisecond):
				}
			}
		},
	}
	addAdminFlags(cmd)
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until the module's consumers have no pending events")
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Minute, "how long --wait waits")
	return cmd
}
