//go:build !linux

package supervisor

import "os"

// outputPipe returns a pipe for a child's stdout or stderr.
func outputPipe() (r, w *os.File, err error) { return os.Pipe() }
