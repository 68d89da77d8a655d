package watch

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// Generous timeouts: the test machine is small, shared and noisy. Tests only
// ever assert "happened within waitFor" or "did not happen within quiet".
const (
	waitFor = 15 * time.Second
	quiet   = time.Second
	testDeb = 150 * time.Millisecond
)

// recorder collects callbacks.
type recorder struct {
	ch chan []string
}

func newRecorder() *recorder { return &recorder{ch: make(chan []string, 1000)} }

func (r *recorder) onChange(changed []string) {
	r.ch <- slices.Clone(changed)
}

// next waits for the next callback.
func (r *recorder) next(t *testing.T) []string {
	t.Helper()
	select {
	case c := <-r.ch:
		return c
	case <-time.After(waitFor):
		t.Fatalf("no callback within %v", waitFor)
		return nil
	}
}

// waitPath waits until a callback lists path p, returning all paths seen.
func (r *recorder) waitPath(t *testing.T, p string) []string {
	t.Helper()
	var all []string
	deadline := time.After(waitFor)
	for {
		select {
		case c := <-r.ch:
			all = append(all, c...)
			if slices.Contains(c, p) {
				return all
			}
		case <-deadline:
			t.Fatalf("no callback listing %s within %v; saw %v", p, waitFor, all)
			return nil
		}
	}
}

// none asserts that no callback fires within d.
func (r *recorder) none(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case c := <-r.ch:
		t.Fatalf("unexpected callback: %v", c)
	case <-time.After(d):
	}
}

func write(t *testing.T, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// tempDir returns a symlink-free temp dir, so that paths reported by the
// watcher compare equal to the ones the test builds.
func tempDir(t *testing.T) string {
	t.Helper()
	d, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func start(t *testing.T, opts Options) (*Watcher, *recorder) {
	t.Helper()
	rec := newRecorder()
	if opts.Debounce == 0 {
		opts.Debounce = testDeb
	}
	if opts.OnError == nil {
		opts.OnError = func(err error) { t.Logf("watch error: %v", err) }
	}
	w, err := New(opts, rec.onChange)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w, rec
}

func TestBurstYieldsOneCallback(t *testing.T) {
	root := tempDir(t)
	file := filepath.Join(root, "app.py")
	write(t, file, "v0")
	// A long debounce makes "the 50 writes form one burst" robust even on a
	// slow machine.
	_, rec := start(t, Options{Root: root, Debounce: 700 * time.Millisecond})

	for i := range 50 {
		write(t, file, strings.Repeat("x", i))
	}
	got := rec.next(t)
	if !slices.Equal(got, []string{file}) {
		t.Errorf("changed = %v, want [%s]", got, file)
	}
	rec.none(t, 2*time.Second)

	// And the watcher keeps working for the next burst.
	write(t, file, "again")
	rec.waitPath(t, file)
}

func TestNewNestedDirectory(t *testing.T) {
	tests := []struct {
		name string
		rel  string
	}{
		{"one level", "pkg/mod.py"},
		{"deeply nested", "a/b/c/d/e/deep.js"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := tempDir(t)
			_, rec := start(t, Options{Root: root})
			file := filepath.Join(root, filepath.FromSlash(tt.rel))
			// MkdirAll + write right away: the file usually exists before
			// the watcher has added the new directories.
			write(t, file, "created")
			rec.waitPath(t, file)

			// The new directories are watched now.
			write(t, file, "modified")
			rec.waitPath(t, file)
		})
	}
}

func TestIgnored(t *testing.T) {
	tests := []struct {
		name   string
		ignore []string
		rel    string // file written in an ignored place
		dir    string // if set, an ignored directory that must not be watched
	}{
		{name: ".git", rel: ".git/objects/ab/cdef", dir: ".git"},
		{name: "node_modules", rel: "node_modules/left-pad/index.js", dir: "node_modules"},
		{name: "nested node_modules", rel: "web/node_modules/x/index.js", dir: "web/node_modules"},
		{name: "__pycache__", rel: "src/__pycache__/mod.cpython-312.pyc", dir: "src/__pycache__"},
		{name: ".venv", rel: ".venv/lib/python3.12/site.py", dir: ".venv"},
		{name: "venv", rel: "venv/bin/activate", dir: "venv"},
		{name: "pb_data", rel: "pb_data/data.db", dir: "pb_data"},
		{name: "swap file", rel: "src/.main.py.swp"},
		{name: "backup file", rel: "src/main.py~"},
		{name: "emacs lock", rel: "src/.#main.py"},
		{name: "pyc", rel: "src/mod.pyc"},
		{name: "user glob base name", ignore: []string{"*.log"}, rel: "logs/app.log"},
		{name: "user glob dir name", ignore: []string{"tmp"}, rel: "src/tmp/cache.json", dir: "src/tmp"},
		{name: "user anchored", ignore: []string{"/dist"}, rel: "dist/bundle.js", dir: "dist"},
		{name: "user trailing doublestar", ignore: []string{"build/**"}, rel: "build/out/x.js", dir: "build"},
		{name: "user leading doublestar", ignore: []string{"**/fixtures/*.json"}, rel: "tests/unit/fixtures/a.json"},
	}
	for _, tt := range tests {
		for _, existing := range []bool{true, false} {
			name := tt.name + "/created_after_start"
			if existing {
				name = tt.name + "/existing"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				root := tempDir(t)
				real := filepath.Join(root, "src", "main.py")
				write(t, real, "print(1)")
				ignored := filepath.Join(root, filepath.FromSlash(tt.rel))
				if existing {
					write(t, ignored, "old")
				}
				w, rec := start(t, Options{Root: root, Ignore: tt.ignore})

				if tt.dir != "" && existing {
					dir := filepath.Join(root, filepath.FromSlash(tt.dir))
					for _, d := range w.WatchedDirs() {
						if within(d, dir) {
							t.Errorf("ignored directory is watched: %s", d)
						}
					}
				}

				write(t, ignored, "new")
				if err := os.Chmod(ignored, 0o600); err != nil {
					t.Fatal(err)
				}
				rec.none(t, quiet)

				// A real change still triggers, and does not drag the
				// ignored path along.
				write(t, real, "print(2)")
				all := rec.waitPath(t, real)
				for _, p := range all {
					if within(p, ignored) || (tt.dir != "" && within(p, filepath.Join(root, filepath.FromSlash(tt.dir)))) {
						t.Errorf("ignored path reported: %s", p)
					}
				}
			})
		}
	}
}

func TestChmodOnlyIgnored(t *testing.T) {
	root := tempDir(t)
	file := filepath.Join(root, "run.sh")
	write(t, file, "echo")
	_, rec := start(t, Options{Root: root})
	if err := os.Chmod(file, 0o755); err != nil {
		t.Fatal(err)
	}
	rec.none(t, quiet)
	write(t, file, "echo hi")
	rec.waitPath(t, file)
}

func TestNewEmptyDirectoryIsNotAChange(t *testing.T) {
	root := tempDir(t)
	_, rec := start(t, Options{Root: root, Ignore: []string{"*.log"}})

	// What an app typically does at startup: create its log directory and
	// write an ignored log file into it. This must not restart it.
	write(t, filepath.Join(root, "logs", "app.log"), "started")
	if err := os.MkdirAll(filepath.Join(root, "cache", "a", "b"), 0o755); err != nil {
		t.Fatal(err)
	}
	rec.none(t, quiet)

	// A file in the new (now watched) directory does count.
	file := filepath.Join(root, "cache", "a", "b", "c.py")
	write(t, file, "x")
	rec.waitPath(t, file)
}

func TestSingleFile(t *testing.T) {
	tests := []struct {
		name   string
		change func(t *testing.T, file string)
	}{
		{"write", func(t *testing.T, file string) { write(t, file, `{"a":2}`) }},
		{"atomic save via rename", func(t *testing.T, file string) {
			tmp := file + ".tmp"
			write(t, tmp, `{"a":3}`)
			if err := os.Rename(tmp, file); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := tempDir(t)
			file := filepath.Join(root, "config.json")
			write(t, file, `{"a":1}`)
			write(t, filepath.Join(root, "other.py"), "x")
			_, rec := start(t, Options{Root: root, Paths: []string{"config.json"}})

			// Siblings of the watched file do not count.
			write(t, filepath.Join(root, "other.py"), "y")
			write(t, filepath.Join(root, "sub", "z.py"), "z")
			rec.none(t, quiet)

			tt.change(t, file)
			all := rec.waitPath(t, file)
			for _, p := range all {
				if p != file {
					t.Errorf("unexpected path reported: %s", p)
				}
			}
			// Still watched after the change (e.g. after a rename).
			write(t, file, `{"a":4}`)
			rec.waitPath(t, file)
		})
	}
}

func TestExplicitPathInsideIgnored(t *testing.T) {
	root := tempDir(t)
	hook := filepath.Join(root, "pb_data", "hooks", "main.pb.js")
	write(t, hook, "// v1")
	write(t, filepath.Join(root, "pb_data", "data.db"), "db")
	_, rec := start(t, Options{Root: root, Paths: []string{".", "pb_data/hooks"}})

	write(t, filepath.Join(root, "pb_data", "data.db"), "db2")
	rec.none(t, quiet)
	write(t, hook, "// v2")
	rec.waitPath(t, hook)
}

func TestRemovedAndRecreatedDirectory(t *testing.T) {
	root := tempDir(t)
	file := filepath.Join(root, "pkg", "sub", "m.py")
	write(t, file, "1")
	_, rec := start(t, Options{Root: root})

	if err := os.RemoveAll(filepath.Join(root, "pkg")); err != nil {
		t.Fatal(err)
	}
	rec.waitPath(t, filepath.Join(root, "pkg"))

	write(t, file, "2")
	rec.waitPath(t, file)
	write(t, file, "3")
	rec.waitPath(t, file)
}

func TestMovedDirectory(t *testing.T) {
	root := tempDir(t)
	old := filepath.Join(root, "old", "inner")
	write(t, filepath.Join(old, "a.py"), "1")
	w, rec := start(t, Options{Root: root})

	if err := os.Rename(filepath.Join(root, "old"), filepath.Join(root, "new")); err != nil {
		t.Fatal(err)
	}
	moved := filepath.Join(root, "new", "inner", "a.py")
	rec.waitPath(t, moved) // the moved-in tree is scanned

	write(t, moved, "2")
	rec.waitPath(t, moved)
	// The old location is no longer watched (eventually: the watcher
	// goroutine updates its watches asynchronously, but it has already
	// processed the rename before reporting the change above).
	for _, d := range w.WatchedDirs() {
		if within(d, filepath.Join(root, "old")) {
			t.Errorf("stale watch on %s", d)
		}
	}
}

func TestNewErrors(t *testing.T) {
	root := tempDir(t)
	tests := []struct {
		name    string
		opts    Options
		wantIn  string
		notExit bool
	}{
		{"missing relative path", Options{Root: root, Paths: []string{"does-not-exist"}}, "does-not-exist", true},
		{"missing absolute path", Options{Paths: []string{filepath.Join(root, "nope", "x")}}, filepath.Join(root, "nope", "x"), true},
		{"missing among existing", Options{Root: root, Paths: []string{".", "gone.py"}}, "gone.py", true},
		{"bad ignore pattern", Options{Root: root, Ignore: []string{"[abc"}}, "[abc", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := New(tt.opts, func([]string) {})
			if err == nil {
				w.Close()
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tt.wantIn) {
				t.Errorf("error %q does not name %q", err, tt.wantIn)
			}
			if tt.notExit && !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("error %q is not fs.ErrNotExist", err)
			}
		})
	}
	t.Run("nil callback", func(t *testing.T) {
		if _, err := New(Options{Root: root}, nil); err == nil {
			t.Fatal("no error")
		}
	})
}

// waitGoroutines waits until the goroutine count drops to at most n.
func waitGoroutines(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for runtime.NumGoroutine() > n {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("goroutines: %d > %d\n%s", runtime.NumGoroutine(), n, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestClose(t *testing.T) {
	t.Run("stops callbacks and goroutines", func(t *testing.T) {
		base := runtime.NumGoroutine()
		root := tempDir(t)
		file := filepath.Join(root, "a.py")
		write(t, file, "1")
		w, rec := start(t, Options{Root: root})
		write(t, file, "2")
		rec.waitPath(t, file)

		if err := w.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if err := w.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		write(t, file, "3")
		write(t, filepath.Join(root, "new", "b.py"), "b")
		rec.none(t, quiet)
		waitGoroutines(t, base)
	})

	t.Run("pending burst is dropped", func(t *testing.T) {
		base := runtime.NumGoroutine()
		root := tempDir(t)
		file := filepath.Join(root, "a.py")
		write(t, file, "1")
		w, rec := start(t, Options{Root: root, Debounce: 500 * time.Millisecond})
		write(t, file, "2")
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		rec.none(t, quiet)
		waitGoroutines(t, base)
	})

	t.Run("waits for running callback", func(t *testing.T) {
		root := tempDir(t)
		file := filepath.Join(root, "a.py")
		write(t, file, "1")
		entered := make(chan struct{}, 10)
		release := make(chan struct{})
		w, err := New(Options{Root: root, Debounce: testDeb}, func([]string) {
			entered <- struct{}{}
			<-release
		})
		if err != nil {
			t.Fatal(err)
		}
		write(t, file, "2")
		select {
		case <-entered:
		case <-time.After(waitFor):
			t.Fatal("no callback")
		}
		closeDone := make(chan struct{})
		go func() {
			w.Close()
			close(closeDone)
		}()
		select {
		case <-closeDone:
			t.Fatal("Close returned while the callback was still running")
		case <-time.After(300 * time.Millisecond):
		}
		close(release)
		select {
		case <-closeDone:
		case <-time.After(waitFor):
			t.Fatal("Close did not return after the callback finished")
		}
		if len(entered) != 0 {
			t.Fatal("another callback started")
		}
	})
}

func TestOnErrorForUnreadableDir(t *testing.T) {
	if os.Getuid() == 0 {
		t.Skip("root can read everything")
	}
	root := tempDir(t)
	locked := filepath.Join(root, "locked")
	write(t, filepath.Join(locked, "f.py"), "x")
	if err := os.Chmod(locked, 0o000); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(locked, 0o755) })
	var (
		mu   sync.Mutex
		errs []error
	)
	_, rec := start(t, Options{Root: root, OnError: func(err error) {
		mu.Lock()
		defer mu.Unlock()
		errs = append(errs, err)
	}})
	mu.Lock()
	n := len(errs)
	mu.Unlock()
	if n == 0 {
		t.Error("no error reported for unreadable directory")
	}
	// Not fatal: the rest still works.
	write(t, filepath.Join(root, "ok.py"), "1")
	rec.waitPath(t, filepath.Join(root, "ok.py"))
}
