// Package health decides when a supervised process is ready, and
// restarts it when it stops answering: by an HTTP path over the
// process's socket or port, by a line in its output, or by its socket
// accepting connections.
//
// A check runs only while it has something to learn: it polls a starting
// process until it is ready (from every 50 ms, slowing to 1 s), then,
// unless liveness is on, it only watches for the next run. The new copy
// that a reload starts beside the current run is polled the same way, on
// its own slot, until it is ready.
package health

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/processman/processman/config"
	"github.com/processman/processman/gateway"
	"github.com/processman/processman/gateway/identity"
	"github.com/processman/processman/logs"
	"github.com/processman/processman/supervisor"
)

// Defaults of a check.
const (
	DefaultInterval = 5 * time.Second
	DefaultTimeout  = 2 * time.Second
	firstPoll       = 50 * time.Millisecond
	slowestPoll     = time.Second
	// watchPoll is how often a ready process without liveness checks is
	// looked at, to notice its next run.
	watchPoll = 250 * time.Millisecond
)

// Check watches one process.
type Check struct {
	Process *supervisor.Process
	// Output is the process's output, for line checks.
	Output *logs.Output
	// Targets are where the process listens, by slot (see
	// supervisor.Options.Drain); none for an unrouted process.
	Targets []gateway.Target
	// Config is the process's health setting; nil means the default.
	Config *config.Health
	// Secret, if set, signs HTTP checks as PocketBase itself (the
	// gateway's System identity), so that a sidecar verifying the
	// gateway's proof accepts them.
	Secret string
	Logger *slog.Logger

	clients []*http.Client // by slot, for HTTP checks
}

// Run checks until ctx is done.
func (c *Check) Run(ctx context.Context) {
	cfg := config.Health{}
	if c.Config != nil {
		cfg = *c.Config
	}
	interval := cfg.Interval.Std()
	if interval <= 0 {
		interval = DefaultInterval
	}
	timeout := cfg.Timeout.Std()
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	if cfg.HTTP != "" {
		for _, t := range c.Targets {
			c.clients = append(c.clients, httpClient(t, timeout))
		}
	}
	var lines <-chan logs.Line
	if cfg.Line != "" && c.Output != nil {
		sub, cancel := c.Output.Subscribe(0)
		defer cancel()
		lines = sub
	}

	pid, failures, poll := 0, 0, firstPoll
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case l, ok := <-lines:
			if !ok {
				lines = nil
				continue
			}
			if strings.Contains(l.Text, cfg.Line) {
				c.Process.SetReady(l.Pid, true)
			}
			continue
		case <-timer.C:
		}

		st := c.Process.Status()
		if next := st.Next; next != nil && !next.Ready && cfg.Line == "" {
			// a reload's new copy: ready once its own slot answers
			if c.probe(ctx, cfg, next.Slot, timeout) == nil {
				c.Process.SetReady(next.Pid, true)
			}
			timer.Reset(firstPoll)
			continue
		}
		if st.State != supervisor.Online {
			pid, failures, poll = 0, 0, firstPoll
			timer.Reset(watchPoll)
			continue
		}
		if st.Pid != pid {
			pid, failures, poll = st.Pid, 0, firstPoll
		}
		switch {
		case !st.Ready && cfg.Line != "":
			// the line decides; nothing to poll
			timer.Reset(watchPoll)
		case !st.Ready:
			if c.probe(ctx, cfg, st.Slot, timeout) == nil {
				c.Process.SetReady(pid, true)
				timer.Reset(watchPoll)
				continue
			}
			timer.Reset(poll)
			poll = min(poll*2, slowestPoll)
		case cfg.Failures > 0:
			if err := c.probe(ctx, cfg, st.Slot, timeout); err != nil {
				failures++
				c.log().Warn("processman: liveness check failed", "process", st.Name, "instance", st.Instance, "pid", pid,
					"failures", failures, "of", cfg.Failures, "error", err.Error())
				if failures >= cfg.Failures {
					c.log().Error("processman: restarting a process that stopped answering", "process", st.Name, "instance", st.Instance, "pid", pid)
					failures = 0
					reason := fmt.Sprintf("%d liveness checks failed in a row", cfg.Failures)
					_ = c.Process.Restart(supervisor.WithReason(ctx, reason))
				}
			} else {
				failures = 0
			}
			timer.Reset(interval)
		default:
			timer.Reset(watchPoll)
		}
	}
}

func (c *Check) log() *slog.Logger {
	if c.Logger == nil {
		return slog.Default()
	}
	return c.Logger
}

// probe runs one check of the run on slot: the HTTP path, else a
// connection to the socket. A process without a socket and without an
// HTTP path is ready once it has started.
func (c *Check) probe(ctx context.Context, cfg config.Health, slot int, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if slot >= len(c.Targets) {
		return nil
	}
	target := c.Targets[slot]
	if cfg.HTTP != "" {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://sidecar"+cfg.HTTP, nil)
		if err != nil {
			return err
		}
		if c.Secret != "" {
			identity.Apply(req.Header, c.Secret, time.Now(), http.MethodGet, cfg.HTTP, gateway.System)
		}
		resp, err := c.clients[slot].Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode < 200 || resp.StatusCode > 299 {
			return fmt.Errorf("%s answered %d", cfg.HTTP, resp.StatusCode)
		}
		return nil
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, target.Network, target.Address)
	if err != nil {
		return err
	}
	return conn.Close()
}

// httpClient makes the HTTP checks of target.
func httpClient(target gateway.Target, timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, target.Network, target.Address)
			},
			DisableKeepAlives: true,
		},
	}
}
