// Package dashboard adds a "Processes" page to the PocketBase dashboard:
// the processes that processman supervises, live, with start, stop and
// restart buttons, each one's command line, environment, crash record and
// a log viewer that follows its output.
//
//	app := pocketbase.New()
//
//	processman.MustRegister(app, app.RootCmd, processman.Config{})
//	dashboard.MustRegister(app)
//
//	if err := app.Start(); err != nil {
//		log.Fatal(err)
//	}
//
// The page is a dashboard UI extension, which PocketBase has since v0.37;
// on an older PocketBase, Register returns [ErrUnsupported]. It is shown
// to superusers only and reads processman's control API (/api/pm), which
// is superuser-only too, with the dashboard's own session.
//
// The processman package does not import this one, so the plugin itself
// still builds against older PocketBase versions and forks.
package dashboard

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"reflect"

	"github.com/pocketbase/pocketbase/core"
)

// Name is the extension's name: its files are served at
// /_/extensions/processman/.
const Name = "processman"

// ErrUnsupported is returned by Register when the PocketBase the program
// is built with has no dashboard UI extensions (before v0.37).
var ErrUnsupported = errors.New("processman/dashboard: this PocketBase has no dashboard UI extensions (v0.37 or newer is needed)")

//go:embed ui
var uiFiles embed.FS

// UI returns the extension's files: main.js (which PocketBase joins into
// /_/extensions.js) and the stylesheet it loads.
func UI() fs.FS {
	sub, err := fs.Sub(uiFiles, "ui")
	if err != nil {
		panic(err) // the embedded directory always exists
	}
	return sub
}

// MustRegister is Register that panics on error.
func MustRegister(app core.App) {
	if err := Register(app); err != nil {
		panic(err)
	}
}

// storeKey marks an app that has the page already.
const storeKey = "processman/dashboard"

// Register adds the Processes page to app's dashboard.
func Register(app core.App) error {
	if !hasUIExtensions() {
		return ErrUnsupported
	}
	if app.Store().Has(storeKey) {
		return errors.New("processman/dashboard: already registered on this app")
	}
	app.Store().Set(storeKey, true)
	app.OnServe().BindFunc(func(e *core.ServeEvent) error {
		if err := appendUIExtension(e, Name, UI()); err != nil {
			return fmt.Errorf("processman/dashboard: %w", err)
		}
		return e.Next()
	})
	return nil
}

// The UI extension fields are set through reflection instead of
// `e.UIExtensions = append(e.UIExtensions, core.UIExtension{...})` so that
// this package, and the programs importing it (cmd/pocketbase), still
// compile against the PocketBase versions the rest of processman supports,
// where ServeEvent has no UIExtensions; there Register reports
// ErrUnsupported instead of the build failing.

const extensionsField = "UIExtensions"

func hasUIExtensions() bool {
	field, ok := reflect.TypeFor[core.ServeEvent]().FieldByName(extensionsField)
	if !ok || field.Type.Kind() != reflect.Slice {
		return false
	}
	ext := field.Type.Elem()
	name, hasName := ext.FieldByName("Name")
	files, hasFS := ext.FieldByName("FS")
	return ext.Kind() == reflect.Struct &&
		hasName && name.Type.Kind() == reflect.String &&
		hasFS && files.Type == reflect.TypeFor[fs.FS]()
}

// appendUIExtension is e.UIExtensions = append(e.UIExtensions,
// core.UIExtension{Name: name, FS: fsys}).
func appendUIExtension(e *core.ServeEvent, name string, fsys fs.FS) error {
	if !hasUIExtensions() {
		return ErrUnsupported
	}
	list := reflect.ValueOf(e).Elem().FieldByName(extensionsField)
	ext := reflect.New(list.Type().Elem()).Elem()
	ext.FieldByName("Name").SetString(name)
	ext.FieldByName("FS").Set(reflect.ValueOf(fsys))
	list.Set(reflect.Append(list, ext))
	return nil
}
