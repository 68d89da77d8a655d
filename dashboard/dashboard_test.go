package dashboard_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/pocketbase/pocketbase/apis"
	"github.com/pocketbase/pocketbase/core"
	"github.com/processman/processman/dashboard"
	"github.com/processman/processman/internal/testutil"
)

// pocketBaseHasUIExtensions asks PocketBase itself, not the reflection
// Register relies on: a router with UI extensions answers
// /_/extensions.js even when no extension is registered.
func pocketBaseHasUIExtensions(t *testing.T) bool {
	t.Helper()
	app := testutil.NewApp(t, t.TempDir())
	code, _, _ := get(t, serve(t, app), "/_/extensions.js")
	return code == http.StatusOK
}

// serve triggers app's serve event on a PocketBase router, as `serve`
// does, and returns the resulting handler.
func serve(t *testing.T, app core.App) http.Handler {
	t.Helper()
	router, err := apis.NewRouter(app)
	if err != nil {
		t.Fatal(err)
	}
	var handler http.Handler
	err = app.OnServe().Trigger(&core.ServeEvent{App: app, Router: router}, func(e *core.ServeEvent) error {
		mux, err := e.Router.BuildMux()
		handler = mux
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return handler
}

func get(t *testing.T, handler http.Handler, path string) (int, string, http.Header) {
	t.Helper()
	rec := httptest.NewRecorder()
	handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	body, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, string(body), rec.Result().Header
}

func TestRegister(t *testing.T) {
	app := testutil.NewApp(t, t.TempDir())

	err := dashboard.Register(app)
	if !pocketBaseHasUIExtensions(t) {
		if !errors.Is(err, dashboard.ErrUnsupported) {
			t.Fatalf("Register on a PocketBase without UI extensions: got %v, want ErrUnsupported", err)
		}
		return
	}
	if err != nil {
		t.Fatalf("Register: %v", err)
	}

	handler := serve(t, app)

	t.Run("main.js is in /_/extensions.js", func(t *testing.T) {
		code, body, _ := get(t, handler, "/_/extensions.js")
		if code != http.StatusOK {
			t.Fatalf("status %d: %s", code, body)
		}
		for _, want := range []string{`app.routes.superuserOnly(ROUTE, pageProcesses)`, `const API = "/api/pm"`} {
			if !strings.Contains(body, want) {
				t.Errorf("extensions.js lacks %q", want)
			}
		}
	})

	t.Run("the stylesheet is served", func(t *testing.T) {
		code, body, header := get(t, handler, "/_/extensions/"+dashboard.Name+"/processman.css")
		if code != http.StatusOK {
			t.Fatalf("status %d: %s", code, body)
		}
		if ct := header.Get("Content-Type"); !strings.HasPrefix(ct, "text/css") {
			t.Errorf("Content-Type %q, want text/css", ct)
		}
		if !strings.Contains(body, ".pm-log-viewer") {
			t.Error("processman.css lacks the log viewer's rules")
		}
	})
}

func TestRegisterTwice(t *testing.T) {
	app := testutil.NewApp(t, t.TempDir())
	if !pocketBaseHasUIExtensions(t) {
		t.Skip("this PocketBase has no UI extensions (TestRegister checks the error)")
	}

	if err := dashboard.Register(app); err != nil {
		t.Fatal(err)
	}
	if err := dashboard.Register(app); err == nil {
		t.Fatal("a second Register succeeded, want an error")
	}
	_, body, _ := get(t, serve(t, app), "/_/extensions.js")
	if n := strings.Count(body, `app.routes.superuserOnly(ROUTE, pageProcesses)`); n != 1 {
		t.Fatalf("the page is registered %d times, want once", n)
	}
}
