package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/seamkit/seam/arch"
)

// graphCommand is `seam graph`: the module dependency graph as a table, Mermaid or DOT, and the generated
// documentation under docs/.
func graphCommand() *cobra.Command {
	var format string
	var writeDocs, checkDocs bool
	cmd := &cobra.Command{
		Use:   "graph",
		Short: "Print the module dependency graph (imports and event subscriptions) and the extraction ranking",
		Long: "graph reads the modules' Go sources and prints, per module, the modules it calls and whose events it\n" +
			"consumes, the modules depending on it, and an extraction-difficulty ranking (" + arch.ScoreExplanation + ").\n" +
			"--write-docs regenerates " + arch.GraphDocsPath + " and " + arch.GraphDOTPath + "; --check-docs fails when they are stale.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			root, err := cmd.Flags().GetString("repo")
			if err != nil {
				return err
			}
			if writeDocs && checkDocs {
				return errors.New("graph: --write-docs and --check-docs exclude each other")
			}
			g, err := arch.LoadGraph(root)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			switch {
			case writeDocs:
				if err := arch.WriteGraphDocs(root, g); err != nil {
					return err
				}
				_, err = fmt.Fprintf(out, "wrote %s and %s\n", arch.GraphDocsPath, arch.GraphDOTPath)
				return err
			case checkDocs:
				if err := arch.CheckGraphDocs(root, g); err != nil {
					return err
				}
				_, err = fmt.Fprintf(out, "%s and %s are up to date\n", arch.GraphDocsPath, arch.GraphDOTPath)
				return err
			}
			var text string
			switch format {
			case "text":
				text = g.Text()
			case "mermaid":
				text = g.Mermaid()
			case "dot":
				text = g.DOT()
			default:
				return fmt.Errorf("graph: --format: want text, mermaid or dot, got %q", format)
			}
			_, err = fmt.Fprint(out, text)
			return err
		},
	}
	cmd.Flags().StringVar(&format, "format", "text", "output format: text, mermaid or dot")
	cmd.Flags().BoolVar(&writeDocs, "write-docs", false, "regenerate "+arch.GraphDocsPath+" and "+arch.GraphDOTPath)
	cmd.Flags().BoolVar(&checkDocs, "check-docs", false, "fail when "+arch.GraphDocsPath+" or "+arch.GraphDOTPath+" is stale")
	return cmd
}
