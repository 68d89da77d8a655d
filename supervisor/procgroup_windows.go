//go:build windows

package supervisor

import (
	"os/exec"
	"strconv"
	"syscall"
)

// signalGroup ends the process tree rooted at pid: Windows cannot deliver
// a catchable stop signal to another console process, so every signal is
// a forced end of the tree.
func signalGroup(pid int, sig syscall.Signal) error {
	return exec.Command("taskkill", "/T", "/F", "/PID", strconv.Itoa(pid)).Run()
}

// groupAlive is false: the tree ends with its taskkill.
func groupAlive(pid int) bool { return false }

func signalName(sig syscall.Signal) string { return sig.String() }
