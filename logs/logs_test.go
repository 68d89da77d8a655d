package logs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func texts(lines []Line) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = l.Text
	}
	return out
}

func numbered(from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, "line "+strconv.Itoa(i))
	}
	return out
}

func numberedInput(n int) []byte {
	var b bytes.Buffer
	for _, s := range numbered(0, n) {
		b.WriteString(s + "\n")
	}
	return b.Bytes()
}

func TestTail(t *testing.T) {
	tests := []struct {
		name    string
		ring    int
		written int
		n       int
		want    []string
	}{
		{"nothing written", 5, 0, 0, []string{}},
		{"less than ring, all", 5, 3, 0, numbered(0, 3)},
		{"less than ring, n larger than kept", 5, 3, 10, numbered(0, 3)},
		{"exactly full", 5, 5, 0, numbered(0, 5)},
		{"wrapped, all", 5, 12, 0, numbered(7, 12)},
		{"wrapped, last 3", 5, 12, 3, numbered(9, 12)},
		{"wrapped, last 1", 5, 12, 1, numbered(11, 12)},
		{"wrapped, negative n means all", 5, 12, -1, numbered(7, 12)},
		{"ring of one", 1, 4, 0, numbered(3, 4)},
		{"batch larger than ring", 4, 1000, 0, numbered(996, 1000)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := newOutput(t, Options{RingLines: tt.ring})
			if tt.written > 0 {
				pipeIn(t, o, Stdout, 1, numberedInput(tt.written))
			}
			got := texts(o.Tail(tt.n))
			if !slices.Equal(got, tt.want) {
				t.Fatalf("Tail(%d) = %q, want %q", tt.n, got, tt.want)
			}
			if st := o.Stats(); st.Lines != uint64(tt.written) {
				t.Fatalf("Stats.Lines = %d, want %d", st.Lines, tt.written)
			}
		})
	}
}

// TestTailAcrossReads writes lines one read at a time so that the ring
// wraps around in many small steps.
func TestTailAcrossReads(t *testing.T) {
	tests := []struct {
		name  string
		ring  int
		reads int
	}{
		{"ring 3, 10 reads", 3, 10},
		{"ring 7, 50 reads", 7, 50},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := newOutput(t, Options{RingLines: tt.ring})
			for i := 0; i < tt.reads; i++ {
				pipeIn(t, o, Stdout, 1, []byte(fmt.Sprintf("line %d\nline %d\n", 2*i, 2*i+1)))
			}
			want := numbered(2*tt.reads-tt.ring, 2*tt.reads)
			if got := texts(o.Tail(0)); !slices.Equal(got, want) {
				t.Fatalf("Tail = %q, want %q", got, want)
			}
		})
	}
}

func TestLineHandling(t *testing.T) {
	long := strings.Repeat("x", 250)
	tests := []struct {
		name    string
		maxLine int
		writes  []string
		want    []string
	}{
		{"partial final line", 0, []string{"a\nb\nno newline"}, []string{"a", "b", "no newline"}},
		{"line spread over writes", 0, []string{"hel", "lo wor", "ld\n"}, []string{"hello world"}},
		{"crlf", 0, []string{"one\r\ntwo\r\n"}, []string{"one", "two"}},
		{"crlf split between writes", 0, []string{"one\r", "\ntwo\r\n"}, []string{"one", "two"}},
		{"empty lines", 0, []string{"\n\nx\n"}, []string{"", "", "x"}},
		{"invalid utf8", 0, []string{"bad \xff\xfe bytes\n", "trunc \xe2\x82\n"}, []string{"bad \uFFFD bytes", "trunc \uFFFD"}},
		{"long line split", 100, []string{long + "\n"}, []string{long[:100], long[:100], long[:50]}},
		{"long line over writes", 100, []string{long[:120], long[120:] + "\nnext\n"}, []string{long[:100], long[:100], long[:50], "next"}},
		{"long final line", 100, []string{long}, []string{long[:100], long[:100], long[:50]}},
		{"utf8 not cut inside rune", 5, []string{"ab€€\n"}, []string{"ab€", "€"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := newOutput(t, Options{MaxLineBytes: tt.maxLine})
			var data [][]byte
			for _, w := range tt.writes {
				data = append(data, []byte(w))
			}
			pipeIn(t, o, Stderr, 42, data...)
			lines := o.Tail(0)
			if got := texts(lines); !slices.Equal(got, tt.want) {
				t.Fatalf("lines = %q, want %q", got, tt.want)
			}
			for _, l := range lines {
				if l.Stream != Stderr || l.Pid != 42 || l.Time.IsZero() {
					t.Fatalf("line %+v: want stream stderr, pid 42, a time", l)
				}
			}
		})
	}
}

// TestHugeLineWithoutNewline pushes a 64 MiB line without any newline
// through a pipe with the default limits: it comes out as 64 KiB pieces as it
// arrives, not as one line at EOF (TestSplitterBounds checks the buffer).
func TestHugeLineWithoutNewline(t *testing.T) {
	o := newOutput(t, Options{RingLines: 4})
	const size = 64 << 20
	chunk := bytes.Repeat([]byte("y"), 1<<20)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	done := o.Attach(Stdout, 1, 0, pr)
	for i := 0; i < size/len(chunk); i++ {
		if _, err := pw.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	pw.Close()
	waitFor(t, done, "reader")
	st := o.Stats()
	if want := uint64(size / DefaultMaxLineBytes); st.Lines != want {
		t.Fatalf("Stats.Lines = %d, want %d pieces", st.Lines, want)
	}
	for _, l := range o.Tail(0) {
		if len(l.Text) != DefaultMaxLineBytes {
			t.Fatalf("piece of %d bytes, want %d", len(l.Text), DefaultMaxLineBytes)
		}
	}
}

var fileLine = regexp.MustCompile(`^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) (stdout|stderr) (.*)$`)

// TestChildLinesComplete runs real children that write 100k lines and checks
// every one of them reaches the ring and the file, in order.
func TestChildLinesComplete(t *testing.T) {
	const n = 100_000
	tests := []struct {
		name   string
		python bool
		args   []string
	}{
		{
			name: "sh echo, one write per line",
			args: []string{"sh", "-c", `i=0; while [ $i -lt 100000 ]; do echo "line $i"; i=$((i+1)); done`},
		},
		{
			name:   "python3, block buffered",
			python: true,
			args:   []string{"python3", "-c", `import sys; w = sys.stdout.write; [w("line %d\n" % i) for i in range(100000)]`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.python {
				needPython(t)
			}
			file := filepath.Join(t.TempDir(), "logs", "app.log")
			// A backlog as large as all the lines: this test is about
			// completeness, so the sink must not be allowed to drop.
			o := newOutput(t, Options{Process: "app", File: file, RingLines: n, Queue: n})
			pid := runChild(t, o, tt.args[0], tt.args[1:]...)

			want := numbered(0, n)
			lines := o.Tail(0)
			if got := texts(lines); !slices.Equal(got, want) {
				t.Fatalf("ring has %d lines, want %d in order", len(got), n)
			}
			for _, l := range lines {
				if l.Pid != pid || l.Stream != Stdout {
					t.Fatalf("line %+v: want pid %d on stdout", l, pid)
				}
			}
			flush(t, o)
			st := o.Stats()
			if st.Lines != n || st.SinkDropped != 0 {
				t.Fatalf("stats %+v, want %d lines and no drops", st, n)
			}
			fl := readFileLines(t, file)
			if len(fl) != n {
				t.Fatalf("file has %d lines, want %d", len(fl), n)
			}
			for i, s := range fl {
				m := fileLine.FindStringSubmatch(s)
				if m == nil || m[2] != Stdout || m[3] != want[i] {
					t.Fatalf("file line %d = %q, want %q after time and stream", i, s, want[i])
				}
			}
		})
	}
}

func TestStreamsAndPid(t *testing.T) {
	tests := []struct {
		name   string
		script string
		want   map[string][]string
	}{
		{"stdout only", `echo a; echo b`, map[string][]string{Stdout: {"a", "b"}}},
		{"stderr only", `echo a >&2`, map[string][]string{Stderr: {"a"}}},
		{"both", `echo out1; echo err1 >&2; echo out2; printf err2 >&2`,
			map[string][]string{Stdout: {"out1", "out2"}, Stderr: {"err1", "err2"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := newOutput(t, Options{})
			pid := runChild(t, o, "sh", "-c", tt.script)
			got := map[string][]string{}
			for _, l := range o.Tail(0) {
				if l.Pid != pid {
					t.Fatalf("line %+v: want pid %d", l, pid)
				}
				got[l.Stream] = append(got[l.Stream], l.Text)
			}
			for _, s := range []string{Stdout, Stderr} {
				if !slices.Equal(got[s], tt.want[s]) {
					t.Fatalf("%s lines = %q, want %q", s, got[s], tt.want[s])
				}
			}
		})
	}
}

func TestRestartsShareOutput(t *testing.T) {
	file := filepath.Join(t.TempDir(), "app.log")
	o := newOutput(t, Options{File: file})
	var pids []int
	for run := 0; run < 3; run++ {
		pids = append(pids, runChild(t, o, "sh", "-c", fmt.Sprintf("echo run %d", run)))
	}
	lines := o.Tail(0)
	if len(lines) != 3 {
		t.Fatalf("got %d lines, want 3", len(lines))
	}
	for i, l := range lines {
		if want := fmt.Sprintf("run %d", i); l.Text != want || l.Pid != pids[i] {
			t.Fatalf("line %d = %+v, want %q from pid %d", i, l, want, pids[i])
		}
	}
	flush(t, o)
	if fl := readFileLines(t, file); len(fl) != 3 {
		t.Fatalf("file has %d lines, want 3", len(fl))
	}
}

func TestRotation(t *testing.T) {
	tests := []struct {
		name     string
		maxFiles int
		lines    int  // of 100 bytes each in the file
		minFiles int  // files expected, current one included
		all      bool // every line is kept
	}{
		{"2.5 MB into 1 MB files", 0, 25_000, 3, true},
		// Rotations follow each other fast; lumberjack names backups by
		// the millisecond, and none may overwrite another.
		{"6 MB, many quick rotations lose nothing", 10, 60_000, 6, true},
		{"5 MB keeps 2 backups", 2, 50_000, 3, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			file := filepath.Join(dir, "app.log")
			o := newOutput(t, Options{File: file, MaxSizeMB: 1, MaxFiles: tt.maxFiles, Queue: tt.lines})
			// 29 bytes of time and stream + 70 of text + newline = 100.
			var in bytes.Buffer
			for i := 0; i < tt.lines; i++ {
				fmt.Fprintf(&in, "%08d %s\n", i, strings.Repeat("r", 61))
			}
			pipeIn(t, o, Stdout, 1, in.Bytes())
			if err := o.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			// lumberjack removes old backups in a goroutine of its own, after
			// a rotation: wait until it is done (MaxFiles is honoured) before
			// reading the files.
			keep := tt.maxFiles
			if keep == 0 {
				keep = DefaultMaxFiles
			}
			var files []string
			for deadline := time.Now().Add(waitTimeout); ; time.Sleep(10 * time.Millisecond) {
				var err error
				files, err = filepath.Glob(filepath.Join(dir, "app*.log"))
				if err != nil {
					t.Fatal(err)
				}
				if len(files) <= keep+1 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%d files remain, want at most %d backups besides the current one", len(files), keep)
				}
			}
			if len(files) < tt.minFiles {
				t.Fatalf("files %q, want at least %d", files, tt.minFiles)
			}
			for _, f := range files {
				fi, err := os.Stat(f)
				if err != nil {
					t.Fatal(err)
				}
				if fi.Size() > 1<<20 {
					t.Fatalf("%s has %d bytes, more than MaxSizeMB", f, fi.Size())
				}
				if fi.Mode().Perm()&0o044 == 0 {
					t.Fatalf("%s mode %v, want group/other readable", f, fi.Mode())
				}
			}
			// Every file holds whole lines, and the lines kept are the last
			// ones, in order, without gaps.
			fl := readFileLines(t, file)
			if tt.all && len(fl) != tt.lines {
				t.Fatalf("files hold %d lines, want %d", len(fl), tt.lines)
			}
			first := tt.lines - len(fl)
			for i, s := range fl {
				m := fileLine.FindStringSubmatch(s)
				if m == nil || !strings.HasPrefix(m[3], fmt.Sprintf("%08d ", first+i)) {
					t.Fatalf("line %d of files = %.60q, want line %d", i, s, first+i)
				}
			}
		})
	}
}

func TestNewOutputFile(t *testing.T) {
	dir := t.TempDir()
	regular := filepath.Join(dir, "regular")
	if err := os.WriteFile(regular, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		file    string
		wantErr bool
	}{
		{"creates parent directories", filepath.Join(dir, "a", "b", "app.log"), false},
		{"existing file is appended to", regular, false},
		{"parent is a regular file", filepath.Join(regular, "app.log"), true},
		{"path is a directory", dir, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := NewOutput(Options{File: tt.file})
			if tt.wantErr {
				if err == nil {
					o.Close()
					t.Fatal("NewOutput succeeded, want error")
				}
				if !strings.Contains(err.Error(), tt.file) {
					t.Fatalf("error %q does not name %s", err, tt.file)
				}
				return
			}
			if err != nil {
				t.Fatalf("NewOutput: %v", err)
			}
			defer o.Close()
			fi, err := os.Stat(tt.file)
			if err != nil {
				t.Fatalf("file not created: %v", err)
			}
			if !fi.Mode().IsRegular() {
				t.Fatalf("mode %v, want a regular file", fi.Mode())
			}
			di, err := os.Stat(filepath.Dir(tt.file))
			if err != nil || !di.IsDir() {
				t.Fatalf("parent directory: %v", err)
			}
		})
	}
}

func TestLoggerSink(t *testing.T) {
	tests := []struct {
		name   string
		script string
		want   map[string]string // message -> stream
	}{
		{"stdout", `echo hello`, map[string]string{"hello": Stdout}},
		{"stdout and stderr", `echo out; echo err >&2`, map[string]string{"out": Stdout, "err": Stderr}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &recorder{}
			o := newOutput(t, Options{Process: "worker", Logger: slog.New(h)})
			pid := runChild(t, o, "sh", "-c", tt.script)
			if err := o.Close(); err != nil {
				t.Fatal(err)
			}
			recs := h.byLevel(slog.LevelInfo)
			if len(recs) != len(tt.want) {
				t.Fatalf("got %d info records, want %d", len(recs), len(tt.want))
			}
			for _, r := range recs {
				stream, ok := tt.want[r.Message]
				if !ok {
					t.Fatalf("unexpected message %q", r.Message)
				}
				a := attrs(r)
				if a["process"].String() != "worker" || a["stream"].String() != stream || a["pid"].Int64() != int64(pid) {
					t.Fatalf("record %q attrs %v, want process=worker stream=%s pid=%d", r.Message, a, stream, pid)
				}
			}
			if w := h.byLevel(slog.LevelWarn); len(w) != 0 {
				t.Fatalf("got %d warnings without rate limiting", len(w))
			}
		})
	}
}

func TestLoggerRateLimit(t *testing.T) {
	tests := []struct {
		name  string
		burst int
		reads []int // lines per write, each written after the previous one was handled
		warns int
	}{
		// The first skip warns at once; later skips within 10 s wait for
		// the next warning, which Close emits.
		{"one burst", 5, []int{100}, 1},
		{"two bursts", 5, []int{100, 50}, 2},
		{"all admitted", 10, []int{10}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &recorder{}
			// A rate of one line per 1000 s means only the burst gets in.
			o := newOutput(t, Options{Process: "chatty", Logger: slog.New(h), LoggerRate: 0.001, LoggerBurst: tt.burst})
			total := 0
			for _, n := range tt.reads {
				var in bytes.Buffer
				for i := 0; i < n; i++ {
					fmt.Fprintf(&in, "l%d\n", total+i)
				}
				total += n
				pipeIn(t, o, Stdout, 7, in.Bytes())
				flush(t, o)
			}
			if err := o.Close(); err != nil {
				t.Fatal(err)
			}
			wantSkipped := total - min(total, tt.burst)
			if got := len(h.byLevel(slog.LevelInfo)); got != min(total, tt.burst) {
				t.Fatalf("got %d info records, want %d", got, tt.burst)
			}
			st := o.Stats()
			if st.LoggerSkipped != uint64(wantSkipped) {
				t.Fatalf("Stats.LoggerSkipped = %d, want %d", st.LoggerSkipped, wantSkipped)
			}
			warns := h.byLevel(slog.LevelWarn)
			if len(warns) != tt.warns {
				t.Fatalf("got %d warnings, want %d", len(warns), tt.warns)
			}
			var sum uint64
			for i, w := range warns {
				a := attrs(w)
				if w.Message != SkippedMessage || a["process"].String() != "chatty" {
					t.Fatalf("warning %q %v", w.Message, a)
				}
				sum += a["skipped"].Uint64()
				if a["total_skipped"].Uint64() != sum {
					t.Fatalf("warning %d: total_skipped %v, want %d", i, a["total_skipped"], sum)
				}
			}
			if sum != uint64(wantSkipped) {
				t.Fatalf("warnings report %d skipped, want %d", sum, wantSkipped)
			}
		})
	}
}

// TestBlockedSinkNeverBlocksReader uses a logger that stops answering: the
// child still writes everything, every line is in the ring, and the lines the
// sink could not take are counted.
func TestBlockedSinkNeverBlocksReader(t *testing.T) {
	const n = 100_000
	tests := []struct {
		name  string
		file  bool
		queue int
	}{
		{"logger only, backlog 8 KiB", false, 1},
		{"logger and file, backlog 32 KiB", true, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &recorder{block: make(chan struct{})}
			opts := Options{Logger: slog.New(h), RingLines: n, Queue: tt.queue}
			if tt.file {
				opts.File = filepath.Join(t.TempDir(), "app.log")
			}
			o := newOutput(t, opts)
			t.Cleanup(func() {
				select {
				case <-h.block:
				default:
					close(h.block)
				}
			})
			runChild(t, o, "sh", "-c", `i=0; while [ $i -lt 100000 ]; do echo "line $i"; i=$((i+1)); done`)

			if got := texts(o.Tail(0)); !slices.Equal(got, numbered(0, n)) {
				t.Fatalf("ring has %d lines, want all %d in order", len(got), n)
			}
			st := o.Stats()
			if st.Lines != n || st.SinkDropped == 0 {
				t.Fatalf("stats %+v: want %d lines and some dropped from the sink", st, n)
			}

			close(h.block)
			if err := o.Close(); err != nil {
				t.Fatal(err)
			}
			st = o.Stats()
			infos := uint64(len(h.byLevel(slog.LevelInfo)))
			if infos+st.LoggerSkipped+st.SinkDropped != st.Lines {
				t.Fatalf("logged %d + skipped %d + dropped %d != %d lines", infos, st.LoggerSkipped, st.SinkDropped, st.Lines)
			}
			if tt.file {
				if fl := readFileLines(t, opts.File); uint64(len(fl)) != st.Lines-st.SinkDropped {
					t.Fatalf("file has %d lines, want %d", len(fl), st.Lines-st.SinkDropped)
				}
			}
		})
	}
}

func TestSubscribe(t *testing.T) {
	t.Run("receives lines written after the call", func(t *testing.T) {
		o := newOutput(t, Options{})
		pipeIn(t, o, Stdout, 1, []byte("before\n"))
		ch, cancel := o.Subscribe(100)
		defer cancel()
		pipeIn(t, o, Stdout, 1, []byte("a\nb\n"))
		pipeIn(t, o, Stderr, 2, []byte("c\n"))
		var got []string
		for len(got) < 3 {
			select {
			case l := <-ch:
				got = append(got, l.Stream+":"+l.Text)
			case <-time.After(waitTimeout):
				t.Fatalf("got %q, timed out waiting for more", got)
			}
		}
		if want := []string{"stdout:a", "stdout:b", "stderr:c"}; !slices.Equal(got, want) {
			t.Fatalf("got %q, want %q", got, want)
		}
	})
	t.Run("slow subscriber loses lines, counted", func(t *testing.T) {
		o := newOutput(t, Options{})
		ch, cancel := o.Subscribe(1)
		defer cancel()
		pipeIn(t, o, Stdout, 1, numberedInput(100))
		if st := o.Stats(); st.SubscriberDropped != 99 {
			t.Fatalf("SubscriberDropped = %d, want 99", st.SubscriberDropped)
		}
		if l := <-ch; l.Text != "line 0" {
			t.Fatalf("kept %q, want the first line", l.Text)
		}
		if n := len(o.Tail(0)); n != 100 {
			t.Fatalf("ring has %d lines, want 100", n)
		}
	})
	t.Run("cancel closes the channel, twice is fine", func(t *testing.T) {
		o := newOutput(t, Options{})
		ch, cancel := o.Subscribe(0)
		cancel()
		cancel()
		pipeIn(t, o, Stdout, 1, []byte("after cancel\n"))
		if l, ok := <-ch; ok {
			t.Fatalf("received %+v after cancel", l)
		}
	})
	t.Run("close closes subscribed channels", func(t *testing.T) {
		o := newOutput(t, Options{})
		ch, cancel := o.Subscribe(0)
		o.Close()
		cancel()
		if _, ok := <-ch; ok {
			t.Fatal("channel open after Close")
		}
		late, cancel2 := o.Subscribe(0)
		cancel2()
		if _, ok := <-late; ok {
			t.Fatal("Subscribe after Close returned an open channel")
		}
	})
}

func TestFlush(t *testing.T) {
	tests := []struct {
		name string
		opts func(dir string) Options
	}{
		{"no sink", func(string) Options { return Options{} }},
		{"file", func(dir string) Options { return Options{File: filepath.Join(dir, "f.log")} }},
		{"file and logger", func(dir string) Options {
			return Options{File: filepath.Join(dir, "f.log"), Logger: slog.New(&recorder{})}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := tt.opts(t.TempDir())
			o := newOutput(t, opts)
			pipeIn(t, o, Stdout, 1, []byte("one\ntwo\n"))
			flush(t, o)
			if opts.File != "" {
				if fl := readFileLines(t, opts.File); len(fl) != 2 {
					t.Fatalf("file has %d lines after Flush, want 2", len(fl))
				}
			}
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			if err := o.Flush(ctx); opts.File != "" && err != nil && !errors.Is(err, context.Canceled) {
				t.Fatalf("Flush with canceled context: %v", err)
			}
			o.Close()
			if err := o.Flush(context.Background()); err != nil {
				t.Fatalf("Flush after Close: %v", err)
			}
		})
	}
}

func TestClose(t *testing.T) {
	tests := []struct {
		name string
		file bool
	}{
		{"no file", false},
		{"with file", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var opts Options
			if tt.file {
				opts.File = filepath.Join(t.TempDir(), "app.log")
			}
			o := newOutput(t, opts)
			pipeIn(t, o, Stdout, 1, []byte("kept\n"))
			for i := 0; i < 3; i++ {
				if err := o.Close(); err != nil {
					t.Fatalf("Close #%d: %v", i+1, err)
				}
			}
			// After Close, Attach drains: 4 MB go through a pipe that holds
			// 64 KiB, so the writer would block if nobody read.
			pipeIn(t, o, Stdout, 1, bytes.Repeat([]byte("drained line\n"), 4<<20/13))
			if got := texts(o.Tail(0)); !slices.Equal(got, []string{"kept"}) {
				t.Fatalf("Tail after Close = %q, want only the line before", got)
			}
			if tt.file {
				if fl := readFileLines(t, opts.File); len(fl) != 1 {
					t.Fatalf("file has %d lines, want 1", len(fl))
				}
			}
		})
	}
}

// TestAttachClosesReader checks that the reader passed to Attach is closed
// when it ends, also when it ends with an error.
func TestAttachClosesReader(t *testing.T) {
	tests := []struct {
		name string
		err  error
	}{
		{"eof", io.EOF},
		{"read error", errors.New("broken")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := newOutput(t, Options{})
			r := &closeRecorder{Reader: io.MultiReader(strings.NewReader("x\ny"), errReader{tt.err})}
			waitFor(t, o.Attach(Stdout, 1, 0, r), "reader")
			if !r.closed {
				t.Fatal("reader not closed")
			}
			if got := texts(o.Tail(0)); !slices.Equal(got, []string{"x", "y"}) {
				t.Fatalf("lines %q", got)
			}
		})
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

type closeRecorder struct {
	io.Reader
	closed bool
}

func (c *closeRecorder) Close() error { c.closed = true; return nil }

// TestSinkBacklog stalls the sink with a blocking logger and a backlog of
// 8 KiB (Queue 1): lines wait as far as the backlog allows and reach the file
// in order once the sink moves again.
func TestSinkBacklog(t *testing.T) {
	tests := []struct {
		name     string
		writes   int // separate pipe writes of 10 lines each
		wantDrop bool
	}{
		{"burst fits in backlog", 5, false},
		{"burst exceeds backlog", 100, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &recorder{block: make(chan struct{})}
			file := filepath.Join(t.TempDir(), "app.log")
			o := newOutput(t, Options{File: file, Logger: slog.New(h), Queue: 1})
			released := false
			release := func() {
				if !released {
					released = true
					close(h.block)
				}
			}
			t.Cleanup(release)
			total := tt.writes * 10
			for w := 0; w < tt.writes; w++ {
				var in bytes.Buffer
				for i := 0; i < 10; i++ {
					fmt.Fprintf(&in, "line %d\n", w*10+i)
				}
				pipeIn(t, o, Stdout, 1, in.Bytes())
			}

			// The sink is stuck in the logger: Flush cannot finish.
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			err := o.Flush(ctx)
			cancel()
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Flush with stuck sink = %v, want deadline exceeded", err)
			}

			release()
			flush(t, o)
			st := o.Stats()
			if st.Lines != uint64(total) {
				t.Fatalf("Stats.Lines = %d, want %d", st.Lines, total)
			}
			if dropped := st.SinkDropped > 0; dropped != tt.wantDrop {
				t.Fatalf("SinkDropped = %d, want drops: %v", st.SinkDropped, tt.wantDrop)
			}
			fl := readFileLines(t, file)
			if uint64(len(fl)) != st.Lines-st.SinkDropped {
				t.Fatalf("file has %d lines, want %d read - %d dropped", len(fl), st.Lines, st.SinkDropped)
			}
			prev := -1
			for _, s := range fl {
				m := fileLine.FindStringSubmatch(s)
				n, err := strconv.Atoi(strings.TrimPrefix(m[3], "line "))
				if err != nil || n <= prev {
					t.Fatalf("file line %q after line %d: out of order", s, prev)
				}
				prev = n
			}
			if !tt.wantDrop && prev != total-1 {
				t.Fatalf("last line in file is %d, want %d", prev, total-1)
			}
		})
	}
}

// TestLineLargerThanBacklog checks that a line larger than the whole sink
// backlog still reaches the file when nothing else is waiting.
func TestLineLargerThanBacklog(t *testing.T) {
	tests := []struct {
		name string
		size int
	}{
		{"twice the backlog", 2 * QueueUnit},
		{"max line length", DefaultMaxLineBytes},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "app.log")
			o := newOutput(t, Options{File: file, Queue: 1})
			line := strings.Repeat("z", tt.size)
			pipeIn(t, o, Stdout, 1, []byte(line+"\n"))
			flush(t, o)
			if st := o.Stats(); st.SinkDropped != 0 {
				t.Fatalf("SinkDropped = %d, want 0", st.SinkDropped)
			}
			fl := readFileLines(t, file)
			if len(fl) != 1 || !strings.HasSuffix(fl[0], " stdout "+line) {
				t.Fatalf("file has %d lines, want the one long line", len(fl))
			}
		})
	}
}
