package database_test

import (
	"database/sql"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pocketbase/dbx"
	"github.com/processman/processman/database"
	"github.com/processman/processman/internal/testutil"
)

func TestSQLiteDSN(t *testing.T) {
	for path, dsn := range map[string]string{
		"/srv/pb_data/data.db":             "file:///srv/pb_data/data.db?mode=ro",
		"/srv/my data/#1?/pb_data/data.db": "file:///srv/my%20data/%231%3F/pb_data/data.db?mode=ro",
	} {
		if got := database.SQLiteDSN(path); got != dsn {
			t.Errorf("SQLiteDSN(%s) = %s, want %s", path, got, dsn)
		}
	}
}

// Detect on the PocketBase this module is built against: upstream's
// SQLite file, or a fork's PostgreSQL database, which a new connection
// through DB_DSN then reads.
func TestDetectFindsTheDatabaseTheAppUses(t *testing.T) {
	app := testutil.NewApp(t, t.TempDir())
	info, err := database.Detect(app)
	if err != nil {
		t.Fatal(err)
	}
	env := info.Env()
	switch info.Driver {
	case database.SQLite:
		path := filepath.Join(app.DataDir(), "data.db")
		abs, _ := filepath.Abs(path)
		if env["PB_DB_PATH"] != abs || env["DB_DSN"] != database.SQLiteDSN(abs) || env["PB_DB_DRIVER"] != "sqlite" {
			t.Errorf("env %v, want the file %s", env, abs)
		}
	case database.Postgres:
		if _, given := env["PB_DB_PATH"]; given {
			t.Errorf("PB_DB_PATH given on PostgreSQL: %v", env)
		}
		if env["PB_DB_DRIVER"] != "postgres" || info.Source != "BaseAppConfig.PostgresURL" {
			t.Errorf("env %v from %q", env, info.Source)
		}
		var want string
		if err := app.DB().NewQuery("SELECT current_database()").Row(&want); err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(sql.Drivers(), "pgx") {
			t.Fatal("a PostgreSQL fork without the pgx driver")
		}
		db, err := dbx.Open("pgx", env["DB_DSN"])
		if err != nil {
			t.Fatalf("open DB_DSN: %v", err)
		}
		defer db.Close()
		var got string
		var collections int
		if err := db.NewQuery("SELECT current_database(), (SELECT count(*) FROM _collections)").Row(&got, &collections); err != nil {
			t.Fatalf("read through DB_DSN: %v", err)
		}
		if got != want || collections == 0 {
			t.Errorf("DB_DSN reaches %s with %d collections, want %s", got, collections, want)
		}
	default:
		t.Fatalf("driver %q", info.Driver)
	}
}

// Without a fork's BaseAppConfig field, the settings come from the fork's
// flags, then its variables, then other forks' variables.
func TestPostgresSettingsFromFlagsAndEnvironment(t *testing.T) {
	app := testutil.NewApp(t, t.TempDir())
	if database.Driver(app) != database.SQLite {
		t.Skip("the app's own config gives the settings on this PocketBase")
	}
	args := os.Args
	t.Cleanup(func() { os.Args = args })
	for _, tc := range []struct {
		name      string
		args      []string
		env       map[string]string
		dsn, from string
	}{
		{"flag", []string{"serve", "--postgresUrl", "postgres://pb:pw@db:5432/postgres?sslmode=disable", "--postgresDataDB=main"},
			map[string]string{"POSTGRES_URL": "postgres://other@x/y"}, "postgres://pb:pw@db:5432/main?sslmode=disable", "--postgresUrl"},
		{"env", []string{"serve"}, map[string]string{"POSTGRES_URL": "postgresql://pb@db/postgres", "POSTGRES_DATA_DB": "data one"},
			"postgresql://pb@db/data%20one", "POSTGRES_URL"},
		{"env-default-db", []string{"serve"}, map[string]string{"POSTGRES_URL": "postgres://pb@db/postgres"}, "postgres://pb@db/pb-data", "POSTGRES_URL"},
		{"pgbase", []string{"serve"}, map[string]string{"PB_DATA_URI": "postgres://pb@db/app"}, "postgres://pb@db/app", "PB_DATA_URI"},
		{"pocketbase-postgres", []string{"serve"}, map[string]string{"PB_DB_URL": "postgres://pb@db/app2"}, "postgres://pb@db/app2", "PB_DB_URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, k := range []string{"POSTGRES_URL", "POSTGRES_DATA_DB", "PB_DATA_URI", "PB_DB_URL"} {
				t.Setenv(k, tc.env[k])
			}
			os.Args = append([]string{"pocketbase"}, tc.args...)
			info, err := database.DetectPostgres(app)
			if err != nil {
				t.Fatal(err)
			}
			if info.DSN != tc.dsn || info.Source != tc.from {
				t.Errorf("DSN %s from %s, want %s from %s", info.DSN, info.Source, tc.dsn, tc.from)
			}
			if _, err := url.Parse(info.DSN); err != nil {
				t.Error(err)
			}
		})
	}
	t.Run("none", func(t *testing.T) {
		for _, k := range []string{"POSTGRES_URL", "POSTGRES_DATA_DB", "PB_DATA_URI", "PB_DB_URL"} {
			t.Setenv(k, "")
		}
		os.Args = []string{"pocketbase", "serve"}
		_, err := database.DetectPostgres(app)
		if err == nil || !strings.Contains(err.Error(), "POSTGRES_URL") || !strings.Contains(err.Error(), "Config.DatabaseEnv") {
			t.Errorf("err %v", err)
		}
	})
	t.Run("not-a-url", func(t *testing.T) {
		t.Setenv("POSTGRES_URL", "host=db user=pb")
		os.Args = []string{"pocketbase", "serve"}
		if _, err := database.DetectPostgres(app); err == nil || !strings.Contains(err.Error(), "POSTGRES_URL") {
			t.Errorf("err %v", err)
		}
	})
}

func TestIdentityLeavesOutCredentials(t *testing.T) {
	for info, want := range map[database.Info]string{
		{Driver: database.SQLite, DSN: database.SQLiteDSN("/srv/pb_data/data.db")}:               "sqlite:/srv/pb_data/data.db",
		{Driver: database.Postgres, DSN: "postgres://pb:secret@db:5433/pb-data?sslmode=disable"}: "postgres://db:5433/pb-data",
		{Driver: database.Postgres, DSN: "postgresql://pb@db/pb-data"}:                           "postgres://db:5432/pb-data",
		{Driver: database.Postgres}: "postgres:",
	} {
		if got := info.Identity(); got != want {
			t.Errorf("%+v: %s, want %s", info, got, want)
		}
	}
}
