package processman

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/cron"
	"github.com/processman/processman/config"
	"github.com/processman/processman/supervisor"
)

// schedules runs the processes that have a cron expression on
// PocketBase's own scheduler (app.Cron()), so that they are listed with
// PocketBase's jobs. A job still going when the next is due is skipped.
type schedules struct {
	app      core.App
	manager  *supervisor.Manager
	logger   *slog.Logger
	terminal *terminal

	mu   sync.Mutex
	jobs map[string]*scheduled // by process name
}

type scheduled struct {
	name     string
	schedule *cron.Schedule
	mu       sync.Mutex // one due time at a time
	state    supervisor.Schedule
}

// cronJobPrefix starts the id of each process's job in app.Cron().
const cronJobPrefix = "processman:"

// add puts the process proc, whose instances are added to the manager,
// on the scheduler.
func (s *schedules) add(proc config.Process, instances []*supervisor.Process) error {
	schedule, err := cron.NewSchedule(proc.Cron)
	if err != nil {
		return err // reported by config.CheckDependencies
	}
	job := &scheduled{name: proc.Name, schedule: schedule, state: supervisor.Schedule{Cron: proc.Cron}}
	job.state.NextRun = nextRun(schedule, time.Now())
	for _, sp := range instances {
		sp.SetSchedule(job.state)
	}
	s.mu.Lock()
	if s.jobs == nil {
		s.jobs = map[string]*scheduled{}
	}
	s.jobs[proc.Name] = job
	s.mu.Unlock()
	return s.app.Cron().Add(cronJobPrefix+proc.Name, proc.Cron, func() { s.due(job) })
}

// due starts the process, unless an instance is still running (or
// starting, or waiting to restart): then this time is skipped and counted.
func (s *schedules) due(job *scheduled) {
	job.mu.Lock()
	defer job.mu.Unlock()
	instances := s.manager.Instances(job.name)
	if len(instances) == 0 {
		return // removed
	}
	now := time.Now()
	job.state.NextRun = nextRun(job.schedule, now)
	busy := false
	for _, sp := range instances {
		if st := sp.Status().State; st.Running() || st == supervisor.WaitingRestart {
			busy = true
		}
	}
	if busy {
		job.state.Skipped++
		job.state.LastSkipped = now
		s.logger.Warn("processman: scheduled job skipped: the previous one is still going", "process", job.name, "cron", job.state.Cron, "skipped", job.state.Skipped)
		s.terminal.say("%s: scheduled job skipped, the previous one is still going (%d skipped)", job.name, job.state.Skipped)
	} else {
		job.state.Runs++
		job.state.LastRun = now
	}
	for _, sp := range instances {
		sp.SetSchedule(job.state)
	}
	if busy {
		return
	}
	ctx := supervisor.WithReason(context.Background(), "cron "+job.state.Cron)
	if err := s.manager.Start(ctx, job.name); err != nil {
		s.logger.Error("processman: scheduled job failed to begin", "process", job.name, "error", err.Error())
	}
}

// unschedule takes the process name off the scheduler.
func (s *schedules) unschedule(name string) {
	s.mu.Lock()
	delete(s.jobs, name)
	s.mu.Unlock()
	s.app.Cron().Remove(cronJobPrefix + name)
}

// unscheduleAll takes every process off the scheduler.
func (s *schedules) unscheduleAll() {
	s.mu.Lock()
	names := make([]string, 0, len(s.jobs))
	for name := range s.jobs {
		names = append(names, name)
	}
	s.mu.Unlock()
	for _, name := range names {
		s.unschedule(name)
	}
}

// nextRun is the first minute after from at which schedule is due, in
// UTC as PocketBase's scheduler runs by default; zero if none within
// about four years (a schedule such as "0 0 30 2 *").
func nextRun(schedule *cron.Schedule, from time.Time) time.Time {
	t := from.UTC().Truncate(time.Minute).Add(time.Minute)
	for end := t.AddDate(4, 0, 1); t.Before(end); t = t.Add(time.Minute) {
		if schedule.IsDue(cron.NewMoment(t)) {
			return t
		}
	}
	return time.Time{}
}
