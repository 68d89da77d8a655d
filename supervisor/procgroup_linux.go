//go:build linux

package supervisor

import (
	"bytes"
	"os"
	"strconv"
	"syscall"
)

// sysProcAttr puts the child in a process group of its own, so that it
// and every descendant can be signalled together, and asks the kernel
// to SIGKILL it if the thread that spawned it dies. The spawner runs on
// a locked OS thread that lives as long as the process, so the signal
// fires exactly when PocketBase dies, however it dies.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// groupAlive reports whether any live (non-zombie) process is in the
// process group pgid. Zombies are left out: an orphaned descendant that
// exited waits for init to reap it, and it holds nothing.
func groupAlive(pgid int) bool {
	if syscall.Kill(-pgid, 0) != nil {
		return false // the common case, without reading /proc
	}
	dir, err := os.Open("/proc")
	if err != nil {
		return true
	}
	defer dir.Close()
	names, _ := dir.Readdirnames(-1)
	want := []byte(" " + strconv.Itoa(pgid) + " ")
	for _, name := range names {
		if name[0] < '0' || name[0] > '9' {
			continue
		}
		stat, err := os.ReadFile("/proc/" + name + "/stat")
		if err != nil {
			continue
		}
		// stat is "pid (comm) state ppid pgrp ..."; comm may hold spaces.
		end := bytes.LastIndexByte(stat, ')')
		if end < 0 || end+4 > len(stat) {
			continue
		}
		fields := stat[end+2:] // "state ppid pgrp ..."
		if fields[0] == 'Z' || fields[0] == 'X' {
			continue
		}
		rest := fields[1:] // " ppid pgrp ..."
		ppidEnd := bytes.IndexByte(rest[1:], ' ')
		if ppidEnd < 0 {
			continue
		}
		if bytes.HasPrefix(rest[1+ppidEnd:], want) {
			return true
		}
	}
	return false
}
