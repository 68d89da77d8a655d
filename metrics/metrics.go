// Package metrics reads the CPU and memory use of whole process trees,
// on demand: nothing runs in the background, so a server nobody looks at
// spends no CPU on metrics.
//
//	sampler := metrics.NewSampler()
//	usage := sampler.Sample(pid1, pid2) // usage[pid1].CPU, .Memory, .Processes
//
// A tree is a process and all its descendants, found through their
// parent ids, so a grandchild that left its process group still counts.
// The numbers come from gopsutil.
package metrics

import (
	"context"
	"sync"
	"time"

	"github.com/shirou/gopsutil/v4/process"
)

// Usage is what one process tree uses.
type Usage struct {
	// CPU is the CPU time the tree used since the previous sample, as a
	// percentage of one core (200 means two cores busy). On the first
	// sample of a tree it is the average since its root started.
	CPU float64 `json:"cpu"`
	// Memory is the resident memory of the tree in bytes.
	Memory uint64 `json:"memory"`
	// Processes counts the processes of the tree.
	Processes int `json:"processes"`
}

// DefaultMaxAge is how long a sample is reused by NewSampler's samplers.
const DefaultMaxAge = time.Second

// Sampler samples process trees and remembers the previous CPU times of
// each root, to give CPU use over the interval between two looks. It is
// safe for concurrent use.
type Sampler struct {
	// MaxAge is how long a sample is reused: asking again within it
	// returns the same numbers without reading /proc, so that many
	// dashboards polling at once cost one sample.
	MaxAge time.Duration

	mu      sync.Mutex
	last    map[int]mark    // CPU marks by root pid, from earlier samples
	cache   map[int]Usage   // the last sample's results
	at      time.Time       // when the cache was filled
	parents map[int32]int32 // parent of every pid seen by the last scan
	fullAt  time.Time       // when every parent was last read afresh
}

// rereadParents is how often the parents of all processes are read
// again. In between only new pids are read: a process's parent changes
// only when its parent exits, which takes it out of any tree anyway, and
// a pid reused within this time is the only case it could misplace.
const rereadParents = 10 * time.Second

// forgetAfter is how long the CPU mark of a root nobody asks about is kept.
const forgetAfter = 10 * time.Minute

// mark is a root's total CPU time at a moment.
type mark struct {
	cpu  float64 // seconds
	when time.Time
}

// NewSampler returns a Sampler with MaxAge DefaultMaxAge.
func NewSampler() *Sampler {
	// gopsutil reads the boot time (from /proc/stat) for every process it
	// looks at unless told to keep it; it does not change while running.
	process.EnableBootTimeCache(true)
	return &Sampler{MaxAge: DefaultMaxAge, last: map[int]mark{}}
}

// Sample returns the usage of the tree of each given pid; a pid that no
// longer exists (or 0) is missing from the result.
func (s *Sampler) Sample(roots ...int) map[int]Usage {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	fresh := s.cache != nil && now.Sub(s.at) < s.MaxAge
	if fresh {
		out := make(map[int]Usage, len(roots))
		complete := true
		for _, pid := range roots {
			if u, ok := s.cache[pid]; ok {
				out[pid] = u
			} else if pid > 0 {
				complete = false
			}
		}
		if complete {
			return out
		}
	}

	ctx := context.Background()
	children := s.childrenByParent(ctx, now)
	out := make(map[int]Usage, len(roots))
	for _, root := range roots {
		if root <= 0 {
			continue
		}
		usage, cpu, ok := treeUsage(ctx, int32(root), children)
		if !ok {
			continue
		}
		if prev, seen := s.last[root]; seen && now.After(prev.when) {
			usage.CPU = percent(cpu-prev.cpu, now.Sub(prev.when))
		} else if created, err := (&process.Process{Pid: int32(root)}).CreateTimeWithContext(ctx); err == nil {
			usage.CPU = percent(cpu, now.Sub(time.UnixMilli(created)))
		}
		out[root] = usage
		s.last[root] = mark{cpu: cpu, when: now}
	}
	for pid, m := range s.last {
		if now.Sub(m.when) > forgetAfter {
			delete(s.last, pid) // a run that ended long ago
		}
	}
	s.cache, s.at = out, now
	return out
}

// childrenByParent maps every process to its children, from one listing
// of the system's processes.
func (s *Sampler) childrenByParent(ctx context.Context, now time.Time) map[int32][]int32 {
	pids, err := process.PidsWithContext(ctx)
	if err != nil {
		return nil
	}
	full := now.Sub(s.fullAt) >= rereadParents
	if full {
		s.fullAt = now
	}
	parents := make(map[int32]int32, len(pids))
	children := make(map[int32][]int32, len(pids))
	for _, pid := range pids {
		ppid, known := s.parents[pid]
		if !known || full {
			if ppid, err = (&process.Process{Pid: pid}).PpidWithContext(ctx); err != nil {
				continue // gone meanwhile
			}
		}
		parents[pid] = ppid
		children[ppid] = append(children[ppid], pid)
	}
	s.parents = parents
	return children
}

// treeUsage sums the tree of root: its usage and its total CPU seconds.
// ok is false when root does not exist.
func treeUsage(ctx context.Context, root int32, children map[int32][]int32) (usage Usage, cpu float64, ok bool) {
	seen := map[int32]bool{}
	queue := []int32{root}
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		if seen[pid] {
			continue
		}
		seen[pid] = true
		proc := &process.Process{Pid: pid}
		times, err := proc.TimesWithContext(ctx)
		if err != nil {
			continue // exited meanwhile
		}
		usage.Processes++
		cpu += times.User + times.System
		if mem, err := proc.MemoryInfoWithContext(ctx); err == nil {
			usage.Memory += mem.RSS
		}
		queue = append(queue, children[pid]...)
	}
	return usage, cpu, usage.Processes > 0
}

// percent is CPU seconds over an interval as a percentage of one core.
func percent(cpuSeconds float64, interval time.Duration) float64 {
	if cpuSeconds <= 0 || interval <= 0 {
		return 0 // a descendant that exited takes its CPU time with it
	}
	return cpuSeconds / interval.Seconds() * 100
}
