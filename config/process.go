package config

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Restart policies.
const (
	RestartAlways    = "always"
	RestartOnFailure = "on-failure"
	RestartNever     = "never"
)

// How a routed process listens.
const (
	ListenUnix = "unix"
	ListenTCP  = "tcp"
)

// Auth modes of a route.
const (
	AuthPublic    = "public"
	AuthUser      = "user"
	AuthSuperuser = "superuser"
)

// ReservedNames cannot name a process: they are paths of the control API
// under /api/pm.
var ReservedNames = []string{"list", "events", "openapi.json", "apply"}

// scriptRuntimes maps script extensions to what runs them
// (docs/config.md#launch).
var scriptRuntimes = map[string]string{
	".py":  "python",
	".js":  "node",
	".mjs": "node",
	".cjs": "node",
	".ts":  "tsx",
	".mts": "tsx",
	".cts": "tsx",
	".sh":  "bash",
}

// ScriptRuntime names what runs a script by its extension: "python",
// "node", "tsx" or "bash"; "" for a program that runs by itself.
func ScriptRuntime(script string) string {
	return scriptRuntimes[strings.ToLower(filepath.Ext(script))]
}

// Interpreter values with a meaning of their own.
const (
	// InterpreterAuto picks the interpreter by the script's extension, as
	// an empty Interpreter does.
	InterpreterAuto = "auto"
	// InterpreterNone runs the script directly, without an interpreter.
	InterpreterNone = "none"
)

// Defaults applied by [Process.WithDefaults] to zero-valued fields.
const (
	DefaultRestart         = RestartAlways
	DefaultMaxRestarts     = 10
	DefaultMinUptime       = 5 * time.Second
	DefaultRestartDelay    = 100 * time.Millisecond
	DefaultMaxRestartDelay = 30 * time.Second
	DefaultBackoffFactor   = 2.0
	DefaultKillSignal      = "SIGTERM"
	DefaultKillTimeout     = 5 * time.Second
	DefaultLogMaxSizeMB    = 10
	DefaultLogMaxFiles     = 5
	DefaultResponseTimeout = 5 * time.Minute
	DefaultReadyTimeout    = time.Minute
	DefaultDrainTimeout    = 30 * time.Second
)

// MaxInstances is the most instances a process may have.
const MaxInstances = 64

// Process describes one managed process. It is what an entry of
// pb_processes.json decodes into, and what Go code registers through the
// plugin's Config. Every field is documented in docs/config.md and in
// pb_processes.schema.json; a test keeps the three in sync.
type Process struct {
	// Name identifies the process in logs, the API and the CLI (required).
	Name string `json:"name"`

	// Script is the file or command to run (required).
	Script string `json:"script"`

	// Args are passed after the script.
	Args []string `json:"args,omitempty"`

	// Cwd is the working directory. In a config file a relative cwd is
	// resolved against the file's directory, and an empty one is that
	// directory; for processes registered from Go an empty Cwd is the
	// directory containing pb_data.
	Cwd string `json:"cwd,omitempty"`

	// Instances is how many copies of the process run, each with its
	// index in PB_INSTANCE (and NODE_APP_INSTANCE); a route balances its
	// requests over those that are ready. Default 1, at most
	// MaxInstances.
	Instances int `json:"instances,omitempty"`

	// ReadyTimeout is how long the new copy that a reload of a routed
	// process starts has to become ready; if it is not by then, the
	// reload is given up and the old copy keeps serving. Default 1m.
	ReadyTimeout Duration `json:"ready_timeout,omitempty"`

	// DrainTimeout is how long the old copy replaced by a reload of a
	// routed process may finish its requests and streams before it is
	// stopped. Default 30s.
	DrainTimeout Duration `json:"drain_timeout,omitempty"`

	// MaxMemoryRestart reloads (routed) or restarts an instance whose
	// process tree's resident memory goes over it. Zero: no limit.
	MaxMemoryRestart Bytes `json:"max_memory_restart,omitempty"`

	// Interpreter runs the script; empty or InterpreterAuto ("auto")
	// picks one from the script's extension; InterpreterNone ("none")
	// runs the script directly.
	Interpreter string `json:"interpreter,omitempty"`

	// InterpreterArgs are passed to the interpreter before the script.
	InterpreterArgs []string `json:"interpreter_args,omitempty"`

	// Env holds extra environment variables. They override EnvFile, which
	// overrides the environment inherited from PocketBase.
	Env map[string]string `json:"env,omitempty"`

	// EnvFile is a dotenv file loaded into the environment, relative to Cwd.
	EnvFile string `json:"env_file,omitempty"`

	// Restart is the restart policy: RestartAlways (default),
	// RestartOnFailure or RestartNever.
	Restart string `json:"restart,omitempty"`

	// MaxRestarts is how many consecutive unstable restarts (runs shorter
	// than MinUptime) are tried before the process is marked errored.
	// Zero means the default (10); -1 means no limit.
	MaxRestarts int `json:"max_restarts,omitempty"`

	// MinUptime is how long a run must last to count as stable; a stable
	// run resets the backoff and the unstable-restart count. Default 5s.
	MinUptime Duration `json:"min_uptime,omitempty"`

	// RestartDelay is the delay before the first restart. Default 100ms.
	// In Go, zero means the default and a negative value means no delay
	// (as "0s" does in a config file); the same holds for every Duration.
	RestartDelay Duration `json:"restart_delay,omitempty"`

	// MaxRestartDelay caps the exponential backoff. Default 30s.
	MaxRestartDelay Duration `json:"max_restart_delay,omitempty"`

	// BackoffFactor multiplies the delay after each consecutive unstable
	// restart. Default 2; 1 keeps the delay fixed.
	BackoffFactor float64 `json:"backoff_factor,omitempty"`

	// KillSignal is sent to the process group to stop it. Default SIGTERM.
	KillSignal string `json:"kill_signal,omitempty"`

	// KillTimeout is how long to wait after KillSignal before SIGKILL of
	// the whole process group. Default 5s.
	KillTimeout Duration `json:"kill_timeout,omitempty"`

	// Watch restarts the process when files change under Cwd, or under
	// the listed paths.
	Watch Watch `json:"watch,omitzero"`

	// IgnoreWatch lists glob patterns whose changes are ignored, besides
	// the always-ignored .git, node_modules, .venv, venv, __pycache__ and
	// pb_data.
	IgnoreWatch []string `json:"ignore_watch,omitempty"`

	// Disabled keeps the entry without starting it.
	Disabled bool `json:"disabled,omitempty"`

	// DependsOn names the processes that must reach a condition
	// (started, ready or completed_successfully) before this one starts;
	// at shutdown this one stops before them.
	DependsOn Dependencies `json:"depends_on,omitempty"`

	// Cron runs the process on PocketBase's scheduler instead of at
	// start, with an expression in PocketBase's cron syntax such as
	// "0 3 * * *". A run still going when the next is due is not doubled:
	// that one is skipped. The restart default is then "never".
	Cron string `json:"cron,omitempty"`

	// LogFile is the per-process log file. The zero value means the
	// default file pb_data/processman/logs/<name>.log.
	LogFile LogFile `json:"log_file,omitzero"`

	// LogMaxSizeMB rotates the log file at this size. Default 10.
	LogMaxSizeMB int `json:"log_max_size_mb,omitempty"`

	// Route is the mount prefix, such as "/api/agent", under which
	// PocketBase forwards requests to the process. Empty: not exposed.
	Route string `json:"route,omitempty"`

	// Upstream, instead of Script, is a service processman does not
	// start: "http://host:port" or "unix:/path". The route forwards to
	// it as to a process of its own (auth, identity signing, streaming,
	// health gating, logs). It needs Route and GatewaySecretEnv.
	Upstream string `json:"upstream,omitempty"`

	// GatewaySecretEnv names the variable (in Env, EnvFile or
	// PocketBase's environment) whose value signs the identity proofs of
	// an Upstream route: the service verifies them with the same value
	// as its PB_GATEWAY_SECRET. At least 32 characters; never logged.
	GatewaySecretEnv string `json:"gateway_secret_env,omitempty"`

	// Listen is how a routed process listens: ListenUnix (default) on the
	// socket in PB_SOCKET, or ListenTCP on the loopback port in PORT.
	Listen string `json:"listen,omitempty"`

	// Auth says who may call the route; the zero value is AuthUser.
	Auth Auth `json:"auth,omitzero"`

	// BodyLimitMB caps request bodies of the route, in megabytes; 0 means
	// no limit.
	BodyLimitMB int `json:"body_limit_mb,omitempty"`

	// ResponseTimeout bounds the wait for the response headers of the
	// process. Default 5m.
	ResponseTimeout Duration `json:"response_timeout,omitempty"`

	// LogRequests says which calls through the route are logged:
	// "all" (default), "errors" or "none".
	LogRequests string `json:"log_requests,omitempty"`

	// Health is the readiness (and optional liveness) check. Nil: a
	// routed process is ready when its socket accepts connections, any
	// other when it has started.
	Health *Health `json:"health,omitempty"`

	// LogMaxFiles is how many rotated files are kept. Default 5; zero in a
	// config file is taken as the default, use 1 to keep the fewest.
	LogMaxFiles int `json:"log_max_files,omitempty"`
}

// WithDefaults returns a copy of p whose zero-valued fields hold their
// defaults. A negative duration is an explicit zero and becomes zero.
func (p Process) WithDefaults() Process {
	if p.Instances == 0 {
		p.Instances = 1
	}
	if p.Interpreter == InterpreterAuto {
		p.Interpreter = ""
	}
	if p.Restart == "" {
		p.Restart = DefaultRestart
		if p.Cron != "" {
			p.Restart = RestartNever
		}
	}
	if p.MaxRestarts == 0 {
		p.MaxRestarts = DefaultMaxRestarts
	}
	p.MinUptime = p.MinUptime.orDefault(DefaultMinUptime)
	p.RestartDelay = p.RestartDelay.orDefault(DefaultRestartDelay)
	p.MaxRestartDelay = p.MaxRestartDelay.orDefault(DefaultMaxRestartDelay)
	if p.BackoffFactor == 0 {
		p.BackoffFactor = DefaultBackoffFactor
	}
	if p.KillSignal == "" {
		p.KillSignal = DefaultKillSignal
	}
	p.KillTimeout = p.KillTimeout.orDefault(DefaultKillTimeout)
	if p.Route != "" {
		if p.Listen == "" {
			p.Listen = ListenUnix
		}
		p.ResponseTimeout = p.ResponseTimeout.orDefault(DefaultResponseTimeout)
		p.ReadyTimeout = p.ReadyTimeout.orDefault(DefaultReadyTimeout)
		p.DrainTimeout = p.DrainTimeout.orDefault(DefaultDrainTimeout)
	}
	if p.LogMaxSizeMB == 0 {
		p.LogMaxSizeMB = DefaultLogMaxSizeMB
	}
	if p.LogMaxFiles == 0 {
		p.LogMaxFiles = DefaultLogMaxFiles
	}
	return p
}

// Signal returns the syscall signal named by KillSignal (with or without
// the "SIG" prefix).
func (p Process) Signal() (syscall.Signal, error) {
	return ParseSignal(p.KillSignal)
}

// ParseSignal parses a signal name such as "SIGTERM" or "TERM".
func ParseSignal(name string) (syscall.Signal, error) {
	if name == "" {
		name = DefaultKillSignal
	}
	sig, ok := signals[strings.TrimPrefix(strings.ToUpper(name), "SIG")]
	if !ok {
		return 0, fmt.Errorf("unknown signal %q: use SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR1, SIGUSR2 or SIGKILL", name)
	}
	return sig, nil
}

// Duration is a time.Duration written as a string such as "5s" in JSON.
type Duration time.Duration

// Std returns d as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// String formats d like time.Duration.
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON writes d as a duration string; a negative d, which stands
// for an explicit zero, as "0s".
func (d Duration) MarshalJSON() ([]byte, error) {
	if d < 0 {
		d = 0
	}
	return json.Marshal(time.Duration(d).String())
}

// orDefault returns def for the zero value and zero for a negative
// value, which stands for an explicit zero.
func (d Duration) orDefault(def time.Duration) Duration {
	switch {
	case d == 0:
		return Duration(def)
	case d < 0:
		return 0
	}
	return d
}

// UnmarshalJSON reads a duration string such as "500ms" or "5s".
func (d *Duration) UnmarshalJSON(data []byte) error {
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("want a duration string such as \"5s\"")
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("invalid duration %q: write it like \"500ms\", \"5s\" or \"1m30s\"", s)
	}
	if v == 0 {
		// An explicit zero in a file means "none": keep it distinct from
		// the unset zero value that gets the default.
		v = -1
	}
	*d = Duration(v)
	return nil
}

// Watch is the watch setting: off, on for Cwd, or on for a list of paths.
// In JSON it is a boolean or a list of paths.
type Watch struct {
	Enabled bool
	Paths   []string
}

// IsZero reports whether watching is off.
func (w Watch) IsZero() bool { return !w.Enabled && len(w.Paths) == 0 }

// MarshalJSON writes a boolean, or the list of paths.
func (w Watch) MarshalJSON() ([]byte, error) {
	if len(w.Paths) > 0 {
		return json.Marshal(w.Paths)
	}
	return json.Marshal(w.Enabled)
}

// UnmarshalJSON reads a boolean or a list of paths.
func (w *Watch) UnmarshalJSON(data []byte) error {
	var on bool
	if err := json.Unmarshal(data, &on); err == nil {
		*w = Watch{Enabled: on}
		return nil
	}
	var paths []string
	if err := json.Unmarshal(data, &paths); err != nil {
		return fmt.Errorf("want true, false or a list of paths")
	}
	*w = Watch{Enabled: len(paths) > 0, Paths: paths}
	return nil
}

// LogFile is the log file setting. The zero value means the default file;
// Disabled turns file logging off; Path names a file.
// In JSON it is a boolean or a path.
type LogFile struct {
	Disabled bool
	Path     string
}

// IsZero reports whether the default applies.
func (l LogFile) IsZero() bool { return !l.Disabled && l.Path == "" }

// MarshalJSON writes false, a path, or true for the default.
func (l LogFile) MarshalJSON() ([]byte, error) {
	switch {
	case l.Disabled:
		return json.Marshal(false)
	case l.Path != "":
		return json.Marshal(l.Path)
	}
	return json.Marshal(true)
}

// UnmarshalJSON reads a boolean or a path.
func (l *LogFile) UnmarshalJSON(data []byte) error {
	var on bool
	if err := json.Unmarshal(data, &on); err == nil {
		*l = LogFile{Disabled: !on}
		return nil
	}
	var path string
	if err := json.Unmarshal(data, &path); err != nil {
		return fmt.Errorf("want a path, true or false")
	}
	*l = LogFile{Path: path}
	return nil
}

// Auth is who may call a route: a mode (AuthPublic, AuthUser,
// AuthSuperuser) or a list of auth collection names. In JSON it is a
// string or a list of strings.
type Auth struct {
	Mode        string
	Collections []string
}

// IsZero reports whether the default (AuthUser) applies.
func (a Auth) IsZero() bool { return a.Mode == "" && len(a.Collections) == 0 }

// MarshalJSON writes the mode, or the list of collections.
func (a Auth) MarshalJSON() ([]byte, error) {
	if len(a.Collections) > 0 {
		return json.Marshal(a.Collections)
	}
	if a.Mode == "" {
		return json.Marshal(AuthUser)
	}
	return json.Marshal(a.Mode)
}

// UnmarshalJSON reads a mode or a list of collection names.
func (a *Auth) UnmarshalJSON(data []byte) error {
	var mode string
	if err := json.Unmarshal(data, &mode); err == nil {
		*a = Auth{Mode: mode}
		return nil
	}
	var collections []string
	if err := json.Unmarshal(data, &collections); err != nil {
		return fmt.Errorf("want \"public\", \"user\", \"superuser\" or a list of collection names")
	}
	*a = Auth{Collections: collections}
	return nil
}

// Health is a readiness and liveness check.
type Health struct {
	// HTTP is a path requested over the process's socket or port; the
	// process is ready when it answers 2xx.
	HTTP string `json:"http,omitempty"`
	// Line marks the process ready when an output line contains it.
	Line string `json:"line,omitempty"`
	// Interval is the time between liveness checks once ready. Default 5s.
	Interval Duration `json:"interval,omitempty"`
	// Timeout bounds one check. Default 2s.
	Timeout Duration `json:"timeout,omitempty"`
	// Failures is how many liveness checks in a row may fail before the
	// process is restarted; 0 checks readiness only.
	Failures int `json:"failures,omitempty"`
}
