package processman

import (
	"context"
	"errors"
	"log/slog"
	"reflect"
	"slices"

	"github.com/processman/processman/config"
	"github.com/processman/processman/control"
	"github.com/processman/processman/gateway"
	"github.com/processman/processman/supervisor"
)

// ApplyResult is the outcome of an apply: the change to each process of
// the file, or the config errors that made it change nothing.
type ApplyResult = control.ApplyResult

// ApplyChange is what an apply did to one process.
type ApplyChange = control.ApplyChange

// The actions of an apply (ApplyChange.Action).
const (
	ApplyAdded     = control.ApplyAdded
	ApplyRemoved   = control.ApplyRemoved
	ApplyReloaded  = control.ApplyReloaded
	ApplyReplaced  = control.ApplyReplaced
	ApplyUnchanged = control.ApplyUnchanged
	ApplyFailed    = control.ApplyFailed
)

// ErrApplyInvalid is returned by Apply when the file has errors; nothing
// was changed, and the result lists them.
var ErrApplyInvalid = control.ErrApplyInvalid

// ErrNotServing is returned by Apply while PocketBase is not serving.
var ErrNotServing = errors.New("processman: PocketBase is not serving")

// applied is what a run made of its config: the entries (the file's,
// then Go code's), their errors, their routes, the environment their
// children get, and the processes wired for them. apply changes it to
// match a new version of the file. Its owner serializes the calls.
type applied struct {
	source    *processSource
	procs     []config.Process // the file's, then Go code's
	errs      config.Errors
	routed    map[string]*routeEnv
	env       childEnv // what processman adds to each child's environment
	routes    *gateway.Routes
	processes *processes
	manager   *supervisor.Manager
	logger    *slog.Logger // processman's own records
}

// apply re-reads the config file and carries out the difference with
// what runs: new processes start, removed ones stop, changed ones are
// reloaded (a routed process whose command or environment changed) or
// replaced, unchanged ones are not touched. A file with any error
// changes nothing. Processes registered from Go code are not touched.
func (r *applied) apply(ctx context.Context) (ApplyResult, error) {
	path, _ := r.source.path()
	result := ApplyResult{File: absPath(path), Changes: []ApplyChange{}, Errors: []config.Error{}}
	procs, errs, _ := r.source.load()
	if len(errs) > 0 {
		result.Errors = errs
		return result, ErrApplyInvalid
	}
	fileCount := len(procs) - len(r.source.goProcesses)
	next := procs[:fileCount]
	oldCount := len(r.procs) - len(r.source.goProcesses)
	current := r.procs[:oldCount]

	before := map[string]int{}
	for i, p := range current {
		before[p.Name] = i
	}
	after := map[string]bool{}
	for _, p := range next {
		after[p.Name] = true
	}
	// Go code's processes are never in current or next: a file entry of
	// one's name is a duplicate, which load reports and apply refuses.

	change := func(name, action, detail string, err error) {
		c := ApplyChange{Process: name, Action: action, Detail: detail}
		if err != nil {
			c.Action, c.Error = ApplyFailed, err.Error()
			r.logger.Error("processman: apply: "+action+" failed", "process", name, "error", err.Error())
		} else if action != ApplyUnchanged {
			r.logger.Info("processman: apply: "+action, "process", name, "detail", detail)
		}
		line := name + " " + c.Action
		if c.Detail != "" {
			line += " (" + c.Detail + ")"
		}
		if c.Error != "" {
			line += ": " + c.Error
		}
		if c.Action != ApplyUnchanged {
			r.processes.terminal.say("config applied: %s", line)
		}
		result.Changes = append(result.Changes, c)
	}

	// Removed first, so that their names, routes and sockets are free.
	for _, p := range current {
		if !after[p.Name] {
			change(p.Name, ApplyRemoved, routeDetail(p.Route, ""), r.removeProcess(ctx, p.Name))
		}
	}
	for _, p := range next {
		i, existed := before[p.Name]
		switch {
		case !existed:
			change(p.Name, ApplyAdded, routeDetail("", p.Route), r.addProcess(p))
		case len(r.errs.ForIndex(i)) == 0 && reflect.DeepEqual(current[i], p):
			change(p.Name, ApplyUnchanged, "", nil)
		case len(r.errs.ForIndex(i)) == 0 && reloadable(current[i], p):
			change(p.Name, ApplyReloaded, "", r.manager.ReloadWith(supervisor.WithReason(ctx, "config applied"), p.Name, p))
		default:
			err := r.removeProcess(ctx, p.Name)
			if err == nil {
				err = r.addProcess(p)
			}
			change(p.Name, ApplyReplaced, routeDetail(current[i].Route, p.Route), err)
		}
	}
	r.procs = append(slices.Clone(next), r.procs[oldCount:]...)
	r.errs = nil // the file has none; Go code's were reported at serve
	return result, nil
}

// routeDetail describes what happened to a route.
func routeDetail(from, to string) string {
	switch {
	case from == to && to != "":
		return ""
	case from == "" && to != "":
		return "route " + to + " mounted"
	case from != "" && to == "":
		return "route " + from + " unmounted"
	case from != to:
		return "route moved from " + from + " to " + to
	}
	return ""
}

// reloadable reports whether a change from old to next can be rolled out
// by a reload: the process is routed, and only its command, environment,
// restart and stop policy changed.
func reloadable(old, next config.Process) bool {
	if old.Route == "" || old.Disabled || next.Disabled || old.Cron != "" || old.Upstream != "" || next.Upstream != "" {
		return false
	}
	strip := func(p config.Process) config.Process {
		p.Script, p.Args, p.Cwd, p.Interpreter, p.InterpreterArgs = "", nil, "", "", nil
		p.Env, p.EnvFile = nil, ""
		p.Restart, p.MaxRestarts, p.MinUptime, p.RestartDelay, p.MaxRestartDelay, p.BackoffFactor = "", 0, 0, 0, 0, 0
		p.KillSignal, p.KillTimeout, p.ReadyTimeout, p.DrainTimeout = "", 0, 0, 0
		return p
	}
	return reflect.DeepEqual(strip(old), strip(next))
}

// addProcess starts a process of the file while PocketBase serves, with
// its route.
func (r *applied) addProcess(proc config.Process) error {
	var route *routeEnv
	if proc.Route != "" {
		var err error
		if route, err = mountRoute(r.routes, proc, r.logger); err != nil {
			return err
		}
		r.routed[proc.Name] = route
		if route.upstream != nil {
			route.watchUpstream(r.processes.checks)
			return nil // nothing runs here
		}
	}
	if err := r.processes.add(proc, nil, r.env, route); err != nil {
		if route != nil {
			r.routes.Remove(proc.Name)
			delete(r.routed, proc.Name)
		}
		return err
	}
	return nil
}

// removeProcess stops a process and unmounts its route.
func (r *applied) removeProcess(ctx context.Context, name string) error {
	if route, ok := r.routed[name]; ok {
		r.routes.Remove(name)
		delete(r.routed, name)
		if route.upstream != nil {
			route.stopWatch()
			return nil // nothing runs here
		}
	}
	return r.processes.drop(ctx, name)
}
