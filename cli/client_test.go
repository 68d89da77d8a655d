package cli

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/pocketbase/pocketbase/core"
	"github.com/processman/processman/control"
	"github.com/processman/processman/database"
	"github.com/processman/processman/internal/testutil"
	"github.com/processman/processman/supervisor"
)

// clearEnv unsets the variables the CLI reads, for one test.
func clearEnv(t *testing.T) {
	for _, k := range []string{"PB_URL", "PB_TOKEN", "PB_SUPERUSER_EMAIL", "PB_SUPERUSER_PASSWORD"} {
		t.Setenv(k, "")
	}
}

func TestFindingTheServer(t *testing.T) {
	app := testutil.NewApp(t, t.TempDir())
	if _, err := control.WriteServerInfo(app.DataDir(), control.ServerInfo{URL: "http://127.0.0.1:9111", Pid: 1}); err != nil {
		t.Fatal(err)
	}
	bare := testutil.NewApp(t, t.TempDir()) // never served: no server info
	for _, tc := range []struct {
		name string
		flag string
		env  string
		app  core.App
		want string
	}{
		{"--url first", "http://flag:1/", "http://env:2", app, "http://flag:1"},
		{"then PB_URL", "", "http://env:2/", app, "http://env:2"},
		{"then the server info of --dir", "", "", app, "http://127.0.0.1:9111"},
		{"else the default", "", "", bare, DefaultURL},
		{"without an app", "", "", nil, DefaultURL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clearEnv(t)
			t.Setenv("PB_URL", tc.env)
			f := &flags{url: tc.flag, token: "t"} // a token: no login, no pb_data lookup
			c, err := f.client(context.Background(), tc.app)
			if err != nil || c.URL != tc.want {
				t.Errorf("URL %q, %v; want %q", c.URL, err, tc.want)
			}
		})
	}
}

func TestCredentials(t *testing.T) {
	app := testutil.NewApp(t, t.TempDir())
	superusers, err := app.FindCollectionByNameOrId(core.CollectionNameSuperusers)
	if err != nil {
		t.Fatal(err)
	}
	admin := core.NewRecord(superusers)
	admin.SetEmail("admin@example.com")
	admin.SetPassword("1234567890")
	if err := app.Save(admin); err != nil {
		t.Fatal(err)
	}
	srv := testutil.Serve(t, app)
	empty := testutil.NewApp(t, t.TempDir()) // a pb_data without a superuser

	t.Run("--token before PB_TOKEN", func(t *testing.T) {
		clearEnv(t)
		t.Setenv("PB_TOKEN", "from-env")
		c, err := (&flags{url: srv.URL, token: "from-flag"}).client(context.Background(), nil)
		if err != nil || c.Token != "from-flag" {
			t.Errorf("%v", err)
		}
		c, err = (&flags{url: srv.URL}).client(context.Background(), nil)
		if err != nil || c.Token != "from-env" {
			t.Errorf("%v", err)
		}
	})
	t.Run("email and password log in", func(t *testing.T) {
		clearEnv(t)
		c, err := (&flags{url: srv.URL, email: "admin@example.com", password: "1234567890"}).client(context.Background(), nil)
		if err != nil || c.Token == "" {
			t.Fatalf("token %q, %v", c.Token, err)
		}
		rec, err := app.FindAuthRecordByToken(c.Token, core.TokenTypeAuth)
		if err != nil || rec.Id != admin.Id {
			t.Errorf("the token is not the superuser's: %v", err)
		}
	})
	t.Run("from the environment too", func(t *testing.T) {
		clearEnv(t)
		t.Setenv("PB_SUPERUSER_EMAIL", "admin@example.com")
		t.Setenv("PB_SUPERUSER_PASSWORD", "1234567890")
		if c, err := (&flags{url: srv.URL}).client(context.Background(), nil); err != nil || c.Token == "" {
			t.Errorf("%v", err)
		}
	})
	t.Run("a wrong password says what to check", func(t *testing.T) {
		clearEnv(t)
		_, err := (&flags{url: srv.URL, email: "admin@example.com", password: "wrong-password"}).client(context.Background(), nil)
		if err == nil || !strings.Contains(err.Error(), "superuser login as admin@example.com failed (400") || !strings.Contains(err.Error(), "--password") {
			t.Errorf("%v", err)
		}
	})
	t.Run("an email without a password", func(t *testing.T) {
		clearEnv(t)
		_, err := (&flags{url: srv.URL, email: "admin@example.com"}).client(context.Background(), nil)
		if err == nil || !strings.Contains(err.Error(), "give both --email and --password") {
			t.Errorf("%v", err)
		}
	})
	t.Run("nothing given: a short token from pb_data", func(t *testing.T) {
		clearEnv(t)
		c, err := (&flags{url: srv.URL}).client(context.Background(), app)
		if err != nil || c.Token == "" {
			t.Fatalf("token %q, %v", c.Token, err)
		}
		if rec, err := app.FindAuthRecordByToken(c.Token, core.TokenTypeAuth); err != nil || rec.Id != admin.Id {
			t.Errorf("the local token is not the superuser's: %v", err)
		}
		c, err = (&flags{url: srv.URL}).client(context.Background(), empty)
		if database.Driver(empty) == database.Postgres {
			// Without a superuser, a fork's pm was most likely run
			// without the server's database settings: it says so.
			if err == nil || !strings.Contains(err.Error(), "no superuser in the PostgreSQL database") || !strings.Contains(err.Error(), "POSTGRES_URL") {
				t.Errorf("a database without a superuser: %v", err)
			}
		} else if err != nil || c.Token != "" {
			t.Errorf("a pb_data without a superuser gave token %q, %v", c.Token, err)
		}
	})
	t.Run("another database than the server's says which settings to give", func(t *testing.T) {
		clearEnv(t)
		other := testutil.NewApp(t, t.TempDir())
		served := "postgres://db.example:5432/pb-data"
		if _, err := control.WriteServerInfo(other.DataDir(), control.ServerInfo{URL: srv.URL, Pid: 1, Database: served}); err != nil {
			t.Fatal(err)
		}
		_, err := (&flags{}).client(context.Background(), other)
		if database.Driver(other) == database.SQLite {
			// The file is in the pb_data the server info came from: the
			// same database whatever its path looks like (links).
			if err != nil {
				t.Errorf("SQLite: %v", err)
			}
		} else if err == nil || !strings.Contains(err.Error(), "uses the database "+served) || !strings.Contains(err.Error(), "--postgresUrl") {
			t.Errorf("%v", err)
		}
		info, _ := database.Detect(app)
		if _, err := control.WriteServerInfo(app.DataDir(), control.ServerInfo{URL: srv.URL, Pid: 1, Database: info.Identity()}); err != nil {
			t.Fatal(err)
		}
		if c, err := (&flags{}).client(context.Background(), app); err != nil || c.Token == "" {
			t.Errorf("the server's own database: token %q, %v", c.Token, err)
		}
	})
}

func TestClientErrors(t *testing.T) {
	app := testutil.NewApp(t, t.TempDir())
	manager := supervisor.NewManager()
	t.Cleanup(func() { _ = manager.Shutdown(context.Background()) })
	api := &control.API{Manager: func() *supervisor.Manager { return manager }}
	app.OnServe().BindFunc(func(e *core.ServeEvent) error {
		api.Bind(e.Router)
		return e.Next()
	})
	token, _ := testutil.AuthToken(t, app, core.CollectionNameSuperusers)
	userToken, _ := testutil.AuthToken(t, app, "users")
	srv := testutil.Serve(t, app)
	ctx := context.Background()

	if _, err := (&Client{URL: "http://" + testutil.FreeAddr(t)}).List(ctx); !errors.Is(err, ErrNotRunning) || !strings.Contains(err.Error(), "pocketbase serve") {
		t.Errorf("nothing listening: %v", err)
	}
	if _, err := (&Client{URL: srv.URL}).List(ctx); err == nil || !strings.Contains(err.Error(), "no superuser credentials") {
		t.Errorf("no token: %v", err)
	}
	var apiErr *Error
	if _, err := (&Client{URL: srv.URL, Token: userToken}).List(ctx); !errors.As(err, &apiErr) || apiErr.Status != http.StatusForbidden || !strings.Contains(err.Error(), "needs a superuser") {
		t.Errorf("a user's token: %v", err)
	}
	if _, err := (&Client{URL: srv.URL, Token: token}).Describe(ctx, "nope"); !errors.As(err, &apiErr) || apiErr.Status != http.StatusNotFound || !strings.Contains(err.Error(), `No process named "nope"`) {
		t.Errorf("an unknown process: %v", err)
	}
	if list, err := (&Client{URL: srv.URL, Token: token}).List(ctx); err != nil || len(list) != 0 {
		t.Errorf("an empty list: %v %v", list, err)
	}
	if _, err := (&Client{URL: srv.URL + "/not-pocketbase", Token: token}).List(ctx); !errors.As(err, &apiErr) || !strings.Contains(err.Error(), "is processman registered") {
		t.Errorf("no control API there: %v", err)
	}
}
