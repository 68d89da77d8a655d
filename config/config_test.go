package config_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/processman/processman/config"
)

// regression fails a test that guards against a fixed bug, naming it.
func regression(t *testing.T, bug string, format string, args ...any) {
	t.Helper()
	t.Errorf("regression: %s\n\tobserved: %s", bug, fmt.Sprintf(format, args...))
}

// writeConfig writes content as pb_processes.json in dir and returns its path.
func writeConfig(t *testing.T, dir, content string) string {
	t.Helper()
	path := filepath.Join(dir, config.FileName)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func mkdir(t *testing.T, parts ...string) string {
	t.Helper()
	dir := filepath.Join(parts...)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	mkdir(t, filepath.Dir(path))
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// asErrors asserts that err is a non-empty config.Errors.
func asErrors(t *testing.T, err error) config.Errors {
	t.Helper()
	if err == nil {
		t.Fatal("got no error, want config errors")
	}
	var errs config.Errors
	if !errors.As(err, &errs) {
		t.Fatalf("got %T %v, want config.Errors", err, err)
	}
	if len(errs) == 0 {
		t.Fatal("got an empty config.Errors as a non-nil error")
	}
	return errs
}

func dump(errs config.Errors) string {
	var b strings.Builder
	for _, e := range errs {
		fmt.Fprintf(&b, "\n\t{Path:%q Index:%d Process:%q Line:%d Column:%d Message:%q Hint:%q}", e.Path, e.Index, e.Process, e.Line, e.Column, e.Message, e.Hint)
	}
	return b.String()
}

// loadSafely loads path and turns a panic into a test failure, so that a
// crash of the loader is reported against the input that caused it.
func loadSafely(t *testing.T, path string) (file *config.File, err error) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("config.Load(%s) panicked: %v", path, r)
		}
	}()
	return config.Load(path)
}

// checkCommon asserts what holds for every error of a config file: it
// names the file, carries no position (only syntax errors have one), has a
// hint, and its text shows the path, the process and the hint.
func checkCommon(t *testing.T, e config.Error, file string) {
	t.Helper()
	if e.File != file {
		t.Errorf("%s: File = %q, want %q", e.Path, e.File, file)
	}
	if e.Line != 0 || e.Column != 0 {
		t.Errorf("%s: Line:Column = %d:%d, want 0:0 for a non-syntax error", e.Path, e.Line, e.Column)
	}
	if e.Message == "" {
		t.Errorf("%s: empty Message", e.Path)
	}
	text := e.Error()
	for _, part := range []string{file + ": ", e.Path, e.Message} {
		if !strings.Contains(text, part) {
			t.Errorf("Error() = %q, does not contain %q", text, part)
		}
	}
	if e.Process != "" && !strings.Contains(text, fmt.Sprintf("(process %q)", e.Process)) {
		t.Errorf("Error() = %q, does not name process %q", text, e.Process)
	}
	if e.Hint != "" && !strings.HasSuffix(text, "; "+e.Hint) {
		t.Errorf("Error() = %q, does not end with the hint %q", text, e.Hint)
	}
}

func TestLoadSyntaxErrors(t *testing.T) {
	tests := []struct {
		name    string
		content string
		line    int
		column  int
		message string
	}{
		{
			name: "trailing comma in an entry",
			content: `{
  "processes": [
    {"name": "api", "script": "api.py",}
  ]
}
`,
			line: 3, column: 40, // the '}' after the comma
			message: "looking for beginning of object key string",
		},
		{
			name: "trailing comma in the list",
			content: `{
  "processes": [
    {"name": "api", "script": "api.py"},
  ]
}
`,
			line: 4, column: 3, // the ']'
			message: "looking for beginning of value",
		},
		{
			name: "missing closing quote of a key",
			content: `{
  "processes": [
    {"name: "api", "script": "api.py"}
  ]
}
`,
			line: 3, column: 14, // the string "name: " ends at column 13; 'a' follows it
			message: "after object key",
		},
		{
			name: "missing comma between entries",
			content: `{
  "processes": [
    {"name": "api", "script": "api.py"}
    {"name": "web", "script": "web.js"}
  ]
}
`,
			line: 4, column: 5,
			message: "after array element",
		},
		{
			name: "comment in the file",
			content: `{
  // the processes
  "processes": []
}
`,
			line: 2, column: 3,
			message: "invalid character '/'",
		},
		{
			name:    "truncated file",
			content: "{\n  \"processes\": [\n    {\"name\": \"api\",",
			line:    3, column: 19, // the last byte of the file
			message: "unexpected end of JSON input",
		},
		{
			name:    "truncated file ending with a newline",
			content: "{\n  \"processes\": [\n    {\"name\": \"api\",\n",
			line:    4, column: 1,
			message: "unexpected end of JSON input",
		},
		{
			name:    "empty file",
			content: "",
			line:    1, column: 1,
			message: "unexpected end of JSON input",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := writeConfig(t, t.TempDir(), tc.content)
			file, err := loadSafely(t, path)
			errs := asErrors(t, err)
			if file != nil {
				t.Errorf("got a file with %d processes for invalid JSON, want nil", len(file.Processes))
			}
			if len(errs) != 1 {
				t.Fatalf("got %d errors, want exactly 1:%s", len(errs), dump(errs))
			}
			e := errs[0]
			if e.Line != tc.line || e.Column != tc.column {
				t.Errorf("position = %d:%d, want %d:%d (%s)", e.Line, e.Column, tc.line, tc.column, e.Message)
			}
			if e.Path != "" || e.Index != -1 || e.Process != "" {
				t.Errorf("Path, Index, Process = %q, %d, %q; want \"\", -1, \"\" for a syntax error", e.Path, e.Index, e.Process)
			}
			if e.File != path {
				t.Errorf("File = %q, want %q", e.File, path)
			}
			if !strings.HasPrefix(e.Message, "invalid JSON") || !strings.Contains(e.Message, tc.message) {
				t.Errorf("Message = %q, want \"invalid JSON: ...%s...\"", e.Message, tc.message)
			}
			if !strings.Contains(e.Hint, "JSON syntax") {
				t.Errorf("Hint = %q, want advice on the JSON syntax", e.Hint)
			}
			wantPrefix := fmt.Sprintf("%s:%d:%d: invalid JSON", path, tc.line, tc.column)
			if !strings.HasPrefix(e.Error(), wantPrefix) {
				t.Errorf("Error() = %q, want prefix %q", e.Error(), wantPrefix)
			}
			if !strings.HasPrefix(err.Error(), "processman: 1 config error:\n") {
				t.Errorf("Errors.Error() = %q, want the singular header", err.Error())
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), config.FileName)
	file, err := config.Load(path)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Load(missing) error = %v, want one wrapping fs.ErrNotExist", err)
	}
	if file != nil {
		t.Errorf("Load(missing) returned a file")
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("error %q does not name %s", err, path)
	}
}

// want is one expected error. Process is checked exactly ("" means the
// entry has no known name); message and hint are substrings.
type want struct {
	path    string
	index   int
	process string
	message string
	hint    string
}

func TestLoadErrorClasses(t *testing.T) {
	longName := "a" + strings.Repeat("b", 63) // 64 characters, one too many
	nameHint := "letters, digits"
	durationHint := `such as "500ms"`
	tests := []struct {
		name    string
		setup   func(t *testing.T, dir string) // creates files beside the config
		content string
		want    []want // in the order they must be reported
		// bug, when set, names an open bug that makes the error list
		// differ from want by extra entries at the wanted paths.
		bug string
	}{
		// Unknown fields, with a suggestion for likely typos.
		{
			name:    "unknown field scrpt suggests script",
			content: `{"processes": [{"name": "api", "scrpt": "api.py"}]}`,
			want: []want{
				{"/processes/0/script", 0, "api", `missing required field "script"`, `e.g. "agent.py"`},
				{"/processes/0/scrpt", 0, "api", `unknown field "scrpt"`, `did you mean "script"?`},
			},
		},
		{
			name:    "unknown field max_restart suggests max_restarts",
			content: `{"processes": [{"name": "api", "script": "api.py", "max_restart": 3}]}`,
			want:    []want{{"/processes/0/max_restart", 0, "api", `unknown field "max_restart"`, `did you mean "max_restarts"?`}},
		},
		{
			name:    "unknown field kill_singal suggests kill_signal",
			content: `{"processes": [{"name": "api", "script": "api.py", "kill_singal": "SIGINT"}]}`,
			want:    []want{{"/processes/0/kill_singal", 0, "api", `unknown field "kill_singal"`, `did you mean "kill_signal"?`}},
		},
		{
			name:    "unknown field interpeter suggests interpreter",
			content: `{"processes": [{"name": "api", "script": "api.py", "interpeter": "python3.12"}]}`,
			want:    []want{{"/processes/0/interpeter", 0, "api", `unknown field "interpeter"`, `did you mean "interpreter"?`}},
		},
		{
			name:    "unknown field with capital letter suggests the lowercase field",
			content: `{"processes": [{"name": "api", "Script": "api.py"}]}`,
			want: []want{
				{"/processes/0/Script", 0, "api", `unknown field "Script"`, `did you mean "script"?`},
				{"/processes/0/script", 0, "api", `missing required field "script"`, `e.g. "agent.py"`},
			},
		},
		{
			name:    "unknown field far from every field points to the docs",
			content: `{"processes": [{"name": "api", "script": "api.py", "exec_mode": "cluster"}]}`,
			want:    []want{{"/processes/0/exec_mode", 0, "api", `unknown field "exec_mode"`, "docs/config.md"}},
		},
		{
			name:    "unknown top-level field suggests processes",
			content: `{"procesess": []}`,
			want: []want{
				{"/procesess", -1, "", `unknown field "procesess"`, `did you mean "processes"?`},
				{"/processes", -1, "", `missing required field "processes"`, `{"processes": [`},
			},
		},
		{
			name:    "unknown top-level field with no likely match",
			content: `{"version": 2, "processes": []}`,
			want:    []want{{"/version", -1, "", `unknown field "version"`, "remove it"}},
		},
		{
			name:    "missing processes",
			content: `{}`,
			want:    []want{{"/processes", -1, "", `missing required field "processes"`, `write {"processes": [ ... ]}`}},
		},

		// Wrong types.
		{
			name:    "string for an integer",
			content: `{"processes": [{"name": "api", "script": "api.py", "max_restarts": "5"}]}`,
			want:    []want{{"/processes/0/max_restarts", 0, "api", `expected integer, got string "5"`, "without quotes"}},
		},
		{
			name:    "string for log_max_size_mb",
			content: `{"processes": [{"name": "api", "script": "api.py", "log_max_size_mb": "10"}]}`,
			want:    []want{{"/processes/0/log_max_size_mb", 0, "api", `expected integer, got string "10"`, "without quotes"}},
		},
		{
			name:    "number for the script",
			content: `{"processes": [{"name": "api", "script": 5}]}`,
			want:    []want{{"/processes/0/script", 0, "api", "expected string, got number 5", `e.g. "agent.py"`}},
		},
		{
			name:    "number for the name",
			content: `{"processes": [{"name": 7, "script": "api.py"}]}`,
			want:    []want{{"/processes/0/name", 0, "", "expected string, got number 7", nameHint}},
			bug:     `a non-string name is reported twice: by the schema and as "missing name" by Check (load.go:104)`,
		},
		{
			name:    "string for watch",
			content: `{"processes": [{"name": "api", "script": "api.py", "watch": "yes"}]}`,
			want:    []want{{"/processes/0/watch", 0, "api", `expected boolean or array, got string "yes"`, "true, false, or a list of paths"}},
		},
		{
			name:    "number in the watch list",
			content: `{"processes": [{"name": "api", "script": "api.py", "watch": ["src", 3]}]}`,
			want:    []want{{"/processes/0/watch/1", 0, "api", "expected string, got number 3", "list of paths"}},
		},
		{
			name:    "object for args",
			content: `{"processes": [{"name": "api", "script": "api.py", "args": {"port": "8000"}}]}`,
			want:    []want{{"/processes/0/args", 0, "api", "expected array, got object", `["run", "start"]`}},
		},
		{
			name:    "string for ignore_watch",
			content: `{"processes": [{"name": "api", "script": "api.py", "ignore_watch": "*.log"}]}`,
			want:    []want{{"/processes/0/ignore_watch", 0, "api", `expected array, got string "*.log"`, "list of globs"}},
		},
		{
			name:    "number as an env value",
			content: `{"processes": [{"name": "api", "script": "api.py", "env": {"HOST": "0.0.0.0", "PORT": 8000}}]}`,
			want:    []want{{"/processes/0/env/PORT", 0, "api", "expected string, got number 8000", `{"PORT": "8000"}`}},
		},
		{
			name:    "number for a duration",
			content: `{"processes": [{"name": "api", "script": "api.py", "restart_delay": 5}]}`,
			want:    []want{{"/processes/0/restart_delay", 0, "api", "expected string, got number 5", durationHint}},
		},
		{
			name:    "number for log_file",
			content: `{"processes": [{"name": "api", "script": "api.py", "log_file": 1}]}`,
			want:    []want{{"/processes/0/log_file", 0, "api", "expected boolean or string, got number 1", `"logs/agent.log", true or false`}},
		},

		// Invalid enum values.
		{
			name:    "invalid restart policy",
			content: `{"processes": [{"name": "api", "script": "api.py", "restart": "sometimes"}]}`,
			want:    []want{{"/processes/0/restart", 0, "api", `invalid value "sometimes"`, `use one of "always", "on-failure", "never"`}},
		},
		{
			name:    "invalid kill signal",
			content: `{"processes": [{"name": "api", "script": "api.py", "kill_signal": "SIGSTOP"}]}`,
			want:    []want{{"/processes/0/kill_signal", 0, "api", `invalid value "SIGSTOP"`, `"SIGTERM"`}},
		},

		// Invalid durations.
		{
			name:    "duration with a spelled-out unit",
			content: `{"processes": [{"name": "api", "script": "api.py", "min_uptime": "5 seconds"}]}`,
			want:    []want{{"/processes/0/min_uptime", 0, "api", `invalid value "5 seconds"`, durationHint}},
		},
		{
			name:    "duration without a unit",
			content: `{"processes": [{"name": "api", "script": "api.py", "kill_timeout": "5"}]}`,
			want:    []want{{"/processes/0/kill_timeout", 0, "api", `invalid value "5"`, durationHint}},
		},
		{
			name:    "negative duration",
			content: `{"processes": [{"name": "api", "script": "api.py", "max_restart_delay": "-1s"}]}`,
			want:    []want{{"/processes/0/max_restart_delay", 0, "api", `invalid value "-1s"`, durationHint}},
		},

		// Invalid names.
		{
			name:    "name with a space",
			content: `{"processes": [{"name": "my api", "script": "api.py"}]}`,
			want:    []want{{"/processes/0/name", 0, "my api", `invalid value "my api"`, nameHint}},
		},
		{
			name:    "name of 64 characters",
			content: `{"processes": [{"name": "` + longName + `", "script": "api.py"}]}`,
			want:    []want{{"/processes/0/name", 0, longName, `invalid value "` + longName + `"`, "1-63"}},
		},
		{
			name:    "name with a leading dash",
			content: `{"processes": [{"name": "-api", "script": "api.py"}]}`,
			want:    []want{{"/processes/0/name", 0, "-api", `invalid value "-api"`, "starting with a letter or digit"}},
		},
		{
			name:    "name with a slash",
			content: `{"processes": [{"name": "api/v1", "script": "api.py"}]}`,
			want:    []want{{"/processes/0/name", 0, "api/v1", `invalid value "api/v1"`, nameHint}},
		},

		// Duplicates and missing required fields.
		{
			name: "duplicate name",
			content: `{"processes": [
				{"name": "api", "script": "api.py"},
				{"name": "web", "script": "web.js"},
				{"name": "api", "script": "api2.py"}
			]}`,
			want: []want{{"/processes/2/name", 2, "api", `duplicate name "api", already used by /processes/0`, "unique name"}},
		},
		{
			name:    "name reserved by the control API",
			content: `{"processes": [{"name": "list", "script": "api.py"}]}`,
			want:    []want{{"/processes/0/name", 0, "list", `the name "list" is reserved by the control API (/api/pm/list)`, `e.g. "list-app"`}},
		},
		{
			name:    "missing name",
			content: `{"processes": [{"script": "api.py"}]}`,
			want:    []want{{"/processes/0/name", 0, "", `missing required field "name"`, nameHint}},
			bug:     `a missing name is reported twice at /processes/0/name: "missing required field" (schema) and "missing name" (Check, load.go:104-105)`,
		},
		{
			name:    "empty name",
			content: `{"processes": [{"name": "", "script": "api.py"}]}`,
			want:    []want{{"/processes/0/name", 0, "", `invalid value ""`, nameHint}},
			bug:     `an empty name is reported twice at /processes/0/name: pattern (schema) and "missing name" (Check, load.go:104-105)`,
		},
		{
			name:    "missing script",
			content: `{"processes": [{"name": "api"}]}`,
			want:    []want{{"/processes/0/script", 0, "api", `missing required field "script"`, `e.g. "agent.py"`}},
		},

		// Directories and env files.
		{
			name:    "cwd that does not exist",
			content: `{"processes": [{"name": "api", "script": "api.py", "cwd": "services/api"}]}`,
			want:    []want{{"/processes/0/cwd", 0, "api", filepath.Join("services", "api") + " does not exist", "relative paths start from the config file's directory"}},
		},
		{
			name:    "cwd that is a file",
			setup:   func(t *testing.T, dir string) { writeFile(t, filepath.Join(dir, "api.py"), "print(1)\n") },
			content: `{"processes": [{"name": "api", "script": "api.py", "cwd": "api.py"}]}`,
			want:    []want{{"/processes/0/cwd", 0, "api", "api.py is not a directory", "point cwd at a directory"}},
		},
		{
			name:    "env_file that does not exist, relative to cwd",
			setup:   func(t *testing.T, dir string) { mkdir(t, dir, "svc") },
			content: `{"processes": [{"name": "api", "script": "api.py", "cwd": "svc", "env_file": ".env"}]}`,
			want:    []want{{"/processes/0/env_file", 0, "api", filepath.Join("svc", ".env") + " not found", "relative to cwd"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.setup != nil {
				tc.setup(t, dir)
			}
			path := writeConfig(t, dir, tc.content)
			file, err := loadSafely(t, path)
			errs := asErrors(t, err)
			if file == nil {
				t.Fatal("got no file; entries with errors must still be returned")
			}

			// Every wanted error is there, in order, with its details.
			pos := 0
			for _, w := range tc.want {
				i := slices.IndexFunc(errs[pos:], func(e config.Error) bool { return e.Path == w.path })
				if i < 0 {
					t.Errorf("no error at %s after position %d; got:%s", w.path, pos, dump(errs))
					continue
				}
				e := errs[pos+i]
				pos += i + 1
				if e.Index != w.index {
					t.Errorf("%s: Index = %d, want %d", w.path, e.Index, w.index)
				}
				if e.Process != w.process {
					t.Errorf("%s: Process = %q, want %q", w.path, e.Process, w.process)
				}
				if !strings.Contains(e.Message, w.message) {
					t.Errorf("%s: Message = %q, want it to contain %q", w.path, e.Message, w.message)
				}
				if !strings.Contains(e.Hint, w.hint) {
					t.Errorf("%s: Hint = %q, want it to contain %q", w.path, e.Hint, w.hint)
				}
			}
			// Nothing is reported at a path that is not wanted.
			for _, e := range errs {
				checkCommon(t, e, path)
				if !slices.ContainsFunc(tc.want, func(w want) bool { return w.path == e.Path }) {
					t.Errorf("unexpected error:%s", dump(config.Errors{e}))
				}
			}
			// Each problem is reported once.
			if len(errs) != len(tc.want) {
				if tc.bug != "" {
					regression(t, tc.bug, "%d errors for %d problems:%s", len(errs), len(tc.want), dump(errs))
				}
				t.Errorf("got %d errors, want %d:%s", len(errs), len(tc.want), dump(errs))
			}
		})
	}
}

func TestLoadReportsEveryErrorSorted(t *testing.T) {
	path := filepath.Join("testdata", "many_problems.json")
	file, err := loadSafely(t, path)
	errs := asErrors(t, err)

	// Schema errors are found before Check's (cwd, env_file, duplicates),
	// so this order proves the list is sorted, not merely collected.
	wants := []want{
		{"/version", -1, "", `unknown field "version"`, "remove it"},
		{"/processes/0/cwd", 0, "api", "missing-dir does not exist", "create it"},
		{"/processes/2/restart", 2, "worker", `invalid value "sometimes"`, `"on-failure"`},
		{"/processes/2/script", 2, "worker", `missing required field "script"`, `e.g. "agent.py"`},
		{"/processes/2/scrpt", 2, "worker", `unknown field "scrpt"`, `did you mean "script"?`},
		{"/processes/3/max_restarts", 3, "api", `expected integer, got string "3"`, "without quotes"},
		{"/processes/3/name", 3, "api", "already used by /processes/0", "unique name"},
		{"/processes/4/env_file", 4, "bad name", ".env.missing not found", "relative to cwd"},
		{"/processes/4/min_uptime", 4, "bad name", `invalid value "5 seconds"`, `"5s"`},
		{"/processes/4/name", 4, "bad name", `invalid value "bad name"`, "letters, digits"},
	}
	if len(errs) != len(wants) {
		t.Errorf("got %d errors, want %d:%s", len(errs), len(wants), dump(errs))
	}
	for i, w := range wants {
		if i >= len(errs) {
			break
		}
		e := errs[i]
		if e.Path != w.path || e.Index != w.index || e.Process != w.process {
			t.Errorf("error %d = (%q, %d, %q), want (%q, %d, %q)", i, e.Path, e.Index, e.Process, w.path, w.index, w.process)
			continue
		}
		if !strings.Contains(e.Message, w.message) || !strings.Contains(e.Hint, w.hint) {
			t.Errorf("error %d at %s = %q; %q, want message with %q and hint with %q", i, e.Path, e.Message, e.Hint, w.message, w.hint)
		}
		checkCommon(t, e, path)
	}
	if !sort.SliceIsSorted(errs, func(i, j int) bool { return errs[i].Index < errs[j].Index }) {
		t.Errorf("errors are not sorted by index:%s", dump(errs))
	}

	if file == nil || len(file.Processes) != 5 {
		t.Fatalf("got file %+v, want all 5 entries, errored ones included", file)
	}
	for i, n := range []int{1, 0, 3, 2, 3} {
		if got := len(errs.ForIndex(i)); got != n {
			t.Errorf("ForIndex(%d) has %d errors, want %d", i, got, n)
		}
	}
	if ok := file.Processes[1]; ok.Name != "ok" || ok.Script != "ok.py" {
		t.Errorf("valid entry decoded as %+v", ok)
	}
	header := fmt.Sprintf("processman: %d config errors:\n", len(wants))
	if !strings.HasPrefix(err.Error(), header) {
		t.Errorf("Error() starts %q, want %q", err.Error(), header)
	}
	if got := strings.Count(err.Error(), "\n  "); got != len(errs) {
		t.Errorf("Error() lists %d errors, want one line each for %d", got, len(errs))
	}
}

// minimal is the process that a {"name": name, "script": "app.py"} entry
// in a file in dir becomes after WithDefaults.
func minimal(name, dir string) config.Process {
	return config.Process{
		Name:            name,
		Script:          "app.py",
		Cwd:             dir,
		Instances:       1,
		Restart:         config.RestartAlways,
		MaxRestarts:     config.DefaultMaxRestarts,
		MinUptime:       config.Duration(config.DefaultMinUptime),
		RestartDelay:    config.Duration(config.DefaultRestartDelay),
		MaxRestartDelay: config.Duration(config.DefaultMaxRestartDelay),
		BackoffFactor:   config.DefaultBackoffFactor,
		KillSignal:      config.DefaultKillSignal,
		KillTimeout:     config.Duration(config.DefaultKillTimeout),
		LogMaxSizeMB:    config.DefaultLogMaxSizeMB,
		LogMaxFiles:     config.DefaultLogMaxFiles,
	}
}

func TestLoadValid(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string)
		entry string
		want  func(dir string) config.Process // after WithDefaults
	}{
		{
			name:  "absent fields get their defaults",
			entry: `{"name": "api", "script": "app.py"}`,
			want:  func(dir string) config.Process { return minimal("api", dir) },
		},
		{
			name:  "empty cwd is the file's directory",
			entry: `{"name": "api", "script": "app.py", "cwd": ""}`,
			want:  func(dir string) config.Process { return minimal("api", dir) },
		},
		{
			name:  "relative cwd is resolved against the file's directory",
			setup: func(t *testing.T, dir string) { mkdir(t, dir, "services", "api") },
			entry: `{"name": "api", "script": "app.py", "cwd": "services/api"}`,
			want: func(dir string) config.Process {
				p := minimal("api", dir)
				p.Cwd = filepath.Join(dir, "services", "api")
				return p
			},
		},
		{
			name:  "dot-dot cwd is cleaned",
			setup: func(t *testing.T, dir string) { mkdir(t, dir, "a", "b") },
			entry: `{"name": "api", "script": "app.py", "cwd": "a/b/../b/./"}`,
			want: func(dir string) config.Process {
				p := minimal("api", dir)
				p.Cwd = filepath.Join(dir, "a", "b")
				return p
			},
		},
		{
			name:  "name of 63 characters with dots, dashes and underscores",
			entry: `{"name": "` + "A1._-" + strings.Repeat("x", 58) + `", "script": "app.py"}`,
			want:  func(dir string) config.Process { return minimal("A1._-"+strings.Repeat("x", 58), dir) },
		},
		{
			name:  "explicit 0s durations become zero, absent ones get defaults",
			entry: `{"name": "api", "script": "app.py", "min_uptime": "0s", "restart_delay": "0s", "kill_timeout": "0ms"}`,
			want: func(dir string) config.Process {
				p := minimal("api", dir)
				p.MinUptime, p.RestartDelay, p.KillTimeout = 0, 0, 0
				return p
			},
		},
		{
			name: "every field set",
			setup: func(t *testing.T, dir string) {
				writeFile(t, filepath.Join(dir, "svc", ".env"), "TOKEN=x\n")
			},
			entry: `{
				"name": "agent", "script": "agent.py", "args": ["--port", "8000"], "cwd": "svc",
				"interpreter": "python3.12", "interpreter_args": ["-X", "dev"],
				"env": {"PORT": "8000"}, "env_file": ".env",
				"restart": "on-failure", "max_restarts": -1, "min_uptime": "1m30s",
				"restart_delay": "250ms", "max_restart_delay": "10s", "backoff_factor": 1.5,
				"kill_signal": "INT", "kill_timeout": "2s",
				"watch": ["src", "agent.py"], "ignore_watch": ["*.log"], "disabled": true,
				"log_file": "logs/agent.log", "log_max_size_mb": 1, "log_max_files": 1
			}`,
			want: func(dir string) config.Process {
				return config.Process{
					Name: "agent", Script: "agent.py", Args: []string{"--port", "8000"}, Cwd: filepath.Join(dir, "svc"), Instances: 1,
					Interpreter: "python3.12", InterpreterArgs: []string{"-X", "dev"},
					Env: map[string]string{"PORT": "8000"}, EnvFile: ".env",
					Restart: config.RestartOnFailure, MaxRestarts: -1, MinUptime: config.Duration(90 * time.Second),
					RestartDelay: config.Duration(250 * time.Millisecond), MaxRestartDelay: config.Duration(10 * time.Second), BackoffFactor: 1.5,
					KillSignal: "INT", KillTimeout: config.Duration(2 * time.Second),
					Watch: config.Watch{Enabled: true, Paths: []string{"src", "agent.py"}}, IgnoreWatch: []string{"*.log"}, Disabled: true,
					LogFile: config.LogFile{Path: "logs/agent.log"}, LogMaxSizeMB: 1, LogMaxFiles: 1,
				}
			},
		},
		{
			name:  "watch true watches cwd",
			entry: `{"name": "api", "script": "app.py", "watch": true}`,
			want: func(dir string) config.Process {
				p := minimal("api", dir)
				p.Watch = config.Watch{Enabled: true}
				return p
			},
		},
		{
			name:  "watch false is off",
			entry: `{"name": "api", "script": "app.py", "watch": false}`,
			want:  func(dir string) config.Process { return minimal("api", dir) },
		},
		{
			name:  "watch list watches the paths",
			entry: `{"name": "api", "script": "app.py", "watch": ["src", "app.py"]}`,
			want: func(dir string) config.Process {
				p := minimal("api", dir)
				p.Watch = config.Watch{Enabled: true, Paths: []string{"src", "app.py"}}
				return p
			},
		},
		{
			name:  "log_file true is the default file",
			entry: `{"name": "api", "script": "app.py", "log_file": true}`,
			want:  func(dir string) config.Process { return minimal("api", dir) },
		},
		{
			name:  "log_file false disables the file",
			entry: `{"name": "api", "script": "app.py", "log_file": false}`,
			want: func(dir string) config.Process {
				p := minimal("api", dir)
				p.LogFile = config.LogFile{Disabled: true}
				return p
			},
		},
		{
			name:  "log_file string names the file",
			entry: `{"name": "api", "script": "app.py", "log_file": "logs/api.log"}`,
			want: func(dir string) config.Process {
				p := minimal("api", dir)
				p.LogFile = config.LogFile{Path: "logs/api.log"}
				return p
			},
		},
		{
			name:  "lowest allowed numbers",
			entry: `{"name": "api", "script": "app.py", "max_restarts": -1, "backoff_factor": 1, "log_max_size_mb": 1, "log_max_files": 0}`,
			want: func(dir string) config.Process {
				p := minimal("api", dir)
				p.MaxRestarts, p.BackoffFactor, p.LogMaxSizeMB = -1, 1, 1
				return p
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.setup != nil {
				tc.setup(t, dir)
			}
			path := writeConfig(t, dir, `{"$schema": "./pb_processes.schema.json", "processes": [`+tc.entry+`]}`)
			file, err := loadSafely(t, path)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if file.Path != path {
				t.Errorf("file.Path = %q, want %q", file.Path, path)
			}
			if len(file.Processes) != 1 {
				t.Fatalf("got %d processes, want 1", len(file.Processes))
			}
			got, want := file.Processes[0].WithDefaults(), tc.want(dir)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("process after WithDefaults:\n got %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestLoadRelativeFilePath(t *testing.T) {
	dir := t.TempDir()
	mkdir(t, dir, "project", "api")
	writeConfig(t, filepath.Join(dir, "project"), `{"processes": [
		{"name": "here", "script": "app.py"},
		{"name": "api", "script": "app.py", "cwd": "api"}
	]}`)
	t.Chdir(dir)

	file, err := config.Load(filepath.Join("project", config.FileName))
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{filepath.Join(dir, "project"), filepath.Join(dir, "project", "api")} {
		if got := file.Processes[i].Cwd; got != want {
			t.Errorf("process %d: Cwd = %q, want the absolute %q", i, got, want)
		}
	}
}

func TestLoadHomeRelativeCwd(t *testing.T) {
	home := t.TempDir()
	mkdir(t, home, "code", "agent")
	t.Setenv("HOME", home)
	path := writeConfig(t, t.TempDir(), `{"processes": [{"name": "agent", "script": "agent.py", "cwd": "~/code/agent"}]}`)

	file, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := file.Processes[0].Cwd, filepath.Join(home, "code", "agent"); got != want {
		t.Errorf("Cwd = %q, want %q", got, want)
	}
}

func TestWithDefaults(t *testing.T) {
	tests := []struct {
		name string
		in   config.Process
		want func(p config.Process) config.Process // applied to the all-defaults process
	}{
		{
			name: "zero values get the defaults",
			in:   config.Process{Name: "api", Script: "app.py"},
			want: func(p config.Process) config.Process { return p },
		},
		{
			name: "negative durations from Go mean zero",
			in: config.Process{Name: "api", Script: "app.py",
				MinUptime: -1, RestartDelay: config.Duration(-time.Second), MaxRestartDelay: -1, KillTimeout: -1},
			want: func(p config.Process) config.Process {
				p.MinUptime, p.RestartDelay, p.MaxRestartDelay, p.KillTimeout = 0, 0, 0, 0
				return p
			},
		},
		{
			name: "set values are kept",
			in: config.Process{Name: "api", Script: "app.py", Restart: config.RestartNever, MaxRestarts: -1,
				MinUptime: config.Duration(time.Minute), BackoffFactor: 1, KillSignal: "SIGINT", LogMaxSizeMB: 3, LogMaxFiles: 2},
			want: func(p config.Process) config.Process {
				p.Restart, p.MaxRestarts, p.MinUptime, p.BackoffFactor = config.RestartNever, -1, config.Duration(time.Minute), 1
				p.KillSignal, p.LogMaxSizeMB, p.LogMaxFiles = "SIGINT", 3, 2
				return p
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in
			got := tc.in.WithDefaults()
			want := tc.want(minimal("api", ""))
			if !reflect.DeepEqual(got, want) {
				t.Errorf("WithDefaults:\n got %+v\nwant %+v", got, want)
			}
			if !reflect.DeepEqual(in, tc.in) {
				t.Errorf("WithDefaults changed its receiver")
			}
		})
	}
}

func TestWatchAndLogFileJSONRoundTrip(t *testing.T) {
	tests := []struct {
		name     string
		watch    config.Watch
		logFile  config.LogFile
		wantJSON string // the watch and log_file members, as marshalled
	}{
		{"defaults are omitted", config.Watch{}, config.LogFile{}, ``},
		{"watch true", config.Watch{Enabled: true}, config.LogFile{}, `"watch":true`},
		{"watch list", config.Watch{Enabled: true, Paths: []string{"src", "agent.py"}}, config.LogFile{}, `"watch":["src","agent.py"]`},
		{"log_file false", config.Watch{}, config.LogFile{Disabled: true}, `"log_file":false`},
		{"log_file path", config.Watch{}, config.LogFile{Path: "logs/a.log"}, `"log_file":"logs/a.log"`},
		{"both", config.Watch{Enabled: true, Paths: []string{"."}}, config.LogFile{Path: "a.log"}, `"watch":["."],"log_file":"a.log"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := config.Process{Name: "a", Script: "a.py", Watch: tc.watch, LogFile: tc.logFile}
			data, err := json.Marshal(in)
			if err != nil {
				t.Fatal(err)
			}
			wantJSON := `{"name":"a","script":"a.py"}`
			if tc.wantJSON != "" {
				wantJSON = `{"name":"a","script":"a.py",` + tc.wantJSON + `}`
			}
			if string(data) != wantJSON {
				t.Errorf("Marshal = %s, want %s", data, wantJSON)
			}
			var out config.Process
			if err := json.Unmarshal(data, &out); err != nil {
				t.Fatalf("Unmarshal(%s): %v", data, err)
			}
			if !reflect.DeepEqual(out, in) {
				t.Errorf("round trip:\n got %+v\nwant %+v", out, in)
			}
		})
	}
}

func TestLoadMarshalledFileRoundTrip(t *testing.T) {
	dir := t.TempDir()
	mkdir(t, dir, "svc")
	writeFile(t, filepath.Join(dir, "svc", ".env"), "A=1\n")
	path := writeConfig(t, dir, `{"processes": [
		{"name": "a", "script": "a.py", "cwd": "svc", "env_file": ".env", "watch": ["src"], "log_file": false,
		 "min_uptime": "10s", "restart": "never", "args": ["x"], "env": {"K": "V"}},
		{"name": "b", "script": "b.js", "watch": true, "log_file": "b.log", "kill_signal": "SIGINT", "disabled": true}
	]}`)
	first, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.MarshalIndent(map[string]any{"processes": first.Processes}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	second, err := config.Parse(data, path)
	if err != nil {
		t.Fatalf("re-parsing the marshalled file: %v\n%s", err, data)
	}
	if !reflect.DeepEqual(second.Processes, first.Processes) {
		t.Errorf("round trip:\n got %+v\nwant %+v", second.Processes, first.Processes)
	}
}

func TestUnmarshalFieldTypes(t *testing.T) {
	tests := []struct {
		name    string
		json    string
		into    func() any
		want    any
		wantErr string
	}{
		{"duration", `"1m30s"`, func() any { return new(config.Duration) }, config.Duration(90 * time.Second), ""},
		{"duration in ms", `"500ms"`, func() any { return new(config.Duration) }, config.Duration(500 * time.Millisecond), ""},
		{"duration with a space", `"5 seconds"`, func() any { return new(config.Duration) }, nil, `invalid duration "5 seconds"`},
		{"duration as a number", `5`, func() any { return new(config.Duration) }, nil, `want a duration string such as "5s"`},
		{"watch list", `["a"]`, func() any { return new(config.Watch) }, config.Watch{Enabled: true, Paths: []string{"a"}}, ""},
		{"watch empty list is off", `[]`, func() any { return new(config.Watch) }, config.Watch{Enabled: false, Paths: []string{}}, ""},
		{"watch string", `"src"`, func() any { return new(config.Watch) }, nil, "want true, false or a list of paths"},
		{"log_file true", `true`, func() any { return new(config.LogFile) }, config.LogFile{}, ""},
		{"log_file number", `3`, func() any { return new(config.LogFile) }, nil, "want a path, true or false"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := tc.into()
			err := json.Unmarshal([]byte(tc.json), v)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Unmarshal(%s) error = %v, want %q", tc.json, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := reflect.ValueOf(v).Elem().Interface(); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Unmarshal(%s) = %#v, want %#v", tc.json, got, tc.want)
			}
		})
	}
	if got := config.Duration(1500 * time.Millisecond); got.Std() != 1500*time.Millisecond || got.String() != "1.5s" {
		t.Errorf("Duration(1.5s) = %v / %q", got.Std(), got.String())
	}
}

func TestCheckGoProcesses(t *testing.T) {
	tests := []struct {
		name    string
		procs   func(dir string) []config.Process
		want    []want // Process is the name given; all at Index as stated
		wantErr string // a substring of Errors.Error(), "" when want is empty
		bug     string // an open bug that leaves the hint of the error empty
	}{
		{
			name: "name with a space",
			procs: func(dir string) []config.Process {
				return []config.Process{{Name: "my api", Script: "app.py", Cwd: dir}}
			},
			want: []want{{"/processes/0/name", 0, "my api", `invalid name "my api"`, "letters, digits"}},
		},
		{
			name: "name too long",
			procs: func(dir string) []config.Process {
				return []config.Process{{Name: strings.Repeat("n", 64), Script: "app.py", Cwd: dir}}
			},
			want: []want{{"/processes/0/name", 0, strings.Repeat("n", 64), "invalid name", "1-63"}},
		},
		{
			name:  "name with a leading dash",
			procs: func(dir string) []config.Process { return []config.Process{{Name: "-api", Script: "app.py", Cwd: dir}} },
			want:  []want{{"/processes/0/name", 0, "-api", `invalid name "-api"`, "starting with a letter or digit"}},
		},
		{
			name:  "missing name",
			procs: func(dir string) []config.Process { return []config.Process{{Script: "app.py", Cwd: dir}} },
			want:  []want{{"/processes/0/name", 0, "", "missing name", "letters, digits"}},
		},
		{
			name:  "missing script",
			procs: func(dir string) []config.Process { return []config.Process{{Name: "api", Cwd: dir}} },
			want:  []want{{"/processes/0/script", 0, "api", "missing script", `e.g. "agent.py"`}},
		},
		{
			name:  "blank script",
			procs: func(dir string) []config.Process { return []config.Process{{Name: "api", Script: " \t", Cwd: dir}} },
			want:  []want{{"/processes/0/script", 0, "api", "missing script", `e.g. "agent.py"`}},
		},
		{
			name: "unknown restart policy",
			procs: func(dir string) []config.Process {
				return []config.Process{{Name: "api", Script: "app.py", Cwd: dir, Restart: "unless-stopped"}}
			},
			want: []want{{"/processes/0/restart", 0, "api", `unknown restart policy "unless-stopped"`, `"on-failure"`}},
		},
		{
			name: "unknown kill signal",
			procs: func(dir string) []config.Process {
				return []config.Process{{Name: "api", Script: "app.py", Cwd: dir, KillSignal: "SIGSTOP"}}
			},
			want: []want{{"/processes/0/kill_signal", 0, "api", `unknown signal "SIGSTOP"`, "SIGTERM"}},
			bug:  "Check puts the valid signals in Message and leaves Hint empty for a bad kill_signal (load.go:151)",
		},
		{
			name: "max_restarts below -1",
			procs: func(dir string) []config.Process {
				return []config.Process{{Name: "api", Script: "app.py", Cwd: dir, MaxRestarts: -2}}
			},
			want: []want{{"/processes/0/max_restarts", 0, "api", "max_restarts -2 is below -1", "-1 for no limit"}},
		},
		{
			name: "backoff_factor below 1",
			procs: func(dir string) []config.Process {
				return []config.Process{{Name: "api", Script: "app.py", Cwd: dir, BackoffFactor: 0.5}}
			},
			want: []want{{"/processes/0/backoff_factor", 0, "api", "backoff_factor 0.5 is below 1", "use 1 for a fixed delay"}},
		},
		{
			name: "cwd that does not exist",
			procs: func(dir string) []config.Process {
				return []config.Process{{Name: "api", Script: "app.py", Cwd: filepath.Join(dir, "nope")}}
			},
			want: []want{{"/processes/0/cwd", 0, "api", "nope does not exist", "fix the path"}},
		},
		{
			name: "env_file that does not exist",
			procs: func(dir string) []config.Process {
				return []config.Process{{Name: "api", Script: "app.py", Cwd: dir, EnvFile: "prod.env"}}
			},
			want: []want{{"/processes/0/env_file", 0, "api", filepath.Join("prod.env") + " not found", "relative to cwd"}},
		},
		{
			name: "duplicate names",
			procs: func(dir string) []config.Process {
				return []config.Process{
					{Name: "api", Script: "a.py", Cwd: dir},
					{Name: "web", Script: "w.js", Cwd: dir},
					{Name: "api", Script: "b.py", Cwd: dir},
				}
			},
			want: []want{{"/processes/2/name", 2, "api", "already used by /processes/0", "unique name"}},
		},
		{
			name: "several problems in several processes",
			procs: func(dir string) []config.Process {
				return []config.Process{
					{Name: "ok", Script: "a.py", Cwd: dir},
					{Name: "bad", Cwd: dir, Restart: "sometimes", MaxRestarts: -5},
				}
			},
			want: []want{
				{"/processes/1/script", 1, "bad", "missing script", "agent.py"},
				{"/processes/1/restart", 1, "bad", "unknown restart policy", "never"},
				{"/processes/1/max_restarts", 1, "bad", "below -1", "no limit"},
			},
		},
		{
			name: "valid edge values",
			procs: func(dir string) []config.Process {
				return []config.Process{
					{Name: "a", Script: "a.py", Cwd: dir, MaxRestarts: -1, BackoffFactor: 1, KillSignal: "term", Restart: config.RestartNever},
					{Name: "b", Script: "b.py", Cwd: dir, KillSignal: "sigkill", Restart: config.RestartOnFailure},
					{Name: "c", Script: "c.py"}, // empty cwd is not checked here
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			procs := tc.procs(dir)
			errs := config.Check(procs, "")
			if len(tc.want) == 0 {
				if errs.OrNil() != nil {
					t.Fatalf("Check = %v, want no errors", errs)
				}
				return
			}
			if len(errs) != len(tc.want) {
				t.Fatalf("got %d errors, want %d:%s", len(errs), len(tc.want), dump(errs))
			}
			for i, w := range tc.want {
				e := errs[i]
				if e.Path != w.path || e.Index != w.index || e.Process != w.process {
					t.Errorf("error %d = (%q, %d, %q), want (%q, %d, %q)", i, e.Path, e.Index, e.Process, w.path, w.index, w.process)
				}
				if e.File != "" {
					t.Errorf("File = %q, want empty for Go processes", e.File)
				}
				if !strings.Contains(e.Message, w.message) {
					t.Errorf("Message = %q, want it to contain %q", e.Message, w.message)
				}
				wantText := e.Path + ": "
				if e.Process != "" {
					wantText = fmt.Sprintf("%s (process %q): ", e.Path, e.Process)
				}
				if !strings.HasPrefix(e.Error(), wantText) {
					t.Errorf("Error() = %q, want prefix %q", e.Error(), wantText)
				}
			}
			// Last, as a known bug skips the rest of the test.
			for _, w := range tc.want {
				e := errs[slices.IndexFunc(errs, func(e config.Error) bool { return e.Path == w.path })]
				if !strings.Contains(e.Hint, w.hint) {
					if tc.bug != "" && strings.Contains(e.Message, w.hint) {
						regression(t, tc.bug, "Message %q, Hint %q", e.Message, e.Hint)
					}
					t.Errorf("%s: Hint = %q, want it to contain %q", w.path, e.Hint, w.hint)
				}
			}
		})
	}
}

func strconvQuote(s string) string { return fmt.Sprintf("%q", s) }

func TestErrorsHelpers(t *testing.T) {
	var none config.Errors
	if none.OrNil() != nil {
		t.Error("empty Errors.OrNil() is not nil")
	}
	errs := config.Errors{
		{Index: -1, Message: "top"},
		{Index: 0, Path: "/processes/0/name", Message: "a"},
		{Index: 2, Path: "/processes/2/cwd", Message: "b"},
		{Index: 2, Path: "/processes/2/name", Message: "c"},
	}
	if errs.OrNil() == nil {
		t.Error("non-empty Errors.OrNil() is nil")
	}
	tests := []struct {
		index int
		want  []string
	}{
		{-1, []string{"top"}},
		{0, []string{"a"}},
		{1, nil},
		{2, []string{"b", "c"}},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("ForIndex(%d)", tc.index), func(t *testing.T) {
			var got []string
			for _, e := range errs.ForIndex(tc.index) {
				got = append(got, e.Message)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
	if got := (config.Error{Process: "api", Index: 0, Message: "m", Hint: "h"}).Error(); got != `process "api": m; h` {
		t.Errorf("Error() without a path = %q", got)
	}
}

// schemaProcess is $defs.process of the embedded schema.
func schemaProcess(t *testing.T) (props map[string]map[string]any, required []string) {
	t.Helper()
	var schema struct {
		Defs struct {
			Process struct {
				Properties map[string]map[string]any `json:"properties"`
				Required   []string                  `json:"required"`
			} `json:"process"`
		} `json:"$defs"`
	}
	if err := json.Unmarshal(config.SchemaJSON, &schema); err != nil {
		t.Fatalf("embedded schema: %v", err)
	}
	if len(schema.Defs.Process.Properties) == 0 {
		t.Fatal("embedded schema has no $defs.process.properties")
	}
	return schema.Defs.Process.Properties, schema.Defs.Process.Required
}

func TestSchemaMatchesProcessStruct(t *testing.T) {
	props, required := schemaProcess(t)

	structFields := map[string]reflect.Type{}
	rt := reflect.TypeFor[config.Process]()
	for i := range rt.NumField() {
		f := rt.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" {
			t.Errorf("field %s has no JSON name", f.Name)
			continue
		}
		structFields[name] = f.Type
	}
	for name := range structFields {
		if _, ok := props[name]; !ok {
			t.Errorf("struct field %q is missing from the schema", name)
		}
	}
	for name, prop := range props {
		if _, ok := structFields[name]; !ok {
			t.Errorf("schema property %q is not a field of config.Process", name)
		}
		if d, _ := prop["description"].(string); strings.TrimSpace(d) == "" {
			t.Errorf("schema property %q has no description", name)
		}
	}
	if !slices.Equal(required, []string{"name"}) {
		t.Errorf("required = %v, want [name] (script is required unless upstream is set)", required)
	}

	// The schema's type of each property fits the Go type.
	duration, watch, logFile := reflect.TypeFor[config.Duration](), reflect.TypeFor[config.Watch](), reflect.TypeFor[config.LogFile]()
	for name, typ := range structFields {
		prop, ok := props[name]
		if !ok {
			continue
		}
		var want string
		switch {
		case typ == duration:
			if prop["$ref"] != "#/$defs/duration" {
				t.Errorf("%s: a Duration must use $ref #/$defs/duration, got %v", name, prop["$ref"])
			}
			continue
		case typ == watch:
			want = `["boolean","array"]`
		case typ == logFile:
			want = `["boolean","string"]`
		case typ == reflect.TypeOf(config.Auth{}):
			want = `["string","array"]`
		case typ == reflect.TypeOf(config.Bytes(0)):
			want = `["string","integer"]`
		case typ == reflect.TypeOf(config.Dependencies{}):
			want = `["array","object"]`
		case typ == reflect.TypeOf(&config.Health{}):
			want = `"object"`
		case typ.Kind() == reflect.String:
			if enum, ok := prop["enum"].([]any); ok {
				for _, v := range enum {
					if _, ok := v.(string); !ok {
						t.Errorf("%s: enum value %v is not a string", name, v)
					}
				}
				continue
			}
			want = `"string"`
		case typ.Kind() == reflect.Slice && typ.Elem().Kind() == reflect.String:
			want = `"array"`
		case typ.Kind() == reflect.Map:
			want = `"object"`
		case typ.Kind() == reflect.Int:
			want = `"integer"`
		case typ.Kind() == reflect.Float64:
			want = `"number"`
		case typ.Kind() == reflect.Bool:
			want = `"boolean"`
		default:
			t.Errorf("%s: no schema type known for Go type %s", name, typ)
			continue
		}
		got, _ := json.Marshal(prop["type"])
		if string(got) != want {
			t.Errorf("%s: schema type %s, want %s for Go type %s", name, got, want, typ)
		}
	}
}

func TestSchemaEnumsMatchGo(t *testing.T) {
	props, _ := schemaProcess(t)
	enum := func(field string) []string {
		var out []string
		for _, v := range props[field]["enum"].([]any) {
			out = append(out, v.(string))
		}
		return out
	}
	if got, want := enum("restart"), []string{config.RestartAlways, config.RestartOnFailure, config.RestartNever}; !slices.Equal(got, want) {
		t.Errorf("restart enum = %v, want %v", got, want)
	}
	for _, s := range enum("kill_signal") {
		t.Run("kill_signal "+s, func(t *testing.T) {
			if _, err := config.ParseSignal(s); err != nil {
				t.Errorf("the schema allows %q but ParseSignal rejects it: %v", s, err)
			}
		})
	}
	if !slices.Contains(enum("kill_signal"), config.DefaultKillSignal) {
		t.Errorf("the default kill signal %q is not in the schema", config.DefaultKillSignal)
	}
}

func TestExampleFileIsValid(t *testing.T) {
	path := filepath.Join("..", "examples", config.FileName)
	file, err := loadSafely(t, path)
	if err != nil {
		t.Fatalf("the example %s does not load: %v", path, err)
	}
	if len(file.Processes) == 0 {
		t.Fatal("the example has no processes")
	}
	examples, err := filepath.Abs(filepath.Join("..", "examples"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range file.Processes {
		t.Run(p.Name, func(t *testing.T) {
			if !strings.HasPrefix(p.Cwd, examples+string(filepath.Separator)) {
				t.Errorf("Cwd = %q, want an absolute directory under %s", p.Cwd, examples)
			}
			if _, err := os.Stat(filepath.Join(p.Cwd, p.Script)); err != nil {
				t.Errorf("script of the example: %v", err)
			}
		})
	}
}

// TestDocsListEveryField keeps the field table of docs/config.md in sync
// with config.Process, as that page promises.
func TestDocsListEveryField(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "docs", "config.md"))
	if err != nil {
		t.Fatalf("docs/config.md: %v", err)
	}
	_, table, ok := strings.Cut(string(data), "\n## Fields\n")
	if !ok {
		t.Fatal(`docs/config.md has no "## Fields" section`)
	}
	table, _, _ = strings.Cut(table, "\n## ")
	var documented []string
	for _, line := range strings.Split(table, "\n") {
		if rest, ok := strings.CutPrefix(line, "| `"); ok {
			name, _, _ := strings.Cut(rest, "`")
			documented = append(documented, name)
		}
	}
	var fields []string
	rt := reflect.TypeFor[config.Process]()
	for i := range rt.NumField() {
		name, _, _ := strings.Cut(rt.Field(i).Tag.Get("json"), ",")
		fields = append(fields, name)
	}
	slices.Sort(documented)
	slices.Sort(fields)
	if !slices.Equal(documented, fields) {
		t.Errorf("docs/config.md lists the fields\n\t%v\nwant exactly the fields of config.Process:\n\t%v", documented, fields)
	}
}
