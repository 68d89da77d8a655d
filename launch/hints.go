package launch

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// pythonProjectFiles are the files that say a directory is a Python
// project with dependencies, with the command that installs them into a
// new virtualenv there.
var pythonProjectFiles = []struct{ file, install string }{
	{"uv.lock", "uv sync"},
	{"requirements.txt", "python3 -m venv .venv && .venv/bin/pip install -r requirements.txt"},
	{"pyproject.toml", "python3 -m venv .venv && .venv/bin/pip install -e ."},
}

// pythonPrograms run Python: a process that runs them directly (uvicorn,
// gunicorn, a python3.12) needs the venv as much as a .py script does.
var pythonPrograms = []string{"python", "uvicorn", "gunicorn", "hypercorn", "fastapi", "celery", "flask"}

// programRuntime is "python" for a program known to run Python.
func programRuntime(program string) string {
	base := filepath.Base(program)
	for _, p := range pythonPrograms {
		if strings.HasPrefix(base, p) {
			return "python"
		}
	}
	return ""
}

// venvAdvice says how to make the virtualenv that cwd's project files
// ask for, and which file asks; "" when cwd has none.
func venvAdvice(cwd string) (file, advice string) {
	for _, p := range pythonProjectFiles {
		if _, err := os.Stat(filepath.Join(cwd, p.file)); err == nil {
			return p.file, fmt.Sprintf("create it: cd %s && %s", cwd, p.install)
		}
	}
	return "", ""
}

// venvWarnings warns about a Python command whose cwd is a project with
// dependencies (requirements.txt, pyproject.toml, uv.lock) but has no
// virtualenv: it runs with whatever Python is on PATH, whose packages are
// likely not the project's.
func venvWarnings(cmd *Command, runtime string) []string {
	if runtime != "python" || cmd.Venv != "" {
		return nil
	}
	file, advice := venvAdvice(cmd.Dir)
	if file == "" {
		return nil
	}
	return []string{fmt.Sprintf("%s has %s but no virtualenv (.venv or venv), so %s runs with the Python on PATH; %s",
		cmd.Dir, file, cmd.Path, advice)}
}

// CrashHint says what to do about a crash whose last output lines show a
// missing dependency: a Python module (ModuleNotFoundError) or a Node
// module (Cannot find module, ERR_MODULE_NOT_FOUND). cmd is the command
// that crashed; "" when the output shows nothing known.
func CrashHint(cmd *Command, lines []string) string {
	if cmd == nil {
		return ""
	}
	for _, line := range lines {
		switch {
		case strings.Contains(line, "ModuleNotFoundError") || strings.Contains(line, "No module named"):
			if cmd.Venv != "" {
				return fmt.Sprintf("a Python module is missing from the virtualenv %s: install the project's dependencies into it (%s -m pip install -r requirements.txt, or uv sync)",
					cmd.Venv, filepath.Join(venvBin(cmd.Venv), "python"))
			}
			if _, advice := venvAdvice(cmd.Dir); advice != "" {
				return fmt.Sprintf("a Python module is missing and %s has no virtualenv, so the Python on PATH (%s) ran it; %s", cmd.Dir, cmd.Path, advice)
			}
			return fmt.Sprintf("a Python module is missing: create a virtualenv in %s with the project's dependencies (python3 -m venv .venv, then .venv/bin/pip install ...); processman uses cwd/.venv by itself", cmd.Dir)
		case strings.Contains(line, "ERR_MODULE_NOT_FOUND") || strings.Contains(line, "Cannot find module") || strings.Contains(line, "Cannot find package"):
			return fmt.Sprintf("a Node module is missing: run npm install (or npm ci) in %s", cmd.Dir)
		}
	}
	return ""
}
