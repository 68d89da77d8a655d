package processman_test

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/processman/processman"
	"github.com/processman/processman/internal/testutil"
	"github.com/processman/processman/supervisor"
)

// marks reads the lines "<what> <unix ns>" that the test's processes
// append to marks.log, by what.
func marks(t *testing.T, dir string) map[string]time.Time {
	t.Helper()
	data, _ := os.ReadFile(filepath.Join(dir, "marks.log"))
	got := map[string]time.Time{}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		i := strings.LastIndex(line, " ")
		if i < 0 {
			continue
		}
		what, ns, ok := line[:i], line[i+1:], true
		if n, err := strconv.ParseInt(ns, 10, 64); ok && err == nil {
			got[what] = time.Unix(0, n)
		}
	}
	return got
}

// markScript appends "<name> start" at start, "<name> ready" after delay
// (and prints "ready"), and on SIGTERM "<name> stop", then after
// stopDelay "<name> exit".
func markScript(name, delay, stopDelay string) string {
	mark := func(what string) string {
		return `echo "` + name + ` ` + what + ` $(date +%s%N)" >> marks.log`
	}
	return `trap '` + strings.ReplaceAll(mark("stop"), `'`, `'\''`) + `; sleep ` + stopDelay + `; ` + strings.ReplaceAll(mark("exit"), `'`, `'\''`) + `; exit 0' TERM; ` +
		mark("start") + `; sleep ` + delay + `; ` + mark("ready") + `; echo ready; while :; do sleep 0.05; done`
}

func shProcess(name, script, extra string) string {
	quoted := strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(script)
	return `{"name": "` + name + `", "script": "sh", "args": ["-c", "` + quoted + `"], "interpreter": "none", "health": {"line": "ready"}, "kill_timeout": "3s"` + extra + `}`
}

// A dependent starts after what it depends on is ready; independent
// processes start at once; at shutdown, dependents stop first.
func TestDependsOnOrdersStartAndStop(t *testing.T) {
	s := startServer(t, processman.Config{Quiet: true}, map[string]string{
		"pb_processes.json": `[` + strings.Join([]string{
			shProcess("db", markScript("db", "0.4", "0.05"), ""),
			shProcess("api", markScript("api", "0.3", "0.3"), `, "depends_on": ["db"]`),
			shProcess("worker", markScript("worker", "0.1", "0.3"), `, "depends_on": {"db": {"condition": "started"}}`),
			shProcess("web", markScript("web", "0.1", "0.05"), `, "depends_on": ["api"]`),
			shProcess("other", markScript("other", "0.1", "0.3"), ""),
		}, ",") + `]`,
	})
	m := processman.Manager(s.app)
	testutil.WaitFor(t, "web ready", 20*time.Second, func() bool {
		st := m.Get("web").Status()
		return st.State == supervisor.Online && st.Ready
	})
	at := marks(t, s.dir)
	for _, order := range [][2]string{{"db ready", "api start"}, {"api ready", "web start"}} {
		if !at[order[0]].Before(at[order[1]]) {
			t.Errorf("%s at %v, %s at %v: want the first before", order[0], at[order[0]], order[1], at[order[1]])
		}
	}
	// started: worker is spawned once db is (its shell may not have run a
	// line yet), and does not wait for it to be ready.
	if db, worker := m.Get("db").Status().StartedAt, m.Get("worker").Status().StartedAt; worker.Before(db) {
		t.Errorf("worker (condition started) was spawned at %v, before db at %v", worker, db)
	}
	if !at["worker start"].Before(at["db ready"]) {
		t.Errorf("worker (condition started) began at %v, after db was ready at %v", at["worker start"], at["db ready"])
	}
	if gap := at["other start"].Sub(at["db start"]).Abs(); gap > 500*time.Millisecond {
		t.Errorf("independent processes other and db started %v apart, want in parallel", gap)
	}

	began := time.Now()
	s.stop()
	took := time.Since(began)
	at = marks(t, s.dir)
	for _, order := range [][2]string{{"web exit", "api stop"}, {"api exit", "db stop"}, {"worker exit", "db stop"}} {
		if !at[order[0]].Before(at[order[1]]) {
			t.Errorf("%s at %v, %s at %v: want dependents stopped first", order[0], at[order[0]], order[1], at[order[1]])
		}
	}
	if gap := at["other stop"].Sub(at["web stop"]).Abs(); gap > 500*time.Millisecond {
		t.Errorf("other stopped %v apart from web, want in parallel", gap)
	}
	// The longest chain is web (0.05 s) → api (0.3 s) → db (0.05 s).
	if took > 3*time.Second {
		t.Errorf("shutdown took %v", took)
	}
}

// A one-shot dependency that fails keeps its dependent waiting, saying
// why; one that exits 0 is completed and lets its dependent start.
func TestOneShotDependencies(t *testing.T) {
	s := startServer(t, processman.Config{Quiet: true}, map[string]string{
		"pb_processes.json": `[
			{"name": "download", "script": "sh", "args": ["-c", "sleep 0.3; echo done"], "interpreter": "none", "restart": "never"},
			{"name": "migrate", "script": "sh", "args": ["-c", "echo boom >&2; exit 3"], "interpreter": "none", "restart": "never"},
			{"name": "agent", "script": "sleep", "args": ["60"], "interpreter": "none",
			 "depends_on": {"download": {"condition": "completed_successfully"}}},
			{"name": "blocked", "script": "sleep", "args": ["60"], "interpreter": "none",
			 "depends_on": {"download": {"condition": "completed_successfully"}, "migrate": {"condition": "completed_successfully"}}}
		]`,
	})
	m := processman.Manager(s.app)
	testutil.WaitFor(t, "agent online", 10*time.Second, func() bool { return m.Get("agent").Status().State == supervisor.Online })
	if st := m.Get("download").Status(); st.State != supervisor.Completed {
		t.Errorf("download: state %s, want completed", st.State)
	}
	testutil.WaitFor(t, "blocked waiting on migrate", 10*time.Second, func() bool {
		return strings.HasPrefix(m.Get("blocked").Status().WaitingFor, "migrate: exited unsuccessfully (code 3)")
	})
	st := m.Get("blocked").Status()
	if st.State != supervisor.Waiting || st.Pid != 0 {
		t.Errorf("blocked: state %s pid %d, want waiting without a child", st.State, st.Pid)
	}
	if got := m.Get("migrate").Status().State; got != supervisor.Stopped {
		t.Errorf("migrate: state %s, want stopped (it failed)", got)
	}

	// Through the API: the dependency list and the reason.
	token, _ := testutil.AuthToken(t, s.app, "_superusers")
	var list struct {
		Items []struct {
			Name       string `json:"name"`
			State      string `json:"state"`
			WaitingFor string `json:"waiting_for"`
			DependsOn  []struct {
				Name      string `json:"name"`
				Condition string `json:"condition"`
			} `json:"depends_on"`
		} `json:"items"`
	}
	getJSON(t, s.url+"/api/pm/list", token, &list)
	found := false
	for _, p := range list.Items {
		if p.Name == "blocked" {
			found = true
			if p.State != "waiting" || !strings.Contains(p.WaitingFor, "migrate") || len(p.DependsOn) != 2 || p.DependsOn[1].Condition != "completed_successfully" {
				t.Errorf("blocked in the list: %+v", p)
			}
		}
	}
	if !found {
		t.Errorf("blocked is not in the list: %+v", list)
	}
}

// getJSON decodes the answer of GET url with the token into v.
func getJSON(t *testing.T, url, token string, v any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Authorization", token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d", url, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}
