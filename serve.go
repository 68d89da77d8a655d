package processman

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/pocketbase/pocketbase/core"
	"github.com/processman/processman/config"
	"github.com/processman/processman/gateway"
	"github.com/processman/processman/health"
	"github.com/processman/processman/launch"
	"github.com/processman/processman/logs"
	"github.com/processman/processman/supervisor"
	"github.com/processman/processman/watch"
)

type plugin struct {
	app           core.App
	config        Config
	processesFlag string

	mu        sync.Mutex
	manager   *supervisor.Manager
	outputs   []*logs.Output
	watchers  []*watch.Watcher
	socketDir string
	proxies   map[string]*gateway.Proxy
	// frontRoutes are the proxies by the ServeMux pattern of each route,
	// for the gateway's front door (gateway.Front); set up in onServe.
	frontRoutes map[string]*gateway.Proxy

	checksCtx    context.Context // readiness checks run until terminate
	cancelChecks context.CancelFunc
}

// Manager returns the supervisor of the processes of app, or nil when
// the plugin is not registered or PocketBase is not serving.
func Manager(app core.App) *supervisor.Manager {
	p, _ := app.Store().Get(storeKey).(*plugin)
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.manager
}

// processesFile returns the config file to load and whether it was
// asked for explicitly (and so must exist).
func (p *plugin) processesFile() (string, bool) {
	switch {
	case p.processesFlag != "":
		return p.processesFlag, true
	case p.config.ProcessesFile != "":
		return p.config.ProcessesFile, true
	}
	return filepath.Join(p.app.DataDir(), "..", config.FileName), false
}

// loadProcesses gathers the processes of the file and of Go code. Every
// problem is returned; entries with problems come back too, with their
// errors, so that they can be shown as errored.
func (p *plugin) loadProcesses() ([]config.Process, config.Errors) {
	var procs []config.Process
	var errs config.Errors

	path, explicit := p.processesFile()
	file, err := config.Load(path)
	var cfgErrs config.Errors
	switch {
	case err == nil:
	case errors.As(err, &cfgErrs):
		errs = append(errs, cfgErrs...)
	case errors.Is(err, fs.ErrNotExist) && !explicit:
		// no file beside pb_data: only Go-registered processes
	default:
		errs = append(errs, config.Error{File: path, Index: -1, Message: err.Error(), Hint: "check the --processes flag or Config.ProcessesFile"})
	}
	if file != nil {
		procs = append(procs, file.Processes...)
	}

	baseDir := filepath.Join(p.app.DataDir(), "..")
	for _, proc := range p.config.Processes {
		if proc.Cwd == "" {
			proc.Cwd = baseDir
		} else if !filepath.IsAbs(proc.Cwd) {
			proc.Cwd = filepath.Join(baseDir, proc.Cwd)
		}
		procs = append(procs, proc)
	}
	goErrs := config.Check(procs, "")
	fileCount := len(procs) - len(p.config.Processes)
	for _, e := range goErrs {
		if e.Index >= fileCount { // file entries were checked by Load
			e.Path = fmt.Sprintf("Config.Processes[%d]", e.Index-fileCount)
			errs = append(errs, e)
		}
	}
	return procs, errs
}

// onServe starts the processes once PocketBase listens, so that PB_URL
// answers as soon as a child starts.
func (p *plugin) onServe(e *core.ServeEvent) error {
	procs, errs := p.loadProcesses()
	if len(errs) > 0 {
		// Reported all at once; valid entries still start and PocketBase
		// keeps serving.
		fmt.Fprintln(os.Stderr, errs.Error())
		for _, ce := range errs {
			p.app.Logger().Error("processman: config error", "error", ce.Error(), "process", ce.Process, "path", ce.Path)
		}
	}

	manager := supervisor.NewManager()
	p.mu.Lock()
	p.manager = manager
	p.checksCtx, p.cancelChecks = context.WithCancel(context.Background())
	p.mu.Unlock()

	// Routes must be on the router before PocketBase builds it in Next;
	// the processes start after, once PocketBase listens, so that PB_URL
	// answers as soon as a child starts.
	routed, err := p.setupRoutes(e, manager, procs, errs)
	if err != nil {
		return err
	}
	if err := e.Next(); err != nil {
		return err
	}
	// PocketBase has built its router into the server's handler: the
	// routes' requests that PocketBase's middlewares would not change
	// are served ahead of it (see gateway.Front).
	e.Server.Handler = gateway.NewFront(p.app, e.Router, e.Server.Handler, p.frontRoutes)
	p.frontRoutes = nil

	inject := map[string]string{
		"PB_URL":           p.pocketBaseURL(e),
		"PB_DATA_DIR":      absPath(p.app.DataDir()),
		"PYTHONUNBUFFERED": "1",
	}
	for k, v := range p.config.DatabaseEnv(p.app) {
		inject[k] = v
	}
	seen := map[string]bool{}
	for i, proc := range procs {
		if proc.Name == "" || seen[proc.Name] {
			continue // reported above; it cannot be addressed by name
		}
		seen[proc.Name] = true
		if err := p.addProcess(manager, proc, errs.ForIndex(i), inject, routed[proc.Name]); err != nil {
			p.app.Logger().Error("processman: cannot add process", "process", proc.Name, "error", err.Error())
			fmt.Fprintln(os.Stderr, err)
		}
	}
	return nil
}

// routedProcess is what a routed process adds to its launch.
type routedProcess struct {
	target gateway.Target
	env    map[string]string
}

// setupRoutes registers the routes of the valid routed processes.
func (p *plugin) setupRoutes(e *core.ServeEvent, manager *supervisor.Manager, procs []config.Process, errs config.Errors) (map[string]routedProcess, error) {
	routed := map[string]routedProcess{}
	var setup *gatewaySetup
	for i, proc := range procs {
		if proc.Route == "" || len(errs.ForIndex(i)) > 0 || proc.Name == "" {
			continue
		}
		if _, dup := routed[proc.Name]; dup {
			continue
		}
		if setup == nil {
			var err error
			if setup, err = newGatewaySetup(); err != nil {
				return nil, err
			}
			p.mu.Lock()
			p.socketDir = setup.socketDir
			p.mu.Unlock()
		}
		proc = proc.WithDefaults()
		target, env, err := setup.target(proc)
		if err != nil {
			p.app.Logger().Error("processman: route not mounted", "process", proc.Name, "route", proc.Route, "error", err.Error())
			fmt.Fprintln(os.Stderr, err)
			continue
		}
		p.registerRoute(e, manager, proc, target, setup.secret)
		routed[proc.Name] = routedProcess{target: target, env: env}
	}
	return routed, nil
}

// addProcess creates the output, supervisor and watcher of one process.
func (p *plugin) addProcess(manager *supervisor.Manager, proc config.Process, errs config.Errors, inject map[string]string, routed routedProcess) error {
	full := proc.WithDefaults()
	out, err := logs.NewOutput(logs.Options{
		Process:     proc.Name,
		File:        p.logFile(full),
		MaxSizeMB:   full.LogMaxSizeMB,
		MaxFiles:    full.LogMaxFiles,
		Logger:      p.storeLogger(),
		LoggerRate:  max(p.config.LogStoreRate, 0),
		LoggerBurst: p.config.LogStoreBurst,
		RingLines:   p.config.LogBufferLines,
	})
	if err != nil {
		errs = append(errs, config.Error{Process: proc.Name, Index: -1, Message: err.Error(), Hint: "fix log_file or make its directory writable"})
		out, _ = logs.NewOutput(logs.Options{Process: proc.Name, RingLines: p.config.LogBufferLines})
	}
	p.mu.Lock()
	p.outputs = append(p.outputs, out)
	p.mu.Unlock()

	procEnv := map[string]string{"PB_PROCESS_NAME": proc.Name}
	for k, v := range inject {
		procEnv[k] = v
	}
	for k, v := range routed.env {
		procEnv[k] = v
	}
	opts := supervisor.Options{
		Resolve: func(c config.Process) (*launch.Command, error) {
			return launch.Resolve(c, os.Environ(), procEnv)
		},
		Spawner:        manager.Spawner(),
		Output:         out,
		Logger:         p.app.Logger(),
		BeforeStart:    func() error { return removeStaleSocket(routed.target) },
		CheckReadiness: proc.Route != "" || proc.Health != nil,
	}
	if len(errs) > 0 {
		opts.ConfigError = "invalid config: " + errs.Error()
	}
	sp := supervisor.New(proc, opts)
	if err := manager.Add(sp); err != nil {
		return err
	}
	if opts.CheckReadiness && len(errs) == 0 {
		check := &health.Check{Process: sp, Output: out, Target: routed.target, Config: proc.Health, Logger: p.app.Logger()}
		go check.Run(p.checksCtx)
	}
	if len(errs) == 0 && !full.Watch.IsZero() {
		return p.watch(sp, full)
	}
	return nil
}

// watch restarts sp when its files change, unless it was stopped on
// purpose.
func (p *plugin) watch(sp *supervisor.Process, cfg config.Process) error {
	paths := cfg.Watch.Paths
	if len(paths) == 0 {
		paths = []string{cfg.Cwd}
	}
	w, err := watch.New(watch.Options{
		Paths:  paths,
		Root:   cfg.Cwd,
		Ignore: cfg.IgnoreWatch,
		OnError: func(err error) {
			p.app.Logger().Warn("processman: watch error", "process", cfg.Name, "error", err.Error())
		},
	}, func(changed []string) {
		st := sp.Status()
		if st.State == supervisor.Stopped && (st.LastExit == nil || st.LastExit.Requested) {
			return
		}
		p.app.Logger().Info("processman: files changed, restarting", "process", cfg.Name, "changed", changed)
		if err := sp.Restart(context.Background()); err != nil {
			p.app.Logger().Error("processman: restart after change failed", "process", cfg.Name, "error", err.Error())
		}
	})
	if err != nil {
		return fmt.Errorf("processman: watch %q: %w", cfg.Name, err)
	}
	p.mu.Lock()
	p.watchers = append(p.watchers, w)
	p.mu.Unlock()
	return nil
}

// onTerminate stops every process before PocketBase exits or restarts
// itself in place.
func (p *plugin) onTerminate(e *core.TerminateEvent) error {
	p.mu.Lock()
	manager, watchers, outputs, socketDir := p.manager, p.watchers, p.outputs, p.socketDir
	p.manager, p.watchers, p.outputs, p.socketDir, p.proxies = nil, nil, nil, "", nil
	if p.cancelChecks != nil {
		p.cancelChecks()
	}
	p.mu.Unlock()
	if socketDir != "" {
		defer os.RemoveAll(socketDir)
	}

	for _, w := range watchers {
		_ = w.Close()
	}
	if manager != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		if err := manager.Shutdown(ctx); err != nil {
			p.app.Logger().Error("processman: shutdown", "error", err.Error())
		}
		cancel()
	}
	for _, out := range outputs {
		_ = out.Close()
	}
	return e.Next()
}

// logFile is the log file path of a process, "" for none.
func (p *plugin) logFile(proc config.Process) string {
	switch {
	case proc.LogFile.Disabled:
		return ""
	case proc.LogFile.Path != "":
		if filepath.IsAbs(proc.LogFile.Path) {
			return proc.LogFile.Path
		}
		return filepath.Join(proc.Cwd, proc.LogFile.Path)
	}
	dir := p.config.LogsDir
	if dir == "" {
		dir = filepath.Join(p.app.DataDir(), "processman", "logs")
	}
	return filepath.Join(dir, proc.Name+".log")
}

func (p *plugin) storeLogger() *slog.Logger {
	if p.config.LogStoreRate < 0 {
		return nil
	}
	return p.app.Logger()
}

func absPath(path string) string {
	if abs, err := filepath.Abs(path); err == nil {
		return abs
	}
	return path
}
