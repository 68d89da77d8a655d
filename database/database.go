// Package database finds the database a PocketBase app actually uses, so
// that processman can tell its children where it is: upstream PocketBase's
// SQLite file, or the PostgreSQL database of a fork.
//
// The driver is the one behind app.DB(). For PostgreSQL the connection
// settings are the effective ones, read in this order:
//   - the fork's core.BaseAppConfig (PostgresURL with PostgresDataDB, as
//     fondoger/pocketbase has them), which holds whatever its flags,
//     environment or Go code set;
//   - the fork's flags and environment: --postgresUrl / POSTGRES_URL with
//     --postgresDataDB / POSTGRES_DATA_DB;
//   - the full database URLs other forks read: PB_DATA_URI (pgbase) and
//     PB_DB_URL (pocketbase-postgres).
//
// The data database's name is then the one the live connection reports
// (current_database()), so DB_DSN names the database the app reads.
//
//	info, err := database.Detect(app)
//	// info.Driver == "postgres", info.DSN == "postgres://pb:secret@db:5432/pb-data?sslmode=disable"
//	env := info.Env() // DB_DSN, PB_DB_DRIVER (and PB_DB_PATH for SQLite)
package database

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"
)

// Drivers, as children see them in PB_DB_DRIVER.
const (
	SQLite   = "sqlite"
	Postgres = "postgres"
)

// Info is where an app's main (data) database is.
type Info struct {
	// Driver is SQLite, Postgres, or the Go driver's name for another
	// database.
	Driver string
	// DSN is a connection string of the data database that the usual
	// client libraries take: a read-only file: URI for SQLite, a
	// postgres:// URL (libpq, psycopg, node-postgres) for PostgreSQL.
	// Empty when it could not be found.
	DSN string
	// Path is the SQLite file, when it exists.
	Path string
	// Source says where PostgreSQL settings came from, e.g. "--postgresUrl"
	// or "POSTGRES_URL"; empty for SQLite.
	Source string
}

// Env is the children's database variables: PB_DB_DRIVER, DB_DSN when
// known, and PB_DB_PATH for an SQLite file that exists.
func (i Info) Env() map[string]string {
	env := map[string]string{"PB_DB_DRIVER": i.Driver}
	if i.DSN != "" {
		env["DB_DSN"] = i.DSN
	}
	if i.Path != "" {
		env["PB_DB_PATH"] = i.Path
	}
	return env
}

// Identity names the database without credentials, to compare two
// apps' databases: sqlite:/srv/pb_data/data.db, or
// postgres://db:5432/pb-data (no user, password or options).
func (i Info) Identity() string {
	switch i.Driver {
	case SQLite:
		return "sqlite:" + strings.TrimPrefix(strings.TrimSuffix(i.DSN, "?mode=ro"), "file://")
	case Postgres:
		u, err := url.Parse(i.DSN)
		if err != nil || i.DSN == "" {
			return "postgres:"
		}
		host := u.Hostname()
		port := u.Port()
		if port == "" {
			port = "5432"
		}
		return "postgres://" + net.JoinHostPort(host, port) + u.Path
	default:
		return i.Driver + ":"
	}
}

// Env is Detect(app).Env(), with only PB_DB_DRIVER when the settings
// cannot be found: the default of processman.Config.DatabaseEnv.
func Env(app core.App) map[string]string {
	info, _ := Detect(app)
	return info.Env()
}

// Detect finds the database behind app. An error says what is missing;
// the Info returned with it still has the driver.
func Detect(app core.App) (Info, error) {
	driver := Driver(app)
	switch driver {
	case SQLite:
		return sqlite(app), nil
	case Postgres:
		return postgres(app)
	default:
		return Info{Driver: driver}, fmt.Errorf("database driver %q: processman knows SQLite and PostgreSQL; set Config.DatabaseEnv to give children its settings", driver)
	}
}

// Driver is the database behind app.DB(): SQLite, Postgres or the Go
// driver's own name. Before the app is bootstrapped it is Postgres for a
// fork whose config has PostgresURL, else SQLite.
func Driver(app core.App) string {
	if db, ok := app.DB().(*dbx.DB); ok && db != nil {
		return driverKind(db.DriverName())
	}
	if _, ok := configField(app, "PostgresURL"); ok {
		return Postgres
	}
	return SQLite
}

// driverKind maps a database/sql driver name onto PB_DB_DRIVER.
func driverKind(name string) string {
	switch n := strings.ToLower(name); {
	case strings.Contains(n, "sqlite"), strings.Contains(n, "libsql"):
		return SQLite
	case n == "pgx", strings.Contains(n, "postgres"), n == "pq":
		return Postgres
	default:
		return name
	}
}

// sqlite is upstream PocketBase's pb_data/data.db.
func sqlite(app core.App) Info {
	path := filepath.Join(absPath(app.DataDir()), "data.db")
	info := Info{Driver: SQLite, DSN: SQLiteDSN(path)}
	if _, err := os.Stat(path); err == nil {
		info.Path = path
	}
	return info
}

// SQLiteDSN is the read-only SQLite URI of a database file:
// file:///srv/pb_data/data.db?mode=ro, the path percent-escaped, which
// Python's sqlite3 (uri=True) and SQLite itself open as it is.
func SQLiteDSN(path string) string {
	return (&url.URL{Scheme: "file", Path: filepath.ToSlash(path), RawQuery: "mode=ro"}).String()
}

// ErrNoPostgresSettings is returned when the app runs on PostgreSQL but
// none of the known settings say how to reach it.
var ErrNoPostgresSettings = errors.New("PocketBase runs on PostgreSQL, but none of its known settings give the server's URL (BaseAppConfig.PostgresURL, --postgresUrl, POSTGRES_URL, PB_DATA_URI, PB_DB_URL); set Config.DatabaseEnv to give children DB_DSN")

// postgres finds the URL of the app's PostgreSQL data database.
func postgres(app core.App) (Info, error) {
	info := Info{Driver: Postgres}
	server, name, source := postgresSettings(app)
	if server == "" {
		return info, ErrNoPostgresSettings
	}
	u, err := url.Parse(server)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return info, fmt.Errorf("%s: not a postgres:// URL", source)
	}
	if current := currentDatabase(app); current != "" {
		name = current
	}
	if name != "" {
		u.Path = "/" + name
		u.RawPath = ""
	}
	info.DSN, info.Source = u.String(), source
	return info, nil
}

// postgresSettings is the server URL, the data database's name (empty
// when the URL names it) and where they came from.
func postgresSettings(app core.App) (server, name, source string) {
	if server, ok := configField(app, "PostgresURL"); ok && server != "" {
		name, _ := configField(app, "PostgresDataDB")
		return server, name, "BaseAppConfig.PostgresURL"
	}
	if server, source := flagOrEnv("postgresUrl", "POSTGRES_URL"); server != "" {
		name, _ := flagOrEnv("postgresDataDB", "POSTGRES_DATA_DB")
		if name == "" {
			name = "pb-data"
		}
		return server, name, source
	}
	for _, key := range []string{"PB_DATA_URI", "PB_DB_URL"} {
		if v := os.Getenv(key); v != "" {
			return v, "", key
		}
	}
	return "", "", ""
}

// flagOrEnv is the value of --flag on the command line, else of the
// variable key, with where it came from.
func flagOrEnv(flag, key string) (string, string) {
	args := os.Args[1:]
	for i, arg := range args {
		switch {
		case arg == "--"+flag && i+1 < len(args):
			return args[i+1], "--" + flag
		case strings.HasPrefix(arg, "--"+flag+"="):
			return strings.TrimPrefix(arg, "--"+flag+"="), "--" + flag
		}
	}
	if v := os.Getenv(key); v != "" {
		return v, key
	}
	return "", ""
}

// currentDatabase asks the live connection which database it is on.
func currentDatabase(app core.App) string {
	db := app.DB()
	if db == nil {
		return ""
	}
	var name string
	if err := db.NewQuery("SELECT current_database()").Row(&name); err != nil {
		return ""
	}
	return name
}

// configField reads a string field of the core.BaseAppConfig behind app
// (forks add fields there, such as PostgresURL). It reports false when
// this PocketBase's config has no such field.
func configField(app core.App, field string) (string, bool) {
	base := baseApp(reflect.ValueOf(app))
	if !base.IsValid() {
		return "", false
	}
	cfg := base.Elem().FieldByName("config")
	if !cfg.IsValid() || cfg.Kind() != reflect.Pointer || cfg.IsNil() {
		return "", false
	}
	v := cfg.Elem().FieldByName(field)
	if !v.IsValid() || v.Kind() != reflect.String {
		return "", false
	}
	return v.String(), true
}

// baseApp finds the *core.BaseApp inside app: app itself, or the App a
// wrapper such as pocketbase.PocketBase or tests.TestApp embeds.
func baseApp(v reflect.Value) reflect.Value {
	for range 4 {
		for v.Kind() == reflect.Interface && !v.IsNil() {
			v = v.Elem()
		}
		if v.Type() == reflect.TypeFor[*core.BaseApp]() {
			return v
		}
		if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
			return reflect.Value{}
		}
		inner := v.Elem().FieldByName("App")
		if !inner.IsValid() {
			inner = v.Elem().FieldByName("BaseApp")
		}
		if !inner.IsValid() {
			return reflect.Value{}
		}
		v = inner
	}
	return reflect.Value{}
}

func absPath(path string) string {
	if abs, err := filepath.Abs(path); err == nil {
		return abs
	}
	return path
}
