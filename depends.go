package processman

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/processman/processman/config"
	"github.com/processman/processman/supervisor"
)

// dependencyRecheck bounds how long a waiting process goes without
// looking at its dependencies, should an event be missed.
const dependencyRecheck = time.Second

// waitForDependencies returns the supervisor.Options.Wait of a process
// with depends_on: it returns once every dependency meets its
// condition, reporting meanwhile the first that does not and why.
func waitForDependencies(manager *supervisor.Manager, deps config.Dependencies) func(context.Context, func(string)) error {
	return func(ctx context.Context, report func(string)) error {
		events, unsubscribe := manager.Subscribe(64)
		defer unsubscribe()
		for {
			unmet := unmetDependency(manager, deps)
			if unmet == "" {
				return nil
			}
			report(unmet)
			timer := time.NewTimer(dependencyRecheck)
			select {
			case <-ctx.Done():
				timer.Stop()
				return ctx.Err()
			case <-events:
			case <-timer.C:
			}
			timer.Stop()
		}
	}
}

// unmetDependency describes the first dependency that does not meet its
// condition ("db: not ready"), "" when all do.
func unmetDependency(manager *supervisor.Manager, deps config.Dependencies) string {
	for _, dep := range deps {
		instances := manager.Instances(dep.Name)
		if len(instances) == 0 {
			return dep.Name + ": not running here"
		}
		for _, sp := range instances {
			if why := unmet(sp.Status(), dep.Condition); why != "" {
				if len(instances) > 1 {
					return fmt.Sprintf("%s: instance %d %s", dep.Name, sp.Instance(), why)
				}
				return dep.Name + ": " + why
			}
		}
	}
	return ""
}

// unmet says why an instance in status st does not meet condition, ""
// when it does.
func unmet(st supervisor.Status, condition string) string {
	switch condition {
	case config.ConditionStarted:
		if st.State == supervisor.Online || st.State == supervisor.Completed {
			return ""
		}
	case config.ConditionReady:
		if st.State == supervisor.Online && st.Ready {
			return ""
		}
		if st.State == supervisor.Online || st.State == supervisor.Starting {
			return "not ready"
		}
	case config.ConditionCompletedSuccessfully:
		if st.State == supervisor.Completed {
			return ""
		}
		if st.State.Running() {
			return "not completed yet"
		}
		if st.LastExit != nil && st.LastExit.Failed() {
			return "exited unsuccessfully (" + exitText(*st.LastExit) + "); fix it and start it again"
		}
	}
	return stateText(st)
}

// stateText describes a state that meets no condition.
func stateText(st supervisor.Status) string {
	switch st.State {
	case supervisor.Errored:
		return "errored: " + firstLine(st.Error)
	case supervisor.Waiting:
		return "waiting itself (" + st.WaitingFor + ")"
	case supervisor.Stopped:
		if st.LastExit != nil && st.LastExit.Failed() {
			return "exited unsuccessfully (" + exitText(*st.LastExit) + ")"
		}
		return "stopped"
	case supervisor.WaitingRestart:
		return "restarting"
	}
	return string(st.State)
}

func exitText(exit supervisor.Exit) string {
	if exit.Signal != "" {
		return "signal " + exit.Signal
	}
	return fmt.Sprintf("code %d", exit.Code)
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
