//go:build unix && !linux

package supervisor

import "syscall"

// sysProcAttr puts the child in a process group of its own. Outside
// Linux there is no parent-death signal; the watchdog alone stops the
// group if PocketBase is killed.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

// groupAlive reports whether any process is in the process group pgid.
func groupAlive(pgid int) bool {
	return syscall.Kill(-pgid, 0) == nil
}
