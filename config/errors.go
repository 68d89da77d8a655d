package config

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
)

// Error is one problem found in a process configuration: where it is,
// what is wrong and how to fix it.
type Error struct {
	// File is the config file, empty for processes registered from Go.
	File string `json:"file,omitempty"`
	// Path is the JSON pointer of the offending value, e.g. "/processes/0/name".
	Path string `json:"path,omitempty"`
	// Line and Column locate syntax errors (1-based), zero otherwise.
	Line   int `json:"line,omitempty"`
	Column int `json:"column,omitempty"`
	// Process is the name of the entry the error belongs to, when known.
	Process string `json:"process,omitempty"`
	// Index is the entry's position in the processes list, -1 when the
	// error is not about one entry.
	Index int `json:"index"`
	// Message says what is wrong; Hint says what to do.
	Message string `json:"message"`
	Hint    string `json:"hint,omitempty"`
}

func (e Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d:%d", e.Line, e.Column)
		}
		b.WriteString(": ")
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		if e.Process != "" {
			fmt.Fprintf(&b, " (process %q)", e.Process)
		}
		b.WriteString(": ")
	} else if e.Process != "" {
		fmt.Fprintf(&b, "process %q: ", e.Process)
	}
	b.WriteString(e.Message)
	if e.Hint != "" {
		b.WriteString("; ")
		b.WriteString(e.Hint)
	}
	return b.String()
}

// Errors is every problem found in a configuration. Loading never stops
// at the first one, so a user can fix them all at once.
type Errors []Error

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	noun := "errors"
	if len(es) == 1 {
		noun = "error"
	}
	return fmt.Sprintf("processman: %d config %s:\n  %s", len(es), noun, strings.Join(lines, "\n  "))
}

// ForIndex returns the errors of the entry at index i.
func (es Errors) ForIndex(i int) Errors {
	var out Errors
	for _, e := range es {
		if e.Index == i {
			out = append(out, e)
		}
	}
	return out
}

// FileLevel returns the errors that are not about one entry: a file that
// cannot be read, is not JSON, or is not processes. With any, the file
// cannot be used at all.
func (es Errors) FileLevel() Errors {
	return es.ForIndex(-1)
}

// sorted orders errors by position in the file.
func (es Errors) sorted() Errors {
	sort.SliceStable(es, func(i, j int) bool {
		if es[i].Index != es[j].Index {
			return es[i].Index < es[j].Index
		}
		return es[i].Path < es[j].Path
	})
	return es
}

// OrNil returns nil when there are no errors, so that callers can
// compare the result with nil.
func (es Errors) OrNil() error {
	if len(es) == 0 {
		return nil
	}
	return es
}

// fieldAliases are the names other process managers (PM2, supervisord,
// process-compose, docker compose, systemd) give to processman's fields.
var fieldAliases = map[string]string{
	"environment": "env", "env_vars": "env", "envs": "env", "variables": "env",
	"command": "script", "cmd": "script", "exec": "script", "program": "script", "entrypoint": "script",
	"working_dir": "cwd", "workdir": "cwd", "working_directory": "cwd", "directory": "cwd", "dir": "cwd",
	"autorestart": "restart", "restart_policy": "restart", "availability": "restart",
	"stopsignal": "kill_signal", "stop_signal": "kill_signal", "killsignal": "kill_signal",
	"stopwaitsecs": "kill_timeout", "stop_timeout": "kill_timeout", "stop_grace_period": "kill_timeout",
	"node_args": "interpreter_args", "interpreter_options": "interpreter_args",
	"replicas": "instances", "numprocs": "instances", "instance": "instances",
	"logfile": "log_file", "out_file": "log_file", "stdout_logfile": "log_file",
	"healthcheck": "health", "readiness_probe": "health", "liveness_probe": "health",
	"dotenv": "env_file", "env_files": "env_file", "environment_file": "env_file",
}

// suggest returns the known word closest to word, if it is close enough
// to be a likely typo, and the name it was taken for when word is (close
// to) another tool's name of a known field: "enviroment" is "env".
func suggest(word string, known []string) (field, alias string) {
	best, bestDist := "", len(word)/2+2
	lower := strings.ToLower(word)
	consider := func(candidate, meaning string, within int) {
		if d := editDistance(lower, candidate); d < bestDist && d <= within {
			best, bestDist, field = candidate, d, meaning
		}
	}
	for _, k := range known {
		consider(k, k, bestDist)
	}
	// Another tool's name is taken only when written (nearly) as it is.
	for _, other := range slices.Sorted(maps.Keys(fieldAliases)) {
		if k := fieldAliases[other]; slices.Contains(known, k) {
			consider(other, k, max(1, len(other)/4))
		}
	}
	if field != best {
		alias = best
	}
	return field, alias
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
