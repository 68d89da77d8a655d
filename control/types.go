package control

import (
	"time"

	"github.com/processman/processman/config"
	"github.com/processman/processman/logs"
	"github.com/processman/processman/metrics"
	"github.com/processman/processman/supervisor"
)

// Summary is a process as `GET /api/pm/list` shows it. The OpenAPI
// document (openapi.json) describes every field.
type Summary struct {
	Name             string     `json:"name"`
	State            string     `json:"state"`
	Pid              int        `json:"pid"`
	Ready            bool       `json:"ready"`
	StartedAt        *time.Time `json:"started_at,omitempty"`
	UptimeMs         int64      `json:"uptime_ms"`
	Restarts         int        `json:"restarts"`
	UnstableRestarts int        `json:"unstable_restarts"`
	NextRestart      *time.Time `json:"next_restart,omitempty"`
	CPU              float64    `json:"cpu"`
	Memory           uint64     `json:"memory"`
	TreeSize         int        `json:"tree_size"`
	LastExit         *Exit      `json:"last_exit"`
	Error            string     `json:"error"`
	Route            string     `json:"route"`
	Auth             any        `json:"auth"`
	Listen           string     `json:"listen"`
	Watch            bool       `json:"watch"`
	Disabled         bool       `json:"disabled"`
	Runtime          string     `json:"runtime"`
}

// Exit is how a run ended.
type Exit struct {
	Time      time.Time `json:"time"`
	Pid       int       `json:"pid"`
	Code      int       `json:"code"`
	Signal    string    `json:"signal"`
	UptimeMs  int64     `json:"uptime_ms"`
	Requested bool      `json:"requested"`
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
	Time   time.Time `json:"time"`
	Stream string    `json:"stream"`
	Pid    int       `json:"pid"`
	Text   string    `json:"text"`
}

// Detail is a process as `GET /api/pm/{name}` shows it.
type Detail struct {
	Summary
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
}

// Policy is how the process is restarted and stopped.
type Policy struct {
	Restart     string `json:"restart"`
	MaxRestarts int    `json:"max_restarts"`
	MinUptime   string `json:"min_uptime"`
	KillSignal  string `json:"kill_signal"`
	KillTimeout string `json:"kill_timeout"`
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
	return &Exit{Time: e.Time, Pid: e.Pid, Code: e.Code, Signal: e.Signal, UptimeMs: e.Uptime.Milliseconds(), Requested: e.Requested}
}

func lineOf(l logs.Line) Line {
	return Line{Time: l.Time, Stream: l.Stream, Pid: l.Pid, Text: l.Text}
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

// summaryOf builds the summary of a process from its status and config.
func summaryOf(st supervisor.Status, cfg config.Process, usage metrics.Usage) Summary {
	s := Summary{
		Name:             st.Name,
		State:            string(st.State),
		Pid:              st.Pid,
		Ready:            st.Ready,
		StartedAt:        timePtr(st.StartedAt),
		UptimeMs:         st.Uptime().Milliseconds(),
		Restarts:         st.Restarts,
		UnstableRestarts: st.UnstableRestarts,
		NextRestart:      timePtr(st.NextRestart),
		CPU:              usage.CPU,
		Memory:           usage.Memory,
		TreeSize:         usage.Processes,
		LastExit:         exitOf(st.LastExit),
		Error:            st.Error,
		Route:            cfg.Route,
		Watch:            !cfg.Watch.IsZero(),
		Disabled:         cfg.Disabled,
		Runtime:          st.Runtime,
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
