// Command seam is the developer CLI of a Seam repository: it checks module boundaries, draws the module
// graph, scaffolds new modules and extracts modules into their own binaries. Run it from the repository root (`go run ./cmd/seam <command>`).
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

func main() {
	root := &cobra.Command{
		Use:           "seam",
		Short:         "Seam's developer CLI: boundaries, module graph, scaffolding",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().String("repo", ".", "repository root")
	root.AddCommand(checkCommand(), dbCommand(), dlqCommand(), extractCommand(), genCommand(), graphCommand(), newCommand(), replayCommand(), rolloutCommand())
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "seam:", err)
		os.Exit(1)
	}
}
