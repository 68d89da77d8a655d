package supervisor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/processman/processman/config"
	"github.com/processman/processman/launch"
	"github.com/processman/processman/logs"
)

// ErrClosed is returned by requests to a process whose supervisor has
// shut down.
var ErrClosed = errors.New("processman: supervisor is shut down")

// Options wire a Process to the rest of processman.
type Options struct {
	// Instance is the index of this instance of the process, 0 for a
	// process of one instance.
	Instance int
	// Resolve builds the command of a run that listens on slot (0 or 1;
	// see Drain); called at every start, so that a venv or script
	// created later is picked up.
	Resolve func(cfg config.Process, slot int) (*launch.Command, error)
	// Spawner starts the children (required).
	Spawner *Spawner
	// Output receives the child's stdout and stderr (required).
	Output *logs.Output
	// Logger receives state changes; nil means slog.Default().
	Logger *slog.Logger
	// CheckReadiness says that something else (a health check) decides
	// when a run is ready, with SetReady; otherwise a run is ready as soon
	// as it is spawned.
	CheckReadiness bool
	// BeforeStart, if set, runs before each start of a run on slot; an
	// error fails the start (the gateway readies the slot's socket here).
	BeforeStart func(slot int) error
	// Drain, if set, makes Reload replace a running child without a
	// moment where none serves: the new copy starts on the other slot,
	// takes the requests once it is ready, and Drain then waits, up to
	// timeout, until the old copy's slot has no request left before the
	// old copy is stopped. Without it a reload is a restart.
	Drain func(ctx context.Context, slot int, timeout time.Duration)
	// ConfigError, if set, marks the process errored from the start: its
	// config entry is invalid. Start and Restart return it.
	ConfigError string
	// OnEvent, if set, is called after every state change, from the
	// process's own goroutine: it must not block for long.
	OnEvent func(Event)
	// Wait, if set, holds the first start until it returns nil: the
	// process is Waiting meanwhile, and report sets what it waits for
	// (Status.WaitingFor). A start, restart or reload request starts it
	// at once; a stop ends the wait. Wait must return when ctx is done.
	Wait func(ctx context.Context, report func(waitingFor string)) error
	// Manual keeps the process from starting by itself: it starts only
	// when asked (a scheduled process is started by its schedule).
	Manual bool
	// DependsOn names the processes that this one depends on: at
	// shutdown, the Manager stops this one before them.
	DependsOn []string
}

// Event is a state change of a process.
type Event struct {
	Status Status
	// Previous is the state before the change.
	Previous State
	// Exit is set when the change was caused by an exit.
	Exit *Exit
	// Reload is set on the steps of a reload.
	Reload *ReloadStep
}

// Process supervises one instance of a managed process. All changes
// happen on one goroutine (Run), which takes start, stop, restart and
// reload requests one at a time: concurrent requests are serialized and
// can never leave two copies running, or three during a reload.
type Process struct {
	// cfg is changed by the loop alone (a reload with a new config),
	// under mu; name and instances never change.
	cfg       config.Process
	name      string
	instances int
	opts      Options

	requests  chan request
	done      chan struct{}
	nextReady chan int // the pid of a reload's new copy, once it is ready

	mu       sync.RWMutex
	status   Status
	launched *launch.Command // the command of the current or last run
}

type requestKind int

const (
	reqStart requestKind = iota
	reqStop
	reqRestart
	reqReload
)

type request struct {
	kind   requestKind
	reason string          // why, from WithReason
	cfg    *config.Process // a reload's new config; nil keeps it
	reply  chan error
}

// reasonKey carries the reason of a request in its context.
type reasonKey struct{}

// WithReason makes the stop, restart or reload asked for with ctx record
// why: the exit of the child it stops carries reason (Exit.Reason), and
// so do its event and log record.
//
//	p.Reload(supervisor.WithReason(ctx, "memory 312MB over max_memory_restart 300MB"))
func WithReason(ctx context.Context, reason string) context.Context {
	return context.WithValue(ctx, reasonKey{}, reason)
}

func reasonOf(ctx context.Context) string {
	reason, _ := ctx.Value(reasonKey{}).(string)
	return reason
}

// run is one running child.
type run struct {
	cmd     *exec.Cmd
	pid     int
	slot    int
	started time.Time
	exited  chan Exit     // receives the exit once
	output  chan struct{} // closed when both pipes reached EOF
}

// New creates the supervisor of one process; cfg gets its defaults.
// Call Run to start its loop.
func New(cfg config.Process, opts Options) *Process {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	cfg = cfg.WithDefaults()
	if cfg.Instances > 1 {
		opts.Logger = opts.Logger.With("process", cfg.Name, "instance", opts.Instance)
	} else {
		opts.Logger = opts.Logger.With("process", cfg.Name)
	}
	return &Process{
		cfg:       cfg,
		name:      cfg.Name,
		instances: cfg.Instances,
		opts:      opts,
		requests:  make(chan request),
		done:      make(chan struct{}),
		nextReady: make(chan int, 1),
		status:    Status{Name: cfg.Name, Instance: opts.Instance, State: Stopped},
	}
}

// Instance is the index of this instance of the process.
func (p *Process) Instance() int { return p.opts.Instance }

// Ref names this instance as actions do: the process's name, with
// ":<instance>" when it has more than one ("api:1").
func (p *Process) Ref() string {
	if p.instances > 1 {
		return p.name + ":" + strconv.Itoa(p.opts.Instance)
	}
	return p.name
}

// Config returns the process's configuration, defaults applied.
func (p *Process) Config() config.Process {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.cfg
}

// Status returns a snapshot of the process.
func (p *Process) Status() Status {
	p.mu.RLock()
	s := p.status
	p.mu.RUnlock()
	s.Logs = p.opts.Output.Stats()
	return s
}

// Output is where the process's output goes: its recent lines, counters
// and subscriptions.
func (p *Process) Output() *logs.Output { return p.opts.Output }

// Launched returns the resolved command of the current or last run (its
// environment included, so treat it as secret), or nil before the first
// start.
func (p *Process) Launched() *launch.Command {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.launched
}

// Readiness returns the state and readiness alone: cheaper than Status.
func (p *Process) Readiness() (State, bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.status.State, p.status.Ready
}

// Serving returns the state and whether the run on slot takes requests:
// the current run, ready. The gateway asks on every request, for each
// slot of each instance.
func (p *Process) Serving(slot int) (State, bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.status.State, p.status.State == Online && p.status.Ready && p.status.Slot == slot
}

// Start starts the process if it is not running. It returns once the
// child has been spawned, or with the reason it could not be.
func (p *Process) Start(ctx context.Context) error { return p.ask(ctx, reqStart) }

// Stop stops the process and its whole process group and returns once
// they are gone.
func (p *Process) Stop(ctx context.Context) error { return p.ask(ctx, reqStop) }

// Restart stops the process (if running) and starts it again.
func (p *Process) Restart(ctx context.Context) error { return p.ask(ctx, reqRestart) }

// Reload replaces the running child with a new copy: without a moment
// where none serves for a process with Options.Drain (see reload.go), as
// a restart for any other. A process that is not running is started.
func (p *Process) Reload(ctx context.Context) error { return p.ask(ctx, reqReload) }

// ReloadWith reloads the process as Reload does, its new copy (and every
// later run) with cfg: a changed command or environment rolls out
// without downtime. cfg must keep the name, instances, route and listen
// of the process; the caller checks that.
func (p *Process) ReloadWith(ctx context.Context, cfg config.Process) error {
	cfg = cfg.WithDefaults()
	return p.askWith(ctx, request{kind: reqReload, cfg: &cfg})
}

func (p *Process) ask(ctx context.Context, kind requestKind) error {
	return p.askWith(ctx, request{kind: kind})
}

func (p *Process) askWith(ctx context.Context, req request) error {
	req.reason, req.reply = reasonOf(ctx), make(chan error, 1)
	select {
	case p.requests <- req:
	case <-p.done:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-req.reply:
		return err
	case <-p.done:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

// SetReady records the outcome of a readiness check of the run with this
// pid, the current run or a reload's new copy; it is ignored for any
// other. It reports whether the readiness changed.
func (p *Process) SetReady(pid int, ready bool) bool {
	p.mu.Lock()
	if next := p.status.Next; next != nil && next.Pid == pid {
		changed := ready && !next.Ready
		if changed {
			// a new value: snapshots already handed out share the old one
			ready := *next
			ready.Ready = true
			p.status.Next = &ready
			select {
			case p.nextReady <- pid:
			default:
			}
		}
		p.mu.Unlock()
		return changed
	}
	if p.status.Pid != pid || p.status.State != Online || p.status.Ready == ready {
		p.mu.Unlock()
		return false
	}
	p.mu.Unlock()
	changed := false
	p.transition(func(s *Status) {
		if s.Pid == pid && s.State == Online && s.Ready != ready {
			s.Ready, changed = ready, true
		}
	}, nil)
	return changed
}

// Done is closed when Run has returned.
func (p *Process) Done() <-chan struct{} { return p.done }

// Run is the process's loop. It starts the process unless it is
// disabled, serves requests, restarts it by its policy, and when ctx is
// cancelled stops it and returns.
func (p *Process) Run(ctx context.Context) {
	defer close(p.done)
	var (
		current *run
		slot    int // where the next start listens: the current run's slot
		policy  backoff
		timer   *time.Timer
		timerC  <-chan time.Time
	)
	cancelTimer := func() {
		if timer != nil {
			timer.Stop()
			timer, timerC = nil, nil
		}
	}
	start := func() error {
		cancelTimer()
		r, err := p.spawn(slot)
		if err != nil {
			p.setErrored(err.Error(), nil)
			return err
		}
		current = r
		return nil
	}
	restarted := func() {
		p.mu.Lock()
		p.status.Restarts++
		p.mu.Unlock()
	}
	restart := func(reason string) error {
		if current != nil {
			p.stopRun(current, reason)
			current = nil
		}
		policy.reset()
		err := start()
		if err == nil {
			restarted()
		}
		return err
	}
	exitedC := func() <-chan Exit {
		if current == nil {
			return nil
		}
		return current.exited
	}
	var (
		waitC      <-chan error // the dependencies' wait, while waiting
		cancelWait = func() {}
	)
	endWait := func() {
		cancelWait()
		waitC, cancelWait = nil, func() {}
		p.mu.Lock()
		p.status.WaitingFor = ""
		p.mu.Unlock()
	}

	switch {
	case p.opts.ConfigError != "":
		p.setErrored(p.opts.ConfigError, nil)
		start = func() error { return errors.New(p.opts.ConfigError) }
	case p.cfg.Disabled || p.opts.Manual:
	case p.opts.Wait != nil:
		waitC, cancelWait = p.wait(ctx)
	default:
		_ = start()
	}
	for {
		select {
		case err := <-waitC:
			waitC, cancelWait = nil, func() {}
			if err == nil {
				p.mu.Lock()
				p.status.WaitingFor = ""
				p.mu.Unlock()
				_ = start()
			}

		case <-ctx.Done():
			endWait()
			cancelTimer()
			if current != nil {
				p.stopRun(current, "")
				current = nil
			}
			return

		case req := <-p.requests:
			var err error
			if req.cfg != nil {
				p.mu.Lock()
				p.cfg = *req.cfg
				p.mu.Unlock()
			}
			if waitC != nil {
				// Any request ends the wait: a stop leaves the process
				// stopped, the others start it now.
				endWait()
				if req.kind != reqStop {
					policy.reset()
					err = start()
					req.reply <- err
					continue
				}
			}
			switch req.kind {
			case reqStart:
				if current == nil {
					policy.reset()
					err = start()
				}
			case reqStop:
				cancelTimer()
				if current != nil {
					p.stopRun(current, req.reason)
					current = nil
				} else {
					p.transition(func(s *Status) { s.State, s.NextRestart = Stopped, time.Time{} }, nil)
				}
			case reqRestart:
				err = restart(req.reason)
			case reqReload:
				if req.reason == "" {
					req.reason = "reload"
				}

				if current == nil || p.opts.Drain == nil || p.opts.ConfigError != "" {
					err = restart(req.reason)
					break
				}
				var lost *Exit
				current, lost, err = p.reload(ctx, current, req.reason)
				switch {
				case current != nil:
					slot = current.slot
				case lost != nil && ctx.Err() == nil:
					// The old copy died during the reload and the new one
					// failed: the exit decides, as any exit does.
					d := policy.afterExit(p.cfg, *lost)
					p.transition(func(s *Status) {
						s.State, s.Error = d.state, d.reason
						if d.restart {
							s.NextRestart = time.Now().Add(d.delay)
						}
					}, nil)
					if d.restart {
						timer = time.NewTimer(d.delay)
						timerC = timer.C
					}
				}
			}
			req.reply <- err

		case exit := <-exitedC():
			r := current
			current = nil
			p.reapGroup(r, false)
			d := policy.afterExit(p.cfg, exit)
			p.recordExit(r, exit, d, &policy)
			if d.restart {
				timer = time.NewTimer(d.delay)
				timerC = timer.C
			}

		case <-timerC:
			timer, timerC = nil, nil
			if start() == nil {
				restarted()
			}
		}
	}
}

// SetSchedule records the schedule of a scheduled process and its runs
// (Status.Schedule); an event reports the change.
func (p *Process) SetSchedule(s Schedule) {
	p.transition(func(st *Status) { st.Schedule = &s }, nil)
}

// wait puts the process in Waiting and runs opts.Wait on its own
// goroutine; the channel gets its result.
func (p *Process) wait(ctx context.Context) (<-chan error, func()) {
	wctx, cancel := context.WithCancel(ctx)
	result := make(chan error, 1)
	p.transition(func(s *Status) { s.State = Waiting }, nil)
	report := func(waitingFor string) {
		p.mu.RLock()
		same := p.status.State == Waiting && p.status.WaitingFor == waitingFor
		p.mu.RUnlock()
		if !same && wctx.Err() == nil {
			p.transition(func(s *Status) {
				if s.State == Waiting {
					s.WaitingFor = waitingFor
				}
			}, nil)
		}
	}
	go func() { result <- p.opts.Wait(wctx, report) }()
	return result, cancel
}

// spawn resolves the command and starts the current run on slot.
func (p *Process) spawn(slot int) (*run, error) {
	p.transition(func(s *Status) { s.State, s.Error, s.NextRestart = Starting, "", time.Time{} }, nil)
	cmdSpec, err := p.prepare(slot)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	p.launched = cmdSpec
	p.mu.Unlock()
	r, err := p.spawnRun(cmdSpec, slot)
	if err != nil {
		return nil, err
	}
	p.transition(func(s *Status) {
		s.setCommand(cmdSpec)
		s.State, s.Pid, s.StartedAt, s.Slot = Online, r.pid, r.started, slot
		s.Ready = !p.opts.CheckReadiness
	}, nil)
	p.opts.Logger.Info("processman: process started", "pid", r.pid, "command", cmdSpec.String())
	return r, nil
}

// setCommand records the command of the current run.
func (s *Status) setCommand(c *launch.Command) {
	s.Command, s.Dir, s.Runtime, s.Venv = c.Args, c.Dir, c.Runtime, c.Venv
	s.Warnings = c.Warnings
}

// prepare resolves the command of a run on slot and readies the slot.
func (p *Process) prepare(slot int) (*launch.Command, error) {
	cmdSpec, err := p.opts.Resolve(p.cfg, slot)
	if err != nil {
		return nil, err
	}
	if p.opts.BeforeStart != nil {
		if err := p.opts.BeforeStart(slot); err != nil {
			return nil, err
		}
	}
	for _, w := range cmdSpec.Warnings {
		p.opts.Logger.Warn("processman: " + w)
	}
	return cmdSpec, nil
}

// spawnRun starts a child of cmdSpec with its output attached.
func (p *Process) spawnRun(cmdSpec *launch.Command, slot int) (*run, error) {
	stdoutR, stdoutW, err := outputPipe()
	if err != nil {
		return nil, fmt.Errorf("processman: start %q: %w", p.Ref(), err)
	}
	stderrR, stderrW, err := outputPipe()
	if err != nil {
		stdoutR.Close()
		stdoutW.Close()
		return nil, fmt.Errorf("processman: start %q: %w", p.Ref(), err)
	}
	cmd := &exec.Cmd{
		Path:   cmdSpec.Path,
		Args:   cmdSpec.Args,
		Dir:    cmdSpec.Dir,
		Env:    cmdSpec.Env,
		Stdout: stdoutW,
		Stderr: stderrW,
	}
	err = p.opts.Spawner.Start(cmd)
	// The child holds its own copies of the write ends; ours must go so
	// that the readers see EOF when the child's whole group is done.
	stdoutW.Close()
	stderrW.Close()
	if err != nil {
		stdoutR.Close()
		stderrR.Close()
		return nil, fmt.Errorf("processman: start %q (%s): %w", p.Ref(), cmdSpec, err)
	}

	r := &run{cmd: cmd, pid: cmd.Process.Pid, slot: slot, started: time.Now(), exited: make(chan Exit, 1), output: make(chan struct{})}
	outDone := p.opts.Output.Attach(logs.Stdout, r.pid, p.opts.Instance, stdoutR)
	errDone := p.opts.Output.Attach(logs.Stderr, r.pid, p.opts.Instance, stderrR)
	go func() {
		<-outDone
		<-errDone
		close(r.output)
	}()
	go func() {
		err := cmd.Wait()
		r.exited <- exitOf(r, err)
	}()
	return r, nil
}

// exitOf describes how a run ended.
func exitOf(r *run, waitErr error) Exit {
	e := Exit{Time: time.Now(), Pid: r.pid, Code: -1, Uptime: time.Since(r.started)}
	state := r.cmd.ProcessState
	if state == nil {
		return e
	}
	if ws, ok := state.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		e.Signal = signalName(ws.Signal())
		return e
	}
	e.Code = state.ExitCode()
	return e
}

// stopRun stops the current run and its whole group (see stopGroup);
// reason, if any, is recorded in its exit.
func (p *Process) stopRun(r *run, reason string) {
	p.transition(func(s *Status) { s.State, s.Ready = Stopping, false }, nil)
	exit := p.stopGroup(r)
	exit.Reason = reason
	p.recordExit(r, exit, decision{state: Stopped}, nil)
}

// stopGroup stops a child and its whole group: kill_signal to the group,
// kill_timeout to exit, then SIGKILL to the group. It returns the exit,
// requested.
func (p *Process) stopGroup(r *run) Exit {
	sig, err := p.cfg.Signal()
	if err != nil {
		sig = syscall.SIGTERM
	}
	_ = signalGroup(r.pid, sig)

	var exit Exit
	timeout := time.NewTimer(p.cfg.KillTimeout.Std())
	defer timeout.Stop()
	select {
	case exit = <-r.exited:
	case <-timeout.C:
		p.opts.Logger.Warn("processman: process did not stop in time, killing its process group",
			"pid", r.pid, "signal", signalName(sig), "kill_timeout", p.cfg.KillTimeout.String())
		_ = signalGroup(r.pid, syscall.SIGKILL)
		exit = <-r.exited
	}
	exit.Requested = true
	p.reapGroup(r, true)
	return exit
}

// reapGroup makes sure no process of the run's group survives its
// leader: descendants get kill_signal (unless already sent), the rest of
// kill_timeout, then SIGKILL. It also waits for the output to drain.
func (p *Process) reapGroup(r *run, signalled bool) {
	pgid := r.pid
	defer p.opts.Spawner.Release(pgid)
	if groupAlive(pgid) {
		if !signalled {
			sig, _ := p.cfg.Signal()
			_ = signalGroup(pgid, sig)
		}
		deadline := time.Now().Add(p.cfg.KillTimeout.Std())
		for groupAlive(pgid) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if groupAlive(pgid) {
			p.opts.Logger.Warn("processman: killing leftover processes of the group", "pgid", pgid)
			_ = signalGroup(pgid, syscall.SIGKILL)
			// SIGKILL is delivered asynchronously; the group is gone soon.
			for deadline := time.Now().Add(time.Second); groupAlive(pgid) && time.Now().Before(deadline); {
				time.Sleep(5 * time.Millisecond)
			}
		}
	}
	// Output ends when every holder of the pipes is gone; a descendant
	// that left the group may keep them open, so do not wait forever.
	select {
	case <-r.output:
	case <-time.After(2 * time.Second):
	}
}

// recordExit stores the exit, a crash record for unrequested exits, and
// the state decided by the policy.
func (p *Process) recordExit(r *run, exit Exit, d decision, policy *backoff) {
	var crash *Crash
	if !exit.Requested {
		crash = &Crash{Exit: exit, LastLines: lastLinesOf(p.opts.Output, r.pid, CrashLines)}
		texts := make([]string, len(crash.LastLines))
		for i, l := range crash.LastLines {
			texts[i] = l.Text
		}
		crash.Hint = launch.CrashHint(p.Launched(), texts)
	}
	p.transition(func(s *Status) {
		s.Pid, s.StartedAt, s.Ready = 0, time.Time{}, false
		s.LastExit = &exit
		if crash != nil {
			s.LastCrash = crash
		}
		if policy != nil {
			s.UnstableRestarts = policy.unstable
		}
		s.State = d.state
		s.Error = d.reason
		if d.restart {
			s.NextRestart = time.Now().Add(d.delay)
		}
	}, &exit)

	attrs := exitAttrs(exit)
	attrs = append(attrs, "state", string(d.state))
	switch {
	case exit.Requested:
		p.opts.Logger.Info("processman: process stopped", attrs...)
	case d.state == Errored:
		p.opts.Logger.Error("processman: process errored: "+d.reason, attrs...)
	case d.restart:
		p.opts.Logger.Warn("processman: process exited, restarting", append(attrs, "delay", d.delay.String())...)
	default:
		p.opts.Logger.Info("processman: process exited", attrs...)
	}
}

// setErrored marks a failed start.
func (p *Process) setErrored(reason string, exit *Exit) {
	p.transition(func(s *Status) {
		s.State, s.Error, s.Pid, s.StartedAt, s.Ready = Errored, reason, 0, time.Time{}, false
	}, exit)
	p.opts.Logger.Error("processman: process could not start", "error", reason)
}

// exitAttrs are the log attributes of an exit.
func exitAttrs(exit Exit) []any {
	attrs := []any{"pid", exit.Pid, "code", exit.Code, "uptime", exit.Uptime.Round(time.Millisecond).String()}
	if exit.Signal != "" {
		attrs = append(attrs, "signal", exit.Signal)
	}
	if exit.Reason != "" {
		attrs = append(attrs, "reason", exit.Reason)
	}
	return attrs
}

// transition applies a change to the status and reports it.
func (p *Process) transition(change func(*Status), exit *Exit) {
	p.emit(change, Event{Exit: exit})
}

// emit applies a change to the status and reports ev with the status
// after it.
func (p *Process) emit(change func(*Status), ev Event) {
	p.mu.Lock()
	ev.Previous = p.status.State
	change(&p.status)
	ev.Status = p.status
	p.mu.Unlock()
	if p.opts.OnEvent != nil {
		ev.Status.Logs = p.opts.Output.Stats()
		p.opts.OnEvent(ev)
	}
}

// lastLinesOf returns the last n lines that the run with this pid wrote.
func lastLinesOf(out *logs.Output, pid, n int) []logs.Line {
	all := out.Tail(0)
	var lines []logs.Line
	for i := len(all) - 1; i >= 0 && len(lines) < n; i-- {
		if all[i].Pid == pid {
			lines = append(lines, all[i])
		}
	}
	slices.Reverse(lines)
	return lines
}
