package processman

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/hook"
	"github.com/processman/processman/config"
	"github.com/processman/processman/control"
	"github.com/processman/processman/database"
	"github.com/processman/processman/gateway"
	"github.com/processman/processman/internal/asynclog"
	"github.com/processman/processman/supervisor"
	"github.com/processman/processman/watch"
)

// run is one serve of PocketBase: its processes, their outputs, watchers
// and health checks, its routes and the hooks' subscription. newRun
// makes it from the serve event and close ends it, so that a second
// serve (an in-place restart, a test) starts from nothing.
type run struct {
	// applied is what the run made of its config (entries, errors,
	// routes, their processes), which apply changes.
	applied
	app        core.App
	config     Config
	logHandler *asynclog.Handler // the queue in front of PocketBase's logger

	cancelChecks context.CancelFunc // ends the processes' health checks
	events       *dispatcher        // the hooks of process events

	mu         sync.Mutex // held by start, apply and close, so that they never overlap
	closed     bool
	serverInfo string         // the file telling the CLI where PocketBase serves
	autoApply  *watch.Watcher // Config.AutoApply's watcher of the file
}

// newRun loads the processes and puts the control API and the routes on
// the router of e; start starts the processes once PocketBase listens.
// Config errors are reported all at once; valid entries still start and
// PocketBase keeps serving.
func newRun(app core.App, cfg Config, source *processSource, events *hook.Hook[*ProcessEvent], api *control.API, term *terminal, e *core.ServeEvent) (*run, error) {
	procs, errs, notes := source.load()
	for _, note := range notes {
		app.Logger().Info("processman: "+note.Message, "process", note.Process, "path", note.Path)
		term.say("%s: %s", note.Process, note.Message)
	}
	if len(errs) > 0 {
		fmt.Fprintln(os.Stderr, errs.Error())
		for _, ce := range errs {
			app.Logger().Error("processman: config error", "error", ce.Error(), "process", ce.Process, "path", ce.Path)
		}
	}
	if unusable := errs.FileLevel(); len(unusable) > 0 {
		path, _ := source.path()
		term.say("%s cannot be used (%d %s above); PocketBase does not start", path, len(errs), plural(len(errs), "error", "errors"))
		return nil, fmt.Errorf("%w: %s (%d %s above)", errUnusableConfig, path, len(errs), plural(len(errs), "error", "errors"))
	}
	if len(errs) > 0 {
		term.say("%d config %s (above): the processes without errors start", len(errs), plural(len(errs), "error", "errors"))
	}
	// processman's own records reach PocketBase's logger through a queue,
	// so that its batch write to the log database never holds up a
	// supervisor, a route's request or a control action.
	logHandler := asynclog.New(app.Logger().Handler(), logQueue)
	logger := slog.New(logHandler)
	routes, err := gateway.NewRoutes(gateway.RoutesConfig{Hold: cfg.GatewayHold, Logger: logger})
	if err != nil {
		return nil, err
	}

	r := &run{app: app, config: cfg, logHandler: logHandler,
		applied: applied{source: source, manager: supervisor.NewManager(), routes: routes, procs: procs, errs: errs, logger: logger}}
	r.manager.Spawner().SetLogger(logger)
	checks, cancelChecks := context.WithCancel(context.Background())
	r.cancelChecks = cancelChecks
	r.processes = &processes{app: app, config: cfg, manager: r.manager, checks: checks, terminal: term, logger: logger,
		memory: newMemoryLimits(checks, cfg.MemoryInterval, logger),
		cron:   &schedules{app: app, manager: r.manager, logger: logger, terminal: term}}
	r.events = dispatch(app, events, r.manager)

	api.Bind(e.Router)
	routes.Bind(e.Router) // the routes of the file, and those apply mounts later
	var routeErrs config.Errors
	r.routed, routeErrs = mountRoutes(e, routes, procs, errs, logger)
	r.errs = append(r.errs, routeErrs...)
	return r, nil
}

const (
	// logQueue is how many of processman's records may wait for
	// PocketBase's logger; more are dropped and counted.
	logQueue = 8192
	// logFlushTimeout bounds the wait for them at shutdown.
	logFlushTimeout = 5 * time.Second
)

// errUnusableConfig is the failure of a serve whose config file cannot
// be used at all: unreadable, not JSON, or not processes.
var errUnusableConfig = errors.New("processman: the config file cannot be used")

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// logFile is the absolute path of the log file of the process name, ""
// for none.
func (r *run) logFile(name string) string {
	if proc := r.manager.Get(name); proc != nil {
		if path := r.processes.logPath(proc.Config()); path != "" {
			return absPath(path)
		}
	}
	return ""
}

// start writes the server info file for the CLI and starts the
// processes.
func (r *run) start(e *core.ServeEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	url := pocketBaseURL(r.config, e)
	r.writeServerInfo(url)
	env := newChildEnv(r.app, r.config, url)
	r.env = env
	seen := map[string]bool{}
	for i, proc := range r.procs {
		if proc.Name == "" || seen[proc.Name] {
			continue // reported by newRun; it cannot be addressed by name
		}
		seen[proc.Name] = true
		route := r.routed[proc.Name]
		if route != nil && route.upstream != nil {
			route.watchUpstream(r.processes.checks)
			r.processes.terminal.say("%s: route %s forwards to %s", proc.Name, proc.Route, proc.Upstream)
			continue // nothing runs here
		}
		if err := r.processes.add(proc, r.errs.ForIndex(i), env, route); err != nil {
			r.logger.Error("processman: cannot add process", "process", proc.Name, "error", err.Error())
			fmt.Fprintln(os.Stderr, err)
		}
	}
	if r.config.AutoApply {
		r.watchConfig()
	}
}

// applyFile applies the config file (see applied.apply), unless the run
// is closed or has not started its processes yet.
func (r *run) applyFile(ctx context.Context) (ApplyResult, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || r.env.pocketBaseURL == "" {
		path, _ := r.source.path()
		return ApplyResult{File: absPath(path), Changes: []ApplyChange{}, Errors: []config.Error{}}, ErrNotServing
	}
	return r.apply(ctx)
}

// watchConfig applies the config file whenever it changes.
func (r *run) watchConfig() {
	path, _ := r.source.path()
	w, err := watch.New(watch.Options{Paths: []string{absPath(path)}, OnError: func(err error) {
		r.logger.Warn("processman: watching the config file", "file", path, "error", err.Error())
	}}, func([]string) {
		result, err := r.applyFile(context.Background())
		switch {
		case errors.Is(err, ErrApplyInvalid):
			r.processes.terminal.say("%s changed but has %d %s; nothing was changed", path, len(result.Errors), plural(len(result.Errors), "error", "errors"))
			for _, e := range result.Errors {
				r.processes.terminal.say("  %s", e.Error())
				r.logger.Error("processman: config error", "error", e.Error(), "process", e.Process, "path", e.Path)
			}
		case err != nil && !errors.Is(err, ErrNotServing):
			r.logger.Error("processman: apply", "error", err.Error())
		}
	})
	if err != nil {
		r.logger.Warn("processman: cannot watch the config file; use `pocketbase pm apply`", "file", path, "error", err.Error())
		return
	}
	r.autoApply = w
}

// writeServerInfo records where PocketBase serves for the CLI; a failure
// only costs the CLI its default address, so it is logged, not returned.
func (r *run) writeServerInfo(url string) {
	path, err := control.WriteServerInfo(r.app.DataDir(), control.ServerInfo{URL: url, Pid: os.Getpid(), Database: databaseIdentity(r.app)})
	if err != nil {
		r.logger.Warn("processman: cannot write the server info file for the CLI", "file", path, "error", err.Error())
		return
	}
	r.serverInfo = path
}

// close stops every process and waits for them (or ctx), lets the hooks
// see the last events, and releases what the run holds.
func (r *run) close(ctx context.Context) {
	// The config watcher first, outside the lock that its apply takes.
	r.mu.Lock()
	r.closed = true
	autoApply := r.autoApply
	r.autoApply = nil
	r.mu.Unlock()
	if autoApply != nil {
		_ = autoApply.Close()
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	r.cancelChecks()
	if r.serverInfo != "" {
		_ = os.Remove(r.serverInfo)
	}
	r.processes.closeWatchers()
	r.processes.cron.unscheduleAll()
	if err := r.manager.Shutdown(ctx); err != nil {
		r.logger.Error("processman: shutdown", "error", err.Error())
	}
	r.events.close() // the hooks see the last exits before PocketBase goes
	r.processes.closeOutputs()
	if err := r.routes.Close(); err != nil {
		r.logger.Warn("processman: cannot remove the socket directory", "error", err.Error())
	}
	// PocketBase writes its last batch of records after this; ours are in
	// it.
	r.logHandler.Flush(logFlushTimeout)
}

// databaseIdentity names the app's database for the server info file.
func databaseIdentity(app core.App) string {
	info, _ := database.Detect(app)
	return info.Identity()
}
