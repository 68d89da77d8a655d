//go:build windows

package config

import "syscall"

// Windows has no user signals; a stop there always ends the process tree.
var signals = map[string]syscall.Signal{
	"TERM": syscall.SIGTERM,
	"INT":  syscall.SIGINT,
	"QUIT": syscall.SIGQUIT,
	"HUP":  syscall.SIGHUP,
	"KILL": syscall.SIGKILL,
	"USR1": syscall.SIGTERM,
	"USR2": syscall.SIGTERM,
}
