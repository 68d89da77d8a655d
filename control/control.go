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
	"net/http"
	"os"
	"strconv"
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

// MaxActionWait bounds how long start, stop and restart requests wait
// for the process to act (a stop waits for kill_timeout at most).
const MaxActionWait = 2 * time.Minute

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
}

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
		{http.MethodGet, "/{name}", a.describe},
		{http.MethodGet, "/{name}/logs", a.logs},
		{http.MethodPost, "/{name}/start", a.action((*supervisor.Process).Start)},
		{http.MethodPost, "/{name}/stop", a.action((*supervisor.Process).Stop)},
		{http.MethodPost, "/{name}/restart", a.action((*supervisor.Process).Restart)},
	}
}

func (a *API) manager(e *core.RequestEvent) (*supervisor.Manager, error) {
	if m := a.Manager(); m != nil {
		return m, nil
	}
	return nil, e.Error(http.StatusServiceUnavailable, "Processes are not running: PocketBase is starting or stopping.", nil)
}

// process finds the process named in the path, or answers 404.
func (a *API) process(e *core.RequestEvent) (*supervisor.Process, error) {
	m, err := a.manager(e)
	if err != nil {
		return nil, err
	}
	name := e.Request.PathValue("name")
	if p := m.Get(name); p != nil {
		return p, nil
	}
	return nil, e.NotFoundError("No process named "+strconv.Quote(name)+"; `pocketbase pm list` shows them.", nil)
}

func (a *API) usage(pids ...int) map[int]metrics.Usage {
	if a.Sampler == nil {
		return nil
	}
	return a.Sampler.Sample(pids...)
}

func (a *API) list(e *core.RequestEvent) error {
	m, err := a.manager(e)
	if err != nil {
		return err
	}
	procs := m.List()
	statuses := make([]supervisor.Status, len(procs))
	pids := make([]int, 0, len(procs))
	for i, p := range procs {
		statuses[i] = p.Status()
		pids = append(pids, statuses[i].Pid)
	}
	usage := a.usage(pids...)
	items := make([]Summary, len(procs))
	for i, p := range procs {
		items[i] = summaryOf(statuses[i], p.Config(), usage[statuses[i].Pid])
	}
	return e.JSON(http.StatusOK, map[string]any{"items": items})
}

func (a *API) describe(e *core.RequestEvent) error {
	p, err := a.process(e)
	if err != nil {
		return err
	}
	return e.JSON(http.StatusOK, a.detail(p))
}

// detail builds the full view of a process.
func (a *API) detail(p *supervisor.Process) Detail {
	st := p.Status()
	cfg := p.Config()
	d := Detail{
		Summary:  summaryOf(st, cfg, a.usage(st.Pid)[st.Pid]),
		Command:  redact.Args(st.Command),
		Cwd:      cfg.Cwd,
		Venv:     st.Venv,
		Logs:     st.Logs,
		Env:      []EnvVar{},
		Warnings: append([]string{}, st.Warnings...),
		Policy: Policy{
			Restart:     cfg.Restart,
			MaxRestarts: cfg.MaxRestarts,
			MinUptime:   durationText(cfg.MinUptime),
			KillSignal:  cfg.KillSignal,
			KillTimeout: durationText(cfg.KillTimeout),
		},
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

// action answers start, stop and restart with the summary afterwards.
func (a *API) action(do func(*supervisor.Process, context.Context) error) func(*core.RequestEvent) error {
	return func(e *core.RequestEvent) error {
		p, err := a.process(e)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(e.Request.Context(), MaxActionWait)
		defer cancel()
		if err := do(p, ctx); err != nil {
			st := p.Status()
			status, message := http.StatusBadRequest, err.Error()
			switch {
			case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled):
				status, message = http.StatusGatewayTimeout, "The process did not act in time; it may still be stopping."
			case errors.Is(err, supervisor.ErrClosed):
				status, message = http.StatusServiceUnavailable, "PocketBase is stopping."
			}
			// PocketBase's own errors keep only validation errors in data;
			// the process and its state are written as they are.
			return e.JSON(status, map[string]any{
				"status":  status,
				"message": message,
				"data":    map[string]string{"process": st.Name, "state": string(st.State)},
			})
		}
		st := p.Status()
		return e.JSON(http.StatusOK, summaryOf(st, p.Config(), a.usage(st.Pid)[st.Pid]))
	}
}

// durationText writes a config duration; an explicit zero is stored as a
// negative value.
func durationText(d config.Duration) string {
	return max(d.Std(), 0).String()
}
