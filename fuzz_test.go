package processman

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pocketbase/pocketbase/apis"
	"github.com/pocketbase/pocketbase/core"
	"github.com/processman/processman/control"
	"github.com/processman/processman/gateway"
	"github.com/processman/processman/internal/testutil"
	"github.com/processman/processman/supervisor"
)

// fuzzSeeds are configs that once got past the checks and then crashed
// serve, reached PocketBase's data or landed over its routes, and a few
// valid ones to grow from.
var fuzzSeeds = []string{
	`[{"name": "a", "script": "a.py"}]`,
	`{"processes": [{"name": "a", "script": "a.py", "route": "/api/agent", "auth": "public", "listen": "tcp"}]}`,
	`[{"name": "a", "script": "a.py", "route": "/api/a"}, {"name": "b", "script": "b.mjs", "route": "/api/b", "health": {"http": "/h"}}]`,
	`[{"name": "a", "script": "a.py", "route": "/api/../pm"}]`,
	`[{"name": "a", "script": "a.py", "route": "/api/./pm"}]`,
	`[{"name": "a", "script": "a.py", "route": "//api/pm"}]`,
	`[{"name": "a", "script": "a.py", "route": "/api//pm"}]`,
	`[{"name": "a", "script": "a.py", "route": "/api/%61gent"}, {"name": "b", "script": "b.py", "route": "/api/agent"}]`,
	`[{"name": "a", "script": "a.py", "route": "/%5f/x"}]`,
	`[{"name": "a", "script": "a.py", "route": "/api/%70m", "auth": "public"}]`,
	`[{"name": "a", "script": "a.py", "route": "/api/{x}"}]`,
	`[{"name": "a", "script": "a.py", "route": "/api/oauth2-redirect"}]`,
	`[{"name": "a", "script": "a.py", "log_file": "pb_data/data.db"}]`,
	`[{"name": "a", "script": "a.py", "log_file": "pb_data/../pb_data/./data.db"}]`,
	`[{"name": "a", "script": "a.py", "log_file": "/etc/passwd"}]`,
	`[{"name": "a", "script": "a.py", "log_file": "/dev/full"}]`,
	`[{"name": "a", "script": "a.py", "log_file": "/"}]`,
	`[{"name": "a", "script": "a.py", "env_file": "/dev/zero"}]`,
	`[{"name": "a", "script": "a.py", "route": "/api/a", "listen": "tcp", "env": {"PORT": "8001"}}]`,
	`{"processes": {"a": {}}}`,
	`"a.py"`,
}

// FuzzConfig holds the promise of `pm check`: whatever it accepts, serve
// mounts without a panic, with exactly the routes it validated, none over
// PocketBase's own or the control API, and no log file in pb_data outside
// processman's folder. (make test runs it briefly; make fuzz for long.)
func FuzzConfig(f *testing.F) {
	for _, seed := range fuzzSeeds {
		f.Add([]byte(seed))
	}
	base := f.TempDir()
	app := testutil.NewApp(f, base)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	ownDir := filepath.Join(app.DataDir(), "processman")

	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := os.CreateTemp(base, "pb_processes-*.json")
		if err != nil {
			t.Fatal(err)
		}
		defer os.Remove(file.Name())
		if _, err := file.Write(data); err != nil {
			t.Fatal(err)
		}
		file.Close()

		source := &processSource{app: app, flag: file.Name()}
		procs, errs, _ := source.load()
		if len(errs) > 0 {
			return // pm check refuses it
		}

		router, err := apis.NewRouter(app)
		if err != nil {
			t.Fatal(err)
		}
		(&control.API{Manager: func() *supervisor.Manager { return nil }}).Bind(router)
		routes, err := gateway.NewRoutes(gateway.RoutesConfig{Logger: logger})
		if err != nil {
			t.Fatal(err)
		}
		defer routes.Close()
		manager := supervisor.NewManager()
		defer manager.Shutdown(context.Background())
		e := &core.ServeEvent{App: app, Router: router}
		routed, routeErrs := mountRoutes(e, routes, procs, nil, logger)
		if len(routeErrs) > 0 {
			t.Fatalf("pm check accepted a route that serve could not mount: %v\n%s", routeErrs, data)
		}
		handler, err := router.BuildMux() // panicked on unclean and escaped routes
		if err != nil {
			t.Fatalf("BuildMux: %v\n%s", err, data)
		}
		mux := handler.(*http.ServeMux)

		for _, p := range procs {
			full := p.WithDefaults()
			if path := full.LogFilePath(logsDir("", app.DataDir())); path != "" {
				if rel, err := filepath.Rel(app.DataDir(), path); err == nil && !strings.HasPrefix(rel, "..") && !strings.HasPrefix(path, ownDir) {
					t.Fatalf("pm check accepted log file %s in pb_data\n%s", path, data)
				}
			}
			if p.Route == "" {
				continue
			}
			if routed[p.Name] == nil {
				t.Fatalf("route %s of %q was validated but not mounted\n%s", p.Route, p.Name, data)
			}
			for _, target := range []string{p.Route, p.Route + "/x"} {
				_, pattern := mux.Handler(httptest.NewRequest(http.MethodGet, target, nil))
				if want := "GET " + p.Route; pattern != want && pattern != want+"/{path...}" {
					t.Fatalf("GET %s reaches %q, not the route of %q\n%s", target, pattern, p.Name, data)
				}
			}
		}
		// the control API and PocketBase's own routes are where they were
		for target, want := range map[string]string{
			"/api/pm/list": "GET /api/pm/list",
			"/api/health":  "GET /api/health",
		} {
			if _, pattern := mux.Handler(httptest.NewRequest(http.MethodGet, target, nil)); pattern != want {
				t.Fatalf("GET %s reaches %q, not %q\n%s", target, pattern, want, data)
			}
		}
	})
}
