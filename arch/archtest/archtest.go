// Package archtest helps tests of the architecture checks: it copies the repository into a temporary
// directory where a test can plant a violation without touching the working tree.
package archtest

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// skipped are top-level directories never copied: git metadata, local run data, built binaries.
var skipped = []string{".git", ".seam", "bin"}

// RepoRoot returns the root of the git work tree the test runs in.
func RepoRoot(t testing.TB) string {
	t.Helper()
	out, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		t.Fatalf("archtest: find the repository root (git rev-parse): %v", err)
	}
	return strings.TrimSpace(string(out))
}

// CopyRepo copies the repository the test runs in (tracked files and untracked files git does not ignore,
// without .git, .seam and bin) into a temporary directory removed after the test, and returns its root.
// Files listed by git but deleted from the work tree are left out.
func CopyRepo(t testing.TB) string {
	t.Helper()
	src := RepoRoot(t)
	cmd := exec.Command("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	cmd.Dir = src
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("archtest: git ls-files: %v: %s", err, stderr.Bytes())
	}
	dst := t.TempDir()
	seen := map[string]bool{}
	for _, rel := range strings.Split(string(out), "\x00") {
		if rel == "" || seen[rel] || isSkipped(rel) {
			continue
		}
		seen[rel] = true
		if err := copyPath(filepath.Join(src, filepath.FromSlash(rel)), filepath.Join(dst, filepath.FromSlash(rel))); err != nil {
			t.Fatalf("archtest: copy %s: %v", rel, err)
		}
	}
	return dst
}

// WriteFile writes content to rel (slash-separated, relative to root), creating parent directories: the way
// a test plants a file in a copy.
func WriteFile(t testing.TB, root, rel, content string) {
	t.Helper()
	p := filepath.Join(root, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatalf("archtest: %v", err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatalf("archtest: %v", err)
	}
}

// isSkipped reports whether rel lies under one of the skipped top-level directories.
func isSkipped(rel string) bool {
	first, _, _ := strings.Cut(rel, "/")
	for _, s := range skipped {
		if first == s {
			return true
		}
	}
	return false
}

// copyPath copies one regular file or symbolic link, keeping the permission bits; a missing source is skipped.
func copyPath(src, dst string) error {
	fi, err := os.Lstat(src)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		target, err := os.Readlink(src)
		if err != nil {
			return err
		}
		return os.Symlink(target, dst)
	case !fi.Mode().IsRegular():
		return nil
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, fi.Mode().Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
