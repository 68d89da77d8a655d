package launch_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/processman/processman/config"
	"github.com/processman/processman/launch"
)

// A virtualenv in the Windows layout (Scripts\python.exe), as python -m
// venv makes it on Windows, is found and activated; the path logic is the
// same on every OS.
func TestResolveWindowsVenvLayout(t *testing.T) {
	for _, name := range []string{".venv", "venv"} {
		t.Run(name, func(t *testing.T) {
			cwd := t.TempDir()
			venv := filepath.Join(cwd, name)
			writeFile(t, filepath.Join(venv, "pyvenv.cfg"), "home = C:\\Python312\n", 0o644)
			python := writeExec(t, filepath.Join(venv, "Scripts", "python.exe"), "venv python")
			writeExec(t, filepath.Join(venv, "Scripts", "uvicorn.exe"), "venv uvicorn")
			writeFile(t, filepath.Join(cwd, "app.py"), "", 0o644)
			env := append(cleanEnviron(), "PATH="+fakeBin(t, "python3"))

			cmd, err := launch.Resolve(config.Process{Name: "agent", Script: "app.py", Cwd: cwd}, env, nil)
			if err != nil {
				t.Fatal(err)
			}
			if cmd.Venv != venv || cmd.Path != python {
				t.Errorf("venv %q, interpreter %q; want %q and %q", cmd.Venv, cmd.Path, venv, python)
			}
			got := envMap(t, cmd.Env)
			if !strings.HasPrefix(got["PATH"], filepath.Join(venv, "Scripts")+string(os.PathListSeparator)) || got["VIRTUAL_ENV"] != venv {
				t.Errorf("activation: PATH %q, VIRTUAL_ENV %q", got["PATH"], got["VIRTUAL_ENV"])
			}
			// commands are looked up in Scripts, with their .exe
			cmd, err = launch.Resolve(config.Process{Name: "api", Script: "uvicorn", Args: []string{"main:app"}, Cwd: cwd}, env, nil)
			if err != nil || cmd.Path != filepath.Join(venv, "Scripts", "uvicorn.exe") {
				t.Errorf("uvicorn: %v, %v", cmd, err)
			}
		})
	}
}

func TestInterpreterAutoIsAutomatic(t *testing.T) {
	cwd := t.TempDir()
	writeFile(t, filepath.Join(cwd, "app.py"), "", 0o644)
	bin := fakeBin(t, "python3")
	env := append(cleanEnviron(), "PATH="+bin)
	auto, err := launch.Resolve(config.Process{Name: "a", Script: "app.py", Cwd: cwd, Interpreter: config.InterpreterAuto}, env, nil)
	if err != nil {
		t.Fatal(err)
	}
	empty, err := launch.Resolve(config.Process{Name: "a", Script: "app.py", Cwd: cwd}, env, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auto.Path != filepath.Join(bin, "python3") || auto.Runtime != "python" || strings.Join(auto.Args, " ") != strings.Join(empty.Args, " ") {
		t.Errorf("auto: %s (%s), empty: %s", auto, auto.Runtime, empty)
	}
}

func TestPythonProjectWithoutVenvWarns(t *testing.T) {
	for _, tc := range []struct {
		file, install string
	}{
		{"requirements.txt", "python3 -m venv .venv && .venv/bin/pip install -r requirements.txt"},
		{"pyproject.toml", "python3 -m venv .venv && .venv/bin/pip install -e ."},
		{"uv.lock", "uv sync"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			cwd := t.TempDir()
			writeFile(t, filepath.Join(cwd, "app.py"), "", 0o644)
			writeFile(t, filepath.Join(cwd, tc.file), "", 0o644)
			bin := fakeBin(t, "python3", "uvicorn")
			env := append(cleanEnviron(), "PATH="+bin)
			for _, p := range []config.Process{
				{Name: "script", Script: "app.py", Cwd: cwd},
				{Name: "program", Script: "uvicorn", Args: []string{"app:app"}, Cwd: cwd},
			} {
				cmd, err := launch.Resolve(p, env, nil)
				if err != nil {
					t.Fatal(err)
				}
				if len(cmd.Warnings) != 1 || !strings.Contains(cmd.Warnings[0], cwd+" has "+tc.file+" but no virtualenv") ||
					!strings.Contains(cmd.Warnings[0], "cd "+cwd+" && "+tc.install) {
					t.Errorf("%s: warnings %q", p.Name, cmd.Warnings)
				}
			}
			// no warning with an interpreter given by name, or for Node
			writeFile(t, filepath.Join(cwd, "server.mjs"), "", 0o644)
			for _, p := range []config.Process{
				{Name: "named", Script: "app.py", Cwd: cwd, Interpreter: filepath.Join(bin, "python3")},
				{Name: "node", Script: "server.mjs", Cwd: cwd, Interpreter: "python3"},
			} {
				if cmd, err := launch.Resolve(p, env, nil); err != nil || len(cmd.Warnings) != 0 {
					t.Errorf("%s: warnings %q, %v", p.Name, cmd.Warnings, err)
				}
			}
			// none once the venv exists
			newVenv(t, filepath.Join(cwd, ".venv"))
			if cmd, err := launch.Resolve(config.Process{Name: "script", Script: "app.py", Cwd: cwd}, env, nil); err != nil || len(cmd.Warnings) != 0 {
				t.Errorf("with a venv: warnings %q, %v", cmd.Warnings, err)
			}
		})
	}
}

func TestCrashHint(t *testing.T) {
	project := t.TempDir()
	writeFile(t, filepath.Join(project, "requirements.txt"), "", 0o644)
	bare := t.TempDir()
	missing := []string{"Traceback (most recent call last):", `  File "app.py", line 1`, "ModuleNotFoundError: No module named 'agno'"}
	tests := []struct {
		name  string
		cmd   *launch.Command
		lines []string
		want  string
	}{
		{"module missing from the venv", &launch.Command{Dir: project, Path: "/p/.venv/bin/python3", Venv: "/p/.venv"}, missing,
			"a Python module is missing from the virtualenv /p/.venv"},
		{"no venv in a project", &launch.Command{Dir: project, Path: "/usr/bin/python3"}, missing,
			"cd " + project + " && python3 -m venv .venv && .venv/bin/pip install -r requirements.txt"},
		{"no venv, no project files", &launch.Command{Dir: bare, Path: "/usr/bin/python3"}, missing,
			"create a virtualenv in " + bare},
		{"node", &launch.Command{Dir: bare, Path: "/usr/bin/node"}, []string{"Error [ERR_MODULE_NOT_FOUND]: Cannot find package 'ai'"},
			"run npm install (or npm ci) in " + bare},
		{"another crash", &launch.Command{Dir: bare}, []string{"KeyError: 'OPENAI_API_KEY'"}, ""},
		{"no command", nil, missing, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := launch.CrashHint(tc.cmd, tc.lines)
			if tc.want == "" && got != "" || !strings.Contains(got, tc.want) {
				t.Errorf("hint %q, want one with %q", got, tc.want)
			}
		})
	}
}

func TestEnvFileMayNotSetTheRoutedPort(t *testing.T) {
	cwd := t.TempDir()
	writeFile(t, filepath.Join(cwd, ".env"), "PORT=8001\nOTHER=1\n", 0o644)
	p := config.Process{Name: "api", Script: "sleep", Cwd: cwd, EnvFile: ".env"}
	if _, err := launch.Resolve(p, cleanEnviron(), map[string]string{"PORT": "41234"}); err == nil ||
		!strings.Contains(err.Error(), "sets PORT, but a routed process") {
		t.Errorf("routed tcp: %v", err)
	}
	// a process that is not routed over TCP may set it
	if _, err := launch.Resolve(p, cleanEnviron(), nil); err != nil {
		t.Errorf("unrouted: %v", err)
	}
}
