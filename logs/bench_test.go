package logs

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// benchLine is a 60-byte line (newline included).
func benchLine(i int) string { return fmt.Sprintf("%08d %050d\n", i, i) }

// BenchmarkAttach measures the Go side alone: b.N lines of 60 bytes are
// written into a real pipe in 64 KiB writes, and the Output reads, splits,
// keeps and writes them. ns/op is per line.
func BenchmarkAttach(b *testing.B) {
	cases := []struct {
		name   string
		file   bool
		logger bool
	}{
		{"ring", false, false},
		{"ring+file", true, false},
		{"ring+file+logger", true, true},
	}
	var block bytes.Buffer
	for i := 0; block.Len() < 64<<10-60; i++ {
		block.WriteString(benchLine(i))
	}
	perBlock := bytes.Count(block.Bytes(), []byte("\n"))
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			opts := Options{Queue: 1 << 16}
			if c.file {
				opts.File = filepath.Join(b.TempDir(), "bench.log")
				opts.MaxSizeMB = 1000
			}
			if c.logger {
				opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
			}
			o := newOutput(b, opts)
			pr, pw, err := os.Pipe()
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(60)
			b.ReportAllocs()
			b.ResetTimer()
			done := o.Attach(Stdout, 1, 0, pr)
			for left := b.N; left > 0; left -= perBlock {
				if _, err := pw.Write(block.Bytes()); err != nil {
					b.Fatal(err)
				}
			}
			pw.Close()
			waitFor(b, done, "reader")
			flush(b, o)
			b.StopTimer()
			if st := o.Stats(); st.SinkDropped != 0 {
				b.Logf("sink dropped %d of %d lines", st.SinkDropped, st.Lines)
			}
		})
	}
}

// pythonWriter prints n lines of 60 bytes to a block-buffered stdout.
const pythonWriter = `
import sys
w = sys.stdout.write
for i in range(int(sys.argv[1])):
    w("%08d %050d\n" % (i, i))
`

// BenchmarkChild1MLines compares a Python child printing 1M lines of 60
// bytes into `cat > /dev/null` with the same child attached to an Output
// with a log file and a rate-limited logger (default options otherwise).
// Each op runs both, and `cat > file` for reference (the Output writes a
// file, 90 MB here), one after the other so that a noisy machine disturbs
// all alike, from start until the child exited and, for the Output, every
// line is in the file. It reports seconds per run of each, and the ratio of
// the Output to cat > /dev/null.
//
// Python's stdout is block buffered unless PYTHONUNBUFFERED is set, as it is
// on the project's machines and as supervisors commonly set it: then every
// line is a write(2) of its own, the harder case.
func BenchmarkChild1MLines(b *testing.B) {
	needPython(b)
	const n = 1_000_000
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer devnull.Close()
	var catTime, catFileTime, outTime time.Duration
	var dropped uint64
	for i := 0; i < b.N; i++ {
		catTime += timeRun(b, func() { runIntoCat(b, n, devnull) })
		f, err := os.Create(filepath.Join(b.TempDir(), "cat.log"))
		if err != nil {
			b.Fatal(err)
		}
		catFileTime += timeRun(b, func() { runIntoCat(b, n, f) })
		f.Close()
		o := newOutput(b, Options{
			Process: "bench",
			File:    filepath.Join(b.TempDir(), "bench.log"),
			Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
		})
		outTime += timeRun(b, func() { runIntoOutput(b, n, o) })
		st := o.Stats()
		if st.Lines != n {
			b.Fatalf("read %d lines, want %d", st.Lines, n)
		}
		dropped += st.SinkDropped
		o.Close()
	}
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(catTime.Seconds()/float64(b.N), "cat-s/run")
	b.ReportMetric(catFileTime.Seconds()/float64(b.N), "cat-file-s/run")
	b.ReportMetric(outTime.Seconds()/float64(b.N), "output-s/run")
	b.ReportMetric(outTime.Seconds()/catTime.Seconds(), "ratio")
	b.ReportMetric(float64(dropped)/float64(b.N), "sink-dropped/run")
}

func timeRun(b *testing.B, f func()) time.Duration {
	start := time.Now()
	f()
	return time.Since(start)
}

func runIntoCat(b *testing.B, n int, out *os.File) {
	pr, pw, err := os.Pipe()
	if err != nil {
		b.Fatal(err)
	}
	child := exec.Command("python3", "-c", pythonWriter, strconv.Itoa(n))
	child.Stdout = pw
	cat := exec.Command("cat")
	cat.Stdin, cat.Stdout = pr, out
	if err := cat.Start(); err != nil {
		b.Fatal(err)
	}
	if err := child.Start(); err != nil {
		b.Fatal(err)
	}
	pr.Close()
	pw.Close()
	if err := child.Wait(); err != nil {
		b.Fatal(err)
	}
	if err := cat.Wait(); err != nil {
		b.Fatal(err)
	}
}

func runIntoOutput(b *testing.B, n int, o *Output) {
	pr, pw, err := os.Pipe()
	if err != nil {
		b.Fatal(err)
	}
	child := exec.Command("python3", "-c", pythonWriter, strconv.Itoa(n))
	child.Stdout = pw
	if err := child.Start(); err != nil {
		b.Fatal(err)
	}
	pw.Close()
	done := o.Attach(Stdout, child.Process.Pid, 0, pr)
	if err := child.Wait(); err != nil {
		b.Fatal(err)
	}
	waitFor(b, done, "reader")
	if err := o.Flush(context.Background()); err != nil {
		b.Fatal(err)
	}
}
