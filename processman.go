// Package processman is a PocketBase plugin that starts, supervises and
// stops Python and Node.js "sidecar" processes beside PocketBase, the way
// PM2 does, so that `./pocketbase serve` stays the whole deployment.
//
// Processes come from pb_processes.json (beside pb_data, like pb_hooks),
// from Go code, or both:
//
//	app := pocketbase.New()
//
//	processman.MustRegister(app, app.RootCmd, processman.Config{
//		// optional; pb_data/../pb_processes.json is loaded when it exists
//		ProcessesFile: "pb_processes.json",
//		Processes: []config.Process{
//			{Name: "agent", Script: "agent.py", Cwd: "agents", Watch: config.Watch{Enabled: true}},
//		},
//	})
//
//	if err := app.Start(); err != nil {
//		log.Fatal(err)
//	}
//
// Children start when PocketBase serves (not for other commands) and stop
// with it, whole process trees included, even when PocketBase is killed.
// Each child gets PB_URL and PB_PORT (PocketBase's address), DB_DSN (its
// database), PB_DATA_DIR, PB_PROCESS_NAME and PYTHONUNBUFFERED=1 in its
// environment, and PB_SOCKET or PORT when it is routed; its output goes to
// a ring buffer, a rotated log file and PocketBase's logs. The
// `pocketbase pm` command checks config files and controls the running
// processes. See docs/ for every field and variable.
package processman

import (
	"path/filepath"
	"time"

	"github.com/pocketbase/pocketbase/core"
	"github.com/processman/processman/config"
)

// Config defines the config options of the processman plugin.
type Config struct {
	// ProcessesFile is the config file to load. If not set, the
	// --processes flag is used when given, else "pb_data/../pb_processes.json",
	// which may be missing. A file given explicitly must exist.
	ProcessesFile string

	// Processes are registered from Go code, besides the file's. An empty
	// Cwd means the directory containing pb_data.
	Processes []config.Process

	// LogsDir holds the default per-process log files <name>.log.
	// If not set it fallbacks to "pb_data/processman/logs".
	LogsDir string

	// LogBufferLines is how many recent output lines each process keeps
	// in memory. If not set it fallbacks to 1000.
	LogBufferLines int

	// LogStoreRate is how many output lines per second and process are
	// forwarded to PocketBase's log store (the Logs page); lines past it
	// are counted and skipped there, and still kept in the ring buffer
	// and the log file. If not set it fallbacks to 50; a negative value
	// forwards none.
	LogStoreRate float64

	// LogStoreBurst is how many lines may be forwarded at once above
	// LogStoreRate. If not set it fallbacks to 500.
	LogStoreBurst int

	// PocketBaseURL is the PB_URL given to children. If not set it is
	// derived from the address PocketBase serves on, with a wildcard host
	// replaced by 127.0.0.1 (set it when serving HTTPS under a domain).
	PocketBaseURL string

	// GatewayHold is how long a request to a route waits for its process
	// to accept connections (while it starts, restarts or backs off)
	// before it gets a 503 with Retry-After. If not set it fallbacks to 10s.
	GatewayHold time.Duration

	// MemoryInterval is how often the memory of the processes that set
	// max_memory_restart is checked. If not set it fallbacks to 2s.
	MemoryInterval time.Duration

	// Quiet turns off the lines processman prints on stdout when a
	// process starts, becomes ready, exits, restarts or errors, and when
	// files change under a watched one (they are in PocketBase's logs
	// either way). The --processesQuiet flag sets it too.
	Quiet bool

	// AutoApply applies the config file whenever it changes (debounced),
	// as `pocketbase pm apply` does: a file with errors changes nothing
	// and its errors are logged. The --processesAutoApply flag sets it too.
	AutoApply bool

	// DatabaseEnv returns the variables that tell children where the
	// database is. If not set, they are database.Env's, of the database
	// the app actually uses: for SQLite, DB_DSN (a read-only file: URI of
	// pb_data/data.db), PB_DB_DRIVER (sqlite) and PB_DB_PATH; for a
	// PostgreSQL fork, DB_DSN (a postgres:// URL of its data database)
	// and PB_DB_DRIVER (postgres). Set it for a database processman does
	// not know; the children also inherit PocketBase's own environment.
	DatabaseEnv func(app core.App) map[string]string
}

// logsDir is where the default log files are: Config.LogsDir, or
// pb_data/processman/logs.
func logsDir(configured, dataDir string) string {
	if configured != "" {
		return configured
	}
	return filepath.Join(dataDir, "processman", "logs")
}
