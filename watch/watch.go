// Package watch is a recursive, debounced file watcher used by processman to
// restart a supervised process in development when its sources change.
//
// It is built on fsnotify, which only watches single directories: New walks
// every watched directory tree and adds each subdirectory, directories created
// later are added (and scanned, so files written into a brand-new directory
// before its watch existed still count as changes), and watches on removed or
// renamed directories are dropped. Ignored directories are never descended
// into, so a huge node_modules or .venv costs nothing.
//
// A burst of events produces a single callback, fired Options.Debounce after
// the last event of the burst. Chmod-only events are ignored, and so is the
// creation of a directory: only the files that show up in it count (so an
// application creating its own, ignored, log or cache files in a new
// directory does not restart itself). Removing or renaming a directory is a
// change.
//
// # Usage
//
//	w, err := watch.New(watch.Options{
//		Root:   "/srv/app",                    // the process cwd
//		Paths:  []string{".", "../shared/lib"}, // relative to Root
//		Ignore: []string{"*.log", "/build", "tests/**/fixtures"},
//	}, func(changed []string) {
//		log.Printf("changed: %v, restarting", changed)
//		proc.Restart()
//	})
//	if err != nil {
//		return err
//	}
//	defer w.Close()
//
// # Ignore patterns
//
// DefaultIgnore is always applied; Options.Ignore adds to it. Patterns use
// slash-separated paths on every OS and are matched against the path of the
// changed file relative to Options.Root (for a watched directory outside
// Root: relative to that directory). Each slash-separated segment of a
// pattern is matched against one path segment with path.Match syntax
// ('*', '?', '[a-z]', '\' escapes; '*' never crosses a '/'). In addition:
//
//   - A pattern without any '/' (e.g. "node_modules", "*.pyc") matches any
//     path component: a file's base name or any directory on the way.
//   - A pattern containing a '/' is anchored at Root: "build/out" matches
//     only <Root>/build/out. A leading "/" or "./" anchors a pattern without
//     other slashes ("/dist" matches <Root>/dist but not <Root>/web/dist).
//     A trailing "/" is dropped ("dist/" is the same as "dist"; there is no
//     directory-only matching).
//   - A segment that is exactly "**" matches zero or more whole segments:
//     "**/tmp/*.out", "docs/**/*.md", "build/**". Note that "x/**" therefore
//     also ignores x itself. "**" inside a segment ("a**b") is just two '*'.
//   - Ignoring a directory ignores everything below it: a path is ignored when
//     a pattern matches the path itself or any of its parent directories
//     (relative to Root), so "build/out" also ignores build/out/app.js.
//   - Negation ("!pattern"), comments and character classes spanning
//     segments are not supported. Matching is case-sensitive.
//
// An entry of Options.Paths is always watched, even if it matches an ignore
// pattern itself; patterns are only applied to what lies below it (watching
// "pb_data/hooks" works although "pb_data" is in DefaultIgnore). A watched
// single file is never ignored.
package watch

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// DefaultDebounce is used when Options.Debounce is zero or negative.
const DefaultDebounce = 300 * time.Millisecond

// MaxChanged is the maximum number of paths passed to one callback.
const MaxChanged = 20

// DefaultIgnore lists the names always ignored: VCS and dependency
// directories, Python caches, PocketBase's data directory and editor temp
// files. The list is read once by New; changing it later has no effect on
// existing watchers. See the package documentation for the pattern syntax.
var DefaultIgnore = []string{
	".git", "node_modules", ".venv", "venv", "__pycache__", "pb_data",
	"*.swp", "*.swx", "*~", ".#*", "*.pyc",
}

// Options for a Watcher.
type Options struct {
	// Paths are directories (watched recursively) or single files to watch,
	// absolute or relative to Root. Empty means Root itself.
	Paths []string
	// Root is the base for relative Paths and for matching Ignore patterns
	// (usually the process cwd). Empty means the current working directory.
	Root string
	// Ignore holds extra glob patterns, added to DefaultIgnore. See the
	// package documentation for the exact syntax.
	Ignore []string
	// Debounce is the quiet time after the last event of a burst before the
	// callback fires. Zero means DefaultDebounce (300ms).
	Debounce time.Duration
	// OnError, if set, receives non-fatal errors (fsnotify errors such as
	// queue overflow, unreadable subdirectories, watch limits). It is called
	// from New's goroutine during New and from the watcher goroutine later,
	// never concurrently with onChange or with itself.
	OnError func(error)
}

// dirRoot is a directory entry of Options.Paths.
type dirRoot struct {
	dir  string // absolute, clean
	base string // what ignore patterns are relative to (Root, or dir itself)
	skip int    // number of segments of dir relative to base
}

// Watcher watches files and reports debounced changes. Create it with New.
type Watcher struct {
	fs       *fsnotify.Watcher
	pats     []pattern
	debounce time.Duration
	onChange func([]string)
	onError  func(error)

	roots   []dirRoot
	files   map[string]bool // single files watched via their parent dir
	parents map[string]bool // parent dirs of single files
	dirs    map[string]bool // directories watched as part of a tree

	// Pending changes of the current burst (owned by the loop goroutine).
	pending []string
	seen    map[string]bool

	done   chan struct{}
	exited chan struct{}

	mu     sync.Mutex
	closed bool
}

// New starts watching. onChange is called (from the watcher's goroutine,
// never concurrently with itself) with the changed paths (absolute, in order
// of first appearance, deduplicated, at most MaxChanged kept) after each
// debounced burst. A missing path is an error naming the path; so is an
// invalid ignore pattern.
func New(opts Options, onChange func(changed []string)) (*Watcher, error) {
	if onChange == nil {
		return nil, errors.New("watch: onChange is nil")
	}
	root := opts.Root
	if root == "" {
		root = "."
	}
	root, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("watch: root %q: %w", opts.Root, err)
	}
	pats, err := compilePatterns(append(append([]string(nil), DefaultIgnore...), opts.Ignore...))
	if err != nil {
		return nil, err
	}
	w := &Watcher{
		pats:     pats,
		debounce: opts.Debounce,
		onChange: onChange,
		onError:  opts.OnError,
		files:    map[string]bool{},
		parents:  map[string]bool{},
		dirs:     map[string]bool{},
		seen:     map[string]bool{},
		done:     make(chan struct{}),
		exited:   make(chan struct{}),
	}
	if w.debounce <= 0 {
		w.debounce = DefaultDebounce
	}

	paths := opts.Paths
	if len(paths) == 0 {
		paths = []string{root}
	}
	for _, p := range paths {
		abs := p
		if !filepath.IsAbs(abs) {
			abs = filepath.Join(root, abs)
		}
		abs = filepath.Clean(abs)
		fi, err := os.Stat(abs)
		if err != nil {
			return nil, fmt.Errorf("watch: cannot watch path %q: %w", p, err)
		}
		if !fi.IsDir() {
			w.files[abs] = true
			w.parents[filepath.Dir(abs)] = true
			continue
		}
		r := dirRoot{dir: abs, base: abs}
		if within(abs, root) {
			r.base = root
			rel, _ := filepath.Rel(root, abs)
			r.skip = len(splitRel(rel))
		}
		w.roots = append(w.roots, r)
	}

	if w.fs, err = fsnotify.NewWatcher(); err != nil {
		return nil, fmt.Errorf("watch: %w", err)
	}
	for dir := range w.parents {
		if err := w.fs.Add(dir); err != nil {
			w.fs.Close()
			return nil, fmt.Errorf("watch: cannot watch directory %q: %w", dir, err)
		}
	}
	for _, r := range w.roots {
		if err := w.fs.Add(r.dir); err != nil {
			w.fs.Close()
			return nil, fmt.Errorf("watch: cannot watch directory %q: %w", r.dir, err)
		}
		w.dirs[r.dir] = true
		w.addTree(r, r.dir, false)
	}

	go w.loop()
	return w, nil
}

// Close stops watching. It is safe to call more than once. After Close
// returns no new callbacks start; if onChange is running, Close waits for it
// to return, so onChange itself must not call Close.
func (w *Watcher) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	w.mu.Unlock()

	close(w.done)
	err := w.fs.Close()
	<-w.exited
	return err
}

// WatchedDirs returns the directories currently registered with the OS
// watcher (mainly for diagnostics and tests).
func (w *Watcher) WatchedDirs() []string { return w.fs.WatchList() }

func (w *Watcher) loop() {
	defer close(w.exited)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	var timerC <-chan time.Time // nil while nothing is pending

	for {
		select {
		case <-w.done:
			return
		case ev, ok := <-w.fs.Events:
			if !ok {
				return
			}
			if w.handle(ev) {
				timer.Reset(w.debounce)
				timerC = timer.C
			}
		case err, ok := <-w.fs.Errors:
			if !ok {
				return
			}
			w.reportErr(err)
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				// Events were lost: rescan for new directories and report
				// a change of everything watched.
				w.rescan()
				timer.Reset(w.debounce)
				timerC = timer.C
			}
		case <-timerC:
			timerC = nil
			if len(w.pending) == 0 {
				continue
			}
			changed := w.pending
			w.pending = nil
			clear(w.seen)
			if !w.fire(changed) {
				return
			}
		}
	}
}

// fire runs onChange unless the watcher is closed; it returns false if the
// loop must exit.
func (w *Watcher) fire(changed []string) bool {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return false
	}
	w.mu.Unlock()

	w.onChange(changed)
	select {
	case <-w.done:
		return false
	default:
		return true
	}
}

// handle processes one fsnotify event and reports whether it was a relevant
// change.
func (w *Watcher) handle(ev fsnotify.Event) bool {
	if ev.Op&(fsnotify.Create|fsnotify.Write|fsnotify.Remove|fsnotify.Rename) == 0 {
		return false // Chmod only
	}
	p := filepath.Clean(ev.Name)
	if ev.Op&^fsnotify.Chmod == fsnotify.Write && w.dirs[p] {
		// kqueue/Windows: "directory contents changed"; the entries
		// themselves produce their own events.
		return false
	}
	if ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
		w.forget(p)
	}
	if w.files[p] {
		w.note(p)
		return true
	}
	relevant := false
	var isDir, statted bool
	for _, r := range w.roots {
		if !within(p, r.dir) || w.ignored(r, p) {
			continue
		}
		if !ev.Has(fsnotify.Create) {
			relevant = true
			break
		}
		if !statted {
			fi, err := os.Lstat(p)
			isDir, statted = err == nil && fi.IsDir(), true
		}
		if !isDir {
			relevant = true
			break
		}
		// A new directory is not a change by itself (an app creating its
		// log or cache directory must not cause a restart); the files
		// already in it are.
		if w.addTree(r, p, true) {
			relevant = true
		}
	}
	if relevant && !isDir {
		w.note(p)
	}
	return relevant
}

// ignored reports whether p (inside r.dir) is ignored for root r.
func (w *Watcher) ignored(r dirRoot, p string) bool {
	rel, err := filepath.Rel(r.base, p)
	if err != nil {
		return false
	}
	return ignoredRel(w.pats, splitRel(rel), r.skip)
}

// addTree watches dir (if not yet watched) and every non-ignored
// subdirectory below it. With report set, everything found is recorded as
// changed: used for directories that appeared after start, whose files may
// have been written before the watch existed. It reports whether any
// (non-ignored) file was found.
func (w *Watcher) addTree(r dirRoot, dir string, report bool) (found bool) {
	if !w.dirs[dir] {
		if err := w.fs.Add(dir); err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				w.reportErr(fmt.Errorf("watch: cannot watch directory %q: %w", dir, err))
			}
			return false
		}
		w.dirs[dir] = true
	}
	// Listing after adding the watch: a file created in between is seen
	// either here or as an event.
	entries, err := os.ReadDir(dir)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			w.reportErr(fmt.Errorf("watch: cannot read directory %q: %w", dir, err))
		}
		return false
	}
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		if w.ignored(r, p) {
			continue
		}
		if e.IsDir() { // symlinks to directories are not followed
			if w.addTree(r, p, report) {
				found = true
			}
		} else {
			found = true
			if report {
				w.note(p)
			}
		}
	}
	return found
}

// forget drops the watches of a removed or renamed directory and of all
// directories below it.
func (w *Watcher) forget(p string) {
	if !w.dirs[p] {
		return
	}
	for d := range w.dirs {
		if !within(d, p) {
			continue
		}
		delete(w.dirs, d)
		if !w.parents[d] {
			_ = w.fs.Remove(d) // usually already gone
		}
	}
}

// rescan re-walks every root (after lost events) and records the roots and
// single files as changed.
func (w *Watcher) rescan() {
	for _, r := range w.roots {
		w.addTree(r, r.dir, false)
		w.note(r.dir)
	}
	for f := range w.files {
		w.note(f)
	}
}

// note records a changed path for the current burst.
func (w *Watcher) note(p string) {
	if w.seen[p] || len(w.pending) >= MaxChanged {
		return
	}
	w.seen[p] = true
	w.pending = append(w.pending, p)
}

func (w *Watcher) reportErr(err error) {
	if err == nil || w.onError == nil || errors.Is(err, fsnotify.ErrClosed) {
		return
	}
	select {
	case <-w.done:
		return
	default:
	}
	w.onError(err)
}
