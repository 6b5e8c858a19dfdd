//go:build !linux

package pgserver

import "syscall"

// dieWithParent does nothing here: only Linux can tie a child's life to its parent's, so elsewhere an
// ephemeral server outlives a killed parent until stopped.
func dieWithParent(*syscall.SysProcAttr) {}

// isZombie reports false: zombies are only detected on Linux.
func isZombie(int) bool { return false }
