package gateway

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pocketbase/pocketbase/apis"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/router"
	"github.com/processman/processman/gateway/identity"
)

// maxSocketPath is the longest Unix socket path Linux accepts, minus the
// terminating NUL.
const maxSocketPath = 107

// routeMethods are registered one by one: PocketBase's own GET
// catch-all would conflict with a method-less pattern. GET covers HEAD.
var routeMethods = []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions}

// Routes are the routed processes of one serve of PocketBase: the private
// directory their sockets live in, the per-boot secret that signs the
// callers' identities, a Proxy per route mounted on PocketBase's router,
// and clients that call a process from Go code.
//
//	routes, err := gateway.NewRoutes(gateway.RoutesConfig{Logger: app.Logger()})
//	target, err := routes.Listen("agent", "unix")      // PB_SOCKET of the child
//	routes.Bind(se.Router)                              // once per serve
//	routes.Add(se.Router, gateway.Route{Process: "agent", Prefix: "/api/agent"},
//		gateway.Backend{Target: target, Status: status})
//	...
//	client, err := routes.Client("agent")
//	...
//	routes.Close() // when PocketBase stops
//
// Add routes in OnServe, before PocketBase builds its router (e.Next);
// Mount and Remove change them while it serves.
type Routes struct {
	hold   time.Duration
	logger *slog.Logger
	secret string

	mu        sync.RWMutex
	socketDir string            // made with the first Unix socket
	proxies   map[string]*Proxy // by process name
	prefixes  map[string]*Proxy // the mounted routes, by prefix
	static    map[string]bool   // prefixes registered on the router by Add
	router    *router.Router[*core.RequestEvent]
	table     atomic.Pointer[[]mounted] // what dispatch reads: prefixes, as a snapshot
}

// RoutesConfig is what every route of a Routes shares.
type RoutesConfig struct {
	// Hold is how long a request waits for its process to be ready
	// before a 503; zero means DefaultHold.
	Hold time.Duration
	// Logger receives the request records; nil means none.
	Logger *slog.Logger
}

// Route is one mount prefix and the rules of its requests. Decisions
// that depend on the configuration are function fields (see Proxy).
type Route struct {
	// Process is the name of the process behind the route.
	Process string
	// Prefix is the mount prefix, such as "/api/agent".
	Prefix string
	// Authorize refuses a caller with the error to answer; nil lets
	// everyone call.
	Authorize func(e *core.RequestEvent) error
	// LogRequest reports whether a call that ended with status gets a
	// request record; nil records none.
	LogRequest func(status int) bool
	// BodyLimit caps request bodies in bytes; 0 means no limit.
	BodyLimit int64
	// ResponseTimeout bounds the wait for response headers; 0 means none.
	ResponseTimeout time.Duration
	// Secret, if set, signs this route's identities instead of the
	// per-boot secret: a route to a service that runs elsewhere shares
	// a secret of its own with it.
	Secret string
}

// NewRoutes makes the routes of one serve, with a new secret.
func NewRoutes(cfg RoutesConfig) (*Routes, error) {
	secret, err := identity.NewSecret()
	if err != nil {
		return nil, err
	}
	return &Routes{hold: cfg.Hold, logger: cfg.Logger, secret: secret, proxies: map[string]*Proxy{},
		prefixes: map[string]*Proxy{}, static: map[string]bool{}}, nil
}

// Secret is the per-boot secret the identities are signed with, given to
// routed children as PB_GATEWAY_SECRET.
func (rs *Routes) Secret() string { return rs.secret }

// Listen picks where a copy of a process listens: on network "unix", a
// socket named after it in the private 0700 directory; on "tcp", a free
// loopback port.
func (rs *Routes) Listen(name, network string) (Target, error) {
	if network == "tcp" {
		port, err := freePort()
		if err != nil {
			return Target{}, err
		}
		return Target{Network: "tcp", Address: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}, nil
	}
	dir, err := rs.dir()
	if err != nil {
		return Target{}, err
	}
	path := filepath.Join(dir, name+".sock")
	if len(path) > maxSocketPath {
		return Target{}, fmt.Errorf("processman: socket path %s is longer than %d bytes; set TMPDIR to a shorter directory", path, maxSocketPath)
	}
	return Target{Network: "unix", Address: path}, nil
}

// dir returns the socket directory, making it on first use.
func (rs *Routes) dir() (string, error) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.socketDir == "" {
		dir, err := os.MkdirTemp("", "processman-") // mode 0700
		if err != nil {
			return "", fmt.Errorf("processman: socket directory: %w", err)
		}
		rs.socketDir = dir
	}
	return rs.socketDir, nil
}

// Add creates the proxy of route over its backends and mounts it on r,
// for the prefix and everything below it, every method, before PocketBase
// builds its router (call Bind too). The prefix stays registered on r:
// once the route is removed it answers 404, and a route mounted there
// later takes it again.
func (rs *Routes) Add(r *router.Router[*core.RequestEvent], route Route, backends ...Backend) *Proxy {
	proxy := rs.Mount(route, backends...)
	rs.mu.Lock()
	rs.static[route.Prefix] = true
	rs.publish()
	bound := rs.router == r
	rs.mu.Unlock()
	if !bound {
		rs.Bind(r)
	}
	for _, method := range routeMethods {
		for _, pattern := range []string{route.Prefix, route.Prefix + "/{path...}"} {
			// The gateway's middleware (Bind) serves these requests; the
			// route reserves the prefix. Uploads stream through to the
			// sidecar: PocketBase's 32 MB cap and re-readable body
			// buffering do not apply here. The proxy writes its own
			// request records, so PocketBase's activity log (a database
			// write per request) is off here.
			r.Route(method, pattern, notMounted).
				Unbind(apis.DefaultBodyLimitMiddlewareId, apis.DefaultActivityLoggerMiddlewareId)
		}
	}
	return proxy
}

// newProxy makes the proxy of route over backends.
func (rs *Routes) newProxy(route Route, backends []Backend) *Proxy {
	proxy := &Proxy{
		Process:         route.Process,
		Route:           route.Prefix,
		Backends:        backends,
		Authorize:       route.Authorize,
		LogRequest:      route.LogRequest,
		Secret:          cmp.Or(route.Secret, rs.secret),
		Hold:            rs.hold,
		Logger:          rs.logger,
		BodyLimit:       route.BodyLimit,
		ResponseTimeout: route.ResponseTimeout,
	}
	proxy.Init()
	return proxy
}

// Taken returns a pattern of the prefix that r already has (another
// route of PocketBase, a pb_hooks routerAdd, Go code), "" when it has
// none. Mounting over it would panic when PocketBase builds its router.
func Taken(r *router.Router[*core.RequestEvent], prefix string) string {
	for _, method := range routeMethods {
		for _, pattern := range []string{prefix, prefix + "/{path...}"} {
			if r.HasRoute(method, pattern) {
				return method + " " + pattern
			}
		}
	}
	return ""
}

// Client returns an HTTP client for calling the routed process name (see
// Proxy.Client), or an error when no route of that process was added.
func (rs *Routes) Client(name string) (*http.Client, error) {
	rs.mu.RLock()
	proxy := rs.proxies[name]
	rs.mu.RUnlock()
	if proxy == nil {
		return nil, fmt.Errorf("processman: no routed process %q is serving", name)
	}
	return proxy.Client(), nil
}

// Close removes the socket directory and closes idle connections; the
// processes must be stopped first.
func (rs *Routes) Close() error {
	rs.mu.Lock()
	dir, proxies := rs.socketDir, rs.proxies
	rs.socketDir, rs.proxies, rs.prefixes = "", map[string]*Proxy{}, map[string]*Proxy{}
	rs.publish()
	rs.mu.Unlock()
	for _, p := range proxies {
		p.closeIdle()
	}
	if dir == "" {
		return nil
	}
	return os.RemoveAll(dir)
}

// Prepare readies t for a new run of its process: the socket directory
// made again (mode 0700) if someone removed it, and a socket file left by
// an earlier run removed, so that the child can bind it. A TCP target
// needs nothing.
func (t Target) Prepare() error {
	if t.Network != "unix" {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(t.Address), 0o700); err != nil {
		return fmt.Errorf("processman: socket directory %s: %w", filepath.Dir(t.Address), err)
	}
	if err := os.Remove(t.Address); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("processman: remove stale socket %s: %w", t.Address, err)
	}
	return nil
}

// freePort asks the system for a free loopback port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("processman: no free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
