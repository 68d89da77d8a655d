package processman

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync/atomic"
	"time"

	"github.com/pocketbase/pocketbase/core"
	"github.com/processman/processman/config"
	"github.com/processman/processman/gateway"
	"github.com/processman/processman/health"
	"github.com/processman/processman/supervisor"
)

// routeEnv is a mounted route and what its children learn: where each
// copy listens and the secret that signs its callers.
type routeEnv struct {
	prefix  string
	secret  string
	targets [][slots]gateway.Target // by instance, then slot
	proxy   *gateway.Proxy
	// instances are the supervisors of the instances, set as they are
	// added (after the route is mounted, before anything asks).
	instances []atomic.Pointer[supervisor.Process]
	// upstream watches the service of an upstream route (no instances);
	// stopWatch ends it.
	upstream  *health.Upstream
	stopWatch context.CancelFunc
}

// slots is how many places to listen each instance has: the current
// run's, and the one a reload's new copy takes (supervisor.Options.Drain).
const slots = 2

// backend is the index in the proxy's Backends of an instance's slot.
func backend(instance, slot int) int { return instance*slots + slot }

// mountRoutes adds the route of every valid routed process to routes,
// on the serve event's router, with a backend for each slot of each
// instance, and returns what each routed child learns: where to listen
// and how to verify its callers. A route that cannot be mounted is an
// error of its entry, returned too, which marks the process errored.
func mountRoutes(e *core.ServeEvent, routes *gateway.Routes, procs []config.Process, errs config.Errors, logger *slog.Logger) (map[string]*routeEnv, config.Errors) {
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
		route, backends, err := prepareRoute(routes, proc, logger)
		if err != nil {
			fail(i, proc, err.Error(), "")
			continue
		}
		route.proxy = routes.Add(e.Router, gatewayRoute(proc, route), backends...)
		routed[proc.Name] = route
	}
	return routed, failed
}

// prepareRoute picks where the copies of proc (with defaults) listen and
// returns its routeEnv, without a proxy yet, and the gateway's backends;
// for an upstream entry, the one backend of the service elsewhere.
func prepareRoute(routes *gateway.Routes, proc config.Process, logger *slog.Logger) (*routeEnv, []gateway.Backend, error) {
	if proc.Upstream != "" {
		secret, backend, watcher, err := upstreamBackend(proc, logger)
		return &routeEnv{prefix: proc.Route, secret: secret, upstream: watcher}, []gateway.Backend{backend}, err
	}
	route := &routeEnv{prefix: proc.Route, secret: routes.Secret(),
		targets: make([][slots]gateway.Target, proc.Instances), instances: make([]atomic.Pointer[supervisor.Process], proc.Instances)}
	backends, err := route.listen(routes, proc)
	return route, backends, err
}

// gatewayRoute is the gateway's view of the route of proc (with
// defaults).
func gatewayRoute(proc config.Process, route *routeEnv) gateway.Route {
	r := gateway.Route{
		Process:         proc.Name,
		Prefix:          proc.Route,
		Authorize:       authorizer(proc.Auth),
		LogRequest:      requestLogging(proc.LogRequests),
		BodyLimit:       int64(proc.BodyLimitMB) << 20,
		ResponseTimeout: proc.ResponseTimeout.Std(),
	}
	if route.upstream != nil {
		r.Secret = route.secret
	}
	return r
}

// mountRoute mounts the route of proc while PocketBase serves (apply).
func mountRoute(routes *gateway.Routes, proc config.Process, logger *slog.Logger) (*routeEnv, error) {
	proc = proc.WithDefaults()
	if taken := routes.Free(proc.Route); taken != "" {
		return nil, fmt.Errorf("route %q is taken: PocketBase's router already has %s (from pb_hooks or Go code)", proc.Route, taken)
	}
	route, backends, err := prepareRoute(routes, proc, logger)
	if err != nil {
		return nil, err
	}
	route.proxy = routes.Mount(gatewayRoute(proc, route), backends...)
	return route, nil
}

// listen picks where each slot of each instance of proc listens, and
// returns the gateway's backends for them.
func (r *routeEnv) listen(routes *gateway.Routes, proc config.Process) ([]gateway.Backend, error) {
	var backends []gateway.Backend
	for instance := range proc.Instances {
		for slot := range slots {
			target, err := routes.Listen(fmt.Sprintf("%s.%d%c", proc.Name, instance, 'a'+slot), proc.Listen)
			if err != nil {
				return nil, err
			}
			r.targets[instance][slot] = target
			backends = append(backends, gateway.Backend{Target: target, Status: r.serving(instance, slot)})
		}
	}
	return backends, nil
}

// serving is the gateway's view of one slot of an instance: its state,
// and whether it takes requests.
func (r *routeEnv) serving(instance, slot int) func() (string, bool) {
	return func() (string, bool) {
		if sp := r.instances[instance].Load(); sp != nil {
			state, ready := sp.Serving(slot)
			return string(state), ready
		}
		return "unknown", false
	}
}

// watchUpstream runs the health watcher of an upstream route until its
// route is removed or the run ends.
func (r *routeEnv) watchUpstream(ctx context.Context) {
	ctx, r.stopWatch = context.WithCancel(ctx)
	go r.upstream.Run(ctx)
}

// drain waits until the slot of instance has no request in flight.
func (r *routeEnv) drain(instance int) func(ctx context.Context, slot int, timeout time.Duration) {
	return func(ctx context.Context, slot int, timeout time.Duration) {
		r.proxy.Drain(ctx, backend(instance, slot), timeout)
	}
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
