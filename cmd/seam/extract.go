package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/seamkit/seam/arch"
)

// extractCommand is `seam extract <module>`: the module's own binary, cmd/<module>/main.go.
func extractCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "extract <module>",
		Short: "Write cmd/<module>/main.go: a binary running only that module, reaching the others remotely",
		Long: "extract writes cmd/<module>/main.go: a binary that runs only <module> (its HTTP routes, api server,\n" +
			"event consumers, outbox relay and migrations) and reaches every other module through its generated\n" +
			"client, forwarding their HTTP routes to the processes that run them. It connects to external NATS servers\n" +
			"(bus.urls / SEAM_BUS_URLS: the monolith's embedded server listening on a port, or a NATS cluster) and\n" +
			"refuses to start without them. Run the monolith with modules.<module>.mode: remote (SEAM_<MODULE>_MODE)\n" +
			"so it stops running the module and forwards to the extracted instances. `seam check` keeps the file current.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			root, err := cmd.Flags().GetString("repo")
			if err != nil {
				return err
			}
			mods, err := arch.LoadModules(root)
			if err != nil {
				return err
			}
			path, err := arch.WriteExtractedMain(root, mods, args[0])
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), "wrote", path)
			return err
		},
	}
}
