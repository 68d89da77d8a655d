package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/pocketbase/pocketbase/tools/cron"
)

// Conditions of a dependency (depends_on): what the process depended on
// must have reached before the dependent starts.
const (
	// ConditionStarted: every instance has started.
	ConditionStarted = "started"
	// ConditionReady: every instance is ready (its health check passed,
	// or its socket accepts connections for a routed process). The
	// default.
	ConditionReady = "ready"
	// ConditionCompletedSuccessfully: the process ran and exited 0, for
	// one-shot setup processes such as a download or a migration.
	ConditionCompletedSuccessfully = "completed_successfully"
)

// Conditions lists the conditions a dependency may have.
var Conditions = []string{ConditionStarted, ConditionReady, ConditionCompletedSuccessfully}

// Dependency is a process that must reach Condition before the process
// that depends on it starts.
type Dependency struct {
	Name      string `json:"name"`
	Condition string `json:"condition"`
}

// Dependencies is the depends_on setting. In JSON it is a list of
// process names (condition ready) or an object of names to
// {"condition": ...}; it is kept in the order written.
type Dependencies []Dependency

// Names returns the names of the processes depended on.
func (d Dependencies) Names() []string {
	names := make([]string, len(d))
	for i, dep := range d {
		names[i] = dep.Name
	}
	return names
}

// MarshalJSON writes the object form, which holds every condition.
func (d Dependencies) MarshalJSON() ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, dep := range d {
		if i > 0 {
			buf.WriteByte(',')
		}
		name, _ := json.Marshal(dep.Name)
		cond, _ := json.Marshal(dep.Condition)
		fmt.Fprintf(&buf, `%s:{"condition":%s}`, name, cond)
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// UnmarshalJSON reads a list of names or an object of names to
// conditions; a missing condition is ConditionReady.
func (d *Dependencies) UnmarshalJSON(data []byte) error {
	var names []string
	if err := json.Unmarshal(data, &names); err == nil {
		deps := make(Dependencies, len(names))
		for i, name := range names {
			deps[i] = Dependency{Name: name, Condition: ConditionReady}
		}
		*d = deps
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return fmt.Errorf(`want a list of process names, or an object such as {"db": {"condition": "ready"}}`)
	}
	var deps Dependencies
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		name, _ := tok.(string)
		var spec struct {
			Condition string `json:"condition"`
		}
		if err := dec.Decode(&spec); err != nil {
			return fmt.Errorf(`depends_on %q: want {"condition": "started" | "ready" | "completed_successfully"}`, name)
		}
		if spec.Condition == "" {
			spec.Condition = ConditionReady
		}
		deps = append(deps, Dependency{Name: name, Condition: spec.Condition})
	}
	*d = deps
	return nil
}

// CheckDependencies validates the depends_on of processes against each
// other (names, disabled processes, cycles) and the cron schedules. It
// sees every process, the file's and Go code's, so that one may depend
// on the other; paths name processes by index as Check does.
func CheckDependencies(processes []Process, file string) Errors {
	var errs Errors
	index := map[string]int{}
	for i, p := range processes {
		if _, dup := index[p.Name]; !dup && p.Name != "" {
			index[p.Name] = i
		}
	}
	for i, p := range processes {
		add := func(field, msg, hint string) {
			errs = append(errs, Error{File: file, Path: fmt.Sprintf("/processes/%d/%s", i, field), Index: i, Process: p.Name, Message: msg, Hint: hint})
		}
		seen := map[string]bool{}
		for _, dep := range p.DependsOn {
			field := "depends_on/" + escapePointer(dep.Name)
			j, known := index[dep.Name]
			switch {
			case dep.Name == p.Name:
				add(field, fmt.Sprintf("process %q depends on itself", p.Name), "remove it from its own depends_on")
			case seen[dep.Name]:
				add(field, fmt.Sprintf("%q is listed twice in depends_on", dep.Name), "list each dependency once")
			case !known:
				add(field, fmt.Sprintf("depends on %q, which is not a process here", dep.Name), "add a process named "+quote(dep.Name)+", or fix the name (names are case-sensitive)")
			case processes[j].Disabled:
				add(field, fmt.Sprintf("depends on %q, which is disabled, so %q would never start", dep.Name, p.Name),
					"enable "+quote(dep.Name)+" (remove \"disabled\"), or remove it from depends_on")
			case processes[j].Upstream != "":
				add(field, fmt.Sprintf("depends on %q, which is an upstream route, not a process processman starts", dep.Name),
					"remove it from depends_on; a process that needs the service can wait for it itself")
			case processes[j].Cron != "":
				add(field, fmt.Sprintf("depends on %q, which runs on a cron schedule", dep.Name),
					"a scheduled process has no start for others to wait for; remove it from depends_on")
			}
			if !slices.Contains(Conditions, dep.Condition) && file == "" { // files get this from the schema
				add(field+"/condition", fmt.Sprintf("unknown condition %q", dep.Condition), "use \"started\", \"ready\" or \"completed_successfully\"")
			}
			seen[dep.Name] = true
		}
		if p.Cron != "" && len(p.DependsOn) > 0 {
			add("depends_on", "a scheduled process (cron) cannot have depends_on: its runs are started by the schedule",
				"remove depends_on, or drop cron and let the process start after its dependencies")
		}
		if p.Cron != "" {
			if _, err := cron.NewSchedule(p.Cron); err != nil {
				add("cron", fmt.Sprintf("invalid cron expression %q: %v", p.Cron, err),
					`write five fields "minute hour day month weekday", e.g. "0 3 * * *" for 03:00 every day, or a macro such as "@daily"`)
			}
			if p.Restart == RestartAlways {
				add("restart", `restart "always" with a cron schedule would run the job forever`,
					`use "never" (the default with cron) or "on-failure" to retry a failed run`)
			}
		}
	}
	for _, cycle := range dependencyCycles(processes, index) {
		first := cycle[0]
		errs = append(errs, Error{File: file, Path: fmt.Sprintf("/processes/%d/depends_on", index[first]), Index: index[first], Process: first,
			Message: "dependency cycle: " + strings.Join(append(cycle, first), " → "),
			Hint:    "remove one of these dependencies; processes must start in some order"})
	}
	return errs
}

// dependencyCycles finds each cycle of depends_on once, as the names
// along it starting from its earliest process.
func dependencyCycles(processes []Process, index map[string]int) [][]string {
	const (
		unvisited = iota
		visiting
		done
	)
	state := make([]int, len(processes))
	var cycles [][]string
	var stack []string
	var visit func(i int)
	visit = func(i int) {
		state[i] = visiting
		stack = append(stack, processes[i].Name)
		for _, dep := range processes[i].DependsOn {
			j, ok := index[dep.Name]
			if !ok || j == i {
				continue
			}
			switch state[j] {
			case unvisited:
				visit(j)
			case visiting:
				at := slices.Index(stack, dep.Name)
				cycles = append(cycles, slices.Clone(stack[at:]))
			}
		}
		stack = stack[:len(stack)-1]
		state[i] = done
	}
	for i, p := range processes {
		if state[i] == unvisited && p.Name != "" && index[p.Name] == i {
			visit(i)
		}
	}
	return cycles
}

// escapePointer escapes a name for a JSON pointer segment.
func escapePointer(s string) string {
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(s)
}

func quote(s string) string { return fmt.Sprintf("%q", s) }
