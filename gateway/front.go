package gateway

import (
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/pocketbase/pocketbase/apis"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/router"
)

// Front serves the requests of the gateway's routes ahead of PocketBase's
// router, when that changes nothing but the cost: PocketBase's router
// builds an event, wraps the body and runs its middleware chain for each
// request, about 5 % of the CPU a forwarded request costs (measured
// against the same build without Front: 94 against 99 µs per request).
//
// A request takes the front door only when, of PocketBase's default
// middlewares, none would do more than Front does itself:
//
//   - its route is the one PocketBase's ServeMux picks (Front asks it), on
//     a path it would not redirect;
//   - no Origin header and not OPTIONS: CORS has nothing to add but
//     "Vary: Origin" (a browser's cross-origin request and its preflight
//     take the router, which answers them);
//   - rate limits are off in the settings;
//   - no superuser token (superusers have an IP allow-list and are
//     exempt from rate limits): Front loads the token as PocketBase's
//     loadAuthToken does, with FindAuthRecordByToken;
//   - no www. redirect applies to the host.
//
// Front sets the security headers PocketBase sets on every answer and
// answers a panic with a 500, as its middlewares do. A router with a
// global middleware PocketBase did not put there (Go code, JS hooks)
// keeps every request: NewFront then returns the router as it is.
type Front struct {
	app    core.App
	mux    *http.ServeMux
	routes map[string]*Proxy // by the ServeMux pattern they were registered as
	// prefixes are the routes' prefixes, to let other requests through
	// at the cost of a few string comparisons.
	prefixes    []string
	wwwRedirect bool
}

// pocketBaseMiddlewares are the global middlewares of PocketBase's router
// (apis.NewRouter and apis.Serve) whose effect Front reproduces or
// avoids, as its doc says.
var pocketBaseMiddlewares = map[string]bool{
	apis.DefaultActivityLoggerMiddlewareId:  true, // unbound on the routes
	apis.DefaultBodyLimitMiddlewareId:       true, // unbound on the routes
	apis.DefaultPanicRecoverMiddlewareId:    true,
	apis.DefaultRateLimitMiddlewareId:       true,
	apis.DefaultLoadAuthTokenMiddlewareId:   true,
	"pbSuperuserIPsWhitelist":               true, // since PocketBase v0.36
	apis.DefaultSecurityHeadersMiddlewareId: true,
	apis.DefaultCorsMiddlewareId:            true,
	apis.DefaultWWWRedirectMiddlewareId:     true,
}

// NewFront returns the handler to serve instead of next, PocketBase's
// built router (ServeEvent.Server.Handler after ServeEvent.Next), for the
// proxies by the ServeMux patterns they were registered as on pbRouter.
// It returns next itself when the front door cannot keep PocketBase's
// behaviour: next is not PocketBase's ServeMux, or pbRouter has global
// middlewares of someone else's.
func NewFront(app core.App, pbRouter *router.Router[*core.RequestEvent], next http.Handler, routes map[string]*Proxy) http.Handler {
	mux, ok := next.(*http.ServeMux)
	if !ok || len(routes) == 0 {
		return next
	}
	f := &Front{app: app, mux: mux, routes: routes}
	for _, m := range pbRouter.Middlewares {
		if !pocketBaseMiddlewares[m.Id] {
			return next
		}
		if m.Id == apis.DefaultWWWRedirectMiddlewareId {
			f.wwwRedirect = true
		}
	}
	seen := map[string]bool{}
	for _, p := range routes {
		if !seen[p.Route] {
			seen[p.Route] = true
			f.prefixes = append(f.prefixes, p.Route)
		}
	}
	return f
}

func (f *Front) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if p := f.route(r); p != nil {
		if e := f.event(w, r); e != nil {
			f.serve(p, e)
			return
		}
	}
	f.mux.ServeHTTP(w, r)
}

// route returns the proxy of a request that may take the front door.
func (f *Front) route(r *http.Request) *Proxy {
	if r.Method == http.MethodOptions || r.Method == http.MethodConnect {
		return nil
	}
	ours := false
	for _, prefix := range f.prefixes {
		if strings.HasPrefix(r.URL.Path, prefix) {
			ours = true
			break
		}
	}
	if !ours || r.Header["Origin"] != nil || !isCleanPath(r.URL.EscapedPath()) {
		return nil
	}
	_, pattern := f.mux.Handler(r)
	return f.routes[pattern]
}

// event is the request's event, with its caller loaded from its token,
// or nil when PocketBase's own handling must apply.
func (f *Front) event(w http.ResponseWriter, r *http.Request) *core.RequestEvent {
	if f.app.Settings().RateLimits.Enabled {
		return nil
	}
	if f.wwwRedirect && strings.HasPrefix(r.Host, "www.") {
		return nil
	}
	e := new(core.RequestEvent)
	e.App = f.app
	e.Request = r
	e.Response = &router.ResponseWriter{ResponseWriter: w} // tracks the status for the request record
	if token := authToken(r); token != "" {
		record, err := f.app.FindAuthRecordByToken(token, core.TokenTypeAuth)
		if err != nil {
			f.app.Logger().Debug("loadAuthToken failure", "error", err)
		} else if record != nil {
			e.Auth = record
			if e.HasSuperuserAuth() {
				return nil
			}
		}
	}
	return e
}

// authToken is the request's auth token as PocketBase reads it: the
// Authorization header, with or without "Bearer ".
func authToken(r *http.Request) string {
	token := r.Header.Get("Authorization")
	if len(token) > 7 && strings.EqualFold(token[:7], "Bearer ") {
		return token[7:]
	}
	return token
}

// serve is what PocketBase's middlewares and router would do around
// Handle for such a request.
func (f *Front) serve(p *Proxy, e *core.RequestEvent) {
	h := e.Response.Header()
	h.Add("Vary", "Origin")
	h.Set("X-XSS-Protection", "1; mode=block")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "SAMEORIGIN")
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v) // aborts the client's connection, on purpose
			}
			f.app.Logger().Error("gateway: panic", slog.String("process", p.Process), slog.String("error", fmt.Sprint(v)))
			router.ErrorHandler(e.Response, e.Request, router.NewInternalServerError("", fmt.Errorf("[PANIC RECOVER] %v", v)))
		}
	}()
	if err := p.Handle(e); err != nil {
		router.ErrorHandler(e.Response, e.Request, err)
	}
}

// isCleanPath reports whether ServeMux would take path as it is, without
// redirecting to a cleaned one: no empty, "." or ".." segment but a
// trailing slash.
func isCleanPath(path string) bool {
	if path == "" || path[0] != '/' {
		return false
	}
	for i := 0; i < len(path); i++ {
		if path[i] != '/' {
			continue
		}
		rest := path[i+1:]
		if strings.HasPrefix(rest, "/") || rest == "." || rest == ".." ||
			strings.HasPrefix(rest, "./") || strings.HasPrefix(rest, "../") {
			return false
		}
	}
	return true
}
