package pgserver

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
)

// serverUserName is the OS account the server runs as when Seam runs as root (PostgreSQL refuses root).
const serverUserName = "postgres"

// account is the OS user the server's processes run as: the current user, or serverUserName when the
// current process is root.
type account struct {
	// cred is nil when the processes run as the current user.
	cred *syscall.Credential
}

// serverAccount picks the account: the current user unless the process is root.
func serverAccount() (account, error) {
	if os.Geteuid() != 0 {
		return account{}, nil
	}
	u, err := user.Lookup(serverUserName)
	if err != nil {
		if errors.As(err, new(user.UnknownUserError)) {
			return account{}, fmt.Errorf("pgserver: running as root, so PostgreSQL must run as the OS user %q, "+
				"which does not exist; create it (`useradd --system --home-dir /var/lib/postgresql postgres`, "+
				"or install the postgresql package) or run Seam as a non-root user: %w", serverUserName, err)
		}
		return account{}, fmt.Errorf("pgserver: look up OS user %q: %w", serverUserName, err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return account{}, fmt.Errorf("pgserver: OS user %q has uid %q: %w", serverUserName, u.Uid, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return account{}, fmt.Errorf("pgserver: OS user %q has gid %q: %w", serverUserName, u.Gid, err)
	}
	a := account{cred: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	groupIDs, err := u.GroupIds()
	if err != nil {
		return account{}, fmt.Errorf("pgserver: groups of OS user %q: %w", serverUserName, err)
	}
	for _, g := range groupIDs {
		if n, err := strconv.ParseUint(g, 10, 32); err == nil {
			a.cred.Groups = append(a.cred.Groups, uint32(n))
		}
	}
	return a, nil
}

// own gives path to the account (a no-op when it is the current user).
func (a account) own(path string) error {
	if a.cred == nil {
		return nil
	}
	if err := os.Lchown(path, int(a.cred.Uid), int(a.cred.Gid)); err != nil {
		return fmt.Errorf("pgserver: give %s to OS user %q: %w", path, serverUserName, err)
	}
	return nil
}

// checkTraversable fails, naming the directory, when the account cannot reach dir because one of its
// ancestors lacks search permission for it.
func (a account) checkTraversable(dir string) error {
	if a.cred == nil {
		return nil
	}
	for p := filepath.Dir(dir); ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("pgserver: %w", err)
		}
		if !a.canSearch(fi) {
			return fmt.Errorf("pgserver: directory %s (mode %s) is not traversable by OS user %q, which runs "+
				"PostgreSQL; allow it (`chmod o+x %s`) or keep the data directory elsewhere", p, fi.Mode().Perm(),
				serverUserName, p)
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}

// canSearch applies the owner/group/other permission bits as the kernel would (ACLs aside).
func (a account) canSearch(fi fs.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return true
	}
	perm := fi.Mode().Perm()
	switch {
	case st.Uid == a.cred.Uid:
		return perm&0o100 != 0
	case st.Gid == a.cred.Gid || slices.Contains(a.cred.Groups, st.Gid):
		return perm&0o010 != 0
	default:
		return perm&0o001 != 0
	}
}
