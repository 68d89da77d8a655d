package processman

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/pocketbase/pocketbase/core"
	"github.com/processman/processman/config"
	"github.com/processman/processman/health"
	"github.com/processman/processman/launch"
	"github.com/processman/processman/logs"
	"github.com/processman/processman/supervisor"
	"github.com/processman/processman/watch"
)

// processes wires the supervised processes of a run: each one's output
// (ring buffer, log file, PocketBase's logs), supervisor, health check
// and watcher. It is not safe for concurrent use; the run serializes it.
type processes struct {
	app      core.App
	config   Config
	manager  *supervisor.Manager
	checks   context.Context // the health checks run until it is done
	terminal *terminal       // the lifecycle lines
	logger   *slog.Logger    // processman's own records
	memory   *memoryLimits   // max_memory_restart
	cron     *schedules      // the processes run by a cron schedule

	wired map[string]*wiring // by process name
}

// wiring is what processes made for one process, to undo when it is
// removed.
type wiring struct {
	out       *logs.Output
	watcher   *watch.Watcher     // nil without watch
	checks    context.CancelFunc // ends its health checks
	instances []*supervisor.Process
}

// add wires one process and its instances. errs are the config errors
// of its entry, which mark it errored; env builds what processman adds to
// each child's environment.
func (ps *processes) add(proc config.Process, errs config.Errors, env childEnv, route *routeEnv) error {
	full := proc.WithDefaults()
	file := ps.logPath(full)
	if len(errs) > 0 {
		file = "" // an errored entry's log_file may be the very path its error is about
	}
	out, err := logs.NewOutput(logs.Options{
		Process:     proc.Name,
		Instances:   full.Instances,
		File:        file,
		MaxSizeMB:   full.LogMaxSizeMB,
		MaxFiles:    full.LogMaxFiles,
		Logger:      ps.storeLogger(),
		LoggerRate:  max(ps.config.LogStoreRate, 0),
		LoggerBurst: ps.config.LogStoreBurst,
		RingLines:   ps.config.LogBufferLines,
	})
	if err != nil {
		errs = append(errs, config.Error{Process: proc.Name, Index: -1, Message: err.Error(), Hint: "fix log_file or make its directory writable"})
		out, _ = logs.NewOutput(logs.Options{Process: proc.Name, Instances: full.Instances, RingLines: ps.config.LogBufferLines})
	}
	checks, cancelChecks := context.WithCancel(ps.checks)
	w := &wiring{out: out, checks: cancelChecks}
	if ps.wired == nil {
		ps.wired = map[string]*wiring{}
	}
	ps.wired[proc.Name] = w

	w.instances = make([]*supervisor.Process, full.Instances)
	for i := range w.instances {
		sp, err := ps.addInstance(checks, proc, i, errs, out, env, route)
		if err != nil {
			return err
		}
		w.instances[i] = sp
	}
	instances := w.instances
	if len(errs) > 0 {
		return nil
	}
	if full.MaxMemoryRestart > 0 {
		ps.memory.watch(full, instances)
	}
	if full.Cron != "" && !full.Disabled {
		if err := ps.cron.add(full, instances); err != nil {
			return fmt.Errorf("processman: schedule %q: %w", proc.Name, err)
		}
	}
	if !full.Watch.IsZero() {
		watcher, err := ps.watch(instances, full)
		w.watcher = watcher
		return err
	}
	return nil
}

// drop stops every instance of the process name (its whole tree, each
// with its kill_timeout) and undoes its wiring: schedule, watcher, memory
// limit, health checks and output.
func (ps *processes) drop(ctx context.Context, name string) error {
	w := ps.wired[name]
	if w == nil {
		return fmt.Errorf("processman: no process named %q", name)
	}
	delete(ps.wired, name)
	ps.cron.unschedule(name)
	if w.watcher != nil {
		_ = w.watcher.Close()
	}
	ps.memory.unwatch(w.instances)
	err := ps.manager.Remove(ctx, name)
	w.checks()
	_ = w.out.Close()
	return err
}

// addInstance wires instance i of proc: its supervisor, on the route's
// slots for that instance, and its health check.
func (ps *processes) addInstance(checks context.Context, proc config.Process, i int, errs config.Errors, out *logs.Output, env childEnv, route *routeEnv) (*supervisor.Process, error) {
	opts := supervisor.Options{
		Instance: i,
		Resolve: func(c config.Process, slot int) (*launch.Command, error) {
			return launch.Resolve(c, os.Environ(), envMap(env.of(proc.Name, i, slot, route)))
		},
		Spawner:        ps.manager.Spawner(),
		Output:         out,
		Logger:         ps.logger,
		CheckReadiness: proc.Route != "" || proc.Health != nil,
		DependsOn:      proc.DependsOn.Names(),
		Manual:         proc.Cron != "",
	}
	if len(proc.DependsOn) > 0 {
		opts.Wait = waitForDependencies(ps.manager, proc.DependsOn)
	}
	if route != nil {
		opts.BeforeStart = func(slot int) error { return route.targets[i][slot].Prepare() }
		opts.Drain = route.drain(i)
	}
	if len(errs) > 0 {
		opts.ConfigError = "invalid config: " + errs.Error()
	}
	sp := supervisor.New(proc, opts)
	if route != nil {
		route.instances[i].Store(sp)
	}
	if err := ps.manager.Add(sp); err != nil {
		return nil, err
	}
	if opts.CheckReadiness && len(errs) == 0 {
		probe := &health.Check{Process: sp, Output: out, Config: proc.Health, Logger: ps.logger}
		if route != nil {
			probe.Secret, probe.Targets = route.secret, route.targets[i][:]
		}
		go probe.Run(checks)
	}
	return sp, nil
}

// watch reloads the process (its instances one at a time; a restart for
// an unrouted process) when its files change, unless it was stopped on
// purpose.
func (ps *processes) watch(instances []*supervisor.Process, cfg config.Process) (*watch.Watcher, error) {
	paths := cfg.Watch.Paths
	if len(paths) == 0 {
		paths = []string{cfg.Cwd}
	}
	logger := ps.logger
	action := "restarting"
	if cfg.Route != "" {
		action = "reloading"
	}
	w, err := watch.New(watch.Options{
		Paths:  paths,
		Root:   cfg.Cwd,
		Ignore: cfg.IgnoreWatch,
		OnError: func(err error) {
			logger.Warn("processman: watch error", "process", cfg.Name, "error", err.Error())
		},
	}, func(changed []string) {
		if stoppedOnPurpose(instances) {
			return
		}
		list := changedList(cfg.Cwd, changed)
		logger.Info("processman: files changed, "+action, "process", cfg.Name, "changed", changed)
		ps.terminal.say("%s: files changed (%s), %s", cfg.Name, list, action)
		ctx := supervisor.WithReason(context.Background(), "files changed: "+list)
		if err := ps.manager.Reload(ctx, cfg.Name); err != nil {
			logger.Error("processman: "+action+" after a change failed", "process", cfg.Name, "error", err.Error())
		}
	})
	if err != nil {
		return nil, fmt.Errorf("processman: watch %q: %w", cfg.Name, err)
	}
	return w, nil
}

// stoppedOnPurpose reports whether every instance was stopped by a
// request, which a file change must not undo.
func stoppedOnPurpose(instances []*supervisor.Process) bool {
	for _, sp := range instances {
		st := sp.Status()
		if st.State != supervisor.Stopped || (st.LastExit != nil && !st.LastExit.Requested) {
			return false
		}
	}
	return true
}

// logPath is the log file path of a process, "" for none.
func (ps *processes) logPath(proc config.Process) string {
	return proc.LogFilePath(logsDir(ps.config.LogsDir, ps.app.DataDir()))
}

// storeLogger is where output lines are forwarded: PocketBase's logger,
// or none when LogStoreRate is negative.
func (ps *processes) storeLogger() *slog.Logger {
	if ps.config.LogStoreRate < 0 {
		return nil
	}
	return ps.app.Logger()
}

// closeWatchers stops watching files.
func (ps *processes) closeWatchers() {
	for _, w := range ps.wired {
		if w.watcher != nil {
			_ = w.watcher.Close()
		}
	}
}

// closeOutputs flushes and closes the outputs; the processes must be
// stopped first.
func (ps *processes) closeOutputs() {
	for _, w := range ps.wired {
		_ = w.out.Close()
	}
}

// changedList names the changed files, relative to cwd, the first few.
func changedList(cwd string, changed []string) string {
	const most = 5
	names := make([]string, 0, min(len(changed), most))
	for _, path := range changed[:min(len(changed), most)] {
		if rel, err := filepath.Rel(cwd, path); err == nil && !strings.HasPrefix(rel, "..") {
			path = rel
		}
		names = append(names, path)
	}
	list := strings.Join(names, ", ")
	if len(changed) > most {
		list += fmt.Sprintf(" and %d more", len(changed)-most)
	}
	return list
}
