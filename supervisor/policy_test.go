package supervisor

import (
	"testing"
	"time"

	"github.com/processman/processman/config"
)

func TestBackoffAfterExit(t *testing.T) {
	base := config.Process{
		Name: "p", Script: "x",
		RestartDelay:    config.Duration(100 * time.Millisecond),
		MaxRestartDelay: config.Duration(time.Second),
		BackoffFactor:   2,
		MaxRestarts:     3,
		MinUptime:       config.Duration(5 * time.Second),
	}.WithDefaults()
	crash := Exit{Code: 1, Uptime: time.Second}
	clean := Exit{Code: 0, Uptime: time.Second}

	type step struct {
		exit    Exit
		restart bool
		delay   time.Duration
		state   State
	}
	tests := []struct {
		name  string
		cfg   func(config.Process) config.Process
		steps []step
	}{
		{
			name: "unstable exits grow the delay, then error",
			steps: []step{
				{crash, true, 100 * time.Millisecond, WaitingRestart},
				{crash, true, 200 * time.Millisecond, WaitingRestart},
				{crash, true, 400 * time.Millisecond, WaitingRestart},
				{crash, false, 0, Errored},
			},
		},
		{
			name: "a stable run resets the count and the delay",
			steps: []step{
				{crash, true, 100 * time.Millisecond, WaitingRestart},
				{crash, true, 200 * time.Millisecond, WaitingRestart},
				{Exit{Code: 1, Uptime: 6 * time.Second}, true, 100 * time.Millisecond, WaitingRestart},
				{crash, true, 100 * time.Millisecond, WaitingRestart},
				{crash, true, 200 * time.Millisecond, WaitingRestart},
			},
		},
		{
			name: "the delay is capped",
			cfg:  func(c config.Process) config.Process { c.MaxRestarts = -1; return c },
			steps: []step{
				{crash, true, 100 * time.Millisecond, WaitingRestart},
				{crash, true, 200 * time.Millisecond, WaitingRestart},
				{crash, true, 400 * time.Millisecond, WaitingRestart},
				{crash, true, 800 * time.Millisecond, WaitingRestart},
				{crash, true, time.Second, WaitingRestart},
				{crash, true, time.Second, WaitingRestart},
			},
		},
		{
			name: "factor 1 keeps the delay fixed",
			cfg:  func(c config.Process) config.Process { c.BackoffFactor = 1; return c },
			steps: []step{
				{crash, true, 100 * time.Millisecond, WaitingRestart},
				{crash, true, 100 * time.Millisecond, WaitingRestart},
			},
		},
		{
			name: "never does not restart: a failure is stopped, a clean exit completed",
			cfg:  func(c config.Process) config.Process { c.Restart = config.RestartNever; return c },
			steps: []step{
				{crash, false, 0, Stopped},
				{clean, false, 0, Completed},
				{Exit{Code: 0, Signal: "SIGKILL"}, false, 0, Stopped},
			},
		},
		{
			name: "on-failure completes after a clean exit and restarts after a failure",
			cfg:  func(c config.Process) config.Process { c.Restart = config.RestartOnFailure; return c },
			steps: []step{
				{clean, false, 0, Completed},
				{crash, true, 100 * time.Millisecond, WaitingRestart},
				{Exit{Code: -1, Signal: "SIGSEGV", Uptime: time.Second}, true, 200 * time.Millisecond, WaitingRestart},
			},
		},
		{
			name: "a requested stop is never restarted",
			steps: []step{
				{Exit{Code: -1, Signal: "SIGTERM", Requested: true}, false, 0, Stopped},
			},
		},
		{
			name: "no delay when restart_delay is zero",
			cfg:  func(c config.Process) config.Process { c.RestartDelay = 0; return c },
			steps: []step{
				{crash, true, 0, WaitingRestart},
				{crash, true, 0, WaitingRestart},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := base
			if tt.cfg != nil {
				cfg = tt.cfg(cfg)
			}
			var b backoff
			for i, s := range tt.steps {
				d := b.afterExit(cfg, s.exit)
				if d.restart != s.restart || d.delay != s.delay || d.state != s.state {
					t.Fatalf("step %d: got restart=%v delay=%v state=%s, want restart=%v delay=%v state=%s",
						i, d.restart, d.delay, d.state, s.restart, s.delay, s.state)
				}
				if d.state == Errored && d.reason == "" {
					t.Fatalf("step %d: errored without a reason", i)
				}
			}
		})
	}
}
