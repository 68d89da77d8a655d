package config_test

import (
	"encoding/json"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/processman/processman/config"
)

// The tests in this file guard against bugs that were found and fixed;
// each failure names the bug.

// parseSafely parses content and reports a panic instead of crashing.
func parseSafely(content, path string) (file *config.File, err error, panicked any) {
	defer func() { panicked = recover() }()
	file, err = config.Parse([]byte(content), path)
	return file, err, nil
}

// Values that the schema rejects with "minLength" or "minimum" crash the
// loader: describe (load.go:288) calls LocalizedString(nil), and the
// jsonschema kinds dereference the nil *message.Printer.
func TestRegressionSchemaMinimumsPanic(t *testing.T) {
	tests := []struct {
		name  string
		entry string
		path  string
	}{
		{"empty script", `{"name": "api", "script": ""}`, "/processes/0/script"},
		{"max_restarts below -1", `{"name": "api", "script": "a.py", "max_restarts": -2}`, "/processes/0/max_restarts"},
		{"backoff_factor below 1", `{"name": "api", "script": "a.py", "backoff_factor": 0.5}`, "/processes/0/backoff_factor"},
		{"log_max_size_mb of 0", `{"name": "api", "script": "a.py", "log_max_size_mb": 0}`, "/processes/0/log_max_size_mb"},
		{"negative log_max_files", `{"name": "api", "script": "a.py", "log_max_files": -1}`, "/processes/0/log_max_files"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), config.FileName)
			_, err, panicked := parseSafely(`{"processes": [`+tc.entry+`]}`, path)
			if panicked != nil {
				regression(t, "config.Parse panics on a minLength/minimum schema violation (load.go:288 LocalizedString(nil))", "panic: %v", panicked)
				t.Fatalf("panic: %v", panicked)
			}
			errs := asErrors(t, err)
			if len(errs) != 1 || errs[0].Path != tc.path || errs[0].Process != "api" || errs[0].Hint == "" {
				t.Errorf("want one error at %s for process api, with a hint; got:%s", tc.path, dump(errs))
			}
		})
	}
}

// A value that a custom UnmarshalJSON rejects (Duration, Watch, LogFile)
// aborts encoding/json's decoding of the whole entry, so the fields after
// it stay empty: the error loses the process name and Check then reports
// a spurious "missing name" (and skips the checks of cwd and env_file).
func TestRegressionBadValueHidesLaterFields(t *testing.T) {
	tests := []struct {
		name  string
		entry string
		path  string
	}{
		{"bad duration before the name", `{"min_uptime": "5 seconds", "name": "api", "script": "a.py"}`, "/processes/0/min_uptime"},
		{"bad watch before the name", `{"watch": "yes", "name": "api", "script": "a.py"}`, "/processes/0/watch"},
		{"bad log_file before the name", `{"log_file": 1, "name": "api", "script": "a.py"}`, "/processes/0/log_file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := writeConfig(t, t.TempDir(), `{"processes": [`+tc.entry+`]}`)
			file, err := loadSafely(t, path)
			errs := asErrors(t, err)
			i := slices.IndexFunc(errs, func(e config.Error) bool { return e.Path == tc.path })
			if i < 0 {
				t.Fatalf("no error at %s:%s", tc.path, dump(errs))
			}
			if len(errs) != 1 || errs[i].Process != "api" || file.Processes[0].Name != "api" {
				regression(t, "the fields after a value rejected by a custom UnmarshalJSON are not decoded (load.go:73)",
					"process decoded as name %q script %q; errors:%s", file.Processes[0].Name, file.Processes[0].Script, dump(errs))
			}
		})
	}
}

// Type errors on fields without an "x-hint" in the schema, and on the
// top-level shape, come with an empty Hint.
func TestRegressionEmptyHints(t *testing.T) {
	tests := []struct {
		name    string
		content string
		path    string
	}{
		{"number for cwd", `{"processes": [{"name": "api", "script": "a.py", "cwd": 5}]}`, "/processes/0/cwd"},
		{"number for interpreter", `{"processes": [{"name": "api", "script": "a.py", "interpreter": 3}]}`, "/processes/0/interpreter"},
		{"list for env_file", `{"processes": [{"name": "api", "script": "a.py", "env_file": [".env"]}]}`, "/processes/0/env_file"},
		{"string for disabled", `{"processes": [{"name": "api", "script": "a.py", "disabled": "yes"}]}`, "/processes/0/disabled"},
		{"string for backoff_factor", `{"processes": [{"name": "api", "script": "a.py", "backoff_factor": "2"}]}`, "/processes/0/backoff_factor"},
		{"object for processes", `{"processes": {"api": {"script": "a.py"}}}`, "/processes"},
		{"string for the file", `"api"`, "/"},
		{"duration out of range", `{"processes": [{"name": "api", "script": "a.py", "min_uptime": "9999999999h"}]}`, "/processes/0/min_uptime"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := writeConfig(t, t.TempDir(), tc.content)
			_, err := loadSafely(t, path)
			errs := asErrors(t, err)
			if len(errs) != 1 {
				t.Fatalf("got %d errors, want 1:%s", len(errs), dump(errs))
			}
			if errs[0].Path != tc.path || errs[0].Hint == "" {
				regression(t, "type errors of fields without an x-hint (cwd, interpreter, env_file, disabled, backoff_factor, processes, the root) and out-of-range durations get no hint; the latter also lose their field path (load.go:74, load.go:273)",
					"error:%s", dump(errs))
			}
		})
	}
}

// "0s" is kept as Duration(-1) to tell it from an absent value, and
// MarshalJSON writes that as "-1ns", which the schema rejects.
func TestRegressionExplicitZeroDurationRoundTrip(t *testing.T) {
	path := writeConfig(t, t.TempDir(), `{"processes": [{"name": "api", "script": "a.py", "restart_delay": "0s"}]}`)
	first, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(map[string]any{"processes": first.Processes})
	if err != nil {
		t.Fatal(err)
	}
	second, err := config.Parse(data, path)
	if err != nil || !reflect.DeepEqual(second.Processes, first.Processes) {
		regression(t, `Duration.MarshalJSON writes an explicit zero ("0s") as "-1ns" (process.go:192), which does not load back`, "%s -> %v", data, err)
	}
}

// Check rejects a blank script for Go processes, but a file's "   " passes
// both the schema (minLength 1) and Check (which skips files, load.go:117).
func TestRegressionBlankScriptInFile(t *testing.T) {
	path := writeConfig(t, t.TempDir(), `{"processes": [{"name": "api", "script": "   "}]}`)
	_, err := loadSafely(t, path)
	if err == nil {
		regression(t, `a blank "script" in a file is accepted (load.go:117 checks it only for Go processes)`, "Load returned no error")
	}
	errs := asErrors(t, err)
	if errs[0].Path != "/processes/0/script" {
		t.Errorf("got:%s", dump(errs))
	}
}
