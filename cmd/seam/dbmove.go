package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/seamkit/seam/arch"
	"github.com/seamkit/seam/platform/app"
	"github.com/seamkit/seam/platform/config"
	"github.com/seamkit/seam/platform/db"
	"github.com/seamkit/seam/platform/dbmove"
	"github.com/seamkit/seam/platform/migrate"
	sqlfs "github.com/seamkit/seam/sql"
)

// moduleURLsEnv is the environment variable of database.module_urls.
var moduleURLsEnv = config.EnvName(config.EnvPrefix, "database", "module_urls")

// dbCommand is `seam db`: moving a module's data to a database of its own, and checking such a copy.
func dbCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "db",
		Short: "Move a module's data to another PostgreSQL database, and verify the copy",
	}
	cmd.AddCommand(dbMoveCommand(), dbVerifyCommand())
	return cmd
}

// dbFlags are the flags `seam db move` and `seam db verify` share.
type dbFlags struct {
	to, from, config string
}

// add defines the flags on cmd.
func (f *dbFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.to, "to", "", "admin URL of the module's new database (a user with CREATEROLE and CREATE on it, like database.url)")
	fl.StringVar(&f.from, "from", "", "admin URL of the module's current database (default: the module's database in the configuration)")
	fl.StringVar(&f.config, "config", os.Getenv(app.ConfigEnv), "the YAML configuration the module runs with (default $"+app.ConfigEnv+"); SEAM_* variables override it")
	_ = cmd.MarkFlagRequired("to")
}

func dbMoveCommand() *cobra.Command {
	var f dbFlags
	cmd := &cobra.Command{
		Use:   "move <module> --to <database-url>",
		Short: "Copy a module's schema to another database, verify it, and print the setting that switches the module",
		Long: "move copies <module>'s schema from its current database (--from, by default the one the configuration\n" +
			"gives the module) to the database --to names, then verifies the copy:\n" +
			"  1. on the target, it provisions the module's role and schema and applies the module's migrations,\n" +
			"     as the module's start does;\n" +
			"  2. in one transaction on the target, it empties the module's tables and copies every table from one\n" +
			"     REPEATABLE READ, READ ONLY snapshot of the source with COPY, in foreign-key order, and sets the\n" +
			"     sequences to the source's values;\n" +
			"  3. it compares each table's row count and checksum on both sides and commits only when all match.\n" +
			"It never writes to the source and never touches another schema; running it again replaces the copy.\n" +
			"It does not stop writes: stop the module's processes first (see docs/database-move.md).",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts, err := f.options(cmd, args[0])
			if err != nil {
				return err
			}
			opts.Migrations = sqlfs.Migrations(opts.Module)
			report, err := dbmove.Move(cmd.Context(), opts)
			out := cmd.OutOrStdout()
			if report != nil {
				if werr := report.WriteText(out); werr != nil {
					return werr
				}
			}
			if errors.Is(err, dbmove.ErrVerification) {
				return fmt.Errorf("%w; the target was left as it was before this move", err)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "\nok: %s moved, %d tables and %d rows copied and verified\n", opts.Module, len(report.Tables), report.Rows())
			return printSwitch(out, opts)
		},
	}
	f.add(cmd)
	return cmd
}

func dbVerifyCommand() *cobra.Command {
	var f dbFlags
	cmd := &cobra.Command{
		Use:   "verify <module> --to <database-url>",
		Short: "Compare a module's schema on two databases, table by table, without writing to either",
		Long: "verify compares <module>'s schema on its current database (--from, by default the one the configuration\n" +
			"gives the module) and on the database --to names: the same tables, columns and migration versions, then\n" +
			"per table the row count and checksum, and the sequences. Run it before switching the module over, with\n" +
			"its writers stopped, to make sure nothing was written to the source since the move.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts, err := f.options(cmd, args[0])
			if err != nil {
				return err
			}
			report, err := dbmove.Verify(cmd.Context(), opts)
			out := cmd.OutOrStdout()
			if report != nil {
				if werr := report.WriteText(out); werr != nil {
					return werr
				}
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "\nok: %s holds the same %d tables and %d rows on both databases\n", opts.Module, len(report.Tables), report.Rows())
			return nil
		},
	}
	f.add(cmd)
	return cmd
}

// options checks module, reads the configuration and works out the source, printing where the data moves
// from and to.
func (f *dbFlags) options(cmd *cobra.Command, module string) (dbmove.Options, error) {
	if err := migrate.ValidateSchema(module); err != nil {
		return dbmove.Options{}, fmt.Errorf("module %q: not a module name", module)
	}
	if _, err := fs.ReadDir(sqlfs.Migrations(module), "."); err != nil {
		return dbmove.Options{}, unknownModule(cmd, module)
	}
	cfg, err := app.LoadConfig(f.config, os.Environ())
	if err != nil {
		return dbmove.Options{}, err
	}
	logger := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))
	from, source := f.from, "--from"
	if from == "" {
		if from, source, err = configuredSource(cmd, cfg, module, logger); err != nil {
			return dbmove.Options{}, err
		}
	}
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "module %s\n  from %s (%s)\n  to   %s\n\n", module, masked(from), source, masked(f.to))
	return dbmove.Options{Module: module, From: from, To: f.to, Database: cfg.Database, Logger: logger}, nil
}

// unknownModule is the error for a module this binary has no migrations for, listing the repository's
// modules when --repo holds them.
func unknownModule(cmd *cobra.Command, module string) error {
	err := fmt.Errorf("unknown module %q: this seam binary carries no migrations for it (sql/%s/migrations)", module, module)
	root, _ := cmd.Flags().GetString("repo")
	mods, lerr := arch.LoadModules(root)
	if lerr != nil || len(mods) == 0 {
		return err
	}
	names := make([]string, len(mods))
	for i, m := range mods {
		names[i] = m.Name
	}
	return fmt.Errorf("%w; modules: %s", err, strings.Join(names, ", "))
}

// configuredSource is the database the configuration gives module, as a running Seam would find it: the
// module's own database, else database.url, else the local server in data_dir (started if need be).
func configuredSource(cmd *cobra.Command, cfg *app.Config, module string, logger *slog.Logger) (string, string, error) {
	own, err := cfg.Database.ModuleDatabases()
	if err != nil {
		return "", "", err
	}
	if url, ok := own[module]; ok {
		if cfg.Database.Modules[module].URL == url {
			return url, "database.modules." + module + ".url", nil
		}
		return url, "database.module_urls (" + moduleURLsEnv + ")", nil
	}
	if cfg.Database.URL != "" {
		return cfg.Database.URL, "database.url", nil
	}
	url, err := db.LocalServerURL(cmd.Context(), cfg.Database, cfg.DataDir, logger)
	if errors.Is(err, db.ErrNoLocalServer) {
		return "", "", fmt.Errorf("no --from given, and the configuration names no database for %s "+
			"(database.modules.%s.url, %s, database.url) nor holds a local server in %s: pass --from <url> (%w)",
			module, module, moduleURLsEnv, filepath.Join(cfg.DataDir, "postgres"), err)
	}
	if err != nil {
		return "", "", err
	}
	return url, "the local server in " + filepath.Join(cfg.DataDir, "postgres"), nil
}

// printSwitch prints the configuration that makes the module run on the target, in YAML and as the
// environment variable (keeping the other modules' entries the configuration already has).
func printSwitch(w io.Writer, o dbmove.Options) error {
	own, err := o.Database.ModuleDatabases()
	if err != nil {
		return err
	}
	entries := []string{}
	for _, m := range slices.Sorted(maps.Keys(own)) {
		if m != o.Module {
			entries = append(entries, m+"="+masked(own[m]))
		}
	}
	entries = append(entries, o.Module+"="+masked(o.To))
	_, err = fmt.Fprintf(w, `
To run %[1]s on its new database: make sure none of %[1]s's processes still writes to the old one (stop them,
see docs/database-move.md), give every process that runs %[1]s this setting, then start them again:

  database:
    modules:
      %[1]s:
        url: %[2]s

or, in the environment (it wins over the file):

  %[3]s=%[4]s

(URLs are shown with their passwords masked: use the real ones.) The old database keeps its copy of the
schema; drop it once %[1]s runs well on the new one.
`, o.Module, masked(o.To), moduleURLsEnv, strings.Join(entries, ","))
	return err
}

// masked is url with its password masked, as the configuration is logged.
func masked(url string) string {
	m, ok := config.Redacted(db.ModuleConfig{URL: url}).(map[string]any)
	if !ok {
		return config.Masked
	}
	s, ok := m["url"].(string)
	if !ok {
		return config.Masked
	}
	return s
}
