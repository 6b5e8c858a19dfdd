package main

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/seamkit/seam/arch"
)

// newCommand is `seam new`: scaffolding.
func newCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "new",
		Short: "Scaffold new parts of the repository",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newModuleCommand())
	return cmd
}

// newModuleCommand is `seam new module <name>`.
func newModuleCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "module <name>",
		Short: "Scaffold a module: modules/<name>/{api,domain,data}, sql/<name>, sqlc and lint entries, monolith registration",
		Long: "module writes a working module with an authenticated example API (GET and POST /api/<name>/items),\n" +
			"its api contract, domain service, data adapter with sqlc queries and a migration, and tests (one\n" +
			"of them on a real PostgreSQL). It adds the module to sqlc.yaml, .go-arch-lint.yml, cmd/monolith and\n" +
			"docs/module-graph.md, and runs sqlc generate. A name is 2 to 31 lower-case letters or digits,\n" +
			"starting with a letter, and not a reserved word; a refused name writes nothing.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			root, err := cmd.Flags().GetString("repo")
			if err != nil {
				return err
			}
			res, err := arch.NewModule(cmd.Context(), root, args[0], sqlcGenerate)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "module %s scaffolded.\n\ncreated:\n", args[0])
			for _, f := range res.Created {
				fmt.Fprintf(out, "  %s\n", f)
			}
			fmt.Fprintln(out, "changed:")
			for _, f := range res.Changed {
				fmt.Fprintf(out, "  %s\n", f)
			}
			_, err = fmt.Fprintf(out, "\nnext: make lint test; then try it: curl -H \"Authorization: Bearer $TOKEN\" localhost:8080/api/%s/items\n", args[0])
			return err
		},
	}
}

// sqlcGenerate regenerates the modules' sqlc code in root, as `seam check --fix` does.
func sqlcGenerate(ctx context.Context, root string) error {
	abs, err := filepath.Abs(root)
	if err != nil {
		return err
	}
	return arch.SQLCGenerator().Fix(ctx, arch.Env{Root: abs, Go: "go"})
}
