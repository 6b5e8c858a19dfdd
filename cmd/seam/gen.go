package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/seamkit/seam/arch/stubgen"
)

// `make generate` runs `go generate ./...`, which runs this line in cmd/seam: the stubs are regenerated
// with the rest of the generated code.
//go:generate go run . gen --repo ../..

// genCommand is `seam gen`: the remote client and server stubs of every module's api interface.
func genCommand() *cobra.Command {
	var check bool
	cmd := &cobra.Command{
		Use:   "gen",
		Short: "Generate the NATS client/server stubs of every module's api interface",
		Long: "gen reads modules/<m>/api, checks that every method of its interface can be called remotely (ctx first,\n" +
			"error last, at most one other result, no channels, funcs, interfaces or unsafe pointers) and writes\n" +
			"modules/<m>/api/" + stubgen.RemoteDir + "/" + stubgen.FileName + " (package <m>remote): New<I>Client and Serve<I>.\n" +
			"Mark a method //seam:idempotent to let clients retry it. --check fails when a stub is missing or stale.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			root, err := cmd.Flags().GetString("repo")
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if check {
				stale, err := stubgen.Check(root)
				if err != nil {
					return err
				}
				if len(stale) > 0 {
					lines := make([]string, len(stale))
					for i, s := range stale {
						lines[i] = "  " + s.Path + ": " + s.Reason
					}
					return fmt.Errorf("gen: remote stubs are stale (run `seam gen`):\n%s", strings.Join(lines, "\n"))
				}
				_, err = fmt.Fprintln(out, "remote stubs are up to date")
				return err
			}
			written, err := stubgen.Write(root)
			if err != nil {
				return err
			}
			for _, p := range written {
				if _, err := fmt.Fprintln(out, "wrote", p); err != nil {
					return err
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&check, "check", false, "report missing or stale stubs instead of writing them")
	return cmd
}
