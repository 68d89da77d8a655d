package processman

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/processman/processman/internal/redact"
	"github.com/processman/processman/supervisor"
)

// terminal writes processman's one-line lifecycle messages on
// PocketBase's stdout, the way PM2's daemon log reads: a process started
// with its pid, ready, exited with its code or signal, restarting in how
// long, errored and why, restarted because files changed. With quiet
// set (Config.Quiet, --processesQuiet) it writes nothing; the same events
// are in PocketBase's logs either way.
type terminal struct {
	mu    sync.Mutex
	w     io.Writer
	quiet *bool // read at every line: the flag is parsed after Register
}

// say writes one line, with the time in the format of PocketBase's own
// start banner.
func (t *terminal) say(format string, args ...any) {
	if t == nil || *t.quiet {
		return
	}
	line := time.Now().Format("2006/01/02 15:04:05") + " processman: " + fmt.Sprintf(format, args...)
	t.mu.Lock()
	defer t.mu.Unlock()
	fmt.Fprintln(t.w, line)
}

// onEvent is a process event hook: it says the event.
func (t *terminal) onEvent(e *ProcessEvent) error {
	if line := lifecycleLine(e); line != "" {
		t.say("%s", line)
	}
	return e.Next()
}

// lifecycleLine is the message of one process event, "" for none.
func lifecycleLine(e *ProcessEvent) string {
	st := e.Status
	who := e.Ref()
	switch e.Type {
	case EventStarted:
		line := fmt.Sprintf("%s started (pid %d): %s", who, st.Pid, shorten(displayCommand(st.Dir, redact.Args(st.Command)), 200))
		for _, w := range st.Warnings {
			line += "\n  warning: " + w
		}
		return line
	case EventReady:
		if e.atStart || st.StartedAt.IsZero() {
			return "" // no readiness check: ready is started
		}
		return fmt.Sprintf("%s ready (pid %d, after %s)", who, st.Pid, roundDuration(time.Since(st.StartedAt)))
	case EventExited, EventCrashed:
		switch {
		case e.Exit == nil:
			return ""
		case e.Exit.Requested && e.Exit.Reason != "":
			return fmt.Sprintf("%s stopped pid %d: %s", who, e.Exit.Pid, e.Exit.Reason)
		case e.Exit.Requested:
			return "" // a stop asked for is said as stopped
		}
		line := fmt.Sprintf("%s exited with %s after %s", who, exitHow(*e.Exit), roundDuration(e.Exit.Uptime))
		crash := st.LastCrash
		if crash != nil && crash.Pid == e.Exit.Pid && len(crash.LastLines) > 0 {
			line += fmt.Sprintf("; last output: %q", shorten(crash.LastLines[len(crash.LastLines)-1].Text, 200))
		}
		if st.State == supervisor.WaitingRestart && !st.NextRestart.IsZero() {
			line += fmt.Sprintf("; restarting in %s", roundDuration(time.Until(st.NextRestart)))
		}
		if crash != nil && crash.Pid == e.Exit.Pid && crash.Hint != "" {
			line += "\n  hint: " + crash.Hint
		}
		return line
	case EventErrored:
		return fmt.Sprintf("%s errored: %s", who, st.Error)
	case EventStopped:
		return fmt.Sprintf("%s stopped", who)
	case EventCompleted:
		return fmt.Sprintf("%s completed", who)
	case EventWaiting:
		return fmt.Sprintf("%s waiting for %s", who, st.WaitingFor)
	case EventReloading:
		return fmt.Sprintf("%s reloading: new copy started (pid %d) beside pid %d", who, e.Reload.Pid, e.Reload.OldPid)
	case EventReloaded:
		if e.Reload.OldPid == 0 {
			return fmt.Sprintf("%s reloaded: pid %d serves", who, e.Reload.Pid)
		}
		return fmt.Sprintf("%s reloaded: pid %d serves, pid %d finishes its requests", who, e.Reload.Pid, e.Reload.OldPid)
	case EventReloadFailed:
		return fmt.Sprintf("%s reload given up: %s", who, e.Reload.Error)
	}
	return ""
}

// displayCommand writes a command line short: paths under the working
// directory relative to it (".venv/bin/python3 main.py").
func displayCommand(dir string, argv []string) string {
	words := make([]string, len(argv))
	for i, arg := range argv {
		words[i] = arg
		if dir != "" && filepath.IsAbs(arg) {
			if rel, err := filepath.Rel(dir, arg); err == nil && !strings.HasPrefix(rel, "..") {
				words[i] = rel
			}
		}
	}
	return strings.Join(words, " ")
}

// exitHow says how a run ended: "code 1" or "signal SIGKILL".
func exitHow(e supervisor.Exit) string {
	if e.Signal != "" {
		return "signal " + e.Signal
	}
	return fmt.Sprintf("code %d", e.Code)
}

// roundDuration writes a duration the way people read it: 250ms, 3.2s, 2m10s.
func roundDuration(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}
