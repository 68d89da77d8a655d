package processman

import (
	"maps"
	"net"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/pocketbase/pocketbase/core"
)

// childEnv builds the variables processman gives a child: the contract
// of docs/environment.md, which the SDKs read, written here once for
// serve and for `pm check`, in the order of that page's table.
type childEnv struct {
	pocketBaseURL string            // PB_URL
	dataDir       string            // PB_DATA_DIR
	database      map[string]string // Config.DatabaseEnv: PB_DB_PATH by default
}

// envVar is one variable of a child's environment.
type envVar struct{ name, value string }

// newChildEnv is the environment of the children of app, which serves
// at pocketBaseURL.
func newChildEnv(app core.App, cfg Config, pocketBaseURL string) childEnv {
	return childEnv{pocketBaseURL: pocketBaseURL, dataDir: absPath(app.DataDir()), database: cfg.DatabaseEnv(app)}
}

// of lists the variables of instance of the process name, for its run
// on slot; route nil for a process without a route.
func (c childEnv) of(name string, instance, slot int, route *routeEnv) []envVar {
	index := strconv.Itoa(instance)
	vars := []envVar{
		{"PB_URL", c.pocketBaseURL},
		{"PB_PORT", urlPort(c.pocketBaseURL)},
		{"PB_DATA_DIR", c.dataDir},
		{"PB_PROCESS_NAME", name},
		{"PB_INSTANCE", index},
		{"NODE_APP_INSTANCE", index},
	}
	for _, k := range slices.Sorted(maps.Keys(c.database)) {
		vars = append(vars, envVar{k, c.database[k]})
	}
	vars = append(vars, envVar{"PYTHONUNBUFFERED", "1"})
	if route == nil {
		return vars
	}
	if target := route.targets[instance][slot]; target.Network == "unix" {
		vars = append(vars, envVar{"PB_SOCKET", target.Address})
	} else {
		_, port, _ := net.SplitHostPort(target.Address)
		vars = append(vars, envVar{"PORT", port})
	}
	return append(vars, envVar{"PB_ROUTE", route.prefix}, envVar{"PB_GATEWAY_SECRET", route.secret})
}

// envMap turns variables into what launch.Resolve injects.
func envMap(vars []envVar) map[string]string {
	m := make(map[string]string, len(vars))
	for _, v := range vars {
		m[v.name] = v.value
	}
	return m
}

// pocketBaseURL is the address children use to reach PocketBase:
// Config.PocketBaseURL, else the serve address.
func pocketBaseURL(cfg Config, e *core.ServeEvent) string {
	if cfg.PocketBaseURL != "" {
		return strings.TrimRight(cfg.PocketBaseURL, "/")
	}
	addr := ""
	if e.Server != nil {
		addr = e.Server.Addr
	}
	return localURL(addr)
}

// urlPort is the port of a URL, the scheme's default when it has none.
func urlPort(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	if port := u.Port(); port != "" {
		return port
	}
	if u.Scheme == "https" {
		return "443"
	}
	return "80"
}

// localURL turns a listen address into a URL reachable from this
// machine: a wildcard or empty host becomes the loopback address.
func localURL(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://127.0.0.1:8090"
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	switch port {
	case "http", "":
		port = "80"
	case "https":
		return "https://" + net.JoinHostPort(host, "443")
	}
	return "http://" + net.JoinHostPort(host, port)
}

func absPath(path string) string {
	if abs, err := filepath.Abs(path); err == nil {
		return abs
	}
	return path
}
