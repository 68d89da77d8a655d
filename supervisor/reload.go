package supervisor

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrReloadFailed is wrapped by the error of a reload that was given up;
// the old copy, if it still ran, kept serving.
var ErrReloadFailed = errors.New("reload given up")

// ReloadStep is one step of a reload, carried by its events.
type ReloadStep struct {
	// Step is ReloadStarted, ReloadDone, ReloadRetired or ReloadFailed.
	Step string `json:"step"`
	// Pid is the new copy's.
	Pid int `json:"pid"`
	// OldPid is the copy it replaces; 0 when that one died meanwhile.
	OldPid int `json:"old_pid"`
	// Error says why a reload was given up.
	Error string `json:"error,omitempty"`
}

// The steps of a reload.
const (
	// ReloadStarted: the new copy runs beside the old one.
	ReloadStarted = "started"
	// ReloadDone: the new copy is ready and takes the requests; the old
	// one drains.
	ReloadDone = "done"
	// ReloadRetired: the old copy has drained and is stopped.
	ReloadRetired = "retired"
	// ReloadFailed: the new copy did not become ready; it is stopped.
	ReloadFailed = "failed"
)

// reload replaces old, the current run, by a new copy on the other slot:
//
//  1. the new copy starts beside the old one, which keeps serving;
//  2. once its readiness check passes (within ready_timeout) it becomes
//     the current run, and the gateway sends new requests to it;
//  3. Drain waits, up to drain_timeout, for the old copy's requests and
//     streams to end, then the old copy is stopped as a stop would.
//
// If the new copy exits or is not ready in time, it is stopped and the
// reload given up: old stays current and LastReloadFailure says why, with
// the new copy's last lines. If old exits while the new copy starts, it
// is recorded as any exit is and the reload goes on; lost returns it when
// the new copy then fails too, so that the restart policy decides.
func (p *Process) reload(ctx context.Context, old *run, reason string) (current *run, lost *Exit, err error) {
	slot := 1 - old.slot
	oldPid := old.pid
	cmdSpec, err := p.prepare(slot)
	if err != nil {
		return old, nil, p.reloadFailed(nil, oldPid, nil, err.Error())
	}
	next, err := p.spawnRun(cmdSpec, slot)
	if err != nil {
		return old, nil, p.reloadFailed(nil, oldPid, nil, err.Error())
	}
	select { // a stale signal of an earlier copy
	case <-p.nextReady:
	default:
	}
	p.emit(func(s *Status) {
		s.Next = &Copy{Pid: next.pid, Slot: slot, StartedAt: next.started, Ready: !p.opts.CheckReadiness}
	}, Event{Reload: &ReloadStep{Step: ReloadStarted, Pid: next.pid, OldPid: oldPid}})
	p.opts.Logger.Info("processman: reload: new copy started", "pid", next.pid, "old_pid", oldPid)

	deadline := time.NewTimer(p.cfg.ReadyTimeout.Std())
	defer deadline.Stop()
	for ready := !p.opts.CheckReadiness; !ready; {
		select {
		case pid := <-p.nextReady:
			ready = pid == next.pid
		case exit := <-next.exited:
			p.reapGroup(next, false)
			return old, lost, p.reloadFailed(next, oldPid, &exit,
				fmt.Sprintf("the new copy (pid %d) %s before it was ready", next.pid, exitText(exit)))
		case exit := <-exitedOf(old):
			p.reapGroup(old, false)
			p.recordExit(old, exit, decision{state: Starting}, nil)
			old, lost = nil, &exit
		case <-deadline.C:
			p.stopGroup(next)
			return old, lost, p.reloadFailed(next, oldPid, nil,
				fmt.Sprintf("the new copy (pid %d) was not ready within ready_timeout (%s)", next.pid, p.cfg.ReadyTimeout))
		case <-ctx.Done():
			p.stopGroup(next)
			return old, lost, ErrClosed
		}
	}

	p.mu.Lock()
	p.launched = cmdSpec
	p.mu.Unlock()
	p.emit(func(s *Status) {
		s.setCommand(cmdSpec)
		s.State, s.Error, s.NextRestart = Online, "", time.Time{}
		s.Pid, s.StartedAt, s.Slot, s.Ready = next.pid, next.started, slot, true
		s.Next = nil
		s.Restarts++
		s.Reloads++
		if old != nil {
			s.Draining = &Copy{Pid: old.pid, Slot: old.slot, StartedAt: old.started}
		}
	}, Event{Reload: &ReloadStep{Step: ReloadDone, Pid: next.pid, OldPid: oldPid}})
	p.opts.Logger.Info("processman: reload: the new copy serves", "pid", next.pid, "old_pid", oldPid)
	if old != nil {
		p.opts.Drain(ctx, old.slot, p.cfg.DrainTimeout.Std())
		p.retire(old, next.pid, reason)
	}
	return next, nil, nil
}

// retire stops the old copy of a reload once it has drained, as a stop
// would, and records its exit; the state is the new copy's.
func (p *Process) retire(old *run, pid int, reason string) {
	exit := p.stopGroup(old)
	exit.Reason = reason
	p.emit(func(s *Status) {
		s.LastExit = &exit
		s.Draining = nil
	}, Event{Exit: &exit, Reload: &ReloadStep{Step: ReloadRetired, Pid: pid, OldPid: old.pid}})
	p.opts.Logger.Info("processman: reload: old copy stopped", exitAttrs(exit)...)
}

// reloadFailed records a reload that was given up and returns its error.
// next is the new copy, nil when none started; exit is its exit if it
// ended by itself.
func (p *Process) reloadFailed(next *run, oldPid int, exit *Exit, message string) error {
	failure := &ReloadFailure{Time: time.Now(), Error: message, Exit: exit}
	step := &ReloadStep{Step: ReloadFailed, OldPid: oldPid, Error: message}
	if next != nil {
		failure.LastLines = lastLinesOf(p.opts.Output, next.pid, CrashLines)
		step.Pid = next.pid
	}
	p.emit(func(s *Status) {
		s.Next = nil
		s.LastReloadFailure = failure
	}, Event{Reload: step})
	p.opts.Logger.Error("processman: reload given up: "+message, "old_pid", oldPid)
	if oldPid != 0 && p.Status().Pid == oldPid {
		message += fmt.Sprintf("; the old copy (pid %d) keeps serving", oldPid)
	}
	return fmt.Errorf("processman: %w for %q: %s", ErrReloadFailed, p.Ref(), message)
}

// exitedOf is the exit channel of r, nil (never ready) for no run.
func exitedOf(r *run) <-chan Exit {
	if r == nil {
		return nil
	}
	return r.exited
}

// exitText says how a child ended: "exited with code 1", "was killed by
// SIGKILL".
func exitText(e Exit) string {
	if e.Signal != "" {
		return "was killed by " + e.Signal
	}
	return fmt.Sprintf("exited with code %d", e.Code)
}
