package processman_test

import (
	"context"
	"errors"
	"log"

	"github.com/pocketbase/pocketbase"
	"github.com/pocketbase/pocketbase/apis"
	"github.com/pocketbase/pocketbase/core"
	"github.com/processman/processman"
	"github.com/processman/processman/config"
)

// Wiring the plugin into a PocketBase app: processes come from
// pb_data/../pb_processes.json and from Go.
func ExampleMustRegister() {
	app := pocketbase.New()

	processman.MustRegister(app, app.RootCmd, processman.Config{
		Processes: []config.Process{
			{Name: "agent", Script: "agent.py", Cwd: "agents", Watch: config.Watch{Enabled: true}},
			{Name: "web", Script: "npm", Args: []string{"run", "start"}, Cwd: "web", Restart: config.RestartOnFailure},
		},
	})

	if err := app.Start(); err != nil {
		log.Fatal(err)
	}
}

// Controlling a process from PocketBase code, here restarting an agent
// from a custom superuser-only route.
func ExampleManager() {
	app := pocketbase.New()
	processman.MustRegister(app, app.RootCmd, processman.Config{})

	app.OnServe().BindFunc(func(se *core.ServeEvent) error {
		se.Router.POST("/api/myapp/restart-agent", func(e *core.RequestEvent) error {
			agent := processman.Manager(e.App).Get("agent")
			if agent == nil {
				return e.NotFoundError("no agent process", nil)
			}
			if err := agent.Restart(context.Background()); err != nil {
				return e.InternalServerError("restart failed", err)
			}
			return e.JSON(200, agent.Status())
		}).Bind(apis.RequireSuperuserAuth())
		return se.Next()
	})
}

// Reloading a routed process without downtime after a deploy step, here
// from a superuser-only route: each instance in turn gets a new copy that
// takes the requests once ready, while the old one finishes its own.
func ExampleManager_reload() {
	app := pocketbase.New()
	processman.MustRegister(app, app.RootCmd, processman.Config{})

	app.OnServe().BindFunc(func(se *core.ServeEvent) error {
		se.Router.POST("/api/myapp/deploy-agent", func(e *core.RequestEvent) error {
			m := processman.Manager(e.App)
			if m == nil {
				return e.Error(503, "processes are not running", nil)
			}
			if err := m.Reload(e.Request.Context(), "agent"); err != nil {
				// supervisor.ErrReloadFailed: the old copies keep serving
				return e.BadRequestError(err.Error(), nil)
			}
			return e.NoContent(204)
		}).Bind(apis.RequireSuperuserAuth())
		return se.Next()
	})
}

// Reacting to process events: here, telling someone when the agent keeps
// crashing and processman gives up on it.
func ExampleOnProcessEvent() {
	app := pocketbase.New()
	processman.MustRegister(app, app.RootCmd, processman.Config{})

	processman.OnProcessEvent(app, "agent").BindFunc(func(e *processman.ProcessEvent) error {
		if e.Type == processman.EventErrored {
			lines := 0
			if e.Status.LastCrash != nil {
				lines = len(e.Status.LastCrash.LastLines)
			}
			e.App.Logger().Error("agent gave up", "reason", e.Status.Error, "last_lines", lines)
			// e.g. send a mail with e.App.NewMailClient()
		}
		return e.Next()
	})
}

// Apply the edited pb_processes.json from Go, here on a custom route a
// deploy script calls after it updated the file: the changed processes
// are replaced or reloaded, the others keep running.
func ExampleApply() {
	app := pocketbase.New()
	processman.MustRegister(app, app.RootCmd, processman.Config{})

	app.OnServe().BindFunc(func(se *core.ServeEvent) error {
		se.Router.POST("/api/myapp/deployed", func(e *core.RequestEvent) error {
			result, err := processman.Apply(e.Request.Context(), e.App)
			if errors.Is(err, processman.ErrApplyInvalid) {
				return e.JSON(400, result.Errors) // nothing was changed
			}
			if err != nil {
				return e.InternalServerError("apply failed", err)
			}
			for _, c := range result.Changes {
				e.App.Logger().Info("deploy", "process", c.Process, "action", c.Action, "detail", c.Detail)
			}
			return e.JSON(200, result)
		}).Bind(apis.RequireSuperuserAuth())
		return se.Next()
	})

	if err := app.Start(); err != nil {
		log.Fatal(err)
	}
}
