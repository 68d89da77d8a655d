package supervisor

import (
	"fmt"
	"math"
	"time"

	"github.com/processman/processman/config"
)

// decision is what to do after a process exits.
type decision struct {
	// restart after delay; otherwise the process ends in state.
	restart bool
	delay   time.Duration
	state   State
	// reason explains an errored state.
	reason string
}

// backoff keeps the count of consecutive unstable runs and decides on
// restarts. It holds no I/O so it can be tested on its own.
type backoff struct {
	unstable int
}

// afterExit applies the restart policy of cfg (with defaults applied) to
// an exit. A run of at least min_uptime is stable: it resets the count
// and the delay. Each unstable run multiplies the delay by the backoff
// factor up to the cap; more than max_restarts unstable runs in a row
// end in Errored.
func (b *backoff) afterExit(cfg config.Process, exit Exit) decision {
	if exit.Requested {
		return decision{state: Stopped}
	}
	switch cfg.Restart {
	case config.RestartNever:
		if exit.Code == 0 && exit.Signal == "" {
			return decision{state: Completed}
		}
		return decision{state: Stopped}
	case config.RestartOnFailure:
		if !exit.Failed() {
			return decision{state: Completed}
		}
	}
	if exit.Uptime >= cfg.MinUptime.Std() {
		b.unstable = 0
		return decision{restart: true, delay: cfg.RestartDelay.Std(), state: WaitingRestart}
	}
	b.unstable++
	if cfg.MaxRestarts >= 0 && b.unstable > cfg.MaxRestarts {
		return decision{state: Errored, reason: fmt.Sprintf(
			"exited %d times in a row within min_uptime (%s) of starting; not restarting (max_restarts %d). "+
				"See the last crash's output, fix the cause, then start it again",
			b.unstable, cfg.MinUptime, cfg.MaxRestarts)}
	}
	return decision{restart: true, delay: b.delay(cfg), state: WaitingRestart}
}

// delay is restart_delay × factor^(unstable-1), capped.
func (b *backoff) delay(cfg config.Process) time.Duration {
	base := float64(cfg.RestartDelay.Std())
	d := base * math.Pow(cfg.BackoffFactor, float64(max(b.unstable-1, 0)))
	if limit := float64(cfg.MaxRestartDelay.Std()); d > limit {
		d = max(limit, base)
	}
	return time.Duration(d)
}

// reset forgets the unstable runs, as after a manual start.
func (b *backoff) reset() { b.unstable = 0 }
