package testutil

import (
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/pocketbase/pocketbase/apis"
	"github.com/pocketbase/pocketbase/core"
	_ "github.com/pocketbase/pocketbase/migrations" // the system collections
)

// NewApp returns a bootstrapped PocketBase app with its data in dir/pb_data.
// Every test app is made here, so that the tests run the same way against
// upstream PocketBase and against forks whose apps need more than a data
// dir.
func NewApp(t testing.TB, dir string) *core.BaseApp {
	t.Helper()
	app := core.NewBaseApp(core.BaseAppConfig{DataDir: filepath.Join(dir, "pb_data")})
	if err := app.Bootstrap(); err != nil {
		t.Fatal(err)
	}
	return app
}

// Server is a real PocketBase serving HTTP on a free loopback port.
type Server struct {
	App *core.BaseApp
	// URL is where it serves, e.g. http://127.0.0.1:41234.
	URL string

	t       testing.TB
	served  chan error
	stopped bool
}

// Serve serves app until Stop or the end of the test. Hooks bound on the
// app before the call take part (plugins register theirs first).
func Serve(t testing.TB, app *core.BaseApp) *Server {
	t.Helper()
	// PocketBase's installer creates a superuser in the background on a
	// fresh pb_data, racing with the shutdown at the end of a test.
	app.OnServe().BindFunc(func(e *core.ServeEvent) error {
		e.InstallerFunc = nil
		return e.Next()
	})
	addr := FreeAddr(t)
	s := &Server{App: app, URL: "http://" + addr, t: t, served: make(chan error, 1)}
	go func() { s.served <- apis.Serve(app, apis.ServeConfig{HttpAddr: addr}) }()
	WaitFor(t, "PocketBase to serve", 30*time.Second, func() bool {
		resp, err := http.Get(s.URL + "/api/health")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	t.Cleanup(s.Stop)
	return s
}

// Stop terminates PocketBase the way a SIGTERM does and waits until it
// stopped serving.
func (s *Server) Stop() {
	if s.stopped {
		return
	}
	s.stopped = true
	err := s.App.OnTerminate().Trigger(&core.TerminateEvent{App: s.App}, func(e *core.TerminateEvent) error {
		return e.App.ResetBootstrapState()
	})
	if err != nil {
		s.t.Errorf("terminate: %v", err)
	}
	select {
	case <-s.served:
	case <-time.After(30 * time.Second):
		s.t.Error("PocketBase did not stop serving")
	}
}

// AuthToken creates a record in an auth collection (and the collection,
// if it does not exist) and returns an auth token of it.
func AuthToken(t testing.TB, app core.App, collection string) (string, *core.Record) {
	t.Helper()
	col, err := app.FindCollectionByNameOrId(collection)
	if err != nil {
		col = core.NewAuthCollection(collection)
		if err := app.Save(col); err != nil {
			t.Fatal(err)
		}
	}
	rec := core.NewRecord(col)
	rec.SetEmail(fmt.Sprintf("%s-%d@example.com", collection, time.Now().UnixNano()))
	rec.SetPassword("1234567890")
	if err := app.Save(rec); err != nil {
		t.Fatal(err)
	}
	token, err := rec.NewAuthToken()
	if err != nil {
		t.Fatal(err)
	}
	return token, rec
}

// FreeAddr returns a loopback address with a port nothing listens on.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
