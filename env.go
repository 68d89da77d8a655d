package processman

import (
	"net"
	"path/filepath"
	"strings"

	"github.com/pocketbase/pocketbase/core"
)

// pocketBaseURL is the address children use to reach PocketBase.
func (p *plugin) pocketBaseURL(e *core.ServeEvent) string {
	if p.config.PocketBaseURL != "" {
		return strings.TrimRight(p.config.PocketBaseURL, "/")
	}
	addr := ""
	if e.Server != nil {
		addr = e.Server.Addr
	}
	return localURL(addr)
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

// sqliteEnv points children at PocketBase's SQLite database file.
func sqliteEnv(app core.App) map[string]string {
	return map[string]string{
		"PB_DB_PATH": filepath.Join(absPath(app.DataDir()), "data.db"),
	}
}
