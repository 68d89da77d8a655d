package processman

import (
	"slices"
	"strconv"
	"time"

	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/hook"
	"github.com/processman/processman/supervisor"
)

// The types of process events.
const (
	// EventStarted: a run was spawned.
	EventStarted = "started"
	// EventReady: the run passed its readiness check (at once, for a
	// process without one).
	EventReady = "ready"
	// EventExited: a run ended cleanly (exit code 0, or a stop that
	// processman asked for).
	EventExited = "exited"
	// EventCrashed: a run ended in a way processman did not ask for (a
	// non-zero code or a signal).
	EventCrashed = "crashed"
	// EventErrored: the process gave up: too many unstable restarts, a
	// start that failed, or an invalid config entry.
	EventErrored = "errored"
	// EventStopped: the process is stopped (a restart is exited, stopped,
	// started).
	EventStopped = "stopped"
	// EventReloading: a reload started a new copy beside the running one
	// (Reload.Pid).
	EventReloading = "reloading"
	// EventReloaded: the new copy is ready and takes the requests; the
	// old one (Reload.OldPid) drains, then exits (an exited event whose
	// Exit.Reason says why).
	EventReloaded = "reloaded"
	// EventReloadFailed: a reload was given up (Reload.Error); the old
	// copy keeps serving.
	EventReloadFailed = "reload-failed"
	// EventWaiting: the start waits for depends_on, or what it waits for
	// changed (Status.WaitingFor).
	EventWaiting = "waiting"
	// EventCompleted: a run exited 0 and is not restarted (a one-shot
	// process is done); it follows the exited event.
	EventCompleted = "completed"
)

const (
	// eventQueue is how many process events wait for the hooks before
	// new ones are dropped (and counted by the manager).
	eventQueue = 4096
	// eventDrainTimeout bounds the wait for the hooks at shutdown.
	eventDrainTimeout = 10 * time.Second
)

// ProcessEvent is what OnProcessEvent handlers receive.
type ProcessEvent struct {
	hook.Event
	App core.App

	// Type is one of the Event* constants.
	Type string
	// Name is the process's name.
	Name string
	// Instance is the index of the instance the event is about (0 for a
	// process of one instance).
	Instance int
	// Status is the process's status right after the change.
	Status supervisor.Status
	// Exit is the exit that caused the event (exited, crashed, and
	// errored or stopped after an exit), nil otherwise. Exit.Reason says
	// why processman stopped it, when it had a reason of its own.
	Exit *supervisor.Exit
	// Reload is the step of a reload (reloading, reloaded, reload-failed,
	// and the exit of the old copy), nil otherwise.
	Reload *supervisor.ReloadStep

	// atStart is set on a ready event that came with the start itself
	// (a process without a readiness check).
	atStart bool
	// instances is how many the process has.
	instances int
}

// Tags makes events taggable by process name, and by one instance as
// actions name it ("api:1").
func (e *ProcessEvent) Tags() []string {
	return []string{e.Name, e.Name + ":" + strconv.Itoa(e.Instance)}
}

// Ref names the instance as actions do: the name, with ":<instance>"
// when the process has several.
func (e *ProcessEvent) Ref() string {
	if e.Instance > 0 || e.instances > 1 {
		return e.Name + ":" + strconv.Itoa(e.Instance)
	}
	return e.Name
}

// eventTypes maps a state change to the events it makes.
func eventTypes(ev supervisor.Event) []string {
	if r := ev.Reload; r != nil {
		switch r.Step {
		case supervisor.ReloadStarted:
			return []string{EventReloading}
		case supervisor.ReloadDone:
			return []string{EventReloaded}
		case supervisor.ReloadFailed:
			return []string{EventReloadFailed}
		}
		return []string{EventExited} // the old copy, stopped after it drained
	}
	var types []string
	st := ev.Status
	if ev.Exit != nil {
		if ev.Exit.Failed() {
			types = append(types, EventCrashed)
		} else {
			types = append(types, EventExited)
		}
	}
	switch {
	case st.State == supervisor.Online && ev.Previous != supervisor.Online:
		types = append(types, EventStarted)
		if st.Ready {
			types = append(types, EventReady)
		}
	case st.State == supervisor.Online && st.Ready:
		types = append(types, EventReady) // only readiness changes keep a process online
	case st.State == supervisor.Errored && ev.Previous != supervisor.Errored:
		types = append(types, EventErrored)
	case st.State == supervisor.Stopped && ev.Previous != supervisor.Stopped:
		types = append(types, EventStopped)
	case st.State == supervisor.Completed && ev.Previous != supervisor.Completed:
		types = append(types, EventCompleted)
	case st.State == supervisor.Waiting && st.WaitingFor != "":
		types = append(types, EventWaiting)
	}
	return types
}

// dispatcher triggers the hooks of process events for every change of
// one manager's processes, on a goroutine of its own, in order.
type dispatcher struct {
	app  core.App
	stop func()        // ends the subscription
	done chan struct{} // closed when the hooks have seen every event
}

// dispatch starts triggering events for the changes of manager.
func dispatch(app core.App, events *hook.Hook[*ProcessEvent], manager *supervisor.Manager) *dispatcher {
	changes, stop := manager.Subscribe(eventQueue)
	d := &dispatcher{app: app, stop: stop, done: make(chan struct{})}
	go func() {
		defer close(d.done)
		for ev := range changes {
			types := eventTypes(ev)
			for _, typ := range types {
				e := &ProcessEvent{App: app, Type: typ, Name: ev.Status.Name, Instance: ev.Status.Instance,
					Status: ev.Status, Exit: ev.Exit, Reload: ev.Reload, instances: instancesOf(manager, ev.Status.Name),
					atStart: typ == EventReady && slices.Contains(types, EventStarted)}
				if err := events.Trigger(e); err != nil {
					app.Logger().Error("processman: process event handler failed",
						"process", e.Name, "instance", e.Instance, "event", typ, "error", err.Error())
				}
			}
		}
	}()
	return d
}

// instancesOf is how many instances the process name has.
func instancesOf(manager *supervisor.Manager, name string) int {
	if p := manager.Get(name); p != nil {
		return p.Config().Instances
	}
	return 1
}

// close ends the subscription and waits, up to eventDrainTimeout, until
// the hooks have seen the events before it: the last exits at shutdown.
func (d *dispatcher) close() {
	d.stop()
	select {
	case <-d.done:
	case <-time.After(eventDrainTimeout):
		d.app.Logger().Warn("processman: process event handlers still busy at shutdown; not waiting for them")
	}
}
