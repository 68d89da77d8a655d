package health

import (
	"context"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/processman/processman/config"
	"github.com/processman/processman/gateway"
)

// The states of an upstream, as the gateway shows them.
const (
	UpstreamChecking    = "checking"
	UpstreamReachable   = "reachable"
	UpstreamUnreachable = "unreachable"
)

// Upstream watches a service that processman does not start, behind an
// upstream route: it takes requests while its health.http path answers
// 2xx (signed as PocketBase itself), or, without one, while its address
// accepts connections. It is polled every second until it answers, then
// every interval; failures checks in a row (default 1) take it out of
// service until it answers again.
type Upstream struct {
	// Name is the route's entry, for the logs.
	Name   string
	Target gateway.Target
	// Config is the entry's health setting; nil means a connection check.
	Config *config.Health
	// Secret signs HTTP checks.
	Secret string
	Logger *slog.Logger

	state atomic.Value // string
}

// Status is the gateway's view: the state, and whether it takes requests.
func (u *Upstream) Status() (string, bool) {
	state, _ := u.state.Load().(string)
	if state == "" {
		state = UpstreamChecking
	}
	return state, state == UpstreamReachable
}

// Run checks until ctx is done.
func (u *Upstream) Run(ctx context.Context) {
	cfg := config.Health{}
	if u.Config != nil {
		cfg = *u.Config
	}
	interval, timeout := cfg.Interval.Std(), cfg.Timeout.Std()
	if interval <= 0 {
		interval = DefaultInterval
	}
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	failuresAllowed := max(cfg.Failures, 1)
	probe := &Check{Targets: []gateway.Target{u.Target}, Secret: u.Secret}
	if cfg.HTTP != "" {
		probe.clients = []*http.Client{httpClient(u.Target, timeout)}
	}
	failures := 0
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		err := probe.probe(ctx, cfg, 0, timeout)
		state, _ := u.Status()
		switch {
		case err == nil:
			failures = 0
			if state != UpstreamReachable {
				u.set(UpstreamReachable, nil)
			}
			timer.Reset(interval)
		case ctx.Err() != nil:
			return
		default:
			failures++
			if state != UpstreamUnreachable && (state == UpstreamChecking || failures >= failuresAllowed) {
				u.set(UpstreamUnreachable, err)
			}
			if state == UpstreamReachable && failures < failuresAllowed {
				timer.Reset(interval)
			} else {
				timer.Reset(min(time.Second, interval))
			}
		}
	}
}

func (u *Upstream) set(state string, err error) {
	u.state.Store(state)
	log := u.Logger
	if log == nil {
		log = slog.Default()
	}
	if err != nil {
		log.Warn("processman: upstream "+state, "process", u.Name, "upstream", u.Target.Network+":"+u.Target.Address, "error", err.Error())
		return
	}
	log.Info("processman: upstream "+state, "process", u.Name, "upstream", u.Target.Network+":"+u.Target.Address)
}
