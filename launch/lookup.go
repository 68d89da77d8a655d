package launch

import (
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
)

// lookup finds programs the way a developer expects from inside the
// project: the venv's bin first, then node_modules/.bin, then PATH.
type lookup struct {
	cwd  string
	venv string
	path string
}

func (l lookup) dirs() []string {
	var dirs []string
	if l.venv != "" {
		dirs = append(dirs, venvBin(l.venv))
	}
	dirs = append(dirs, filepath.Join(l.cwd, "node_modules", ".bin"))
	for _, d := range filepath.SplitList(l.path) {
		if d == "" {
			d = "."
		}
		if !filepath.IsAbs(d) {
			d = filepath.Join(l.cwd, d)
		}
		dirs = append(dirs, d)
	}
	return dirs
}

// program resolves a script or command name: a name containing a slash
// is a path relative to cwd; a bare name is looked up in dirs().
func (l lookup) program(name string) (string, error) {
	if strings.ContainsRune(name, '/') {
		path := name
		if !filepath.IsAbs(path) {
			path = filepath.Join(l.cwd, path)
		}
		if err := executable(path); err != nil {
			return "", fmt.Errorf("%s: %w", path, err)
		}
		return path, nil
	}
	for _, dir := range l.dirs() {
		for _, file := range programFiles(dir, name) {
			path := filepath.Join(dir, file)
			if executable(path) == nil {
				return path, nil
			}
		}
	}
	return "", fmt.Errorf("command %q %w: looked in %s; install it or give its path", name, ErrNotFound, l.describe())
}

// interpreter finds the interpreter of a runtime: the first directory
// that has one of its names wins, so a virtualenv's python comes before a
// python3 on PATH (a Windows venv has python.exe and no python3).
func (l lookup) interpreter(runtime string) (string, error) {
	names := interpreterCommands[runtime]
	for _, dir := range l.dirs() {
		for _, name := range names {
			for _, file := range programFiles(dir, name) {
				if path := filepath.Join(dir, file); executable(path) == nil {
					return path, nil
				}
			}
		}
	}
	return "", fmt.Errorf("interpreter %s %w: looked in %s; %s", strings.Join(names, " or "), ErrNotFound, l.describe(), installHints[runtime])
}

func (l lookup) describe() string {
	var parts []string
	if l.venv != "" {
		parts = append(parts, venvBin(l.venv))
	}
	parts = append(parts, filepath.Join(l.cwd, "node_modules", ".bin"))
	return strings.Join(parts, ", ") + " and PATH (" + l.path + ")"
}

// programFiles are the file names that the program name may have in dir:
// the name itself, and name.exe in a Windows virtualenv's Scripts (or any
// directory on Windows, where programs end in .exe).
func programFiles(dir, name string) []string {
	if filepath.Ext(name) == "" && (runtime.GOOS == "windows" || filepath.Base(dir) == "Scripts") {
		return []string{name, name + ".exe"}
	}
	return []string{name}
}
