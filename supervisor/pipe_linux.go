//go:build linux

package supervisor

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// pipeSize is the buffer of a child's output pipes (the default is
// 64 KiB): large enough that a child never waits on a full pipe while
// the reader batches its reads.
const pipeSize = 1 << 20

// outputPipe returns a pipe for a child's stdout or stderr. Both ends are
// blocking file descriptors, which keeps the read end out of Go's network
// poller: a poller wakes up for every write of the child (a line, for a
// Python child with PYTHONUNBUFFERED=1), while a blocking read in the
// log reader's own thread returns everything written since the last read.
// The buffer is enlarged where the kernel allows it
// (/proc/sys/fs/pipe-max-size).
func outputPipe() (r, w *os.File, err error) {
	var fds [2]int
	if err := syscall.Pipe2(fds[:], syscall.O_CLOEXEC); err != nil {
		return nil, nil, err
	}
	_, _ = unix.FcntlInt(uintptr(fds[0]), unix.F_SETPIPE_SZ, pipeSize)
	return os.NewFile(uintptr(fds[0]), "|0"), os.NewFile(uintptr(fds[1]), "|1"), nil
}
