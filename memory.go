package processman

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/processman/processman/config"
	"github.com/processman/processman/metrics"
	"github.com/processman/processman/supervisor"
)

// defaultMemoryInterval is how often max_memory_restart is checked when
// Config.MemoryInterval does not say.
const defaultMemoryInterval = 2 * time.Second

// memoryLimits holds the processes that set max_memory_restart to it:
// every interval it samples the resident memory of each of their
// instances' process trees (and of no other process), and reloads an
// instance that is over its limit (a restart for an unrouted process),
// with the reason in its exit, event and lifecycle line.
type memoryLimits struct {
	interval time.Duration
	logger   *slog.Logger
	sampler  *metrics.Sampler

	mu      sync.Mutex
	limited []limitedProcess
	acting  map[*supervisor.Process]bool // a reload in progress
	started bool
	ctx     context.Context // ends the sampling
}

type limitedProcess struct {
	limit     config.Bytes
	instances []*supervisor.Process
}

func newMemoryLimits(ctx context.Context, interval time.Duration, logger *slog.Logger) *memoryLimits {
	if interval <= 0 {
		interval = defaultMemoryInterval
	}
	return &memoryLimits{interval: interval, logger: logger, sampler: metrics.NewSampler(),
		acting: map[*supervisor.Process]bool{}, ctx: ctx}
}

// watch adds the instances of a process whose limit is set; the sampling
// starts with the first.
func (m *memoryLimits) watch(cfg config.Process, instances []*supervisor.Process) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.limited = append(m.limited, limitedProcess{limit: cfg.MaxMemoryRestart, instances: instances})
	if !m.started {
		m.started = true
		go m.sample()
	}
}

// unwatch forgets the instances of a process that is removed.
func (m *memoryLimits) unwatch(instances []*supervisor.Process) {
	if len(instances) == 0 {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	// A new slice: check reads the old one without the lock.
	m.limited = slices.DeleteFunc(slices.Clone(m.limited), func(lp limitedProcess) bool {
		return len(lp.instances) > 0 && lp.instances[0] == instances[0]
	})
}

func (m *memoryLimits) sample() {
	tick := time.NewTicker(m.interval)
	defer tick.Stop()
	for {
		select {
		case <-m.ctx.Done():
			return
		case <-tick.C:
			m.check()
		}
	}
}

// check samples every limited instance once and acts on those over.
func (m *memoryLimits) check() {
	m.mu.Lock()
	limited := m.limited
	m.mu.Unlock()
	var pids []int
	for _, lp := range limited {
		for _, sp := range lp.instances {
			if pid := sp.Status().Pid; pid > 0 {
				pids = append(pids, pid)
			}
		}
	}
	if len(pids) == 0 {
		return
	}
	usage := m.sampler.Sample(pids...)
	for _, lp := range limited {
		for _, sp := range lp.instances {
			st := sp.Status()
			used, ok := usage[st.Pid]
			if !ok || st.Pid == 0 || st.State != supervisor.Online || config.Bytes(used.Memory) <= lp.limit {
				continue
			}
			m.act(sp, st.Pid, fmt.Sprintf("memory %s over max_memory_restart %s", megabytes(used.Memory), lp.limit))
		}
	}
}

// act reloads sp, whose run pid is over its limit, unless a reload of it
// is already under way.
func (m *memoryLimits) act(sp *supervisor.Process, pid int, reason string) {
	m.mu.Lock()
	if m.acting[sp] {
		m.mu.Unlock()
		return
	}
	m.acting[sp] = true
	m.mu.Unlock()
	m.logger.Warn("processman: "+reason+"; replacing it", "process", sp.Config().Name, "instance", sp.Instance(), "pid", pid)
	go func() {
		defer func() {
			m.mu.Lock()
			delete(m.acting, sp)
			m.mu.Unlock()
		}()
		if err := sp.Reload(supervisor.WithReason(m.ctx, reason)); err != nil && m.ctx.Err() == nil {
			m.logger.Error("processman: replacing a process over its memory limit failed",
				"process", sp.Config().Name, "instance", sp.Instance(), "error", err.Error())
		}
	}()
}

// megabytes writes a memory size as "312MB".
func megabytes(b uint64) string {
	return fmt.Sprintf("%.0fMB", float64(b)/float64(config.MB))
}
