//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package gateway

import "golang.org/x/sys/unix"

// peekOpen reports whether the socket fd is open and has nothing to
// read: the state of an idle keep-alive connection.
func peekOpen(fd uintptr) bool {
	var b [1]byte
	_, _, err := unix.Recvfrom(int(fd), b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
	return err == unix.EAGAIN || err == unix.EWOULDBLOCK
}
