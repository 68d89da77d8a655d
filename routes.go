package processman

import (
	"fmt"
	"log/slog"
	"os"
	"slices"

	"github.com/pocketbase/pocketbase/core"
	"github.com/processman/processman/config"
	"github.com/processman/processman/gateway"
	"github.com/processman/processman/supervisor"
)

// mountRoutes adds the route of every valid routed process to routes,
// on the serve event's router, and returns what each routed child
// learns: where to listen and how to verify its callers. A route that
// cannot be mounted is an error of its entry, returned too, which marks
// the process errored.
func mountRoutes(e *core.ServeEvent, routes *gateway.Routes, manager *supervisor.Manager, procs []config.Process, errs config.Errors, logger *slog.Logger) (map[string]*routeEnv, config.Errors) {
	routed := map[string]*routeEnv{}
	var failed config.Errors
	fail := func(i int, proc config.Process, message, hint string) {
		ce := config.Error{Path: fmt.Sprintf("/processes/%d/route", i), Index: i, Process: proc.Name, Message: message, Hint: hint}
		logger.Error("processman: route not mounted", "process", proc.Name, "route", proc.Route, "error", ce.Error())
		fmt.Fprintln(os.Stderr, "processman: "+ce.Error())
		failed = append(failed, ce)
	}
	for i, proc := range procs {
		if proc.Route == "" || len(errs.ForIndex(i)) > 0 || proc.Name == "" {
			continue
		}
		if _, dup := routed[proc.Name]; dup {
			continue
		}
		proc = proc.WithDefaults()
		if taken := gateway.Taken(e.Router, proc.Route); taken != "" {
			fail(i, proc, fmt.Sprintf("route %q is taken: PocketBase's router already has %s (from pb_hooks or Go code)", proc.Route, taken),
				"choose another prefix, or remove the other route")
			continue
		}
		target, err := routes.Listen(proc.Name, proc.Listen)
		if err != nil {
			fail(i, proc, err.Error(), "")
			continue
		}
		name := proc.Name
		routes.Add(e.Router, gateway.Route{
			Process:         name,
			Prefix:          proc.Route,
			Authorize:       authorizer(proc.Auth),
			LogRequest:      requestLogging(proc.LogRequests),
			BodyLimit:       int64(proc.BodyLimitMB) << 20,
			ResponseTimeout: proc.ResponseTimeout.Std(),
		}, gateway.Backend{
			Target: target,
			Status: func() (string, bool) {
				if sp := manager.Get(name); sp != nil {
					state, ready := sp.Readiness()
					return string(state), ready
				}
				return "unknown", false
			},
		})
		routed[name] = &routeEnv{prefix: proc.Route, target: target, secret: routes.Secret()}
	}
	return routed, failed
}

// authorizer applies a route's auth rule with PocketBase's own auth:
// 401 without a token, 403 for a record of the wrong kind. Superusers
// may call every route.
func authorizer(auth config.Auth) func(e *core.RequestEvent) error {
	mode := auth.Mode
	if mode == "" && len(auth.Collections) == 0 {
		mode = config.AuthUser
	}
	if mode == config.AuthPublic {
		return nil
	}
	return func(e *core.RequestEvent) error {
		if e.Auth == nil {
			return e.UnauthorizedError("The request requires valid authorization token.", nil)
		}
		if e.HasSuperuserAuth() {
			return nil
		}
		switch {
		case mode == config.AuthUser:
			return nil
		case mode == config.AuthSuperuser:
			return e.ForbiddenError("Only superusers can perform this action.", nil)
		case slices.Contains(auth.Collections, e.Auth.Collection().Name):
			return nil
		}
		return e.ForbiddenError(fmt.Sprintf("Records of %q cannot call this route.", e.Auth.Collection().Name), nil)
	}
}

// requestLogging turns log_requests into the gateway's decision: "all"
// (the default) records every call, "errors" the failed ones (status
// 400 and over, or no answer), "none" none.
func requestLogging(mode string) func(status int) bool {
	switch mode {
	case "none":
		return nil
	case "errors":
		return func(status int) bool { return status >= 400 || status == 0 }
	}
	return func(int) bool { return true }
}
