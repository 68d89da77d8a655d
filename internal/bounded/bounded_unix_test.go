//go:build unix

package bounded

import (
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// A named pipe is refused before it is opened: opening one for reading
// would block until a writer came.
func TestReadFileRefusesANamedPipe(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Skip("no named pipes here:", err)
	}
	if _, err := ReadFile(fifo, 1<<20); err == nil || !strings.Contains(err.Error(), "a named pipe") {
		t.Errorf("fifo: %v", err)
	}
}
