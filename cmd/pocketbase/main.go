// Command pocketbase is PocketBase with the processman plugin wired in,
// beside PocketBase's usual JS hooks (pb_hooks), JS migrations and
// pb_public static files.
//
//	./pocketbase serve                    # also runs pb_processes.json beside pb_data
//	./pocketbase serve --processes x.json # another config file
//	./pocketbase pm check                 # validates the config without serving
package main

import (
	"log"
	"net/http"
	"os"
	"path/filepath"

	"github.com/dop251/goja"
	"github.com/pocketbase/pocketbase"
	"github.com/pocketbase/pocketbase/apis"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/plugins/jsvm"
	"github.com/pocketbase/pocketbase/plugins/migratecmd"
	"github.com/pocketbase/pocketbase/tools/hook"
	"github.com/pocketbase/pocketbase/tools/osutils"
	"github.com/processman/processman"
	"github.com/processman/processman/dashboard"
)

func main() {
	app := pocketbase.New()
	app.RootCmd.Version = versionText()

	var hooksDir, migrationsDir, publicDir string
	var hooksWatch, automigrate, indexFallback bool
	var hooksPool int
	flags := app.RootCmd.PersistentFlags()
	flags.StringVar(&hooksDir, "hooksDir", "", "the directory with the JS app hooks")
	flags.BoolVar(&hooksWatch, "hooksWatch", true, "auto restart the app on pb_hooks file change; it has no effect on Windows")
	flags.IntVar(&hooksPool, "hooksPool", 15, "the total prewarm goja.Runtime instances for the JS app hooks execution")
	flags.StringVar(&migrationsDir, "migrationsDir", "", "the directory with the user defined migrations")
	flags.BoolVar(&automigrate, "automigrate", true, "enable/disable auto migrations")
	flags.StringVar(&publicDir, "publicDir", defaultPublicDir(), "the directory to serve static files")
	flags.BoolVar(&indexFallback, "indexFallback", true, "fallback the request to index.html on missing static path, e.g. when pretty urls are used with SPA")

	// processman adds its own --processes flag and the `pm` command.
	processman.MustRegister(app, app.RootCmd, processman.Config{})
	// The dashboard's Processes page. A PocketBase without dashboard UI
	// extensions (before v0.37, and forks of those) gets everything else.
	if err := dashboard.Register(app); err != nil {
		log.Printf("%v: the dashboard has no Processes page; processes, routes, the control API and `pocketbase pm` work as usual", err)
	}

	_ = app.RootCmd.ParseFlags(os.Args[1:])

	jsvm.MustRegister(app, jsvm.Config{
		MigrationsDir: migrationsDir,
		HooksDir:      hooksDir,
		HooksWatch:    hooksWatch,
		HooksPoolSize: hooksPool,
		// pb_hooks can call routed processes: $processman.send({...}).
		OnInit: func(vm *goja.Runtime) {
			vm.Set("$processman", processman.JSBindings(app))
		},
	})

	migratecmd.MustRegister(app, app.RootCmd, migratecmd.Config{
		TemplateLang: migratecmd.TemplateLangJS,
		Automigrate:  automigrate,
		Dir:          migrationsDir,
	})

	app.OnServe().Bind(&hook.Handler[*core.ServeEvent]{
		Func: func(e *core.ServeEvent) error {
			if !e.Router.HasRoute(http.MethodGet, "/{path...}") {
				e.Router.GET("/{path...}", apis.Static(os.DirFS(publicDir), indexFallback))
			}
			return e.Next()
		},
		Priority: 999,
	})

	if err := app.Start(); err != nil {
		log.Fatal(err)
	}
}

// defaultPublicDir is pb_public beside the executable.
func defaultPublicDir() string {
	if osutils.IsProbablyGoRun() {
		return "./pb_public"
	}
	return filepath.Join(os.Args[0], "../pb_public")
}
