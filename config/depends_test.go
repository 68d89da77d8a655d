package config_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/processman/processman/config"
)

func TestDependenciesForms(t *testing.T) {
	tests := []struct {
		in   string
		want config.Dependencies
	}{
		{`["db", "cache"]`, config.Dependencies{{Name: "db", Condition: "ready"}, {Name: "cache", Condition: "ready"}}},
		{`{"setup": {"condition": "completed_successfully"}, "db": {"condition": "started"}, "x": {}}`,
			config.Dependencies{{Name: "setup", Condition: "completed_successfully"}, {Name: "db", Condition: "started"}, {Name: "x", Condition: "ready"}}},
	}
	for _, tt := range tests {
		var got config.Dependencies
		if err := json.Unmarshal([]byte(tt.in), &got); err != nil {
			t.Fatalf("%s: %v", tt.in, err)
		}
		if len(got) != len(tt.want) {
			t.Fatalf("%s: got %v, want %v", tt.in, got, tt.want)
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Errorf("%s: [%d] = %v, want %v", tt.in, i, got[i], tt.want[i])
			}
		}
		// The object form written back reads the same.
		data, _ := json.Marshal(got)
		var again config.Dependencies
		if err := json.Unmarshal(data, &again); err != nil || len(again) != len(got) || again[0] != got[0] {
			t.Errorf("%s: round trip %s gave %v (%v)", tt.in, data, again, err)
		}
	}
	var bad config.Dependencies
	if err := json.Unmarshal([]byte(`"db"`), &bad); err == nil || !strings.Contains(err.Error(), "list of process names") {
		t.Errorf("a string: error %v, want one naming the forms", err)
	}
}

// Unknown names, cycles, disabled and scheduled dependencies and bad cron
// expressions are errors of the entry, at its JSON path, with a hint.
func TestCheckDependencies(t *testing.T) {
	dep := func(names ...string) config.Dependencies {
		var d config.Dependencies
		for _, n := range names {
			d = append(d, config.Dependency{Name: n, Condition: config.ConditionReady})
		}
		return d
	}
	tests := []struct {
		name  string
		procs []config.Process
		path  string
		msg   string
		hint  string
	}{
		{"unknown", []config.Process{{Name: "api", DependsOn: dep("db")}}, "/processes/0/depends_on/db", `depends on "db", which is not a process here`, "add a process named"},
		{"itself", []config.Process{{Name: "api", DependsOn: dep("api")}}, "/processes/0/depends_on/api", "depends on itself", "remove it"},
		{"disabled", []config.Process{{Name: "db", Disabled: true}, {Name: "api", DependsOn: dep("db")}}, "/processes/1/depends_on/db", "which is disabled", `enable "db"`},
		{"cycle", []config.Process{{Name: "a", DependsOn: dep("b")}, {Name: "b", DependsOn: dep("c")}, {Name: "c", DependsOn: dep("a")}},
			"/processes/0/depends_on", "dependency cycle: a → b → c → a", "remove one of these dependencies"},
		{"scheduled dependency", []config.Process{{Name: "job", Cron: "@daily"}, {Name: "api", DependsOn: dep("job")}}, "/processes/1/depends_on/job", "runs on a cron schedule", "remove it from depends_on"},
		{"scheduled with depends_on", []config.Process{{Name: "db"}, {Name: "job", Cron: "@daily", DependsOn: dep("db")}}, "/processes/1/depends_on", "cannot have depends_on", "remove depends_on"},
		{"bad cron", []config.Process{{Name: "job", Cron: "every night"}}, "/processes/0/cron", `invalid cron expression "every night"`, `"0 3 * * *"`},
		{"cron restart always", []config.Process{{Name: "job", Cron: "0 3 * * *", Restart: "always"}}, "/processes/0/restart", "run the job forever", `"on-failure"`},
		{"unknown condition", []config.Process{{Name: "db"}, {Name: "api", DependsOn: config.Dependencies{{Name: "db", Condition: "healthy"}}}},
			"/processes/1/depends_on/db/condition", `unknown condition "healthy"`, "completed_successfully"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := config.CheckDependencies(tt.procs, "")
			if len(errs) != 1 {
				t.Fatalf("errors %v, want one", errs)
			}
			e := errs[0]
			if e.Path != tt.path || !strings.Contains(e.Message, tt.msg) || !strings.Contains(e.Hint, tt.hint) {
				t.Errorf("got %s %q (hint %q), want %s %q (hint with %q)", e.Path, e.Message, e.Hint, tt.path, tt.msg, tt.hint)
			}
		})
	}
	ok := []config.Process{{Name: "setup", Restart: "never"}, {Name: "db"},
		{Name: "api", DependsOn: config.Dependencies{{Name: "setup", Condition: config.ConditionCompletedSuccessfully}, {Name: "db", Condition: config.ConditionStarted}}},
		{Name: "web", DependsOn: dep("api", "db")}, {Name: "nightly", Cron: "0 3 * * *"}}
	if errs := config.CheckDependencies(ok, ""); len(errs) != 0 {
		t.Errorf("a valid tree: %v", errs)
	}
}

// In a file, the schema checks the form and conditions, and a cron
// process gets restart "never" by default.
func TestDependenciesInAFile(t *testing.T) {
	dir := t.TempDir()
	file, err := config.Parse([]byte(`[{"name": "api", "script": "a.py", "cwd": "`+dir+`", "depends_on": {"db": {"condition": "healthy"}}},
		{"name": "job", "script": "j.py", "cwd": "`+dir+`", "cron": "0 3 * * *"}]`), dir+"/pb_processes.json")
	errs := asErrors(t, err)
	if len(errs) != 1 || errs[0].Path != "/0/depends_on/db/condition" {
		t.Fatalf("errors %v, want one at /0/depends_on/db/condition", err)
	}
	if got := file.Processes[1].WithDefaults().Restart; got != config.RestartNever {
		t.Errorf("cron process restart = %q, want never", got)
	}
}
