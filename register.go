package processman

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/hook"
	"github.com/processman/processman/config"
	"github.com/processman/processman/control"
	"github.com/processman/processman/database"
	"github.com/processman/processman/metrics"
	"github.com/processman/processman/supervisor"
	"github.com/spf13/cobra"
)

// plugin is what lives as long as the app: the configuration, the hooks
// of process events and the metrics sampler. Everything of one serve is
// in the run, which onServe makes and onTerminate ends.
type plugin struct {
	app      core.App
	config   Config
	source   *processSource
	events   *hook.Hook[*ProcessEvent]
	sampler  *metrics.Sampler
	terminal *terminal // the lifecycle lines on stdout
	// exitOnConfigError is set for a command-line program (Register with
	// a root command): a config file that cannot be used at all stops it
	// with status 1, as docker compose does, instead of serving nothing.
	exitOnConfigError bool
	exitCode          atomic.Int32 // the status to exit with after terminating; 0 for none

	current atomic.Pointer[run] // nil while not serving
}

// shutdownTimeout bounds how long terminating waits for the processes.
const shutdownTimeout = 2 * time.Minute

// MustRegister registers the processman plugin to the provided app
// instance and panics if it fails.
//
// Example usage:
//
//	processman.MustRegister(app, app.RootCmd, processman.Config{})
func MustRegister(app core.App, rootCmd *cobra.Command, config Config) {
	if err := Register(app, rootCmd, config); err != nil {
		panic(err)
	}
}

// Register registers the processman plugin to the provided app instance.
// rootCmd, if not nil, gets the --processes flag and the `pm` command.
func Register(app core.App, rootCmd *cobra.Command, config Config) error {
	if existing, ok := app.Store().Get(storeKey).(*plugin); ok && existing != nil {
		return fmt.Errorf("processman: already registered on this app")
	}
	config = config.withDefaults()
	p := &plugin{
		app:      app,
		config:   config,
		source:   &processSource{app: app, file: config.ProcessesFile, goProcesses: config.Processes, logsDir: config.LogsDir},
		events:   &hook.Hook[*ProcessEvent]{},
		sampler:  metrics.NewSampler(),
		terminal: &terminal{w: os.Stdout},
	}
	p.terminal.quiet = &p.config.Quiet
	p.events.Bind(&hook.Handler[*ProcessEvent]{Id: "processmanLifecycle", Func: p.terminal.onEvent, Priority: -1})
	if rootCmd != nil {
		p.exitOnConfigError = true
		flags := rootCmd.PersistentFlags()
		flags.StringVar(&p.source.flag, "processes", "",
			"the pb_processes.json file of the processes to run (default pb_data/../pb_processes.json)")
		flags.BoolVar(&p.config.Quiet, "processesQuiet", config.Quiet,
			"do not print a line on stdout when a managed process starts, exits, restarts or errors")
		flags.BoolVar(&p.config.AutoApply, "processesAutoApply", config.AutoApply,
			"apply the processes file whenever it changes, as `pm apply` does")
		rootCmd.AddCommand(pmCommand(app, config, p.source))
	}
	app.Store().Set(storeKey, p)
	app.OnServe().Bind(&hook.Handler[*core.ServeEvent]{
		Id:   "processmanServe",
		Func: p.onServe,
		// After the serve handlers of default priority (pb_hooks'
		// routerAdd, routes added by Go code), so that a route they took
		// is seen as taken rather than mounted over.
		Priority: 100,
	})
	app.OnTerminate().Bind(&hook.Handler[*core.TerminateEvent]{
		Id:   "processmanStop",
		Func: p.onTerminate,
		// After PocketBase stops accepting requests (-9999) and before its
		// logger writes its last batch (-999), so that the children's last
		// lines and exits reach the Logs page.
		Priority: -1000,
	})
	return nil
}

const storeKey = "processman"

// withDefaults returns c with its zero fields set to their defaults.
func (c Config) withDefaults() Config {
	if c.LogBufferLines <= 0 {
		c.LogBufferLines = 1000
	}
	if c.LogStoreRate == 0 {
		c.LogStoreRate = 50
	}
	if c.LogStoreBurst <= 0 {
		c.LogStoreBurst = 500
	}
	if c.DatabaseEnv == nil {
		c.DatabaseEnv = database.Env
	}
	return c
}

func pluginOf(app core.App) *plugin {
	p, _ := app.Store().Get(storeKey).(*plugin)
	return p
}

// onServe starts a run: routes and the control API go on the router
// before PocketBase builds it (e.Next), the processes start after, once
// PocketBase listens, so that PB_URL answers as soon as a child starts.
func (p *plugin) onServe(e *core.ServeEvent) error {
	r, err := newRun(p.app, p.config, p.source, p.events, p.controlAPI(), p.terminal, e)
	if err != nil {
		if errors.Is(err, errUnusableConfig) && p.exitOnConfigError {
			p.exitCode.Store(1)
		}
		return err
	}
	if old := p.current.Swap(r); old != nil {
		p.endRun(old)
	}
	if err := e.Next(); err != nil {
		if p.current.CompareAndSwap(r, nil) {
			p.endRun(r)
		}
		return err
	}
	r.start(e)
	return nil
}

// onTerminate stops every process before PocketBase exits or restarts
// itself in place. After a serve that the config file stopped, it ends
// the program with status 1 once the rest of PocketBase's termination
// ran: PocketBase itself exits 0 whatever a command returns.
func (p *plugin) onTerminate(e *core.TerminateEvent) error {
	if r := p.current.Swap(nil); r != nil {
		p.endRun(r)
	}
	err := e.Next()
	if code := p.exitCode.Load(); code != 0 && !e.IsRestart {
		os.Exit(int(code))
	}
	return err
}

// controlAPI is the REST API under /api/pm, over whichever run is
// current: while none is (PocketBase starting or stopping) it answers 503.
func (p *plugin) controlAPI() *control.API {
	return &control.API{
		Manager: func() *supervisor.Manager { return Manager(p.app) },
		Sampler: p.sampler,
		LogFile: func(name string) string {
			if r := p.current.Load(); r != nil {
				return r.logFile(name)
			}
			return ""
		},
		Apply: func(ctx context.Context) (control.ApplyResult, error) { return Apply(ctx, p.app) },
	}
}

func (p *plugin) endRun(r *run) {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	r.close(ctx)
}

// Manager returns the supervisor of the processes of app, or nil when
// the plugin is not registered or PocketBase is not serving. Its actions
// take a process's name, or NAME:INSTANCE for one instance:
//
//	if m := processman.Manager(app); m != nil {
//		err := m.Reload(ctx, "agent")  // a new copy takes over, no downtime
//		err = m.Restart(ctx, "worker:1") // instance 1 of worker
//	}
func Manager(app core.App) *supervisor.Manager {
	if p := pluginOf(app); p != nil {
		if r := p.current.Load(); r != nil {
			return r.manager
		}
	}
	return nil
}

// Apply re-reads the config file and applies the difference with what
// runs, without restarting PocketBase: new processes start (with their
// routes), removed ones stop, changed ones are reloaded (a routed process
// whose command or environment changed) or replaced, and unchanged ones
// keep running. A file with any error changes nothing: the result lists
// the errors and the error is ErrApplyInvalid. Processes registered from
// Go code are not touched.
//
//	result, err := processman.Apply(ctx, app)
//	for _, c := range result.Changes {
//		log.Println(c.Process, c.Action, c.Detail, c.Error)
//	}
func Apply(ctx context.Context, app core.App) (ApplyResult, error) {
	if p := pluginOf(app); p != nil {
		if r := p.current.Load(); r != nil {
			return r.applyFile(ctx)
		}
	}
	return ApplyResult{Changes: []ApplyChange{}, Errors: []config.Error{}}, ErrNotServing
}

// Sidecar returns an HTTP client for calling the routed process name from
// PocketBase code (hooks, custom routes) over the same socket as its
// route, waiting for it to be ready. Use the sidecar's own paths, without
// the route prefix:
//
//	client, err := processman.Sidecar(app, "agent")
//	resp, err := client.Post("http://agent/summarize", "application/json", body)
//
// Calls are signed as gateway.System (a superuser without a record), or
// as the identity put in the request's context with gateway.WithCaller.
// It returns an error when the process has no route or PocketBase is not
// serving.
func Sidecar(app core.App, name string) (*http.Client, error) {
	p := pluginOf(app)
	if p == nil {
		return nil, errors.New("processman: not registered")
	}
	if base, _, one := strings.Cut(name, ":"); one {
		return nil, fmt.Errorf("processman: %q names one instance; a sidecar is called through its route, which balances over the instances: name the process (%q)", name, base)
	}
	r := p.current.Load()
	if r == nil {
		return nil, fmt.Errorf("processman: no routed process %q is serving", name)
	}
	return r.routes.Client(name)
}

// OnProcessEvent is triggered for every event of the processes of app, or
// of those named. Handlers run one event at a time, in order, on a
// goroutine of their own: a slow handler never holds a process up. Call
// it after Register, before or while serving.
//
//	processman.OnProcessEvent(app, "agent").BindFunc(func(e *processman.ProcessEvent) error {
//		if e.Type == processman.EventErrored {
//			e.App.Logger().Error("agent gave up", "reason", e.Status.Error)
//		}
//		return e.Next()
//	})
func OnProcessEvent(app core.App, names ...string) *hook.TaggedHook[*ProcessEvent] {
	p := pluginOf(app)
	if p == nil {
		panic(fmt.Errorf("processman: OnProcessEvent needs processman.Register first"))
	}
	return hook.NewTaggedHook(p.events, names...)
}
