package pgserver

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// ErrNoServerBinaries reports that initdb, pg_ctl and postgres could not be found; the error wrapping it
// says how to install them or how to use an existing database instead.
var ErrNoServerBinaries = errors.New("PostgreSQL server binaries (initdb, pg_ctl, postgres) not found")

// serverBinaries are the programs a directory must hold to be used.
var serverBinaries = []string{"initdb", "pg_ctl", "postgres"}

// findBinDir returns the directory holding the server binaries: binDir when given, else the first of
// pg_ctl on $PATH, /usr/lib/postgresql/<highest version>/bin and /usr/local/pgsql/bin that holds them all.
func findBinDir(binDir string) (string, error) {
	var candidates []string
	if binDir != "" {
		candidates = []string{binDir}
	} else {
		if p, err := exec.LookPath("pg_ctl"); err == nil {
			if resolved, err := filepath.EvalSymlinks(p); err == nil {
				candidates = append(candidates, filepath.Dir(resolved))
			}
			candidates = append(candidates, filepath.Dir(p))
		}
		candidates = append(candidates, debianBinDirs()...)
		candidates = append(candidates, "/usr/local/pgsql/bin")
	}
	for _, dir := range candidates {
		if hasServerBinaries(dir) {
			abs, err := filepath.Abs(dir)
			if err != nil {
				return "", fmt.Errorf("pgserver: %w", err)
			}
			return abs, nil
		}
	}
	where := "$PATH, /usr/lib/postgresql/*/bin, /usr/local/pgsql/bin"
	if binDir != "" {
		where = binDir
	}
	return "", fmt.Errorf("pgserver: %w in %s; install them with `apt-get install -y postgresql` (or `make pg`), "+
		"set the directory that holds them (database.bin_dir), or point Seam at an existing database with "+
		"SEAM_DATABASE_URL", ErrNoServerBinaries, where)
}

// debianBinDirs lists /usr/lib/postgresql/*/bin, highest major version first.
func debianBinDirs() []string {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int {
		return compareVersions(filepath.Base(filepath.Dir(b)), filepath.Base(filepath.Dir(a)))
	})
	return dirs
}

// compareVersions orders dotted numeric versions ("9.6" < "15"); non-numeric parts sort first.
func compareVersions(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := range max(len(as), len(bs)) {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if x != y {
			return x - y
		}
	}
	return 0
}

func hasServerBinaries(dir string) bool {
	for _, name := range serverBinaries {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
			return false
		}
	}
	return true
}
