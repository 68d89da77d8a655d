// Package control is processman's control plane over HTTP: the
// superuser-only REST API under /api/pm that the `pocketbase pm` CLI and
// the dashboard's Processes page use.
//
//	app.OnServe().BindFunc(func(e *core.ServeEvent) error {
//		api := &control.API{Manager: manager, Sampler: metrics.NewSampler()}
//		api.Bind(e.Router)
//		return e.Next()
//	})
//
// Every endpoint answers in PocketBase's JSON error format, and needs a
// superuser's token (401 without a token, 403 for any other record).
// openapi.json describes the endpoints; it is served at
// /api/pm/openapi.json.
package control

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/pocketbase/pocketbase/apis"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/router"
	"github.com/processman/processman/config"
	"github.com/processman/processman/internal/redact"
	"github.com/processman/processman/metrics"
	"github.com/processman/processman/supervisor"
)

// Prefix is where the API is mounted.
const Prefix = "/api/pm"

// DefaultLogLines is how many lines the logs endpoint returns when the
// request does not say.
const DefaultLogLines = 100

// MaxActionWait bounds how long start, stop, restart and reload requests
// wait for the process to act (a stop waits for kill_timeout at most, a
// reload for ready_timeout and drain_timeout of each instance).
const MaxActionWait = 10 * time.Minute

//go:embed openapi.json
var OpenAPI []byte

// API serves the control plane of the processes of a Manager.
type API struct {
	// Manager returns the supervisor of the processes; nil while
	// PocketBase is not serving.
	Manager func() *supervisor.Manager
	// Sampler reads CPU and memory; nil leaves them at zero.
	Sampler *metrics.Sampler
	// LogFile returns the log file of a process, "" for none; optional.
	LogFile func(name string) string
	// Environ is PocketBase's own environment, to tell inherited
	// variables from those processman set; nil means os.Environ().
	Environ func() []string
	// Apply re-reads the config file and applies the difference; it
	// returns ErrApplyInvalid with the errors in the result when the
	// file has any. Nil answers 501.
	Apply func(ctx context.Context) (ApplyResult, error)
}

// ErrApplyInvalid is the error of an Apply that changed nothing because
// the file has errors.
var ErrApplyInvalid = errors.New("processman: the config file has errors; nothing was changed")

// Bind registers the endpoints on r, superuser-only.
func (a *API) Bind(r *router.Router[*core.RequestEvent]) {
	g := r.Group(Prefix)
	g.Bind(apis.RequireSuperuserAuth())
	for _, rt := range a.routes() {
		g.Route(rt.method, rt.path, rt.handler)
	}
}

// endpoint is one route of the API, relative to Prefix.
type endpoint struct {
	method, path string
	handler      func(*core.RequestEvent) error
}

func (a *API) routes() []endpoint {
	return []endpoint{
		{http.MethodGet, "/list", a.list},
		{http.MethodGet, "/events", a.events},
		{http.MethodGet, "/openapi.json", func(e *core.RequestEvent) error {
			return e.Blob(http.StatusOK, "application/json", OpenAPI)
		}},
		{http.MethodPost, "/apply", a.apply},
		{http.MethodGet, "/{name}", a.describe},
		{http.MethodGet, "/{name}/logs", a.logs},
		{http.MethodPost, "/{name}/start", a.action((*supervisor.Manager).Start)},
		{http.MethodPost, "/{name}/stop", a.action((*supervisor.Manager).Stop)},
		{http.MethodPost, "/{name}/restart", a.action((*supervisor.Manager).Restart)},
		{http.MethodPost, "/{name}/reload", a.action((*supervisor.Manager).Reload)},
	}
}

// apply answers POST /apply: 200 with the changes, or 400 with the
// config errors (nothing changed).
func (a *API) apply(e *core.RequestEvent) error {
	if _, err := a.manager(e); err != nil {
		return err
	}
	if a.Apply == nil {
		return e.Error(http.StatusNotImplemented, "This server cannot apply config changes.", nil)
	}
	ctx, cancel := context.WithTimeout(e.Request.Context(), MaxActionWait)
	defer cancel()
	result, err := a.Apply(ctx)
	switch {
	case errors.Is(err, ErrApplyInvalid):
		return e.JSON(http.StatusBadRequest, map[string]any{"status": http.StatusBadRequest,
			"message": fmt.Sprintf("%s has %d error(s); nothing was changed.", result.File, len(result.Errors)),
			"data":    map[string]any{"file": result.File, "errors": result.Errors}})
	case err != nil && len(result.Changes) == 0:
		return e.Error(http.StatusServiceUnavailable, err.Error(), nil)
	}
	return e.JSON(http.StatusOK, result)
}

func (a *API) manager(e *core.RequestEvent) (*supervisor.Manager, error) {
	if m := a.Manager(); m != nil {
		return m, nil
	}
	return nil, e.Error(http.StatusServiceUnavailable, "Processes are not running: PocketBase is starting or stopping.", nil)
}

// process finds the instances that the path names ("api", or "api:1"
// for one), or answers 404.
func (a *API) process(e *core.RequestEvent) ([]*supervisor.Process, error) {
	m, err := a.manager(e)
	if err != nil {
		return nil, err
	}
	procs, err := m.Find(e.Request.PathValue("name"))
	if err != nil {
		return nil, e.NotFoundError(strings.TrimPrefix(err.Error(), supervisor.ErrNotFound.Error()+": ")+".", nil)
	}
	return procs, nil
}

func (a *API) usage(pids ...int) map[int]metrics.Usage {
	if a.Sampler == nil {
		return nil
	}
	return a.Sampler.Sample(pids...)
}

// statuses reads the status of each instance, and the usage of their
// trees.
func (a *API) statuses(procs []*supervisor.Process) ([]supervisor.Status, map[int]metrics.Usage) {
	statuses := make([]supervisor.Status, len(procs))
	pids := make([]int, len(procs))
	for i, p := range procs {
		statuses[i] = p.Status()
		pids[i] = statuses[i].Pid
	}
	return statuses, a.usage(pids...)
}

// summary is the summary of procs, instances of one process.
func (a *API) summary(procs []*supervisor.Process) Summary {
	statuses, usage := a.statuses(procs)
	return summaryOf(statuses, procs[0].Config(), usage)
}

func (a *API) list(e *core.RequestEvent) error {
	m, err := a.manager(e)
	if err != nil {
		return err
	}
	names := m.Names()
	groups := make([][]*supervisor.Process, len(names))
	var all []*supervisor.Process
	for i, name := range names {
		groups[i] = m.Instances(name)
		all = append(all, groups[i]...)
	}
	statuses, usage := a.statuses(all) // one sample for every tree
	items := make([]Summary, len(groups))
	at := 0
	for i, group := range groups {
		items[i] = summaryOf(statuses[at:at+len(group)], group[0].Config(), usage)
		at += len(group)
	}
	return e.JSON(http.StatusOK, map[string]any{"items": items})
}

func (a *API) describe(e *core.RequestEvent) error {
	procs, err := a.process(e)
	if err != nil {
		return err
	}
	m, _ := a.manager(e)
	return e.JSON(http.StatusOK, a.detail(m.Instances(procs[0].Config().Name), procs[0]))
}

// detail builds the full view of a process: the summary of its
// instances, and the command, environment and crash of p, one of them.
func (a *API) detail(instances []*supervisor.Process, p *supervisor.Process) Detail {
	st := p.Status()
	cfg := p.Config()
	d := Detail{
		Summary:           a.summary(instances),
		Instance:          p.Instance(),
		Command:           redact.Args(st.Command),
		Cwd:               cfg.Cwd,
		Venv:              st.Venv,
		Logs:              st.Logs,
		Env:               []EnvVar{},
		Warnings:          append([]string{}, st.Warnings...),
		LastReloadFailure: reloadFailureOf(st.LastReloadFailure),
		Policy: Policy{
			Restart:     cfg.Restart,
			MaxRestarts: cfg.MaxRestarts,
			MinUptime:   durationText(cfg.MinUptime),
			KillSignal:  cfg.KillSignal,
			KillTimeout: durationText(cfg.KillTimeout),
			Instances:   cfg.Instances,
		},
	}
	if cfg.Route != "" {
		d.Policy.ReadyTimeout, d.Policy.DrainTimeout = durationText(cfg.ReadyTimeout), durationText(cfg.DrainTimeout)
	}
	if cfg.MaxMemoryRestart > 0 {
		d.Policy.MaxMemoryRestart = cfg.MaxMemoryRestart.String()
	}
	if a.LogFile != nil {
		d.LogFile = a.LogFile(st.Name)
	}
	if cmd := p.Launched(); cmd != nil {
		d.Cwd = cmd.Dir
		environ := os.Environ
		if a.Environ != nil {
			environ = a.Environ
		}
		d.Env, d.Inherited = environment(cmd.Env, environ(), cfg.Env, cmd.EnvFileKeys)
	}
	if st.LastCrash != nil {
		d.LastCrash = &Crash{Exit: *exitOf(&st.LastCrash.Exit), LastLines: linesOf(st.LastCrash.LastLines), Hint: st.LastCrash.Hint}
	}
	if h := cfg.Health; h != nil {
		d.Health = &HealthInfo{HTTP: h.HTTP, Line: h.Line, Failures: h.Failures}
		if h.Interval != 0 {
			d.Health.Interval = durationText(h.Interval)
		}
	}
	return d
}

// action answers start, stop, restart and reload of the instances the
// path names with the summary of their process afterwards.
func (a *API) action(do func(*supervisor.Manager, context.Context, string) error) func(*core.RequestEvent) error {
	return func(e *core.RequestEvent) error {
		procs, err := a.process(e)
		if err != nil {
			return err
		}
		m, _ := a.manager(e)
		all := m.Instances(procs[0].Config().Name)
		ctx, cancel := context.WithTimeout(e.Request.Context(), MaxActionWait)
		defer cancel()
		if err := do(m, ctx, e.Request.PathValue("name")); err != nil {
			summary := a.summary(all)
			status, message := http.StatusBadRequest, err.Error()
			data := map[string]any{"process": summary.Name, "state": summary.State}
			switch {
			case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled):
				status, message = http.StatusGatewayTimeout, "The process did not act in time; it may still be stopping."
			case errors.Is(err, supervisor.ErrClosed):
				status, message = http.StatusServiceUnavailable, "PocketBase is stopping."
			case errors.Is(err, supervisor.ErrReloadFailed):
				status = http.StatusConflict
				for _, p := range procs {
					if f := reloadFailureOf(p.Status().LastReloadFailure); f != nil {
						data["instance"], data["reload_failure"] = p.Instance(), f
					}
				}
			}
			// PocketBase's own errors keep only validation errors in data;
			// the process and its state are written as they are.
			return e.JSON(status, map[string]any{"status": status, "message": message, "data": data})
		}
		return e.JSON(http.StatusOK, a.summary(all))
	}
}

// durationText writes a config duration; an explicit zero is stored as a
// negative value.
func durationText(d config.Duration) string {
	return max(d.Std(), 0).String()
}
