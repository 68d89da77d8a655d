package config_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/processman/processman/config"
)

// The bare list of the original design and the {"processes": [...]}
// object mean the same.
func TestBothFormsMeanTheSame(t *testing.T) {
	entries := `[{"name": "api", "script": "sleep", "args": ["1"], "interpreter": "auto"},
		{"name": "web", "script": "npm", "args": ["run", "start"], "instances": 1}]`
	dir := t.TempDir()
	list, err := config.Load(writeConfig(t, dir, entries))
	if err != nil {
		t.Fatalf("list form: %v", err)
	}
	object, err := config.Load(writeConfig(t, t.TempDir(), `{"$schema": "x.json", "processes": `+entries+`}`))
	if err != nil {
		t.Fatalf("object form: %v", err)
	}
	for i := range object.Processes {
		object.Processes[i].Cwd = dir // same entries, other directories
	}
	if !reflect.DeepEqual(list.Processes, object.Processes) {
		t.Errorf("the forms differ:\n list %+v\n obj  %+v", list.Processes, object.Processes)
	}
	if got := list.Processes[0].WithDefaults().Interpreter; got != "" {
		t.Errorf(`"interpreter": "auto" is %q after defaults, want "" (automatic)`, got)
	}
	if got := list.Processes[1].WithDefaults().Instances; got != 1 {
		t.Errorf("instances %d", got)
	}
}

func TestListFormErrorsHaveListPaths(t *testing.T) {
	tests := []struct {
		name, content, path, message string
	}{
		{"entry field", `[{"name": "api", "script": "a.py", "restrat": "always"}]`, "/0/restrat", `unknown field "restrat"`},
		{"missing script", `[{"name": "ok", "script": "sleep"}, {"name": "api"}]`, "/1/script", `missing required field "script"`},
		{"duplicate name", `[{"name": "a", "script": "sleep"}, {"name": "a", "script": "sleep"}]`, "/1/name", `duplicate name "a", already used by /0`},
		{"not an object", `[3]`, "/0", "expected object"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadSafely(t, writeConfig(t, t.TempDir(), tc.content))
			errs := asErrors(t, err)
			if len(errs) != 1 || errs[0].Path != tc.path || !strings.Contains(errs[0].Message, tc.message) {
				t.Errorf("want %s: %s; got:%s", tc.path, tc.message, dump(errs))
			}
			if len(errs.FileLevel()) != 0 {
				t.Errorf("an entry's error is not about the whole file:%s", dump(errs.FileLevel()))
			}
		})
	}
}

// Files that are not processes at all: the whole file is unusable.
func TestFileLevelErrors(t *testing.T) {
	tests := []struct {
		name, content, path, message string
	}{
		{"a string", `"agent.py"`, "/", `expected a list of processes or an object, got "agent.py"`},
		{"null", `null`, "/", "expected a list of processes or an object, got null"},
		{"processes not a list", `{"processes": {"api": {}}}`, "/processes", "expected array"},
		{"no processes", `{}`, "/processes", `missing required field "processes"`},
		{"unknown top-level field", `{"processes": [], "procesess": []}`, "/procesess", `unknown field "procesess"`},
		{"syntax", `[{"name": "a",}]`, "", "invalid JSON"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadSafely(t, writeConfig(t, t.TempDir(), tc.content))
			errs := asErrors(t, err)
			fileLevel := errs.FileLevel()
			if len(fileLevel) == 0 || fileLevel[0].Path != tc.path || !strings.Contains(fileLevel[0].Message, tc.message) {
				t.Errorf("want a file-level error at %q: %s; got:%s", tc.path, tc.message, dump(errs))
			}
			if fileLevel[0].Hint == "" {
				t.Errorf("no hint:%s", dump(errs))
			}
		})
	}
}

func TestDidYouMeanPrefersTheClosestName(t *testing.T) {
	tests := []struct{ field, hint string }{
		{"enviroment", `did you mean "env"?`},
		{"environment", `did you mean "env"?`},
		{"command", `did you mean "script"?`},
		{"working_dir", `did you mean "cwd"?`},
		{"scrpt", `did you mean "script"?`},
		{"env_fle", `did you mean "env_file"?`},
		{"replicas", `did you mean "instances"?`},
		{"exec_mode", "docs/config.md"}, // near no field, and no other tool's name
	}
	for _, tc := range tests {
		t.Run(tc.field, func(t *testing.T) {
			_, err := loadSafely(t, writeConfig(t, t.TempDir(), `[{"name": "api", "script": "sleep", "`+tc.field+`": 1}]`))
			errs := asErrors(t, err)
			if len(errs) != 1 || !strings.Contains(errs[0].Hint, tc.hint) {
				t.Errorf("%s: want a hint with %s; got:%s", tc.field, tc.hint, dump(errs))
			}
		})
	}
}

func TestScriptFoundRelativeToTheConfigFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "agent"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "agent", "main.py"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	file, err := config.Load(writeConfig(t, dir, `[
		{"name": "design", "script": "./agent/main.py", "cwd": "./agent"},
		{"name": "plain", "script": "main.py", "cwd": "./agent"},
		{"name": "command", "script": "npm", "cwd": "./agent"},
		{"name": "missing", "script": "./nowhere/x.py", "cwd": "./agent"}]`))
	if err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(dir, "agent", "main.py")
	scripts := []string{want, "main.py", "npm", "./nowhere/x.py"}
	for i, p := range file.Processes {
		if p.Script != scripts[i] {
			t.Errorf("%s: script %q, want %q", p.Name, p.Script, scripts[i])
		}
	}
	if len(file.Notes) != 1 || file.Notes[0].Path != "/0/script" || file.Notes[0].Process != "design" ||
		!strings.Contains(file.Notes[0].Message, "using "+want+", relative to the config file") {
		t.Errorf("notes:%s", dump(file.Notes))
	}
}

func TestRoutedTCPProcessMayNotSetPort(t *testing.T) {
	_, err := loadSafely(t, writeConfig(t, t.TempDir(), `[
		{"name": "tcp", "script": "sleep", "route": "/api/tcp", "listen": "tcp", "env": {"PORT": "8001"}},
		{"name": "unix", "script": "sleep", "route": "/api/unix", "env": {"PORT": "8001"}},
		{"name": "plain", "script": "sleep", "env": {"PORT": "8001"}}]`))
	errs := asErrors(t, err)
	if len(errs) != 1 || errs[0].Path != "/0/env/PORT" || !strings.Contains(errs[0].Hint, "remove PORT from env") {
		t.Errorf("want one error at /0/env/PORT; got:%s", dump(errs))
	}
	// the same for Go-registered processes
	goErrs := config.Check([]config.Process{{Name: "tcp", Script: "sleep", Route: "/api/tcp", Listen: config.ListenTCP, Env: map[string]string{"PORT": "1"}}}, "")
	if len(goErrs) != 1 || goErrs[0].Path != "/processes/0/env/PORT" {
		t.Errorf("Go process: %s", dump(goErrs))
	}
}

func TestInstances(t *testing.T) {
	for _, n := range []string{"0", "65", "1.5", `"2"`} {
		_, err := loadSafely(t, writeConfig(t, t.TempDir(), `[{"name": "a", "script": "sleep", "instances": `+n+`}]`))
		if errs := asErrors(t, err); len(errs) != 1 || errs[0].Path != "/0/instances" {
			t.Errorf("instances %s:%s", n, dump(errs))
		}
	}
	file, err := loadSafely(t, writeConfig(t, t.TempDir(), `[{"name": "a", "script": "sleep", "instances": 64, "route": "/api/a"}]`))
	if err != nil || file.Processes[0].Instances != 64 {
		t.Fatalf("instances 64: %v", err)
	}
	if errs := config.Check([]config.Process{{Name: "a", Script: "sleep", Instances: 65}}, ""); len(errs) != 1 || !strings.HasSuffix(errs[0].Path, "/instances") {
		t.Errorf("instances 65 from Go:%s", dump(errs))
	}
}

func TestMaxMemoryRestart(t *testing.T) {
	for text, want := range map[string]config.Bytes{
		`"300MB"`: 300 << 20, `"300M"`: 300 << 20, `"300 MiB"`: 300 << 20, `"1.5G"`: 3 << 29,
		`"512k"`: 512 << 10, `"2048"`: 2048, `"2048B"`: 2048, `1048576`: 1 << 20,
	} {
		file, err := loadSafely(t, writeConfig(t, t.TempDir(), `[{"name": "a", "script": "sleep", "max_memory_restart": `+text+`}]`))
		if err != nil {
			t.Errorf("%s: %v", text, err)
			continue
		}
		if got := file.Processes[0].MaxMemoryRestart; got != want {
			t.Errorf("%s: %d bytes, want %d", text, got, want)
		}
	}
	for _, text := range []string{`"300 apples"`, `"MB"`, `"-3MB"`, `-1`, `true`} {
		_, err := loadSafely(t, writeConfig(t, t.TempDir(), `[{"name": "a", "script": "sleep", "max_memory_restart": `+text+`}]`))
		if errs := asErrors(t, err); len(errs) != 1 || errs[0].Path != "/0/max_memory_restart" || errs[0].Hint == "" {
			t.Errorf("%s:%s", text, dump(errs))
		}
	}
	if got := config.Bytes(300 << 20).String(); got != "300MB" {
		t.Errorf("String: %s", got)
	}
}

// Routes are written exactly as PocketBase's router matches them: no
// escapes, wildcards, empty or dot segments, so that none can panic when
// mounted or land over another route.
func TestRoutesAreCanonical(t *testing.T) {
	for _, route := range []string{
		"/api/../pm", "/api/./pm", "//api/pm", "/api//pm", "/api/%61gent", "/%5f/x", "/api/%70m",
		"/api/{name}", "/api/agent/", "/api/a b", "/api/agent?x", "/api/agent#x", "api/agent", "/api/..", "/api/.",
		"/api/oauth2-redirect",
	} {
		t.Run(route, func(t *testing.T) {
			entry := `[{"name": "side", "script": "sleep", "route": ` + strconvQuote(route) + `}]`
			_, err := loadSafely(t, writeConfig(t, t.TempDir(), entry))
			errs := asErrors(t, err)
			if len(errs) != 1 || errs[0].Path != "/0/route" {
				t.Errorf("want one error at /0/route; got:%s", dump(errs))
			}
			goErrs := config.Check([]config.Process{{Name: "side", Script: "sleep", Route: route}}, "")
			if len(goErrs) != 1 || !strings.HasSuffix(goErrs[0].Path, "/route") {
				t.Errorf("Go process: want one route error; got:%s", dump(goErrs))
			}
		})
	}
	for _, route := range []string{"/api/agent", "/api/agent.v2/x_y~z", "/agents/summarize-pdf"} {
		if _, err := loadSafely(t, writeConfig(t, t.TempDir(), `[{"name": "side", "script": "sleep", "route": `+strconvQuote(route)+`}]`)); err != nil {
			t.Errorf("%s: %v", route, err)
		}
	}
}
