package launch

import (
	"fmt"
	"os"
	"path/filepath"
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
		dirs = append(dirs, filepath.Join(l.venv, "bin"))
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
		path := filepath.Join(dir, name)
		if executable(path) == nil {
			return path, nil
		}
	}
	return "", fmt.Errorf("command %q %w: looked in %s; install it or give its path", name, ErrNotFound, l.describe())
}

// interpreter finds the interpreter of a runtime.
func (l lookup) interpreter(runtime string) (string, error) {
	names := interpreterCommands[runtime]
	for _, name := range names {
		if path, err := l.program(name); err == nil {
			return path, nil
		}
	}
	return "", fmt.Errorf("interpreter %s %w: looked in %s; %s", strings.Join(names, " or "), ErrNotFound, l.describe(), installHints[runtime])
}

func (l lookup) describe() string {
	var parts []string
	if l.venv != "" {
		parts = append(parts, filepath.Join(l.venv, "bin"))
	}
	parts = append(parts, filepath.Join(l.cwd, "node_modules", ".bin"))
	return strings.Join(parts, ", ") + " and PATH (" + l.path + ")"
}

func executable(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return ErrNotFound
	}
	if st.IsDir() {
		return fmt.Errorf("is a directory")
	}
	if st.Mode()&0o111 == 0 {
		return fmt.Errorf("is not executable (chmod +x it, or set \"interpreter\")")
	}
	return nil
}
