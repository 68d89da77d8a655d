package processman

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/processman/processman/logs"
	"github.com/processman/processman/supervisor"
)

func TestLifecycleLines(t *testing.T) {
	started := time.Now().Add(-2500 * time.Millisecond)
	exit := &supervisor.Exit{Pid: 41, Code: 3, Uptime: 1200 * time.Millisecond}
	crashed := supervisor.Status{Name: "agent", State: supervisor.WaitingRestart, NextRestart: time.Now().Add(400 * time.Millisecond),
		LastCrash: &supervisor.Crash{Exit: *exit, LastLines: []logs.Line{{Text: "Traceback"}, {Text: "ModuleNotFoundError: No module named 'agno'"}},
			Hint: "a Python module is missing"}}
	tests := []struct {
		name string
		e    ProcessEvent
		want string // a regexp of the whole line; "" for none
	}{
		{"started", ProcessEvent{Type: EventStarted, Name: "agent", Status: supervisor.Status{Pid: 42, Dir: "/srv/agent",
			Command: []string{"/srv/agent/.venv/bin/python3", "/srv/agent/main.py", "--port", "1"}, Warnings: []string{"no venv"}}},
			`agent started \(pid 42\): \.venv/bin/python3 main\.py --port 1\n  warning: no venv`},
		{"ready after a check", ProcessEvent{Type: EventReady, Name: "agent", Status: supervisor.Status{Pid: 42, StartedAt: started}},
			`agent ready \(pid 42, after 2\.\ds\)`},
		{"ready at start is not said", ProcessEvent{Type: EventReady, Name: "agent", Status: supervisor.Status{Pid: 42, StartedAt: started}, atStart: true}, ""},
		{"crashed, restarting", ProcessEvent{Type: EventCrashed, Name: "agent", Status: crashed, Exit: exit},
			`agent exited with code 3 after 1\.2s; last output: "ModuleNotFoundError: No module named 'agno'"; restarting in \d+ms\n  hint: a Python module is missing`},
		{"killed", ProcessEvent{Type: EventCrashed, Name: "agent", Status: supervisor.Status{State: supervisor.Stopped},
			Exit: &supervisor.Exit{Pid: 7, Signal: "SIGKILL", Uptime: 3 * time.Minute}}, `agent exited with signal SIGKILL after 3m0s`},
		{"a stop asked for says stopped", ProcessEvent{Type: EventExited, Name: "agent", Exit: &supervisor.Exit{Requested: true}}, ""},
		{"stopped", ProcessEvent{Type: EventStopped, Name: "agent"}, `agent stopped`},
		{"errored", ProcessEvent{Type: EventErrored, Name: "agent", Status: supervisor.Status{Error: "exited 11 times in a row"}},
			`agent errored: exited 11 times in a row`},
		{"an instance", ProcessEvent{Type: EventStopped, Name: "agent", Instance: 2, instances: 3}, `agent:2 stopped`},
		{"instance 0 of several", ProcessEvent{Type: EventStopped, Name: "agent", instances: 3}, `agent:0 stopped`},
		{"a stop with a reason", ProcessEvent{Type: EventExited, Name: "agent", Exit: &supervisor.Exit{Pid: 41, Requested: true,
			Reason: "memory 312MB over max_memory_restart 300MB"}}, `agent stopped pid 41: memory 312MB over max_memory_restart 300MB`},
		{"reloading", ProcessEvent{Type: EventReloading, Name: "agent", Reload: &supervisor.ReloadStep{Pid: 43, OldPid: 42}},
			`agent reloading: new copy started \(pid 43\) beside pid 42`},
		{"reloaded", ProcessEvent{Type: EventReloaded, Name: "agent", Reload: &supervisor.ReloadStep{Pid: 43, OldPid: 42}},
			`agent reloaded: pid 43 serves, pid 42 finishes its requests`},
		{"reload given up", ProcessEvent{Type: EventReloadFailed, Name: "agent", Reload: &supervisor.ReloadStep{Pid: 43, OldPid: 42,
			Error: "the new copy (pid 43) exited with code 1 before it was ready"}},
			`agent reload given up: the new copy \(pid 43\) exited with code 1 before it was ready`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := lifecycleLine(&tc.e)
			if tc.want == "" {
				if got != "" {
					t.Errorf("said %q", got)
				}
				return
			}
			if !regexp.MustCompile(`\A` + tc.want + `\z`).MatchString(got) {
				t.Errorf("line\n %q\nwant\n %s", got, tc.want)
			}
		})
	}
}

func TestTerminalSaysUnlessQuiet(t *testing.T) {
	var out bytes.Buffer
	quiet := false
	term := &terminal{w: &out, quiet: &quiet}
	term.say("agent: files changed (%s), restarting", "main.py")
	if !regexp.MustCompile(`^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d processman: agent: files changed \(main\.py\), restarting\n$`).MatchString(out.String()) {
		t.Errorf("%q", out.String())
	}
	quiet = true // as --processesQuiet sets it after Register
	term.say("not said")
	if strings.Contains(out.String(), "not said") {
		t.Error("a quiet terminal spoke")
	}
	var none *terminal
	none.say("nothing") // a nil terminal is quiet
}

func TestChangedList(t *testing.T) {
	if got := changedList("/srv/agent", []string{"/srv/agent/main.py", "/srv/agent/tools/a.py", "/elsewhere/x"}); got != "main.py, tools/a.py, /elsewhere/x" {
		t.Errorf("%q", got)
	}
	many := []string{"/a/1", "/a/2", "/a/3", "/a/4", "/a/5", "/a/6", "/a/7"}
	if got := changedList("/a", many); got != "1, 2, 3, 4, 5 and 2 more" {
		t.Errorf("%q", got)
	}
}
