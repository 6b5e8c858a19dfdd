package main

import (
	"errors"
	"strings"

	"github.com/spf13/cobra"

	"github.com/seamkit/seam/arch"
)

// errViolations is returned when the check found violations; the report has already been printed.
var errViolations = errors.New("check failed (see the report above)")

// checkCommand is `seam check`: every boundary check, one report, a non-zero exit status on any violation.
func checkCommand() *cobra.Command {
	var fix, updateBaseline, asJSON bool
	var channels []string
	var baseline string
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Check module boundaries: imports, SQL, bus declarations, generated code",
		Long: "check runs every boundary check and prints one report, grouped by channel:\n" +
			"  imports    go-arch-lint with the configuration generated from modules/ (" + arch.ArchLintFile + "),\n" +
			"             plus the standard library rules of domain packages\n" +
			"  sql        sqlc compiles each module's queries against its own migrations only\n" +
			"  bus        a module publishes only its own subjects, through its outbox; no raw NATS in module code\n" +
			"  generated  committed generated files are current: " + arch.ArchLintFile + ", sqlc output, module graph docs\n" +
			"Violations listed in the baseline (" + arch.BaselineFile + ") are tolerated; a listed violation that is gone\n" +
			"fails until it is removed. The exit status is non-zero on any violation.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			root, err := cmd.Flags().GetString("repo")
			if err != nil {
				return err
			}
			opts := arch.Options{Root: root, Channels: channels, BaselineFile: baseline, Fix: fix, UpdateBaseline: updateBaseline}
			res, err := arch.Check(cmd.Context(), opts)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				err = res.WriteJSON(out)
			} else {
				err = res.WriteText(out)
			}
			if err != nil {
				return err
			}
			if !res.OK() {
				return errViolations
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&fix, "fix", false, "regenerate generated files ("+arch.ArchLintFile+", sqlc output, module graph docs) before checking")
	f.BoolVar(&updateBaseline, "update-baseline", false, "write the import and bus violations found to the baseline, so they are tolerated")
	f.BoolVar(&asJSON, "json", false, "print the report as JSON")
	f.StringSliceVar(&channels, "channel", nil, "run only these channels ("+strings.Join(arch.Channels, ", ")+")")
	f.StringVar(&baseline, "baseline", arch.BaselineFile, "baseline file, relative to the repository root")
	return cmd
}
