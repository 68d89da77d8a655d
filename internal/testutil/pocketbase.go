package testutil

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pocketbase/dbx"

	"github.com/pocketbase/pocketbase/apis"
	"github.com/pocketbase/pocketbase/core"
	_ "github.com/pocketbase/pocketbase/migrations" // the system collections
)

// NewApp returns a bootstrapped PocketBase app with its data in dir/pb_data.
// Every test app is made here, so that the tests run the same way against
// upstream PocketBase and against forks whose apps need more than a data
// dir: on a PostgreSQL fork (a BaseAppConfig with PostgresURL) the app gets
// two fresh databases on the server of $POSTGRES_URL, dropped at the end
// of the test.
func NewApp(t testing.TB, dir string) *core.BaseApp {
	t.Helper()
	cfg := core.BaseAppConfig{DataDir: filepath.Join(dir, "pb_data")}
	if forkNeedsPostgres(&cfg) {
		usePostgres(t, &cfg)
	}
	app := core.NewBaseApp(cfg)
	if err := app.Bootstrap(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = app.ResetBootstrapState() })
	return app
}

// forkNeedsPostgres reports whether this PocketBase is a fork that stores
// its data in PostgreSQL, configured by BaseAppConfig.PostgresURL.
func forkNeedsPostgres(cfg *core.BaseAppConfig) bool {
	return reflect.ValueOf(cfg).Elem().FieldByName("PostgresURL").IsValid()
}

// databases counts the test databases of this test binary, so that their
// names are unique across parallel tests.
var databases atomic.Int64

// usePostgres points cfg at two new databases of the server $POSTGRES_URL
// names (the fork creates them on connect) and drops them at the end of
// the test.
func usePostgres(t testing.TB, cfg *core.BaseAppConfig) {
	t.Helper()
	server := os.Getenv("POSTGRES_URL")
	if server == "" {
		t.Fatal("this PocketBase stores its data in PostgreSQL: set POSTGRES_URL to a server the tests may create databases on (make test-fork starts one)")
	}
	prefix := fmt.Sprintf("pmtest_%d_%d", os.Getpid(), databases.Add(1))
	names := map[string]string{"PostgresURL": server, "PostgresDataDB": prefix + "_data", "PostgresAuxDB": prefix + "_aux"}
	fields := reflect.ValueOf(cfg).Elem()
	for field, value := range names {
		fields.FieldByName(field).SetString(value)
	}
	t.Cleanup(func() {
		db, err := dbx.Open("pgx", server)
		if err != nil {
			t.Errorf("drop the test databases: %v", err)
			return
		}
		defer db.Close()
		for _, name := range []string{names["PostgresDataDB"], names["PostgresAuxDB"]} {
			if _, err := db.NewQuery(`DROP DATABASE IF EXISTS "` + name + `" WITH (FORCE)`).Execute(); err != nil {
				t.Errorf("drop database %s: %v", name, err)
			}
		}
	})
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
