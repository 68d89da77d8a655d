package processman_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/processman/processman"
	"github.com/processman/processman/config"
	"github.com/processman/processman/internal/testutil"
	"github.com/processman/processman/supervisor"
)

// applyOverAPI posts /api/pm/apply and decodes the answer.
func applyOverAPI(t *testing.T, s *server, token string) (int, processman.ApplyResult, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.url+"/api/pm/apply", nil)
	req.Header.Set("Authorization", token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var raw json.RawMessage
	_ = json.NewDecoder(resp.Body).Decode(&raw)
	var result processman.ApplyResult
	var generic map[string]any
	_ = json.Unmarshal(raw, &result)
	_ = json.Unmarshal(raw, &generic)
	return resp.StatusCode, result, generic
}

func writeProcesses(t *testing.T, s *server, entries ...string) {
	t.Helper()
	body := "[" + strings.Join(entries, ",\n") + "]"
	if err := os.WriteFile(filepath.Join(s.dir, "pb_processes.json"), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// One edit of the file adds, removes, reloads and replaces processes and
// moves a route, while a client keeps calling an unchanged route without
// an error; the unchanged process keeps its pid. A broken file changes
// nothing.
func TestApplyChangesOnlyTheDifference(t *testing.T) {
	const (
		keep     = `{"name": "keep", "script": "side.mjs", "route": "/api/keep", "auth": "public"}`
		reloadme = `{"name": "reloadme", "script": "side.mjs", "route": "/api/reloadme", "auth": "public", "env": {"V": "1"}}`
		moving   = `{"name": "moving", "script": "side.mjs", "route": "/api/r1", "auth": "public"}`
		worker   = `{"name": "worker", "script": "sleep", "args": ["60"], "interpreter": "none", "env": {"V": "1"}}`
		old      = `{"name": "old", "script": "sleep", "args": ["60"], "interpreter": "none"}`
	)
	s := startServer(t, processman.Config{Quiet: true}, map[string]string{
		"side.mjs":          echoSidecar(t),
		"pb_processes.json": "[" + strings.Join([]string{keep, reloadme, moving, worker, old}, ",") + "]",
	})
	m := processman.Manager(s.app)
	pids := map[string]int{}
	for _, name := range []string{"keep", "reloadme", "moving", "worker", "old"} {
		testutil.WaitFor(t, name+" ready", 20*time.Second, func() bool { st := m.Get(name).Status(); return st.Ready && st.Pid > 0 })
		pids[name] = m.Get(name).Status().Pid
	}
	token, _ := testutil.AuthToken(t, s.app, "_superusers")

	// Clients on the route that stays, and on the one that reloads.
	var stop atomic.Bool
	var wg sync.WaitGroup
	var calls, failures atomic.Int64
	var failed sync.Map
	for _, route := range []string{"/api/keep/x", "/api/reloadme/x"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				resp, err := http.Get(s.url + route)
				calls.Add(1)
				if err != nil || resp.StatusCode != 200 {
					failures.Add(1)
					failed.Store(route, err)
				}
				if resp != nil {
					resp.Body.Close()
				}
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}

	writeProcesses(t, s, keep,
		strings.Replace(reloadme, `"V": "1"`, `"V": "2"`, 1),
		strings.Replace(moving, "/api/r1", "/api/r2", 1),
		strings.Replace(worker, `"V": "1"`, `"V": "2"`, 1),
		`{"name": "fresh", "script": "side.mjs", "route": "/api/fresh", "auth": "public"}`)
	status, result, _ := applyOverAPI(t, s, token)
	time.Sleep(200 * time.Millisecond)
	stop.Store(true)
	wg.Wait()
	if status != 200 {
		t.Fatalf("apply: %d %+v", status, result)
	}
	got := map[string]string{}
	for _, c := range result.Changes {
		got[c.Process] = c.Action
		if c.Error != "" {
			t.Errorf("%s: %s", c.Process, c.Error)
		}
	}
	want := map[string]string{"keep": "unchanged", "reloadme": "reloaded", "moving": "replaced", "worker": "replaced", "old": "removed", "fresh": "added"}
	for name, action := range want {
		if got[name] != action {
			t.Errorf("%s: %q, want %q (all: %+v)", name, got[name], action, result.Changes)
		}
	}
	if n := failures.Load(); n > 0 {
		failed.Range(func(k, v any) bool { t.Errorf("%s failed: %v", k, v); return true })
		t.Errorf("%d of %d calls failed during the apply", n, calls.Load())
	}
	if pid := m.Get("keep").Status().Pid; pid != pids["keep"] {
		t.Errorf("keep: pid %d, want %d (untouched)", pid, pids["keep"])
	}
	for _, name := range []string{"reloadme", "moving", "worker"} {
		testutil.WaitFor(t, name+" running", 10*time.Second, func() bool { return m.Get(name).Status().State == supervisor.Online })
		if pid := m.Get(name).Status().Pid; pid == pids[name] {
			t.Errorf("%s: still pid %d after its change", name, pid)
		}
	}
	if env := m.Get("worker").Launched().Env; !contains(env, "V=2") {
		t.Errorf("worker runs without V=2")
	}
	if m.Get("old") != nil {
		t.Errorf("old is still managed")
	}
	if testutil.Alive(pids["old"]) {
		t.Errorf("old's pid %d is still alive", pids["old"])
	}
	for path, code := range map[string]int{"/api/r1/x": 404, "/api/r2/x": 200, "/api/fresh/x": 200} {
		testutil.WaitFor(t, path+" answering", 10*time.Second, func() bool {
			resp, err := http.Get(s.url + path)
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == code
		})
	}

	// A broken file changes nothing and lists every error.
	before := m.Get("fresh").Status().Pid
	writeProcesses(t, s, keep, `{"name": "fresh", "script": "side.mjs", "depends_on": ["ghost"]}`, `{"name": "bad", "script": ""}`)
	status, _, answer := applyOverAPI(t, s, token)
	data, _ := answer["data"].(map[string]any)
	errs, _ := data["errors"].([]any)
	if status != 400 || len(errs) < 2 || !strings.Contains(answer["message"].(string), "nothing was changed") {
		t.Errorf("broken file: %d %v", status, answer)
	}
	if m.Get("fresh").Status().Pid != before || m.Get("moving") == nil {
		t.Errorf("a broken file changed what runs")
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// With AutoApply a saved edit is applied by itself; processes registered
// from Go code are never touched, and a file entry cannot take their name.
func TestAutoApplyLeavesGoProcessesAlone(t *testing.T) {
	s := startServer(t, processman.Config{Quiet: true, AutoApply: true,
		Processes: []config.Process{{Name: "fromgo", Script: "sleep", Args: []string{"60"}, Interpreter: "none"}}},
		map[string]string{"pb_processes.json": `[{"name": "a", "script": "sleep", "args": ["60"], "interpreter": "none"}]`})
	m := processman.Manager(s.app)
	testutil.WaitFor(t, "fromgo online", 10*time.Second, func() bool { return m.Get("fromgo").Status().Pid > 0 })
	goPid := m.Get("fromgo").Status().Pid

	writeProcesses(t, s, `{"name": "b", "script": "sleep", "args": ["60"], "interpreter": "none"}`)
	testutil.WaitFor(t, "b added and a removed by the file watch", 10*time.Second, func() bool {
		return m.Get("b") != nil && m.Get("b").Status().Pid > 0 && m.Get("a") == nil
	})
	if pid := m.Get("fromgo").Status().Pid; pid != goPid {
		t.Errorf("fromgo: pid %d, want %d", pid, goPid)
	}

	writeProcesses(t, s, `{"name": "b", "script": "sleep", "args": ["60"], "interpreter": "none"}`,
		`{"name": "fromgo", "script": "sleep", "args": ["1"], "interpreter": "none"}`)
	result, err := processman.Apply(context.Background(), s.app)
	if err == nil {
		t.Fatalf("a file entry named like a Go process applied: %+v", result)
	}
	if !strings.Contains(fmt.Sprint(result.Errors), `duplicate name "fromgo"`) {
		t.Errorf("errors %v, want the duplicate name", result.Errors)
	}
	if pid := m.Get("fromgo").Status().Pid; pid != goPid {
		t.Errorf("fromgo: pid %d after the refused apply, want %d", pid, goPid)
	}
}
