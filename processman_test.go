package processman_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/apis"
	"github.com/pocketbase/pocketbase/core"
	"github.com/processman/processman"
	"github.com/processman/processman/config"
	"github.com/processman/processman/control"
	"github.com/processman/processman/database"
	"github.com/processman/processman/internal/testutil"
	"github.com/processman/processman/supervisor"
)

// server is a real PocketBase serving HTTP with the plugin registered.
type server struct {
	*testutil.Server
	t   *testing.T
	app *core.BaseApp
	dir string // holds pb_data and pb_processes.json
	url string
}

// startServer writes files (relative to a temp dir) and serves a real
// PocketBase with processman registered with cfg.
func startServer(t *testing.T, cfg processman.Config, files map[string]string) *server {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	app := testutil.NewApp(t, dir)
	if err := processman.Register(app, nil, cfg); err != nil {
		t.Fatal(err)
	}
	srv := testutil.Serve(t, app)
	return &server{Server: srv, t: t, app: app, dir: dir, url: srv.URL}
}

// stop terminates PocketBase the way a SIGTERM does.
func (s *server) stop() { s.Stop() }

func (s *server) process(name string) *supervisor.Process {
	s.t.Helper()
	m := processman.Manager(s.app)
	if m == nil {
		s.t.Fatal("no manager while serving")
	}
	p := m.Get(name)
	if p == nil {
		s.t.Fatalf("no process %q", name)
	}
	return p
}

func waitState(t *testing.T, p *supervisor.Process, want supervisor.State) supervisor.Status {
	t.Helper()
	var st supervisor.Status
	testutil.WaitFor(t, fmt.Sprintf("state %s (now %s)", want, p.Status().State), 20*time.Second, func() bool {
		st = p.Status()
		return st.State == want
	})
	return st
}

const envDumper = `import json, os, sys, urllib.request
health = urllib.request.urlopen(os.environ["PB_URL"] + "/api/health").status
json.dump({"env": dict(os.environ), "health": health, "cwd": os.getcwd(), "exe": sys.executable}, open("env.json", "w"))
print("dumped")
import time
time.sleep(300)
`

func TestChildEnvironment(t *testing.T) {
	t.Setenv("INHERITED_FROM_POCKETBASE", "yes")
	t.Setenv("OVERRIDDEN", "from-pocketbase")
	s := startServer(t, processman.Config{}, map[string]string{
		"app/dump.py": envDumper,
		"app/.env":    "FROM_FILE=file\nOVERRIDDEN=from-file\nSECRET_KEY=\"s3cr3t value\"\n",
		"pb_processes.json": `{"processes": [{"name": "envcheck", "script": "dump.py", "cwd": "app",
			"env_file": ".env", "env": {"OVERRIDDEN": "from-env", "EXTRA": "1"}}]}`,
	})
	p := s.process("envcheck")
	waitState(t, p, supervisor.Online)
	dump := filepath.Join(s.dir, "app", "env.json")
	testutil.WaitFor(t, "env.json", 20*time.Second, func() bool { _, err := os.Stat(dump); return err == nil })
	time.Sleep(100 * time.Millisecond) // let the writer finish
	var got struct {
		Env    map[string]string
		Health int
		Cwd    string
	}
	data, _ := os.ReadFile(dump)
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatalf("env.json: %v (%s)", err, data)
	}
	dataDir, _ := filepath.Abs(filepath.Join(s.dir, "pb_data"))
	want := map[string]string{
		"PB_URL":                    s.url,
		"PB_DATA_DIR":               dataDir,
		"PB_PROCESS_NAME":           "envcheck",
		"PB_PORT":                   s.url[strings.LastIndex(s.url, ":")+1:],
		"PYTHONUNBUFFERED":          "1",
		"INHERITED_FROM_POCKETBASE": "yes",
		"FROM_FILE":                 "file",
		"SECRET_KEY":                "s3cr3t value",
		"OVERRIDDEN":                "from-env",
		"EXTRA":                     "1",
	}
	if database.Driver(s.app) == database.Postgres {
		// The data database of a PostgreSQL fork, and no SQLite file.
		if dsn := got.Env["DB_DSN"]; !strings.HasPrefix(dsn, "postgres://") || !strings.Contains(dsn, "/"+currentDatabase(t, s.app)+"?") {
			t.Errorf("DB_DSN = %q, want the URL of database %s", dsn, currentDatabase(t, s.app))
		}
		if path, given := got.Env["PB_DB_PATH"]; given {
			t.Errorf("PB_DB_PATH = %q on PostgreSQL", path)
		}
		want["PB_DB_DRIVER"] = database.Postgres
	} else {
		want["PB_DB_PATH"] = filepath.Join(dataDir, "data.db")
		want["DB_DSN"] = "file://" + filepath.Join(dataDir, "data.db") + "?mode=ro"
		want["PB_DB_DRIVER"] = database.SQLite
	}
	for k, v := range want {
		if got.Env[k] != v {
			t.Errorf("%s = %q, want %q", k, got.Env[k], v)
		}
	}
	if got.Health != 200 {
		t.Errorf("the child could not reach PocketBase at PB_URL: status %d", got.Health)
	}
	if got.Cwd != filepath.Join(s.dir, "app") {
		t.Errorf("cwd = %s", got.Cwd)
	}
}

func TestStopsChildrenOnTerminate(t *testing.T) {
	s := startServer(t, processman.Config{}, map[string]string{
		"pb_processes.json": `{"processes": [
			{"name": "a", "script": "sh", "args": ["-c", "sleep 300 & wait"]},
			{"name": "b", "script": "sleep", "args": ["300"]}]}`,
	})
	var pids []int
	for _, name := range []string{"a", "b"} {
		pids = append(pids, waitState(t, s.process(name), supervisor.Online).Pid)
	}
	s.stop()
	for _, pid := range pids {
		if testutil.Alive(pid) {
			t.Errorf("pid %d still alive after PocketBase terminated", pid)
		}
	}
	if processman.Manager(s.app) != nil {
		t.Error("manager still set after terminate")
	}
}

func TestOutputReachesPocketBaseLogs(t *testing.T) {
	s := startServer(t, processman.Config{}, map[string]string{
		"talk.py":           "import sys, time\nprint('hello from stdout')\nprint('hello from stderr', file=sys.stderr)\ntime.sleep(300)\n",
		"pb_processes.json": `{"processes": [{"name": "talker", "script": "talk.py"}]}`,
	})
	pid := waitState(t, s.process("talker"), supervisor.Online).Pid
	find := func(message string) *core.Log {
		var logs []*core.Log
		_ = s.app.LogQuery().AndWhere(dbx.HashExp{"message": message}).All(&logs)
		if len(logs) == 0 {
			return nil
		}
		return logs[0]
	}
	for _, tc := range []struct{ message, stream string }{
		{"hello from stdout", "stdout"},
		{"hello from stderr", "stderr"},
	} {
		var log *core.Log
		testutil.WaitFor(t, "log "+tc.message, 30*time.Second, func() bool { log = find(tc.message); return log != nil })
		if log.Data["process"] != "talker" || log.Data["stream"] != tc.stream || fmt.Sprint(log.Data["pid"]) != fmt.Sprint(pid) {
			t.Errorf("%q: attributes %v, want process talker, stream %s, pid %d", tc.message, log.Data, tc.stream, pid)
		}
	}
	// the default log file has the lines too
	file := filepath.Join(s.dir, "pb_data", "processman", "logs", "talker.log")
	data, err := os.ReadFile(file)
	if err != nil || !strings.Contains(string(data), "stdout hello from stdout") || !strings.Contains(string(data), "stderr hello from stderr") {
		t.Errorf("log file %s: %v %q", file, err, data)
	}
}

func TestLogStoreIsRateLimited(t *testing.T) {
	s := startServer(t, processman.Config{LogStoreRate: 10, LogStoreBurst: 20}, map[string]string{
		"flood.py":          "import time\nfor i in range(3000):\n    print(f'flood {i}')\ntime.sleep(300)\n",
		"pb_processes.json": `{"processes": [{"name": "flood", "script": "flood.py"}]}`,
	})
	p := s.process("flood")
	testutil.WaitFor(t, "3000 lines", 20*time.Second, func() bool { return p.Status().Logs.Lines >= 3000 })
	s.stop() // flushes the log file, the logger sink and PocketBase's log batch
	// The sink counts skipped lines as it works through them, after the
	// reader: read the counts once it is done.
	if st := p.Status(); st.Logs.LoggerSkipped < 2000 {
		t.Errorf("skipped %d lines, want most of 3000 skipped at 10 lines/s", st.Logs.LoggerSkipped)
	}
	data, _ := os.ReadFile(filepath.Join(s.dir, "pb_data", "processman", "logs", "flood.log"))
	if n := strings.Count(string(data), " stdout flood "); n != 3000 {
		t.Errorf("log file has %d lines, want all 3000", n)
	}
}

func TestInvalidEntriesDoNotStopOthers(t *testing.T) {
	s := startServer(t, processman.Config{}, map[string]string{
		"pb_processes.json": `{"processes": [
			{"name": "good", "script": "sleep", "args": ["300"]},
			{"name": "bad", "script": "sleep", "restart": "sometimes"},
			{"name": "lost", "script": "missing.py"}]}`,
	})
	waitState(t, s.process("good"), supervisor.Online)
	bad := waitState(t, s.process("bad"), supervisor.Errored)
	if !strings.Contains(bad.Error, "/processes/1/restart") {
		t.Errorf("bad: error %q does not name the field", bad.Error)
	}
	lost := waitState(t, s.process("lost"), supervisor.Errored)
	if !strings.Contains(lost.Error, "missing.py") {
		t.Errorf("lost: error %q does not name the script", lost.Error)
	}
	resp, err := http.Get(s.url + "/api/health")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("PocketBase stopped serving: %v", err)
	}
	resp.Body.Close()
}

func TestGoRegisteredProcesses(t *testing.T) {
	s := startServer(t, processman.Config{
		Processes: []config.Process{
			{Name: "from-go", Script: "sleep", Args: []string{"300"}},
			{Name: "dup", Script: "sleep", Args: []string{"300"}},
		},
	}, map[string]string{
		"pb_processes.json": `{"processes": [{"name": "dup", "script": "sleep", "args": ["300"]}]}`,
	})
	st := waitState(t, s.process("from-go"), supervisor.Online)
	if want := []string{"sleep", "300"}; strings.Join(st.Command, " ") != strings.Join(want, " ") {
		t.Errorf("command %v", st.Command)
	}
	// the file's "dup" runs; the Go one with the same name is refused
	waitState(t, s.process("dup"), supervisor.Online)
	if n := len(processman.Manager(s.app).List()); n != 2 {
		t.Errorf("%d processes, want 2", n)
	}
}

func TestWatchRestartsOnChange(t *testing.T) {
	s := startServer(t, processman.Config{}, map[string]string{
		"w/app.py":          "import time\nprint('v1')\ntime.sleep(300)\n",
		"pb_processes.json": `{"processes": [{"name": "w", "script": "app.py", "cwd": "w", "watch": true}]}`,
	})
	p := s.process("w")
	first := waitState(t, p, supervisor.Online).Pid
	// a change in an ignored directory does nothing
	if err := os.MkdirAll(filepath.Join(s.dir, "w", "__pycache__"), 0o755); err != nil {
		t.Fatal(err)
	}
	_ = os.WriteFile(filepath.Join(s.dir, "w", "__pycache__", "app.pyc"), []byte("x"), 0o644)
	time.Sleep(time.Second)
	if pid := p.Status().Pid; pid != first {
		t.Fatalf("restarted on an ignored change: pid %d → %d", first, pid)
	}
	if err := os.WriteFile(filepath.Join(s.dir, "w", "app.py"), []byte("import time\nprint('v2')\ntime.sleep(300)\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "a restart after the change", 20*time.Second, func() bool {
		st := p.Status()
		return st.State == supervisor.Online && st.Pid != first
	})
	if testutil.Alive(first) {
		t.Error("the old run is still alive")
	}
	if st := p.Status(); st.Restarts != 1 {
		t.Errorf("restarts = %d, want 1", st.Restarts)
	}
}

func TestManualStopIsNotUndoneByWatch(t *testing.T) {
	s := startServer(t, processman.Config{}, map[string]string{
		"w/app.sh":          "#!/bin/sh\nexec sleep 300\n",
		"pb_processes.json": `{"processes": [{"name": "w", "script": "app.sh", "cwd": "w", "watch": true}]}`,
	})
	p := s.process("w")
	waitState(t, p, supervisor.Online)
	if err := p.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	_ = os.WriteFile(filepath.Join(s.dir, "w", "app.sh"), []byte("#!/bin/sh\nexec sleep 301\n"), 0o755)
	time.Sleep(1500 * time.Millisecond)
	if st := p.Status(); st.State != supervisor.Stopped {
		t.Errorf("a file change started a process stopped on purpose: %s", st.State)
	}
}

func TestRegisterTwiceFails(t *testing.T) {
	app := testutil.NewApp(t, t.TempDir())
	if err := processman.Register(app, nil, processman.Config{}); err != nil {
		t.Fatal(err)
	}
	if err := processman.Register(app, nil, processman.Config{}); err == nil {
		t.Error("a second Register on the same app succeeded")
	}
}

// The plugin mounts the control API and tells the CLI where it serves
// while it serves.
func TestServesControlAPIAndServerInfo(t *testing.T) {
	s := startServer(t, processman.Config{}, map[string]string{
		"pb_processes.json": `{"processes": [{"name": "app", "script": "sleep", "args": ["60"]}]}`,
	})
	waitState(t, s.process("app"), "online")
	tok, _ := testutil.AuthToken(t, s.app, core.CollectionNameSuperusers)
	req, _ := http.NewRequest("GET", s.url+"/api/pm/list", nil)
	req.Header.Set("Authorization", tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var list struct {
		Items []struct {
			Name, State string
			Memory      uint64
		}
	}
	if err := json.Unmarshal(body, &list); resp.StatusCode != 200 || err != nil || len(list.Items) != 1 || list.Items[0].State != "online" || list.Items[0].Memory == 0 {
		t.Fatalf("list: %d %s", resp.StatusCode, body)
	}

	info, err := control.ReadServerInfo(s.app.DataDir())
	if err != nil || info.URL != s.url || info.Pid != os.Getpid() {
		t.Errorf("server info %+v, %v; want %s and this pid", info, err, s.url)
	}
	s.stop()
	if _, err := os.Stat(control.ServerInfoFile(s.app.DataDir())); !os.IsNotExist(err) {
		t.Errorf("server info file left after stop: %v", err)
	}
}

// A config file that cannot be used at all fails the serve before
// PocketBase listens; with a root command, the program then exits 1.
func TestServeRefusesAnUnusableFile(t *testing.T) {
	for name, content := range map[string]string{
		"syntax":         `[{"name": "a", "script": "sleep",}]`,
		"not processes":  `"sleep"`,
		"unknown field":  `{"processes": [], "procsses": []}`,
		"processes type": `{"processes": {"a": {}}}`,
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "pb_processes.json"), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
			app := testutil.NewApp(t, dir)
			if err := processman.Register(app, nil, processman.Config{Quiet: true}); err != nil {
				t.Fatal(err)
			}
			addr := testutil.FreeAddr(t)
			served := make(chan error, 1)
			go func() { served <- apis.Serve(app, apis.ServeConfig{HttpAddr: addr}) }()
			select {
			case err := <-served:
				if err == nil || !strings.Contains(err.Error(), "cannot be used") {
					t.Errorf("serve: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("PocketBase served a file that cannot be used")
			}
			if _, err := net.Dial("tcp", addr); err == nil {
				t.Error("something listens")
			}
			if processman.Manager(app) != nil {
				t.Error("a manager after the failed serve")
			}
		})
	}
}

// A log file in pb_data would write into PocketBase's database: the entry
// is errored, nothing is written, PocketBase keeps its data.
func TestLogFileNeverWritesIntoPocketBasesData(t *testing.T) {
	s := startServer(t, processman.Config{Quiet: true}, map[string]string{
		"pb_processes.json": `[
			{"name": "db", "script": "sh", "args": ["-c", "echo into the database; sleep 300"], "log_file": "pb_data/data.db"},
			{"name": "ok", "script": "sleep", "args": ["300"]}]`,
	})
	st := waitState(t, s.process("db"), supervisor.Errored)
	if !strings.Contains(st.Error, "/0/log_file") || !strings.Contains(st.Error, "PocketBase's data") {
		t.Errorf("error %q", st.Error)
	}
	waitState(t, s.process("ok"), supervisor.Online)
	data, err := os.ReadFile(filepath.Join(s.dir, "pb_data", "data.db"))
	switch {
	case errors.Is(err, os.ErrNotExist) && database.Driver(s.app) == database.Postgres:
		// A PostgreSQL fork has no data.db, and the errored entry did
		// not create one.
	case err != nil || !strings.HasPrefix(string(data), "SQLite format 3") || strings.Contains(string(data), "into the database"):
		t.Fatalf("PocketBase's database was written to: %v (%d bytes: %.40q)", err, len(data), data)
	}
	if _, err := s.app.FindAllCollections(); err != nil {
		t.Errorf("PocketBase cannot read its collections: %v", err)
	}
}

// currentDatabase is the name of the database app's connection is on.
func currentDatabase(t *testing.T, app core.App) string {
	t.Helper()
	var name string
	if err := app.DB().NewQuery("SELECT current_database()").Row(&name); err != nil {
		t.Fatal(err)
	}
	return name
}
