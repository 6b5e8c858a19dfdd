// Package sqlfs embeds every module's goose migrations so the binary carries its own schema.
package sqlfs

import (
	"embed"
	"fmt"
	"io/fs"
)

//go:embed */migrations/*.sql
var files embed.FS

// Migrations returns module's migrations directory (sql/<module>/migrations). An invalid module name gives
// a file system whose every Open fails with the reason.
func Migrations(module string) fs.FS {
	sub, err := fs.Sub(files, module+"/migrations")
	if err != nil {
		return failingFS{fmt.Errorf("sqlfs: migrations of %q: %w", module, err)}
	}
	return sub
}

type failingFS struct{ err error }

func (f failingFS) Open(string) (fs.File, error) { return nil, f.err }
