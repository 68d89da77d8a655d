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
	m := rs.match(e.Request.URL.Path)
	if m == nil {
		return e.Next()
	}
	if !m.static {
		// A prefix registered by Add has the activity logger unbound;
		// one mounted later reaches here through PocketBase's catch-all.
		e.Set(skipActivityLogKey, true)
	}
	return m.proxy.Handle(e)
}

// mounted is one entry of the routing table.
type mounted struct {
	prefix string
	proxy  *Proxy
	static bool // registered on the router by Add
}

// match returns the route whose prefix path is, or is under; routes never
// overlap. It reads a snapshot, without a lock.
func (rs *Routes) match(path string) *mounted {
	table := rs.table.Load()
	if table == nil {
		return nil
	}
	for i := range *table {
		m := &(*table)[i]
		if strings.HasPrefix(path, m.prefix) && (len(path) == len(m.prefix) || path[len(m.prefix)] == '/') {
			return m
		}
	}
	return nil
}

// publish makes a new snapshot of the table for match; rs.mu is held.
func (rs *Routes) publish() {
	table := make([]mounted, 0, len(rs.prefixes))
	for prefix, proxy := range rs.prefixes {
		table = append(table, mounted{prefix: prefix, proxy: proxy, static: rs.static[prefix]})
	}
	rs.table.Store(&table)
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
	rs.publish()
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
	rs.publish()
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
