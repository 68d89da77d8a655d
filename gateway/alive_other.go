//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package gateway

// peekOpen cannot look without waiting here: a closed connection shows
// when the request fails, and a replayable one is sent again.
func peekOpen(fd uintptr) bool { return true }
