package logs

import (
	"bufio"
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// waitTimeout is generous: the machine is small and noisy, and -race is slow.
const waitTimeout = 2 * time.Minute

func newOutput(t testing.TB, opts Options) *Output {
	t.Helper()
	o, err := NewOutput(opts)
	if err != nil {
		t.Fatalf("NewOutput: %v", err)
	}
	t.Cleanup(func() { o.Close() })
	return o
}

func waitFor(t testing.TB, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(waitTimeout):
		t.Fatalf("timed out waiting for %s", what)
	}
}

func flush(t testing.TB, o *Output) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := o.Flush(ctx); err != nil {
		t.Fatalf("Flush: %v", err)
	}
}

// pipeIn writes data into a real pipe attached to o and waits until the
// reader has handed everything on.
func pipeIn(t testing.TB, o *Output, stream string, pid int, data ...[]byte) {
	t.Helper()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	done := o.Attach(stream, pid, 0, pr)
	for _, d := range data {
		if _, err := pw.Write(d); err != nil {
			t.Fatalf("write to pipe: %v", err)
		}
	}
	pw.Close()
	waitFor(t, done, "reader")
}

// runChild runs name with args with stdout and stderr attached to o through
// real pipes, and waits for the child and both readers. It returns the pid.
func runChild(t testing.TB, o *Output, name string, args ...string) int {
	t.Helper()
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = outW, errW
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	outW.Close()
	errW.Close()
	pid := cmd.Process.Pid
	outDone := o.Attach(Stdout, pid, 0, outR)
	errDone := o.Attach(Stderr, pid, 0, errR)
	exited := make(chan struct{})
	var werr error
	go func() { werr = cmd.Wait(); close(exited) }()
	waitFor(t, exited, name+" to exit")
	if werr != nil {
		t.Fatalf("%s: %v", name, werr)
	}
	waitFor(t, outDone, "stdout reader")
	waitFor(t, errDone, "stderr reader")
	return pid
}

func needPython(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 not found")
	}
}

// readFileLines returns the lines of the current log file and its rotated
// backups, oldest file first.
func readFileLines(t testing.TB, name string) []string {
	t.Helper()
	ext := filepath.Ext(name)
	backups, err := filepath.Glob(name[:len(name)-len(ext)] + "-*" + ext)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, f := range append(backups, name) { // backup names sort by time
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			lines = append(lines, sc.Text())
		}
		fh.Close()
		if err := sc.Err(); err != nil {
			t.Fatalf("read %s: %v", f, err)
		}
	}
	return lines
}

// recorder is a slog.Handler that keeps every record. If block is set,
// Handle waits until it is closed, like a database that stopped answering.
type recorder struct {
	block chan struct{}

	mu      sync.Mutex
	records []slog.Record
}

func (h *recorder) Enabled(context.Context, slog.Level) bool { return true }

func (h *recorder) Handle(_ context.Context, r slog.Record) error {
	if h.block != nil {
		<-h.block
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.records = append(h.records, r.Clone())
	return nil
}

func (h *recorder) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recorder) WithGroup(string) slog.Handler      { return h }

func (h *recorder) byLevel(level slog.Level) []slog.Record {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []slog.Record
	for _, r := range h.records {
		if r.Level == level {
			out = append(out, r)
		}
	}
	return out
}

func attrs(r slog.Record) map[string]slog.Value {
	m := map[string]slog.Value{}
	r.Attrs(func(a slog.Attr) bool {
		m[a.Key] = a.Value
		return true
	})
	return m
}
