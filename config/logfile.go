package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// Protected names what no log file may be written over: PocketBase's data
// (everything under DataDir except OwnDir, processman's own folder, where
// the default log files are) and the other files and folders PocketBase
// reads.
type Protected struct {
	// DataDir is pb_data.
	DataDir string
	// OwnDir is processman's folder in pb_data (pb_data/processman).
	OwnDir string
	// Paths are files and folders no log goes into: the config file,
	// pb_hooks, pb_migrations, pb_public, PocketBase's executable.
	Paths []string
}

// LogFilePath is the log file of p, "" for none: its log_file, relative
// to cwd, or <defaultDir>/<name>.log. p has its defaults.
func (p Process) LogFilePath(defaultDir string) string {
	switch {
	case p.LogFile.Disabled:
		return ""
	case p.LogFile.Path != "":
		if filepath.IsAbs(p.LogFile.Path) {
			return p.LogFile.Path
		}
		return filepath.Join(p.Cwd, p.LogFile.Path)
	}
	return filepath.Join(defaultDir, p.Name+".log")
}

// logLine is how the first line of a processman log file starts.
var logLine = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}(Z|[+-]\d\d:\d\d) (stdout|stderr)(:\d+)? `)

// CheckLogFiles checks the log file of each process, as path (which
// resolves log_file as serve does; "" for none) names it. Paths are
// resolved, symlinks too, before they are compared, so that no path
// writes into PocketBase's data, into a file it reads, over a file that is
// not a processman log, or into another process's log.
func CheckLogFiles(processes []Process, path func(Process) string, protected Protected, file string) Errors {
	var errs Errors
	owner := map[string]int{}
	dataDir, ownDir := resolvePath(protected.DataDir), resolvePath(protected.OwnDir)
	for i, p := range processes {
		raw := path(p)
		if raw == "" {
			continue
		}
		add := func(msg, hint string) {
			errs = append(errs, Error{File: file, Path: fmt.Sprintf("/processes/%d/log_file", i), Index: i, Process: p.Name, Message: msg, Hint: hint})
		}
		resolved := resolvePath(raw)
		shown := raw
		if resolved != filepath.Clean(raw) {
			shown = fmt.Sprintf("%s (%s)", raw, resolved)
		}
		switch {
		case within(resolved, dataDir) && !within(resolved, ownDir):
			add(fmt.Sprintf("log file %s is in pb_data, PocketBase's data: writing it could destroy PocketBase's database", shown),
				"leave log_file out for pb_data/processman/logs/"+p.Name+".log, or choose a path outside pb_data")
			continue
		case protectedBy(resolved, protected.Paths) != "":
			add(fmt.Sprintf("log file %s is in %s, which PocketBase reads", shown, protectedBy(resolved, protected.Paths)),
				"choose a path of its own, such as logs/"+p.Name+".log")
			continue
		}
		if j, dup := owner[resolved]; dup {
			if processes[j].Name == p.Name && p.LogFile.Path == "" {
				continue // the duplicate name is the error, reported by Check
			}
			add(fmt.Sprintf("log file %s is also the log file of %q (/processes/%d)", shown, processes[j].Name, j),
				"give each process its own log file")
			continue
		}
		owner[resolved] = i
		if msg := notALog(resolved); msg != "" {
			add(fmt.Sprintf("log file %s %s", shown, msg), "choose a new file, or remove the one that is there if it is yours")
		}
	}
	return errs
}

// notALog says why an existing path cannot be a log file processman
// appends to: not a regular file, or a file with other content.
func notALog(path string) string {
	st, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return ""
	}
	if err != nil {
		return "cannot be checked: " + err.Error()
	}
	if !st.Mode().IsRegular() {
		if st.IsDir() {
			return "is a directory"
		}
		return "exists and is not a regular file"
	}
	if st.Size() == 0 {
		return ""
	}
	f, err := os.Open(path)
	if err != nil {
		return "cannot be read: " + err.Error()
	}
	defer f.Close()
	head := make([]byte, 64)
	n, _ := io.ReadFull(f, head)
	if !logLine.Match(head[:n]) {
		return "exists and is not a processman log (its first line is not \"<time> stdout|stderr <text>\")"
	}
	return ""
}

// resolvePath makes path absolute and resolves the symlinks of the part
// of it that exists.
func resolvePath(path string) string {
	if path == "" {
		return ""
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return filepath.Clean(path)
	}
	rest := ""
	for dir := abs; ; dir = filepath.Dir(dir) {
		if real, err := filepath.EvalSymlinks(dir); err == nil {
			return filepath.Join(real, rest)
		}
		if parent := filepath.Dir(dir); parent == dir {
			return abs
		}
		rest = filepath.Join(filepath.Base(dir), rest)
	}
}

// within reports whether path is dir or inside it.
func within(path, dir string) bool {
	if dir == "" {
		return false
	}
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// protectedBy returns the protected path that path is, or is in.
func protectedBy(path string, protected []string) string {
	for _, p := range protected {
		if p != "" && within(path, resolvePath(p)) {
			return p
		}
	}
	return ""
}
