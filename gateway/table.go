package gateway

import (
	"strings"

	"github.com/pocketbase/pocketbase/apis"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/hook"
	"github.com/pocketbase/pocketbase/tools/router"
)

// DispatchMiddlewareId is the id of the middleware that hands a request
// under a mounted prefix to its route's Proxy (Routes.Bind).
const DispatchMiddlewareId = "processmanGateway"

// dispatchPriority puts the gateway after PocketBase's CORS, auth token
// loading, security headers and rate limit, and before its default body
// limit, which would otherwise cap uploads that stream to the sidecar.
const dispatchPriority = apis.DefaultBodyLimitMiddlewarePriority - 1

// skipActivityLogKey is where PocketBase's activity logger looks for
// apis.SkipSuccessActivityLog(): the gateway writes its own request
// records.
const skipActivityLogKey = "__skipSuccessActivityLogger"

// Bind puts the gateway on r, for the routes added before PocketBase
// builds its router (Add) and those mounted while it serves (Mount): a
// middleware that hands every request under a mounted prefix to its
// route. Call it once per serve, in OnServe.
func (rs *Routes) Bind(r *router.Router[*core.RequestEvent]) {
	rs.mu.Lock()
	rs.router = r
	rs.mu.Unlock()
	r.Bind(&hook.Handler[*core.RequestEvent]{Id: DispatchMiddlewareId, Priority: dispatchPriority, Func: rs.dispatch})
}

// dispatch serves a request under a mounted prefix, and passes the others
// on.
func (rs *Routes) dispatch(e *core.RequestEvent) error {
	proxy := rs.match(e.Request.URL.Path)
	if proxy == nil {
		return e.Next()
	}
	e.Set(skipActivityLogKey, true)
	return proxy.Handle(e)
}

// match returns the proxy whose prefix path is, or is under; routes never
// overlap.
func (rs *Routes) match(path string) *Proxy {
	rs.mu.RLock()
	defer rs.mu.RUnlock()
	for prefix, proxy := range rs.prefixes {
		if strings.HasPrefix(path, prefix) && (len(path) == len(prefix) || path[len(prefix)] == '/') {
			return proxy
		}
	}
	return nil
}

// notMounted answers a request to a prefix registered on PocketBase's
// router whose route has since been removed.
func notMounted(e *core.RequestEvent) error {
	return e.NotFoundError("", nil)
}

// Mount adds the proxy of a route while PocketBase serves (after it built
// its router, see Bind): it takes requests at once. Check the prefix with
// Free first.
func (rs *Routes) Mount(route Route, backends ...Backend) *Proxy {
	proxy := rs.newProxy(route, backends)
	rs.mu.Lock()
	rs.proxies[route.Process] = proxy
	rs.prefixes[route.Prefix] = proxy
	rs.mu.Unlock()
	return proxy
}

// Remove unmounts the route of process: its prefix answers 404 from now
// on (requests in flight finish), and its idle connections are closed.
func (rs *Routes) Remove(process string) {
	rs.mu.Lock()
	proxy := rs.proxies[process]
	delete(rs.proxies, process)
	if proxy != nil {
		delete(rs.prefixes, proxy.Route)
	}
	rs.mu.Unlock()
	if proxy != nil {
		proxy.closeIdle()
	}
}

// Free returns what already holds prefix on PocketBase's router (a
// pb_hooks or Go route), "" when nothing but a route of these Routes,
// mounted now or before, does.
func (rs *Routes) Free(prefix string) string {
	rs.mu.RLock()
	r, own := rs.router, rs.static[prefix]
	rs.mu.RUnlock()
	if r == nil || own {
		return ""
	}
	return Taken(r, prefix)
}
