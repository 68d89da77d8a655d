package processman

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"

	"github.com/pocketbase/pocketbase/apis"
	"github.com/pocketbase/pocketbase/core"
	"github.com/processman/processman/config"
	"github.com/processman/processman/gateway"
	"github.com/processman/processman/gateway/identity"
	"github.com/processman/processman/supervisor"
)

// maxSocketPath is the longest Unix socket path Linux accepts, minus the
// terminating NUL.
const maxSocketPath = 107

// routeMethods are registered one by one: PocketBase's own GET
// catch-all would conflict with a method-less pattern. GET covers HEAD.
var routeMethods = []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions}

// gatewaySetup holds what routed processes share for one serve.
type gatewaySetup struct {
	socketDir string
	secret    string
}

// newGatewaySetup makes the private socket directory and the per-boot
// secret.
func newGatewaySetup() (*gatewaySetup, error) {
	dir, err := os.MkdirTemp("", "processman-") // mode 0700
	if err != nil {
		return nil, fmt.Errorf("processman: socket directory: %w", err)
	}
	secret, err := identity.NewSecret()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return &gatewaySetup{socketDir: dir, secret: secret}, nil
}

// target picks where a routed process listens and the variables that
// tell it.
func (g *gatewaySetup) target(proc config.Process) (gateway.Target, map[string]string, error) {
	env := map[string]string{"PB_ROUTE": proc.Route, "PB_GATEWAY_SECRET": g.secret}
	if proc.Listen == config.ListenTCP {
		port, err := freePort()
		if err != nil {
			return gateway.Target{}, nil, err
		}
		env["PORT"], env["PB_PORT"] = strconv.Itoa(port), strconv.Itoa(port)
		return gateway.Target{Network: "tcp", Address: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}, env, nil
	}
	path := filepath.Join(g.socketDir, proc.Name+".sock")
	if len(path) > maxSocketPath {
		return gateway.Target{}, nil, fmt.Errorf("processman: socket path %s is longer than %d bytes; set TMPDIR to a shorter directory", path, maxSocketPath)
	}
	env["PB_SOCKET"] = path
	return gateway.Target{Network: "unix", Address: path}, env, nil
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

// removeStaleSocket deletes a socket file left by an earlier run, so the
// child can bind it.
func removeStaleSocket(target gateway.Target) error {
	if target.Network != "unix" {
		return nil
	}
	if err := os.Remove(target.Address); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("processman: remove stale socket %s: %w", target.Address, err)
	}
	return nil
}

// registerRoute mounts the proxy of a routed process on PocketBase's
// router, for the prefix and everything below it.
func (p *plugin) registerRoute(e *core.ServeEvent, manager *supervisor.Manager, proc config.Process, target gateway.Target, secret string) {
	name := proc.Name
	proxy := &gateway.Proxy{
		Process:         name,
		Route:           proc.Route,
		Target:          target,
		Auth:            proc.Auth,
		Secret:          secret,
		Hold:            p.config.GatewayHold,
		LogRequests:     proc.LogRequests,
		BodyLimit:       int64(proc.BodyLimitMB) << 20,
		ResponseTimeout: proc.ResponseTimeout.Std(),
		Logger:          p.app.Logger(),
		Status: func() (string, bool) {
			if sp := manager.Get(name); sp != nil {
				state, ready := sp.Readiness()
				return string(state), ready
			}
			return "unknown", false
		},
	}
	proxy.Init()
	p.mu.Lock()
	if p.proxies == nil {
		p.proxies = map[string]*gateway.Proxy{}
	}
	p.proxies[name] = proxy
	p.mu.Unlock()
	if p.frontRoutes == nil {
		p.frontRoutes = map[string]*gateway.Proxy{}
	}
	for _, method := range routeMethods {
		for _, pattern := range []string{proc.Route, proc.Route + "/{path...}"} {
			// Uploads stream through to the sidecar: PocketBase's 32 MB
			// cap and re-readable body buffering do not apply here.
			// The proxy writes its own request records, so PocketBase's
			// activity log (a database write per request) is off here.
			e.Router.Route(method, pattern, proxy.Handle).
				Unbind(apis.DefaultBodyLimitMiddlewareId, apis.DefaultActivityLoggerMiddlewareId)
			// the ServeMux pattern PocketBase's router registers it as
			p.frontRoutes[method+" "+pattern] = proxy
		}
	}
}

// Sidecar returns an HTTP client for calling the routed process name from
// PocketBase code (hooks, custom routes) over the same socket as its
// route, waiting for it to be ready. Use the sidecar's own paths, without
// the route prefix:
//
//	client, err := processman.Sidecar(app, "agent")
//	resp, err := client.Post("http://agent/summarize", "application/json", body)
//
// Calls are signed as gateway.System (a superuser without a record), or
// as the identity put in the request's context with gateway.WithCaller.
// It returns an error when the process has no route or PocketBase is not
// serving.
func Sidecar(app core.App, name string) (*http.Client, error) {
	p, _ := app.Store().Get(storeKey).(*plugin)
	if p == nil {
		return nil, errors.New("processman: not registered")
	}
	p.mu.Lock()
	proxy := p.proxies[name]
	p.mu.Unlock()
	if proxy == nil {
		return nil, fmt.Errorf("processman: no routed process %q is serving", name)
	}
	return proxy.Client(), nil
}
