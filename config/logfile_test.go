package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/processman/processman/config"
)

func TestCheckLogFiles(t *testing.T) {
	base := t.TempDir()
	dataDir := filepath.Join(base, "pb_data")
	for _, d := range []string{filepath.Join(dataDir, "processman", "logs"), filepath.Join(base, "pb_hooks"), filepath.Join(base, "logs")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, content := range map[string]string{
		filepath.Join(dataDir, "data.db"):          "SQLite format 3\x00...",
		filepath.Join(base, "notes.txt"):           "my notes\n",
		filepath.Join(base, "logs", "old.log"):     "2026-12-01T10:00:00.000Z stdout hello\n",
		filepath.Join(base, "logs", "many.log"):    "2026-12-01T10:00:00.000Z stderr:1 hello\n",
		filepath.Join(base, "logs", "empty.log"):   "",
		filepath.Join(base, "pb_processes.json"):   "[]",
		filepath.Join(base, "pb_hooks", "main.js"): "",
	} {
		if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(dataDir, filepath.Join(base, "data-link")); err != nil {
		t.Fatal(err)
	}
	protected := config.Protected{DataDir: dataDir, OwnDir: filepath.Join(dataDir, "processman"),
		Paths: []string{filepath.Join(base, "pb_processes.json"), filepath.Join(base, "pb_hooks")}}
	tests := []struct {
		log  string
		want string // a fragment of the error; "" for none
	}{
		{filepath.Join(dataDir, "processman", "logs", "a.log"), ""}, // the default place
		{filepath.Join(base, "logs", "new.log"), ""},
		{filepath.Join(base, "logs", "old.log"), ""},  // an earlier run's log
		{filepath.Join(base, "logs", "many.log"), ""}, // of a process of several instances
		{filepath.Join(base, "logs", "empty.log"), ""},
		{filepath.Join(dataDir, "data.db"), "is in pb_data, PocketBase's data"},
		{filepath.Join(dataDir, "other.log"), "is in pb_data"},
		{filepath.Join(base, "data-link", "data.db"), "is in pb_data"}, // through a symlink
		{filepath.Join(base, "logs", "..", "pb_data", "x.log"), "is in pb_data"},
		{filepath.Join(base, "pb_processes.json"), "which PocketBase reads"},
		{filepath.Join(base, "pb_hooks", "hooks.log"), "which PocketBase reads"},
		{filepath.Join(base, "notes.txt"), "is not a processman log"},
		{"/etc/passwd", "is not a processman log"},
		{"/dev/full", "is not a regular file"},
		{"/", "is a directory"},
		{filepath.Join(base, "logs"), "is a directory"},
	}
	for _, tc := range tests {
		t.Run(tc.log, func(t *testing.T) {
			procs := []config.Process{{Name: "p"}}
			errs := config.CheckLogFiles(procs, func(config.Process) string { return tc.log }, protected, "pb_processes.json")
			switch {
			case tc.want == "" && len(errs) > 0:
				t.Errorf("refused:%s", dump(errs))
			case tc.want != "" && (len(errs) != 1 || !strings.Contains(errs[0].Message, tc.want) || errs[0].Path != "/processes/0/log_file" || errs[0].Hint == ""):
				t.Errorf("want an error with %q at /processes/0/log_file; got:%s", tc.want, dump(errs))
			}
		})
	}
	t.Run("two processes, one file", func(t *testing.T) {
		procs := []config.Process{{Name: "a"}, {Name: "b"}}
		same := filepath.Join(base, "logs", "shared.log")
		errs := config.CheckLogFiles(procs, func(config.Process) string { return same }, protected, "")
		if len(errs) != 1 || errs[0].Index != 1 || !strings.Contains(errs[0].Message, `also the log file of "a"`) {
			t.Errorf("got:%s", dump(errs))
		}
	})
	t.Run("a duplicate name is not a second error", func(t *testing.T) {
		procs := []config.Process{{Name: "a"}, {Name: "a"}}
		if errs := config.CheckLogFiles(procs, func(p config.Process) string { return filepath.Join(base, "logs", p.Name+".log") }, protected, ""); len(errs) != 0 {
			t.Errorf("got:%s", dump(errs))
		}
	})
	t.Run("none", func(t *testing.T) {
		if errs := config.CheckLogFiles([]config.Process{{Name: "a"}}, func(config.Process) string { return "" }, protected, ""); len(errs) != 0 {
			t.Errorf("got:%s", dump(errs))
		}
	})
}
