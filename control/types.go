package control

import (
	"fmt"
	"time"

	"github.com/processman/processman/config"
	"github.com/processman/processman/logs"
	"github.com/processman/processman/metrics"
	"github.com/processman/processman/supervisor"
)

// Summary is a process as `GET /api/pm/list` shows it: its instances
// together, and each on its own in Instances. The OpenAPI document
// (openapi.json) describes every field.
type Summary struct {
	Name string `json:"name"`
	// State is the instances' state when they all share it, else
	// "mixed".
	State string `json:"state"`
	// Pid, StartedAt and UptimeMs are those of instance 0.
	Pid       int        `json:"pid"`
	Ready     bool       `json:"ready"` // every instance is ready
	StartedAt *time.Time `json:"started_at,omitempty"`
	UptimeMs  int64      `json:"uptime_ms"`
	// Restarts and Reloads are summed over the instances,
	// UnstableRestarts is the most of any.
	Restarts         int        `json:"restarts"`
	Reloads          int        `json:"reloads"`
	UnstableRestarts int        `json:"unstable_restarts"`
	NextRestart      *time.Time `json:"next_restart,omitempty"`
	// CPU, Memory and TreeSize are summed over the instances.
	CPU       float64 `json:"cpu"`
	Memory    uint64  `json:"memory"`
	TreeSize  int     `json:"tree_size"`
	LastExit  *Exit   `json:"last_exit"`
	Error     string  `json:"error"`
	Reloading bool    `json:"reloading"`
	Route     string  `json:"route"`
	Auth      any     `json:"auth"`
	Listen    string  `json:"listen"`
	Watch     bool    `json:"watch"`
	Disabled  bool    `json:"disabled"`
	Runtime   string  `json:"runtime"`
	MaxMemory uint64  `json:"max_memory_restart"`
	// DependsOn lists what the process waits for before it starts, and
	// WaitingFor what it waits for now ("db: not ready").
	DependsOn  []Dependency `json:"depends_on"`
	WaitingFor string       `json:"waiting_for"`
	// Schedule is set for a process that runs on a cron schedule.
	Schedule  *supervisor.Schedule `json:"schedule"`
	Instances []Instance           `json:"instances"`
}

// Dependency is a process that must reach a condition first.
type Dependency struct {
	Name      string `json:"name"`
	Condition string `json:"condition"`
}

// Instance is one instance of a process.
type Instance struct {
	Instance         int        `json:"instance"`
	State            string     `json:"state"`
	Pid              int        `json:"pid"`
	Ready            bool       `json:"ready"`
	StartedAt        *time.Time `json:"started_at,omitempty"`
	UptimeMs         int64      `json:"uptime_ms"`
	Restarts         int        `json:"restarts"`
	Reloads          int        `json:"reloads"`
	UnstableRestarts int        `json:"unstable_restarts"`
	NextRestart      *time.Time `json:"next_restart,omitempty"`
	CPU              float64    `json:"cpu"`
	Memory           uint64     `json:"memory"`
	TreeSize         int        `json:"tree_size"`
	LastExit         *Exit      `json:"last_exit"`
	Error            string     `json:"error"`
	// Next is a reload's new copy until it takes over; Draining the old
	// copy while it finishes its requests.
	Next     *Copy `json:"next"`
	Draining *Copy `json:"draining"`
}

// Copy is a child of an instance beside its current run.
type Copy struct {
	Pid       int       `json:"pid"`
	StartedAt time.Time `json:"started_at"`
	Ready     bool      `json:"ready"`
}

// ReloadFailure is the last reload that was given up.
type ReloadFailure struct {
	Time      time.Time `json:"time"`
	Error     string    `json:"error"`
	Exit      *Exit     `json:"exit"`
	LastLines []Line    `json:"last_lines"`
}

// Exit is how a run ended.
type Exit struct {
	Time      time.Time `json:"time"`
	Pid       int       `json:"pid"`
	Code      int       `json:"code"`
	Signal    string    `json:"signal"`
	UptimeMs  int64     `json:"uptime_ms"`
	Requested bool      `json:"requested"`
	Reason    string    `json:"reason"`
}

// Crash is an exit that processman did not ask for, with the last lines
// the run wrote.
type Crash struct {
	Exit
	LastLines []Line `json:"last_lines"`
	// Hint says what to do when the output shows a known cause.
	Hint string `json:"hint"`
}

// Line is one line of output.
type Line struct {
	Time     time.Time `json:"time"`
	Stream   string    `json:"stream"`
	Pid      int       `json:"pid"`
	Instance int       `json:"instance"`
	Text     string    `json:"text"`
}

// Detail is a process as `GET /api/pm/{name}` shows it; the command,
// environment and crash are those of Instance (instance 0 unless the
// name picked one, "api:1").
type Detail struct {
	Summary
	Instance  int         `json:"instance"`
	Command   []string    `json:"command"`
	Cwd       string      `json:"cwd"`
	Venv      string      `json:"venv"`
	LogFile   string      `json:"log_file"`
	Env       []EnvVar    `json:"env"`
	Inherited int         `json:"inherited_env"`
	LastCrash *Crash      `json:"last_crash"`
	Logs      logs.Stats  `json:"logs"`
	Policy    Policy      `json:"policy"`
	Health    *HealthInfo `json:"health"`
	// Warnings are about the command of the current or last run.
	Warnings []string `json:"warnings"`
	// LastReloadFailure is the last reload of Instance that was given up.
	LastReloadFailure *ReloadFailure `json:"last_reload_failure"`
}

// Policy is how the process is restarted and stopped.
type Policy struct {
	Restart     string `json:"restart"`
	MaxRestarts int    `json:"max_restarts"`
	MinUptime   string `json:"min_uptime"`
	KillSignal  string `json:"kill_signal"`
	KillTimeout string `json:"kill_timeout"`
	Instances   int    `json:"instances"`
	// ReadyTimeout and DrainTimeout bound a reload of a routed process;
	// empty for an unrouted one.
	ReadyTimeout     string `json:"ready_timeout"`
	DrainTimeout     string `json:"drain_timeout"`
	MaxMemoryRestart string `json:"max_memory_restart"`
}

// HealthInfo is the readiness check of a process.
type HealthInfo struct {
	HTTP     string `json:"http,omitempty"`
	Line     string `json:"line,omitempty"`
	Interval string `json:"interval,omitempty"`
	Failures int    `json:"failures,omitempty"`
}

func exitOf(e *supervisor.Exit) *Exit {
	if e == nil {
		return nil
	}
	return &Exit{Time: e.Time, Pid: e.Pid, Code: e.Code, Signal: e.Signal, UptimeMs: e.Uptime.Milliseconds(), Requested: e.Requested, Reason: e.Reason}
}

func lineOf(l logs.Line) Line {
	return Line{Time: l.Time, Stream: l.Stream, Pid: l.Pid, Instance: l.Instance, Text: l.Text}
}

func linesOf(lines []logs.Line) []Line {
	out := make([]Line, len(lines))
	for i, l := range lines {
		out[i] = lineOf(l)
	}
	return out
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// summaryOf builds the summary of a process from the statuses of its
// instances (in order; one or more), its config, and the usage of their
// trees by pid.
func summaryOf(statuses []supervisor.Status, cfg config.Process, usage map[int]metrics.Usage) Summary {
	first := statuses[0]
	s := Summary{
		Name:      first.Name,
		State:     string(first.State),
		Pid:       first.Pid,
		Ready:     true,
		StartedAt: timePtr(first.StartedAt),
		UptimeMs:  first.Uptime().Milliseconds(),
		Route:     cfg.Route,
		Watch:     !cfg.Watch.IsZero(),
		Disabled:  cfg.Disabled,
		Runtime:   first.Runtime,
		MaxMemory: uint64(max(cfg.MaxMemoryRestart, 0)),
		DependsOn: make([]Dependency, len(cfg.DependsOn)),
		Schedule:  first.Schedule,
		Instances: make([]Instance, len(statuses)),
	}
	for i, dep := range cfg.DependsOn {
		s.DependsOn[i] = Dependency(dep)
	}
	for i, st := range statuses {
		in := instanceOf(st, usage[st.Pid])
		s.Instances[i] = in
		if in.State != s.State {
			s.State = "mixed"
		}
		s.Ready = s.Ready && in.Ready
		s.Restarts += in.Restarts
		s.Reloads += in.Reloads
		s.UnstableRestarts = max(s.UnstableRestarts, in.UnstableRestarts)
		if in.NextRestart != nil && (s.NextRestart == nil || in.NextRestart.Before(*s.NextRestart)) {
			s.NextRestart = in.NextRestart
		}
		s.CPU += in.CPU
		s.Memory += in.Memory
		s.TreeSize += in.TreeSize
		if in.LastExit != nil && (s.LastExit == nil || in.LastExit.Time.After(s.LastExit.Time)) {
			s.LastExit = in.LastExit
		}
		if in.Error != "" && s.Error == "" {
			s.Error = in.Error
			if len(statuses) > 1 {
				s.Error = fmt.Sprintf("instance %d: %s", in.Instance, in.Error)
			}
		}
		s.Reloading = s.Reloading || in.Next != nil
		if st.WaitingFor != "" && s.WaitingFor == "" {
			s.WaitingFor = st.WaitingFor
		}
	}
	if cfg.Route != "" {
		s.Listen = cfg.Listen
		switch {
		case len(cfg.Auth.Collections) > 0:
			s.Auth = cfg.Auth.Collections
		case cfg.Auth.Mode == "":
			s.Auth = config.AuthUser // as the route acts
		default:
			s.Auth = cfg.Auth.Mode
		}
	}
	return s
}

// instanceOf builds the view of one instance.
func instanceOf(st supervisor.Status, usage metrics.Usage) Instance {
	return Instance{
		Instance:         st.Instance,
		State:            string(st.State),
		Pid:              st.Pid,
		Ready:            st.Ready,
		StartedAt:        timePtr(st.StartedAt),
		UptimeMs:         st.Uptime().Milliseconds(),
		Restarts:         st.Restarts,
		Reloads:          st.Reloads,
		UnstableRestarts: st.UnstableRestarts,
		NextRestart:      timePtr(st.NextRestart),
		CPU:              usage.CPU,
		Memory:           usage.Memory,
		TreeSize:         usage.Processes,
		LastExit:         exitOf(st.LastExit),
		Error:            st.Error,
		Next:             copyOf(st.Next),
		Draining:         copyOf(st.Draining),
	}
}

func copyOf(c *supervisor.Copy) *Copy {
	if c == nil {
		return nil
	}
	return &Copy{Pid: c.Pid, StartedAt: c.StartedAt, Ready: c.Ready}
}

func reloadFailureOf(f *supervisor.ReloadFailure) *ReloadFailure {
	if f == nil {
		return nil
	}
	return &ReloadFailure{Time: f.Time, Error: f.Error, Exit: exitOf(f.Exit), LastLines: linesOf(f.LastLines)}
}

// The actions of an apply, one per process of the file.
const (
	ApplyAdded     = "added"     // new in the file: started (and its route mounted)
	ApplyRemoved   = "removed"   // gone from the file: stopped, route unmounted
	ApplyReloaded  = "reloaded"  // its command or environment changed: reloaded with the new config
	ApplyReplaced  = "replaced"  // anything else changed: stopped and started anew
	ApplyUnchanged = "unchanged" // not touched
	ApplyFailed    = "failed"    // the change could not be carried out (Error says why)
)

// ApplyChange is what an apply did to one process.
type ApplyChange struct {
	Process string `json:"process"`
	Action  string `json:"action"`
	// Detail says more, such as a route that moved.
	Detail string `json:"detail,omitempty"`
	Error  string `json:"error,omitempty"`
}

// ApplyResult is the outcome of an apply (POST /api/pm/apply): the
// change to each process of the file, or the config errors that made it
// change nothing.
type ApplyResult struct {
	File    string         `json:"file"`
	Changes []ApplyChange  `json:"changes"`
	Errors  []config.Error `json:"errors"`
}
