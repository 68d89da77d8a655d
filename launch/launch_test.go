package launch_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/processman/processman/config"
	"github.com/processman/processman/launch"
)

func regression(t *testing.T, bug string, format string, args ...any) {
	t.Helper()
	t.Errorf("regression: %s\n\tobserved: %s", bug, fmt.Sprintf(format, args...))
}

func writeFile(t *testing.T, path, content string, mode os.FileMode) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	// WriteFile does not change the mode of an existing file.
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	return path
}

// writeExec writes an executable shell script that prints tag and its
// arguments.
func writeExec(t *testing.T, path, tag string) string {
	t.Helper()
	return writeFile(t, path, "#!/bin/sh\necho \""+tag+"\" \"$@\"\n", 0o755)
}

// fakeBin makes a directory of executables with the given names, to stand
// for the interpreters on PATH.
func fakeBin(t *testing.T, names ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, name := range names {
		writeExec(t, filepath.Join(dir, name), "fake "+name)
	}
	return dir
}

// newVenv creates a real virtualenv at dir.
func newVenv(t *testing.T, dir string) string {
	t.Helper()
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Fatalf("python3 is needed to create virtualenvs: %v", err)
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(python, "-m", "venv", "--without-pip", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("python3 -m venv %s: %v\n%s", dir, err, out)
	}
	for _, f := range []string{"pyvenv.cfg", "bin/python3"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Fatalf("venv at %s: %v", dir, err)
		}
	}
	return dir
}

// envMap turns a KEY=value list into a map, failing on a repeated key:
// with duplicates, which value a child sees depends on the libc.
func envMap(t *testing.T, list []string) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, kv := range list {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			t.Errorf("env entry %q has no '='", kv)
			continue
		}
		if _, dup := m[k]; dup {
			t.Errorf("env has %s twice", k)
		}
		m[k] = v
	}
	return m
}

// cleanEnviron is this process's environment without the variables that
// would leak a developer's virtualenv or Python setup into the tests.
func cleanEnviron() []string {
	return slices.DeleteFunc(os.Environ(), func(kv string) bool {
		k, _, _ := strings.Cut(kv, "=")
		return k == "VIRTUAL_ENV" || k == "PYTHONHOME" || k == "PYTHONPATH" || k == "PYTHONSTARTUP"
	})
}

// run runs a resolved command the way the supervisor does and returns its
// standard output.
func run(t *testing.T, cmd *launch.Command) string {
	t.Helper()
	c := exec.Command(cmd.Path, cmd.Args[1:]...)
	c.Env, c.Dir = cmd.Env, cmd.Dir
	out, err := c.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("running %s: %v\n%s%s", cmd, err, out, stderr)
	}
	return string(out)
}

func sameFile(t *testing.T, a, b string) bool {
	t.Helper()
	ra, err1 := filepath.EvalSymlinks(a)
	rb, err2 := filepath.EvalSymlinks(b)
	return err1 == nil && err2 == nil && ra == rb
}

func TestResolveInterpreterByExtension(t *testing.T) {
	tests := []struct {
		name        string
		script      string
		bin         []string // executables on PATH; default python3, python, node, bash
		setup       func(t *testing.T, cwd string)
		interpArgs  []string
		args        []string
		wantRuntime string
		wantPath    func(cwd, bin string) string
		wantArgs    func(path string) []string
	}{
		{
			name: "py runs with python3 from PATH", script: "app.py",
			interpArgs: []string{"-u"}, args: []string{"--port", "8000"},
			wantRuntime: "python",
			wantPath:    func(cwd, bin string) string { return filepath.Join(bin, "python3") },
			wantArgs:    func(path string) []string { return []string{path, "-u", "app.py", "--port", "8000"} },
		},
		{
			name: "py falls back to python", script: "app.py", bin: []string{"python", "node"},
			wantRuntime: "python",
			wantPath:    func(cwd, bin string) string { return filepath.Join(bin, "python") },
		},
		{
			name: "upper-case extension", script: "APP.PY",
			wantRuntime: "python",
			wantPath:    func(cwd, bin string) string { return filepath.Join(bin, "python3") },
		},
		{
			name: "script in a subdirectory", script: "src/main.py",
			wantRuntime: "python",
			wantPath:    func(cwd, bin string) string { return filepath.Join(bin, "python3") },
		},
		{
			name: "js runs with node", script: "server.js", args: []string{"--inspect"},
			wantRuntime: "node",
			wantPath:    func(cwd, bin string) string { return filepath.Join(bin, "node") },
			wantArgs:    func(path string) []string { return []string{path, "server.js", "--inspect"} },
		},
		{
			name: "mjs runs with node", script: "server.mjs",
			wantRuntime: "node",
			wantPath:    func(cwd, bin string) string { return filepath.Join(bin, "node") },
		},
		{
			name: "cjs runs with node", script: "server.cjs",
			wantRuntime: "node",
			wantPath:    func(cwd, bin string) string { return filepath.Join(bin, "node") },
		},
		{
			name: "ts runs with tsx from node_modules/.bin", script: "index.ts",
			setup:       func(t *testing.T, cwd string) { writeExec(t, filepath.Join(cwd, "node_modules", ".bin", "tsx"), "tsx") },
			wantRuntime: "tsx",
			wantPath:    func(cwd, bin string) string { return filepath.Join(cwd, "node_modules", ".bin", "tsx") },
		},
		{
			name: "mts runs with tsx", script: "index.mts",
			setup:       func(t *testing.T, cwd string) { writeExec(t, filepath.Join(cwd, "node_modules", ".bin", "tsx"), "tsx") },
			wantRuntime: "tsx",
			wantPath:    func(cwd, bin string) string { return filepath.Join(cwd, "node_modules", ".bin", "tsx") },
		},
		{
			name: "node_modules/.bin comes before PATH", script: "server.js", bin: []string{"node"},
			setup: func(t *testing.T, cwd string) {
				writeExec(t, filepath.Join(cwd, "node_modules", ".bin", "node"), "local node")
			},
			wantRuntime: "node",
			wantPath:    func(cwd, bin string) string { return filepath.Join(cwd, "node_modules", ".bin", "node") },
		},
		{
			name: "sh runs with bash", script: "start.sh",
			wantRuntime: "bash",
			wantPath:    func(cwd, bin string) string { return filepath.Join(bin, "bash") },
		},
		{
			name: "unknown extension is executed directly", script: "./server.bin", args: []string{"-v"},
			setup:       func(t *testing.T, cwd string) { writeExec(t, filepath.Join(cwd, "server.bin"), "bin") },
			wantRuntime: "exec",
			wantPath:    func(cwd, bin string) string { return filepath.Join(cwd, "server.bin") },
			wantArgs:    func(string) []string { return []string{"./server.bin", "-v"} },
		},
		{
			name: "no extension is executed directly", script: "bin/serve",
			setup:       func(t *testing.T, cwd string) { writeExec(t, filepath.Join(cwd, "bin", "serve"), "serve") },
			wantRuntime: "exec",
			wantPath:    func(cwd, bin string) string { return filepath.Join(cwd, "bin", "serve") },
			wantArgs:    func(string) []string { return []string{"bin/serve"} },
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cwd := t.TempDir()
			names := tc.bin
			if names == nil {
				names = []string{"python3", "python", "node", "bash"}
			}
			bin := fakeBin(t, names...)
			if tc.setup != nil {
				tc.setup(t, cwd)
			}
			if _, err := os.Stat(filepath.Join(cwd, tc.script)); err != nil {
				writeFile(t, filepath.Join(cwd, tc.script), "// script\n", 0o644)
			}
			p := config.Process{Name: "api", Script: tc.script, Cwd: cwd, InterpreterArgs: tc.interpArgs, Args: tc.args}
			cmd, err := launch.Resolve(p, []string{"PATH=" + bin, "HOME=" + cwd}, nil)
			if err != nil {
				t.Fatal(err)
			}
			wantPath := tc.wantPath(cwd, bin)
			wantArgs := []string{wantPath, tc.script}
			if tc.wantArgs != nil {
				wantArgs = tc.wantArgs(wantPath)
			}
			if cmd.Path != wantPath {
				t.Errorf("Path = %q, want %q", cmd.Path, wantPath)
			}
			if cmd.Runtime != tc.wantRuntime {
				t.Errorf("Runtime = %q, want %q", cmd.Runtime, tc.wantRuntime)
			}
			if !slices.Equal(cmd.Args, wantArgs) {
				t.Errorf("Args = %q, want %q", cmd.Args, wantArgs)
			}
			if cmd.Dir != cwd || cmd.Venv != "" {
				t.Errorf("Dir, Venv = %q, %q; want %q, \"\"", cmd.Dir, cmd.Venv, cwd)
			}
			if cmd.String() != strings.Join(wantArgs, " ") {
				t.Errorf("String() = %q", cmd.String())
			}
			if env := envMap(t, cmd.Env); env["PATH"] != bin || env["HOME"] != cwd {
				t.Errorf("Env = %q, want the base environment unchanged", cmd.Env)
			}
		})
	}
}

func TestResolveInterpreterNone(t *testing.T) {
	tests := []struct {
		name     string
		script   func(cwd string) string
		setup    func(t *testing.T, cwd string)
		wantPath func(cwd string) string
		wantErr  []string // substrings; nil for success
		notFound bool     // the error wraps launch.ErrNotFound
	}{
		{
			name:     "executable script with an interpreter's extension",
			script:   func(string) string { return "./app.py" },
			setup:    func(t *testing.T, cwd string) { writeExec(t, filepath.Join(cwd, "app.py"), "direct") },
			wantPath: func(cwd string) string { return filepath.Join(cwd, "app.py") },
		},
		{
			name:     "executable script by absolute path",
			script:   func(cwd string) string { return filepath.Join(cwd, "tools", "run") },
			setup:    func(t *testing.T, cwd string) { writeExec(t, filepath.Join(cwd, "tools", "run"), "direct") },
			wantPath: func(cwd string) string { return filepath.Join(cwd, "tools", "run") },
		},
		{
			name:    "script that is not executable",
			script:  func(string) string { return "./app.py" },
			setup:   func(t *testing.T, cwd string) { writeFile(t, filepath.Join(cwd, "app.py"), "print(1)\n", 0o644) },
			wantErr: []string{`process "api"`, "app.py: is not executable", "chmod +x", `"interpreter"`},
		},
		{
			name:    "script that is a directory",
			script:  func(string) string { return "./lib" },
			setup:   func(t *testing.T, cwd string) { writeFile(t, filepath.Join(cwd, "lib", "x"), "", 0o644) },
			wantErr: []string{`process "api"`, "lib: is a directory"},
		},
		{
			name:     "script that does not exist",
			script:   func(string) string { return "./nope.py" },
			wantErr:  []string{`process "api"`, "nope.py: not found"},
			notFound: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cwd := t.TempDir()
			if tc.setup != nil {
				tc.setup(t, cwd)
			}
			script := tc.script(cwd)
			p := config.Process{Name: "api", Script: script, Cwd: cwd, Interpreter: config.InterpreterNone, Args: []string{"a b"}}
			cmd, err := launch.Resolve(p, []string{"PATH=" + fakeBin(t, "python3", "bash")}, nil)
			if tc.wantErr != nil {
				if err == nil {
					t.Fatalf("Resolve = %+v, want an error", cmd)
				}
				full := filepath.Join(cwd, strings.TrimPrefix(script, "./"))
				for _, s := range append(tc.wantErr, full) {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not contain %q", err, s)
					}
				}
				if errors.Is(err, launch.ErrNotFound) != tc.notFound {
					t.Errorf("errors.Is(err, ErrNotFound) = %v, want %v", !tc.notFound, tc.notFound)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if want := tc.wantPath(cwd); cmd.Path != want || cmd.Runtime != "exec" {
				t.Errorf("Path, Runtime = %q, %q; want %q, exec", cmd.Path, cmd.Runtime, want)
			}
			if want := []string{script, "a b"}; !slices.Equal(cmd.Args, want) {
				t.Errorf("Args = %q, want %q", cmd.Args, want)
			}
			if out := run(t, cmd); out != "direct a b\n" {
				t.Errorf("the script printed %q, want it run directly with its argument", out)
			}
		})
	}
}

func TestResolveExplicitInterpreter(t *testing.T) {
	tests := []struct {
		name        string
		interpreter func(cwd string) string
		script      string
		bin         []string
		setup       func(t *testing.T, cwd string)
		interpArgs  []string
		wantPath    func(cwd, bin string) string
		wantRuntime string
	}{
		{
			name:        "command on PATH",
			interpreter: func(string) string { return "python3.12" },
			script:      "app.py", bin: []string{"python3.12", "python3"},
			interpArgs:  []string{"-X", "dev"},
			wantPath:    func(cwd, bin string) string { return filepath.Join(bin, "python3.12") },
			wantRuntime: "python",
		},
		{
			name:        "looked up in the venv's bin before PATH",
			interpreter: func(string) string { return "python3" },
			script:      "app.py", bin: []string{"python3"},
			setup:       func(t *testing.T, cwd string) { newVenv(t, filepath.Join(cwd, ".venv")) },
			wantPath:    func(cwd, bin string) string { return filepath.Join(cwd, ".venv", "bin", "python3") },
			wantRuntime: "python",
		},
		{
			name:        "looked up in node_modules/.bin before PATH",
			interpreter: func(string) string { return "tsx" },
			script:      "main.ts", bin: []string{"tsx"},
			setup:       func(t *testing.T, cwd string) { writeExec(t, filepath.Join(cwd, "node_modules", ".bin", "tsx"), "tsx") },
			wantPath:    func(cwd, bin string) string { return filepath.Join(cwd, "node_modules", ".bin", "tsx") },
			wantRuntime: "tsx",
		},
		{
			name:        "node for a script without extension",
			interpreter: func(string) string { return "node" },
			script:      "server", bin: []string{"node"},
			wantPath:    func(cwd, bin string) string { return filepath.Join(bin, "node") },
			wantRuntime: "node",
		},
		{
			name:        "sh counts as bash",
			interpreter: func(string) string { return "sh" },
			script:      "start", bin: []string{"sh", "bash"},
			wantPath:    func(cwd, bin string) string { return filepath.Join(bin, "sh") },
			wantRuntime: "bash",
		},
		{
			name:        "relative path, runtime from the extension",
			interpreter: func(string) string { return "tools/mypy" },
			script:      "app.py",
			setup:       func(t *testing.T, cwd string) { writeExec(t, filepath.Join(cwd, "tools", "mypy"), "mypy") },
			wantPath:    func(cwd, bin string) string { return filepath.Join(cwd, "tools", "mypy") },
			wantRuntime: "python",
		},
		{
			name:        "absolute path for an unknown extension",
			interpreter: func(cwd string) string { return filepath.Join(cwd, "rt", "ruby") },
			script:      "job.rb",
			setup:       func(t *testing.T, cwd string) { writeExec(t, filepath.Join(cwd, "rt", "ruby"), "ruby") },
			wantPath:    func(cwd, bin string) string { return filepath.Join(cwd, "rt", "ruby") },
			wantRuntime: "exec",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cwd := t.TempDir()
			bin := fakeBin(t, tc.bin...)
			if tc.setup != nil {
				tc.setup(t, cwd)
			}
			writeFile(t, filepath.Join(cwd, tc.script), "x\n", 0o644)
			p := config.Process{Name: "api", Script: tc.script, Cwd: cwd, Interpreter: tc.interpreter(cwd), InterpreterArgs: tc.interpArgs, Args: []string{"x"}}
			cmd, err := launch.Resolve(p, []string{"PATH=" + bin}, nil)
			if err != nil {
				t.Fatal(err)
			}
			wantPath := tc.wantPath(cwd, bin)
			if cmd.Path != wantPath || cmd.Runtime != tc.wantRuntime {
				t.Errorf("Path, Runtime = %q, %q; want %q, %q", cmd.Path, cmd.Runtime, wantPath, tc.wantRuntime)
			}
			wantArgs := append(append([]string{wantPath}, tc.interpArgs...), tc.script, "x")
			if !slices.Equal(cmd.Args, wantArgs) {
				t.Errorf("Args = %q, want %q", cmd.Args, wantArgs)
			}
		})
	}
}

func TestResolveCommandLookupOrder(t *testing.T) {
	tests := []struct {
		name    string
		venv    bool     // create cwd/.venv
		places  []string // where an executable "serve" is: venv, node_modules, path, tools (a relative PATH entry)
		nonExec []string // where a non-executable "serve" is
		want    string   // where it must be found; "" for an error
	}{
		{name: "venv bin first", venv: true, places: []string{"venv", "node_modules", "path"}, want: "venv"},
		{name: "node_modules/.bin before PATH", venv: true, places: []string{"node_modules", "path"}, want: "node_modules"},
		{name: "PATH last", venv: true, places: []string{"path"}, want: "path"},
		{name: "no venv", places: []string{"node_modules", "path"}, want: "node_modules"},
		{name: "relative PATH entry is relative to cwd", places: []string{"tools"}, want: "tools"},
		{name: "a non-executable file is skipped", venv: true, places: []string{"path"}, nonExec: []string{"venv", "node_modules"}, want: "path"},
		{name: "not found with a venv", venv: true, nonExec: []string{"venv"}},
		{name: "not found without a venv"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cwd := t.TempDir()
			pathDir := t.TempDir()
			dirs := map[string]string{
				"venv":         filepath.Join(cwd, ".venv", "bin"),
				"node_modules": filepath.Join(cwd, "node_modules", ".bin"),
				"path":         pathDir,
				"tools":        filepath.Join(cwd, "tools"),
			}
			if tc.venv {
				newVenv(t, filepath.Join(cwd, ".venv"))
			}
			for _, place := range tc.places {
				if place == "venv" {
					// Like uvicorn installed by pip: a Python script run
					// by the venv's interpreter.
					writeFile(t, filepath.Join(dirs[place], "serve"),
						"#!"+filepath.Join(cwd, ".venv", "bin", "python3")+"\nimport sys\nprint('venv', sys.prefix, *sys.argv[1:])\n", 0o755)
					continue
				}
				writeExec(t, filepath.Join(dirs[place], "serve"), place)
			}
			for _, place := range tc.nonExec {
				writeFile(t, filepath.Join(dirs[place], "serve"), "#!/bin/sh\necho wrong\n", 0o644)
			}
			p := config.Process{Name: "api", Script: "serve", Args: []string{"--port", "8000"}, Cwd: cwd}
			cmd, err := launch.Resolve(p, []string{"PATH=" + pathDir + string(os.PathListSeparator) + "tools"}, nil)

			if tc.want == "" {
				if err == nil {
					t.Fatalf("Resolve = %+v, want an error", cmd)
				}
				if !errors.Is(err, launch.ErrNotFound) {
					t.Errorf("error %q does not wrap ErrNotFound", err)
				}
				mentions := []string{`process "api"`, `command "serve"`, dirs["node_modules"], pathDir, "install it or give its path"}
				if tc.venv {
					mentions = append(mentions, dirs["venv"])
				}
				for _, s := range mentions {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not mention %q", err, s)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if want := filepath.Join(dirs[tc.want], "serve"); cmd.Path != want {
				t.Errorf("Path = %q, want %q", cmd.Path, want)
			}
			if want := []string{"serve", "--port", "8000"}; !slices.Equal(cmd.Args, want) || cmd.Runtime != "exec" {
				t.Errorf("Args, Runtime = %q, %q; want %q, exec", cmd.Args, cmd.Runtime, want)
			}
			out := run(t, cmd)
			want := tc.want + " --port 8000\n"
			if tc.want == "venv" {
				want = "venv " + filepath.Join(cwd, ".venv") + " --port 8000\n"
			}
			if out != want {
				t.Errorf("the command printed %q, want %q", out, want)
			}
		})
	}
}

func TestResolveMissingScript(t *testing.T) {
	tests := []struct {
		name   string
		script func(cwd string) string
		setup  func(t *testing.T, cwd string)
	}{
		{name: "py in cwd", script: func(string) string { return "app.py" }},
		{name: "js in a subdirectory", script: func(string) string { return "src/server.js" }},
		{name: "absolute sh", script: func(cwd string) string { return filepath.Join(cwd, "scripts", "start.sh") }},
		{
			name:   "ts with tsx installed",
			script: func(string) string { return "index.ts" },
			setup:  func(t *testing.T, cwd string) { writeExec(t, filepath.Join(cwd, "node_modules", ".bin", "tsx"), "tsx") },
		},
		{
			name:   "explicit interpreter",
			script: func(string) string { return "main.rb" },
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cwd := t.TempDir()
			if tc.setup != nil {
				tc.setup(t, cwd)
			}
			script := tc.script(cwd)
			p := config.Process{Name: "api", Script: script, Cwd: cwd}
			if strings.HasSuffix(script, ".rb") {
				p.Interpreter = "ruby"
			}
			cmd, err := launch.Resolve(p, []string{"PATH=" + fakeBin(t, "python3", "node", "bash", "ruby")}, nil)
			if err == nil {
				t.Fatalf("Resolve = %+v, want an error", cmd)
			}
			if !errors.Is(err, launch.ErrNotFound) {
				t.Errorf("error %q does not wrap ErrNotFound", err)
			}
			full := script
			if !filepath.IsAbs(full) {
				full = filepath.Join(cwd, script)
			}
			for _, s := range []string{`process "api"`, "script " + full + " not found", `check "script" and "cwd"`} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
		})
	}
}

func TestResolveMissingInterpreter(t *testing.T) {
	tests := []struct {
		name   string
		script string
		interp string
		hint   string
	}{
		{"python", "app.py", "python3 or python", "python3 -m venv .venv"},
		{"node", "server.mjs", "node", "install Node.js"},
		{"tsx", "index.ts", "tsx", "npm install --save-dev tsx"},
		{"bash", "run.sh", "bash", "install bash"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cwd := t.TempDir()
			emptyPath := t.TempDir()
			writeFile(t, filepath.Join(cwd, tc.script), "x\n", 0o644)
			p := config.Process{Name: "api", Script: tc.script, Cwd: cwd}
			cmd, err := launch.Resolve(p, []string{"PATH=" + emptyPath}, nil)
			if err == nil {
				t.Fatalf("Resolve = %+v, want an error", cmd)
			}
			if !errors.Is(err, launch.ErrNotFound) {
				t.Errorf("error %q does not wrap ErrNotFound", err)
			}
			for _, s := range []string{`process "api"`, "interpreter " + tc.interp + " not found", filepath.Join(cwd, "node_modules", ".bin"), "PATH (" + emptyPath + ")", tc.hint} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
		})
	}
}

func TestResolveEmptyCwd(t *testing.T) {
	_, err := launch.Resolve(config.Process{Name: "api", Script: "app.py"}, nil, nil)
	if err == nil || !strings.Contains(err.Error(), `process "api": cwd is empty`) {
		t.Errorf("Resolve with no cwd: %v", err)
	}
}

// venvProbe prints what proves which Python runs and in which environment.
const venvProbe = `import json, os, sys
print(json.dumps({
    "prefix": sys.prefix,
    "virtual_env": os.environ.get("VIRTUAL_ENV"),
    "pythonhome": os.environ.get("PYTHONHOME"),
    "cwd": os.getcwd(),
    "argv": sys.argv[1:],
}))
`

func TestResolveVenv(t *testing.T) {
	sysPath := os.Getenv("PATH")
	systemPython, err := exec.LookPath("python3")
	if err != nil {
		t.Fatalf("python3 not on PATH: %v", err)
	}
	tests := []struct {
		name          string
		venvs         []string // created under the test root; the cwd is root/proj
		dirs          []string // plain directories created under root
		inherited     string   // VIRTUAL_ENV in the base environment, under root
		own           string   // VIRTUAL_ENV in the process's env, under root
		fromEnvFile   string   // VIRTUAL_ENV in the process's env_file, under root
		activatedPath bool     // the base PATH already starts with the inherited venv's bin
		noPath        bool     // the base environment has no PATH
		want          string   // the venv used, under root; "" for none
	}{
		{name: ".venv in cwd", venvs: []string{"proj/.venv"}, want: "proj/.venv"},
		{name: "venv in cwd", venvs: []string{"proj/venv"}, want: "proj/venv"},
		{name: ".venv before venv", venvs: []string{"proj/venv", "proj/.venv"}, want: "proj/.venv"},
		{name: "inherited VIRTUAL_ENV", venvs: []string{"shared/env"}, inherited: "shared/env", want: "shared/env"},
		{name: "inherited and already on PATH", venvs: []string{"shared/env"}, inherited: "shared/env", activatedPath: true, want: "shared/env"},
		{name: "cwd venv before the inherited one", venvs: []string{"proj/.venv", "shared/env"}, inherited: "shared/env", want: "proj/.venv"},
		{name: "own VIRTUAL_ENV before cwd .venv", venvs: []string{"proj/.venv", "shared/env"}, own: "shared/env", want: "shared/env"},
		{name: "VIRTUAL_ENV from env_file before cwd .venv", venvs: []string{"proj/.venv", "shared/env"}, fromEnvFile: "shared/env", want: "shared/env"},
		{name: "own VIRTUAL_ENV that is no venv is ignored", venvs: []string{"proj/.venv"}, dirs: []string{"plain"}, own: "plain", want: "proj/.venv"},
		{name: "no PATH in the base environment", venvs: []string{"proj/.venv"}, noPath: true, want: "proj/.venv"},
		{name: "inherited VIRTUAL_ENV that is no venv", dirs: []string{"plain"}, inherited: "plain"},
		{name: "no venv"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			cwd := filepath.Join(root, "proj")
			abs := func(rel string) string { return filepath.Join(root, filepath.FromSlash(rel)) }
			writeFile(t, filepath.Join(cwd, "probe.py"), venvProbe, 0o644)
			for _, v := range tc.venvs {
				newVenv(t, abs(v))
			}
			for _, d := range tc.dirs {
				if err := os.MkdirAll(abs(d), 0o755); err != nil {
					t.Fatal(err)
				}
			}

			basePath := sysPath
			if tc.activatedPath {
				basePath = filepath.Join(abs(tc.inherited), "bin") + string(os.PathListSeparator) + sysPath
			}
			base := slices.DeleteFunc(cleanEnviron(), func(kv string) bool { return strings.HasPrefix(kv, "PATH=") })
			if !tc.noPath {
				base = append(base, "PATH="+basePath)
			}
			if tc.inherited != "" {
				base = append(base, "VIRTUAL_ENV="+abs(tc.inherited))
			}
			if tc.want != "" {
				// Python does not start with a bogus PYTHONHOME: running
				// the probe proves that activation removed it.
				base = append(base, "PYTHONHOME="+filepath.Join(root, "no-such-home"))
			}
			p := config.Process{Name: "agent", Script: "probe.py", Args: []string{"--flag"}, Cwd: cwd}
			if tc.own != "" {
				p.Env = map[string]string{"VIRTUAL_ENV": abs(tc.own)}
			}
			if tc.fromEnvFile != "" {
				writeFile(t, filepath.Join(cwd, ".env"), "# the venv\nVIRTUAL_ENV=\""+abs(tc.fromEnvFile)+"\"\n", 0o644)
				p.EnvFile = ".env"
			}

			cmd, err := launch.Resolve(p, base, map[string]string{"PB_URL": "http://127.0.0.1:8090"})
			if err != nil {
				t.Fatal(err)
			}
			env := envMap(t, cmd.Env)
			if cmd.Runtime != "python" || cmd.Dir != cwd {
				t.Errorf("Runtime, Dir = %q, %q; want python, %q", cmd.Runtime, cmd.Dir, cwd)
			}
			if want := []string{cmd.Path, "probe.py", "--flag"}; !slices.Equal(cmd.Args, want) {
				t.Errorf("Args = %q, want %q", cmd.Args, want)
			}

			var probe struct {
				Prefix     string   `json:"prefix"`
				VirtualEnv *string  `json:"virtual_env"`
				PythonHome *string  `json:"pythonhome"`
				Cwd        string   `json:"cwd"`
				Argv       []string `json:"argv"`
			}
			out := run(t, cmd)
			if err := json.Unmarshal([]byte(out), &probe); err != nil {
				t.Fatalf("probe output %q: %v", out, err)
			}
			if !sameFile(t, probe.Cwd, cwd) || !slices.Equal(probe.Argv, []string{"--flag"}) {
				t.Errorf("probe ran in %q with %q, want %q with [--flag]", probe.Cwd, probe.Argv, cwd)
			}

			if tc.want == "" {
				if cmd.Venv != "" {
					t.Errorf("Venv = %q, want none", cmd.Venv)
				}
				if cmd.Path != systemPython {
					t.Errorf("Path = %q, want the python3 on PATH, %q", cmd.Path, systemPython)
				}
				if env["PATH"] != sysPath {
					t.Errorf("PATH = %q, want it unchanged", env["PATH"])
				}
				if got, want := env["VIRTUAL_ENV"], base2inherited(root, tc.inherited); got != want {
					t.Errorf("VIRTUAL_ENV = %q, want %q", got, want)
				}
				if strings.HasPrefix(probe.Prefix, root) {
					t.Errorf("sys.prefix = %q, want the system Python's", probe.Prefix)
				}
				return
			}

			venv := abs(tc.want)
			venvBin := filepath.Join(venv, "bin")
			if cmd.Venv != venv {
				t.Errorf("Venv = %q, want %q", cmd.Venv, venv)
			}
			if want := filepath.Join(venvBin, "python3"); cmd.Path != want {
				t.Errorf("Path = %q, want the venv's python %q", cmd.Path, want)
			}
			if env["VIRTUAL_ENV"] != venv {
				t.Errorf("VIRTUAL_ENV = %q, want %q", env["VIRTUAL_ENV"], venv)
			}
			wantPath := venvBin + string(os.PathListSeparator) + sysPath
			switch {
			case tc.noPath:
				wantPath = venvBin
			case tc.activatedPath:
				wantPath = basePath // not prepended twice
			}
			if env["PATH"] != wantPath {
				t.Errorf("PATH = %q, want %q", env["PATH"], wantPath)
			}
			if v, ok := env["PYTHONHOME"]; ok {
				t.Errorf("PYTHONHOME = %q, want it removed", v)
			}
			if env["PB_URL"] != "http://127.0.0.1:8090" {
				t.Errorf("PB_URL = %q, want the injected value", env["PB_URL"])
			}
			if !sameFile(t, probe.Prefix, venv) {
				t.Errorf("sys.prefix = %q, want the venv %q", probe.Prefix, venv)
			}
			if probe.VirtualEnv == nil || *probe.VirtualEnv != venv {
				t.Errorf("the child's VIRTUAL_ENV = %v, want %q", probe.VirtualEnv, venv)
			}
			if probe.PythonHome != nil {
				t.Errorf("the child's PYTHONHOME = %q, want unset", *probe.PythonHome)
			}
		})
	}
}

func base2inherited(root, rel string) string {
	if rel == "" {
		return ""
	}
	return filepath.Join(root, filepath.FromSlash(rel))
}

func TestEnvironmentPrecedence(t *testing.T) {
	cwd := t.TempDir()
	bin := fakeBin(t, "bash")
	writeFile(t, filepath.Join(cwd, "run.sh"), "echo\n", 0o644)
	writeFile(t, filepath.Join(cwd, "config", "app.env"), `
ALL=file
BASE_FILE=file
INJECT_FILE=file
FILE_ENV=file
ONLY_FILE=file
`, 0o644)
	base := []string{"PATH=" + bin, "ONLY_BASE=base", "BASE_INJECT=base", "BASE_FILE=base", "ALL=base"}
	inject := map[string]string{"BASE_INJECT": "inject", "INJECT_FILE": "inject", "ALL": "inject", "ONLY_INJECT": "inject"}
	p := config.Process{
		Name: "api", Script: "run.sh", Cwd: cwd, EnvFile: "config/app.env",
		Env: map[string]string{"FILE_ENV": "env", "ALL": "env", "ONLY_ENV": "env"},
	}

	cmd, err := launch.Resolve(p, base, inject)
	if err != nil {
		t.Fatal(err)
	}
	envVars, fileKeys, err := launch.Environment(p, base, inject)
	if err != nil {
		t.Fatal(err)
	}
	got := envMap(t, cmd.Env)

	tests := []struct {
		key  string
		want string
		own  bool // set by the process config (env_file or env)
	}{
		{"ONLY_BASE", "base", false},
		{"BASE_INJECT", "inject", false},
		{"ONLY_INJECT", "inject", false},
		{"BASE_FILE", "file", true},
		{"INJECT_FILE", "file", true},
		{"ONLY_FILE", "file", true},
		{"FILE_ENV", "env", true},
		{"ONLY_ENV", "env", true},
		{"ALL", "env", true},
		{"PATH", bin, false},
	}
	for _, tc := range tests {
		t.Run(tc.key, func(t *testing.T) {
			if got[tc.key] != tc.want {
				t.Errorf("Command.Env %s = %q, want %q", tc.key, got[tc.key], tc.want)
			}
			if v := envVars.Get(tc.key); v != tc.want {
				t.Errorf("Environment %s = %q, want %q", tc.key, v, tc.want)
			}
			if envVars.IsOwn(tc.key) != tc.own {
				t.Errorf("IsOwn(%s) = %v, want %v", tc.key, !tc.own, tc.own)
			}
		})
	}
	if len(got) != len(tests) {
		t.Errorf("Env has %d variables, want %d: %q", len(got), len(tests), cmd.Env)
	}
	wantKeys := []string{"ALL", "BASE_FILE", "FILE_ENV", "INJECT_FILE", "ONLY_FILE"}
	if !slices.Equal(cmd.EnvFileKeys, wantKeys) || !slices.Equal(fileKeys, wantKeys) {
		t.Errorf("EnvFileKeys = %q (Environment: %q), want %q", cmd.EnvFileKeys, fileKeys, wantKeys)
	}
	// Inherited variables keep their place; new ones follow.
	if i, j := slices.Index(cmd.Env, "ONLY_BASE=base"), slices.Index(cmd.Env, "ONLY_ENV=env"); i < 0 || j < i {
		t.Errorf("Env order = %q, want base variables first", cmd.Env)
	}
}

func TestEnvFileSyntax(t *testing.T) {
	content := `# Settings for the agent
export EXPORTED=yes
PLAIN=value # an inline comment
DOUBLE="hello world"
SINGLE='a # is kept, and so is $PLAIN'
HASH_IN_QUOTES="pass#word"
NEWLINE="line1\nline2"
EMPTY=
  SPACED = spaced value  
URL=postgres://user:p@ss@localhost:5432/db?sslmode=disable
REF="${DOUBLE}!"
#DISABLED=1
`
	tests := []struct {
		key  string
		want string
	}{
		{"EXPORTED", "yes"},
		{"PLAIN", "value"},
		{"DOUBLE", "hello world"},
		{"SINGLE", "a # is kept, and so is $PLAIN"},
		{"HASH_IN_QUOTES", "pass#word"},
		{"NEWLINE", "line1\nline2"},
		{"EMPTY", ""},
		{"SPACED", "spaced value"},
		{"URL", "postgres://user:p@ss@localhost:5432/db?sslmode=disable"},
		{"REF", "hello world!"},
	}
	for _, absolute := range []bool{false, true} {
		t.Run(fmt.Sprintf("absolute=%v", absolute), func(t *testing.T) {
			cwd := t.TempDir()
			envFile := writeFile(t, filepath.Join(cwd, ".env"), content, 0o600)
			if !absolute {
				envFile = ".env"
			}
			p := config.Process{Name: "api", Cwd: cwd, EnvFile: envFile}
			env, keys, err := launch.Environment(p, []string{"PLAIN=from-base"}, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, tc := range tests {
				t.Run(tc.key, func(t *testing.T) {
					if got := env.Get(tc.key); got != tc.want {
						t.Errorf("%s = %q, want %q", tc.key, got, tc.want)
					}
					if !env.IsOwn(tc.key) {
						t.Errorf("%s is not marked as set by the process", tc.key)
					}
				})
			}
			var want []string
			for _, tc := range tests {
				want = append(want, tc.key)
			}
			slices.Sort(want)
			if !slices.Equal(keys, want) {
				t.Errorf("env_file keys = %q, want %q (no comments, no DISABLED)", keys, want)
			}
		})
	}
}

func TestEnvFileErrors(t *testing.T) {
	tests := []struct {
		name    string
		envFile func(cwd string) string
		setup   func(t *testing.T, cwd string)
		is      error
	}{
		{name: "missing, relative", envFile: func(string) string { return "prod.env" }, is: fs.ErrNotExist},
		{name: "missing, absolute", envFile: func(cwd string) string { return filepath.Join(cwd, "secrets", "prod.env") }, is: fs.ErrNotExist},
		{
			name:    "a directory",
			envFile: func(string) string { return "envdir" },
			setup:   func(t *testing.T, cwd string) { writeFile(t, filepath.Join(cwd, "envdir", "x"), "", 0o644) },
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cwd := t.TempDir()
			if tc.setup != nil {
				tc.setup(t, cwd)
			}
			envFile := tc.envFile(cwd)
			writeFile(t, filepath.Join(cwd, "app.py"), "", 0o644)
			p := config.Process{Name: "api", Script: "app.py", Cwd: cwd, EnvFile: envFile}
			cmd, err := launch.Resolve(p, []string{"PATH=" + fakeBin(t, "python3")}, nil)
			if err == nil {
				t.Fatalf("Resolve = %+v, want an error", cmd)
			}
			full := envFile
			if !filepath.IsAbs(full) {
				full = filepath.Join(cwd, envFile)
			}
			if want := `process "api": env_file ` + full; !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not contain %q", err, want)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %q does not wrap %v", err, tc.is)
			}
		})
	}
}

func TestEnv(t *testing.T) {
	tests := []struct {
		name  string
		list  []string
		apply func(e *launch.Env)
		want  []string
	}{
		{name: "keeps order", list: []string{"B=1", "A=2"}, want: []string{"B=1", "A=2"}},
		{name: "later entries win in place", list: []string{"A=1", "B=2", "A=3"}, want: []string{"A=3", "B=2"}},
		{name: "values may contain =", list: []string{"OPTS=a=b=c"}, want: []string{"OPTS=a=b=c"}},
		{name: "empty value", list: []string{"E="}, want: []string{"E="}},
		{name: "entries without a name or = are dropped", list: []string{"=x", "NOEQ", "A=1"}, want: []string{"A=1"}},
		{
			name: "Set adds at the end and replaces in place", list: []string{"A=1", "B=2"},
			apply: func(e *launch.Env) { e.Set("C", "3"); e.Set("A", "9") },
			want:  []string{"A=9", "B=2", "C=3"},
		},
		{
			name: "Unset removes", list: []string{"A=1", "B=2", "C=3"},
			apply: func(e *launch.Env) { e.Unset("B"); e.Unset("MISSING") },
			want:  []string{"A=1", "C=3"},
		},
		{
			name: "Unset then Set appends", list: []string{"A=1", "B=2"},
			apply: func(e *launch.Env) { e.Unset("A"); e.Set("A", "new") },
			want:  []string{"B=2", "A=new"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := launch.NewEnv(tc.list)
			if tc.apply != nil {
				tc.apply(e)
			}
			if got := e.List(); !slices.Equal(got, tc.want) {
				t.Errorf("List() = %q, want %q", got, tc.want)
			}
			for _, kv := range tc.want {
				k, v, _ := strings.Cut(kv, "=")
				if e.Get(k) != v || e.IsOwn(k) {
					t.Errorf("Get(%s), IsOwn = %q, %v; want %q, false", k, e.Get(k), e.IsOwn(k), v)
				}
			}
		})
	}
}

// A bare script name run directly ("interpreter": "none", or an unknown
// extension) is a command name: it is looked up in the venv's bin,
// node_modules/.bin and PATH, never in cwd (docs/config.md, "Launch"); a
// file in cwd needs "./".
func TestResolveBareScriptNameIsACommand(t *testing.T) {
	tests := []struct {
		name        string
		script      string
		interpreter string
		onPath      bool
	}{
		{"interpreter none, only in cwd", "run.sh", config.InterpreterNone, false},
		{"unknown extension, only in cwd", "server.bin", "", false},
		{"interpreter none, also on PATH", "run.sh", config.InterpreterNone, true},
		{"unknown extension, also on PATH", "server.bin", "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cwd := t.TempDir()
			pathDir := t.TempDir()
			writeExec(t, filepath.Join(cwd, tc.script), "cwd")
			if tc.onPath {
				writeExec(t, filepath.Join(pathDir, tc.script), "path")
			}
			p := config.Process{Name: "api", Script: tc.script, Cwd: cwd, Interpreter: tc.interpreter}
			cmd, err := launch.Resolve(p, []string{"PATH=" + pathDir}, nil)
			if tc.onPath {
				if err != nil {
					t.Fatal(err)
				}
				if want := filepath.Join(pathDir, tc.script); cmd.Path != want {
					t.Errorf("Path = %q, want the command on PATH %q", cmd.Path, want)
				}
				return
			}
			if err == nil {
				t.Fatalf("Resolve = %+v, want a command-not-found error", cmd)
			}
			if !errors.Is(err, launch.ErrNotFound) {
				t.Errorf("error %q does not wrap ErrNotFound", err)
			}
			for _, s := range []string{fmt.Sprintf("command %q not found", tc.script), pathDir, "give its path"} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
		})
	}
}

// A relative VIRTUAL_ENV set by the process (env or env_file) is checked
// against PocketBase's working directory instead of the process's cwd.
func TestRegressionRelativeOwnVirtualEnv(t *testing.T) {
	cwd := t.TempDir()
	venv := newVenv(t, filepath.Join(cwd, "envs", "api"))
	writeFile(t, filepath.Join(cwd, "app.py"), "", 0o644)
	p := config.Process{Name: "api", Script: "app.py", Cwd: cwd, Env: map[string]string{"VIRTUAL_ENV": "envs/api"}}
	cmd, err := launch.Resolve(p, []string{"PATH=" + fakeBin(t, "python3")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cmd.Venv != venv {
		regression(t, "findVenv (launch.go:156) calls isVenv on a relative VIRTUAL_ENV without joining it to cwd", "Venv = %q, Path = %q", cmd.Venv, cmd.Path)
	}
}

// Variables in env_file are expanded by godotenv from the earlier lines
// and from PocketBase's own os environment, not from the environment the
// child gets, so the injected variables (PB_URL, ...) expand to "".
func TestRegressionEnvFileExpansionIgnoresInjected(t *testing.T) {
	cwd := t.TempDir()
	writeFile(t, filepath.Join(cwd, ".env"), "API_URL=${PB_URL}/api\n", 0o644)
	p := config.Process{Name: "api", Cwd: cwd, EnvFile: ".env"}
	env, _, err := launch.Environment(p, nil, map[string]string{"PB_URL": "http://127.0.0.1:8090"})
	if err != nil {
		t.Fatal(err)
	}
	if got := env.Get("API_URL"); got != "http://127.0.0.1:8090/api" {
		regression(t, "env_file ${VAR} expansion does not see baseEnv or the injected variables (env.go:84 godotenv.Read)", "API_URL = %q", got)
	}
}
