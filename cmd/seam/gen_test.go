package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// TestGenCheckOnThisRepository runs `seam gen --check` on the repository: the committed stubs are current.
func TestGenCheckOnThisRepository(t *testing.T) {
	root := &cobra.Command{Use: "seam", SilenceUsage: true, SilenceErrors: true}
	root.PersistentFlags().String("repo", ".", "repository root")
	root.AddCommand(genCommand())
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetArgs([]string{"gen", "--check", "--repo", "../.."})
	if err := root.Execute(); err != nil {
		t.Fatalf("seam gen --check: %v", err)
	}
	if !strings.Contains(out.String(), "up to date") {
		t.Fatalf("output = %q", out.String())
	}
}
