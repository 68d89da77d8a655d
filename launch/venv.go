package launch

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// findVenv returns the virtualenv to use: VIRTUAL_ENV set by the
// process's own env or env_file, else cwd/.venv, cwd/venv, else the
// VIRTUAL_ENV inherited from PocketBase.
func findVenv(cwd string, env *Env) string {
	if v := env.Get("VIRTUAL_ENV"); v != "" && env.IsOwn("VIRTUAL_ENV") {
		if !filepath.IsAbs(v) {
			v = filepath.Join(cwd, v)
		}
		if isVenv(v) {
			return v
		}
	}
	for _, name := range []string{".venv", "venv"} {
		if dir := filepath.Join(cwd, name); isVenv(dir) {
			return dir
		}
	}
	if v := env.Get("VIRTUAL_ENV"); v != "" && isVenv(v) {
		return v
	}
	return ""
}

// isVenv reports whether dir is a virtualenv: it has pyvenv.cfg, or the
// python of its Unix (bin/python) or Windows (Scripts\python.exe) layout.
func isVenv(dir string) bool {
	for _, marker := range []string{"pyvenv.cfg", filepath.Join("bin", "python"), filepath.Join("Scripts", "python.exe")} {
		if _, err := os.Stat(filepath.Join(dir, marker)); err == nil {
			return true
		}
	}
	return false
}

// venvBin is the directory of a virtualenv's programs: Scripts in the
// Windows layout (the one python -m venv makes on Windows), bin otherwise.
func venvBin(venv string) string {
	if _, err := os.Stat(filepath.Join(venv, "Scripts", "python.exe")); err == nil {
		return filepath.Join(venv, "Scripts")
	}
	if _, err := os.Stat(filepath.Join(venv, "bin")); err != nil && runtime.GOOS == "windows" {
		return filepath.Join(venv, "Scripts")
	}
	return filepath.Join(venv, "bin")
}

// activate does what a venv's activate script does to the environment.
func activate(env *Env, venv string) {
	env.Set("VIRTUAL_ENV", venv)
	bin := venvBin(venv)
	path := env.Get("PATH")
	if path == "" {
		env.Set("PATH", bin)
	} else if path != bin && !strings.HasPrefix(path, bin+string(os.PathListSeparator)) {
		env.Set("PATH", bin+string(os.PathListSeparator)+path)
	}
	env.Unset("PYTHONHOME")
}
