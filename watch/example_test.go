package watch_test

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/processman/processman/watch"
)

func Example() {
	dir, _ := os.MkdirTemp("", "watch-example")
	defer os.RemoveAll(dir)
	os.WriteFile(filepath.Join(dir, "app.py"), []byte("print('v1')"), 0o644)

	restarts := make(chan []string, 10)
	w, err := watch.New(watch.Options{
		Root:     dir,           // the process cwd
		Paths:    []string{"."}, // relative to Root; default is Root itself
		Ignore:   []string{"*.log", "/build"},
		Debounce: 200 * time.Millisecond, // default 300ms
		OnError:  func(err error) { fmt.Println("watch:", err) },
	}, func(changed []string) {
		restarts <- changed // e.g. restart the supervised process here
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer w.Close()

	os.WriteFile(filepath.Join(dir, "server.log"), []byte("ignored"), 0o644)
	os.WriteFile(filepath.Join(dir, "app.py"), []byte("print('v2')"), 0o644)

	select {
	case changed := <-restarts:
		for _, p := range changed {
			fmt.Println("changed:", filepath.Base(p))
		}
	case <-time.After(15 * time.Second):
		fmt.Println("timeout")
	}
	// Output:
	// changed: app.py
}
