package supervisor

import (
	"time"

	"github.com/processman/processman/logs"
)

// State is where a process is in its life cycle.
type State string

// The states of a process.
//
//	waiting ──dependencies met──> starting
//	stopped ──start──> starting ──spawned──> online ──exit──> waiting-restart ──delay──> starting
//	   ^                  │                    │                   │
//	   │             spawn failed          stop│                   └─ too many unstable restarts ──> errored
//	   │                  v                    v
//	   └──────────────── errored          stopping ──exited──> stopped
//
// A run that exits 0 and is not restarted (restart "never" or
// "on-failure") ends in completed.
const (
	Stopped        State = "stopped"
	Starting       State = "starting"
	Online         State = "online"
	Stopping       State = "stopping"
	WaitingRestart State = "waiting-restart"
	Errored        State = "errored"
	// Waiting: the first start waits for the process's dependencies
	// (Status.WaitingFor says which and why).
	Waiting State = "waiting"
	// Completed: the last run exited 0 and is not restarted, as a
	// one-shot process does.
	Completed State = "completed"
)

// Running reports whether a process of this state has a live child.
func (s State) Running() bool {
	return s == Starting || s == Online || s == Stopping
}

// Exit records how one run of a process ended.
type Exit struct {
	// Time is when the exit was seen.
	Time time.Time `json:"time"`
	// Pid of the run that ended.
	Pid int `json:"pid"`
	// Code is the exit code, or -1 when a signal ended the process.
	Code int `json:"code"`
	// Signal names the signal that ended the process, if any.
	Signal string `json:"signal,omitempty"`
	// Uptime is how long the run lasted.
	Uptime time.Duration `json:"uptime"`
	// Requested is true when processman asked the process to stop.
	Requested bool `json:"requested"`
	// Reason says why processman stopped it, when it had one of its own
	// ("reload", "files changed", "memory 312MB over
	// max_memory_restart 300MB"); empty for a plain stop or restart.
	Reason string `json:"reason,omitempty"`
}

// Failed reports whether the exit counts as a failure: a non-zero code,
// or a signal that processman did not send.
func (e Exit) Failed() bool {
	return !e.Requested && (e.Code != 0 || e.Signal != "")
}

// Crash is the record of an exit that processman did not ask for: how
// the process ended and the last lines it wrote.
type Crash struct {
	Exit
	// LastLines are the last lines of output (stdout and stderr) before
	// the exit.
	LastLines []logs.Line `json:"last_lines"`
	// Hint says what to do when the output shows a known cause, such as
	// a missing Python or Node module; empty otherwise.
	Hint string `json:"hint,omitempty"`
}

// CrashLines is how many lines of output a crash record keeps.
const CrashLines = 50

// Copy is one child of an instance beside its current run: the new copy
// a reload started, or the old one it replaced while it drains.
type Copy struct {
	Pid       int       `json:"pid"`
	Slot      int       `json:"slot"`
	StartedAt time.Time `json:"started_at"`
	Ready     bool      `json:"ready"`
}

// ReloadFailure is a reload that was given up: why, and the new copy's
// last lines of output.
type ReloadFailure struct {
	Time  time.Time `json:"time"`
	Error string    `json:"error"`
	// Exit is set when the new copy exited before it was ready.
	Exit      *Exit       `json:"exit,omitempty"`
	LastLines []logs.Line `json:"last_lines"`
}

// Schedule is how a scheduled (cron) process runs.
type Schedule struct {
	Cron string `json:"cron"`
	// LastRun is when the schedule last started the process; zero before
	// the first run.
	LastRun time.Time `json:"last_run,omitzero"`
	// NextRun is when the schedule is next due.
	NextRun time.Time `json:"next_run,omitzero"`
	// Runs counts the runs the schedule started.
	Runs int `json:"runs"`
	// Skipped counts the times the schedule was due while the last run
	// was still going, and LastSkipped is the last of them.
	Skipped     int       `json:"skipped"`
	LastSkipped time.Time `json:"last_skipped,omitzero"`
}

// Status is a snapshot of a process, safe to share.
type Status struct {
	Name string `json:"name"`
	// Instance is the index of this instance of the process, 0…instances-1.
	Instance int   `json:"instance"`
	State    State `json:"state"`
	// Pid of the running child, 0 when none runs.
	Pid int `json:"pid"`
	// Ready reports whether the current run answers its readiness check
	// (see the health package); a run without a check is ready when it
	// starts.
	Ready bool `json:"ready"`
	// StartedAt is when the current run started.
	StartedAt time.Time `json:"started_at,omitzero"`
	// Restarts counts every restart since PocketBase started, whatever
	// caused it (crash, request, file change), reloads included.
	Restarts int `json:"restarts"`
	// Reloads counts the reloads whose new copy took over.
	Reloads int `json:"reloads"`
	// Slot is where the current run listens, 0 or 1: a reload starts its
	// new copy on the other one.
	Slot int `json:"slot"`
	// Next is the new copy of a reload until it takes over or is given up.
	Next *Copy `json:"next,omitempty"`
	// Draining is the old copy of a reload while it finishes its
	// requests, before it is stopped.
	Draining *Copy `json:"draining,omitempty"`
	// LastReloadFailure is the last reload that was given up.
	LastReloadFailure *ReloadFailure `json:"last_reload_failure,omitempty"`
	// UnstableRestarts counts consecutive runs shorter than min_uptime.
	UnstableRestarts int `json:"unstable_restarts"`
	// NextRestart is when a waiting restart is due.
	NextRestart time.Time `json:"next_restart,omitzero"`
	// Error explains the errored state (or the last start failure).
	Error string `json:"error,omitempty"`
	// WaitingFor says what a waiting process waits for ("db: not
	// ready").
	WaitingFor string `json:"waiting_for,omitempty"`
	// Schedule is the cron schedule of a scheduled process and its runs.
	Schedule *Schedule `json:"schedule,omitempty"`
	// LastExit is the last exit of any kind.
	LastExit *Exit `json:"last_exit,omitempty"`
	// LastCrash is the last exit that processman did not ask for.
	LastCrash *Crash `json:"last_crash,omitempty"`
	// Command is the resolved command line of the current or last run.
	Command []string `json:"command,omitempty"`
	// Dir is the working directory of the current or last run.
	Dir string `json:"dir,omitempty"`
	// Runtime is "python", "node", "tsx", "bash" or "exec".
	Runtime string `json:"runtime,omitempty"`
	// Venv is the Python virtualenv in use, if any.
	Venv string `json:"venv,omitempty"`
	// Warnings are things about the current or last run's command that
	// work but are likely not what was meant, each with what to do.
	Warnings []string `json:"warnings,omitempty"`
	// Logs counts the output lines and what the sinks skipped.
	Logs logs.Stats `json:"logs"`
}

// Uptime is how long the current run has lasted, zero when not running.
func (s Status) Uptime() time.Duration {
	if s.Pid == 0 || s.StartedAt.IsZero() {
		return 0
	}
	return time.Since(s.StartedAt)
}
