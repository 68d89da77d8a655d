// Package launch turns a process config into the exact command to run:
// the interpreter picked by the script's extension, a Python virtualenv
// found and activated the way `activate` would, commands looked up in
// the venv's bin, node_modules/.bin and PATH, and the child's
// environment. Nothing runs through a shell.
package launch

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/processman/processman/config"
	"github.com/processman/processman/internal/redact"
)

// ErrNotFound is wrapped by errors about a missing interpreter, script
// or command.
var ErrNotFound = errors.New("not found")

// Command is a resolved command line.
type Command struct {
	// Path is the absolute path of the program to execute.
	Path string
	// Args is the full argv, Args[0] included.
	Args []string
	// Dir is the working directory.
	Dir string
	// Env is the child's environment.
	Env []string
	// Runtime is what runs the script: "python", "node", "tsx", "bash"
	// or "exec" for a program run directly.
	Runtime string
	// Venv is the activated virtualenv, if any.
	Venv string
	// EnvFileKeys lists the variables that came from env_file; their
	// values are treated as secrets wherever the environment is shown.
	EnvFileKeys []string
	// Warnings are things about the command that work but are likely not
	// what was meant, each with what to do (a Python project without its
	// virtualenv).
	Warnings []string
}

// String is the command line, for logs and messages, with the values of
// secret flags and the passwords in URLs hidden.
func (c *Command) String() string {
	return strings.Join(redact.Args(c.Args), " ")
}

// interpreterCommands are the commands looked up for each runtime.
var interpreterCommands = map[string][]string{
	"python": {"python3", "python"},
	"node":   {"node"},
	"tsx":    {"tsx"},
	"bash":   {"bash"},
}

var installHints = map[string]string{
	"python": "install Python 3, or create a virtualenv in cwd (python3 -m venv .venv)",
	"node":   "install Node.js, or set \"interpreter\" to the node binary's path",
	"tsx":    "run `npm install --save-dev tsx` in cwd, or set \"interpreter\"",
	"bash":   "install bash, or set \"interpreter\": \"sh\"",
}

// Resolve builds the command for p. baseEnv is the environment inherited
// from PocketBase and inject holds the variables processman adds (PB_URL,
// PB_DATA_DIR, ...); see Environment for how they combine.
func Resolve(p config.Process, baseEnv []string, inject map[string]string) (*Command, error) {
	if p.Cwd == "" {
		return nil, fmt.Errorf("process %q: cwd is empty", p.Name)
	}
	env, envFileKeys, err := Environment(p, baseEnv, inject)
	if err != nil {
		return nil, err
	}
	cmd := &Command{Dir: p.Cwd, EnvFileKeys: envFileKeys}
	cmd.Venv = findVenv(p.Cwd, env)
	if cmd.Venv != "" {
		activate(env, cmd.Venv)
	}
	cmd.Env = env.List()
	look := lookup{cwd: p.Cwd, venv: cmd.Venv, path: env.Get("PATH")}

	interpreter := p.Interpreter
	if interpreter == config.InterpreterAuto {
		interpreter = ""
	}
	runtime := config.ScriptRuntime(p.Script)
	switch {
	case interpreter == config.InterpreterNone || (runtime == "" && interpreter == ""):
		cmd.Runtime = "exec"
		path, err := look.program(p.Script)
		if err != nil {
			return nil, fmt.Errorf("process %q: %w", p.Name, err)
		}
		cmd.Path = path
		cmd.Args = append([]string{p.Script}, p.Args...)
		cmd.Warnings = venvWarnings(cmd, programRuntime(p.Script))
		return cmd, nil
	case interpreter != "":
		cmd.Runtime = runtimeOf(interpreter, runtime)
		path, err := look.program(interpreter)
		if err != nil {
			return nil, fmt.Errorf("process %q: interpreter: %w", p.Name, err)
		}
		cmd.Path = path
	default:
		cmd.Runtime = runtime
		path, err := look.interpreter(runtime)
		if err != nil {
			return nil, fmt.Errorf("process %q: %w", p.Name, err)
		}
		cmd.Path = path
	}

	script := p.Script
	if !filepath.IsAbs(script) {
		script = filepath.Join(p.Cwd, script)
	}
	if _, err := os.Stat(script); err != nil {
		return nil, fmt.Errorf("process %q: script %s %w; check \"script\" and \"cwd\"", p.Name, script, ErrNotFound)
	}
	cmd.Args = append([]string{cmd.Path}, p.InterpreterArgs...)
	cmd.Args = append(cmd.Args, p.Script)
	cmd.Args = append(cmd.Args, p.Args...)
	if interpreter == "" { // an interpreter given by name is taken as meant
		cmd.Warnings = venvWarnings(cmd, cmd.Runtime)
	}
	return cmd, nil
}

// runtimeOf names the runtime of an explicit interpreter.
func runtimeOf(interpreter, fallback string) string {
	base := filepath.Base(interpreter)
	switch {
	case strings.HasPrefix(base, "python"):
		return "python"
	case base == "node" || base == "nodejs":
		return "node"
	case base == "tsx":
		return "tsx"
	case base == "bash" || base == "sh":
		return "bash"
	}
	if fallback != "" {
		return fallback
	}
	return "exec"
}
