package control

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/processman/processman/config"
	"github.com/processman/processman/internal/testutil"
	"github.com/processman/processman/supervisor"
)

// A process of several instances is listed with each; NAME:INDEX picks
// one for describe, logs and actions, and the answers keep to the
// OpenAPI document.
func TestInstancesThroughTheAPI(t *testing.T) {
	s := startTestServer(t, config.Process{Name: "w", Script: "sh", Instances: 3,
		Args: []string{"-c", `echo "i am $PB_INSTANCE"; exec sleep 300`}})
	for _, p := range s.manager.Instances("w") {
		testutil.WaitFor(t, p.Ref()+" online", 20*time.Second, func() bool { return p.Status().State == supervisor.Online })
	}

	status, body := s.do(t, "GET", "/api/pm/list", s.superuser)
	var list struct{ Items []json.RawMessage }
	if status != 200 || json.Unmarshal(body, &list) != nil || len(list.Items) != 1 {
		t.Fatalf("list %d %s", status, body)
	}
	valid(t, "Summary", list.Items[0])
	var summary Summary
	_ = json.Unmarshal(list.Items[0], &summary)
	if summary.State != "online" || len(summary.Instances) != 3 || summary.Instances[2].Pid == 0 || summary.Instances[2].Instance != 2 {
		t.Errorf("summary %+v", summary)
	}

	status, body = s.do(t, "GET", "/api/pm/w:2", s.superuser)
	if status != 200 {
		t.Fatalf("describe w:2: %d %s", status, body)
	}
	valid(t, "Detail", body)
	var d Detail
	_ = json.Unmarshal(body, &d)
	if d.Instance != 2 || len(d.Instances) != 3 || d.Policy.Instances != 3 {
		t.Errorf("detail of w:2: instance %d, %d instances", d.Instance, len(d.Instances))
	}

	testutil.WaitFor(t, "three lines", 10*time.Second, func() bool { return len(s.manager.Get("w").Output().Tail(0)) >= 3 })
	status, body = s.do(t, "GET", "/api/pm/w:1/logs", s.superuser)
	var lines struct{ Items []Line }
	if status != 200 || json.Unmarshal(body, &lines) != nil || len(lines.Items) != 1 || lines.Items[0].Text != "i am 1" || lines.Items[0].Instance != 1 {
		t.Errorf("logs of w:1: %d %s", status, body)
	}
	status, body = s.do(t, "GET", "/api/pm/w/logs", s.superuser)
	if _ = json.Unmarshal(body, &lines); status != 200 || len(lines.Items) != 3 {
		t.Errorf("logs of w: %d %s", status, body)
	}

	before := s.manager.Instances("w")
	pids := []int{before[0].Status().Pid, before[1].Status().Pid, before[2].Status().Pid}
	status, body = s.do(t, "POST", "/api/pm/w:1/restart", s.superuser)
	if status != 200 {
		t.Fatalf("restart w:1: %d %s", status, body)
	}
	valid(t, "Summary", body)
	_ = json.Unmarshal(body, &summary)
	if len(summary.Instances) != 3 || summary.Instances[1].Pid == pids[1] || summary.Instances[0].Pid != pids[0] || summary.Instances[2].Pid != pids[2] {
		t.Errorf("after restarting w:1 the whole process is answered, with instance 1 alone restarted: %+v", summary.Instances)
	}
	// an unrouted process reloads as a restart, every instance in turn
	status, body = s.do(t, "POST", "/api/pm/w/reload", s.superuser)
	if _ = json.Unmarshal(body, &summary); status != 200 || summary.Instances[0].Pid == pids[0] || summary.Instances[2].Pid == pids[2] {
		t.Errorf("reload w: %d %s", status, body)
	}

	for path, want := range map[string]string{
		"/api/pm/w:3":         `"w" has 3 instances (0-2); there is no instance 3`,
		"/api/pm/w:x/logs":    `as in "w:0"`,
		"/api/pm/nope:1/logs": `process named "nope"`,
	} {
		status, body := s.do(t, "GET", path, s.superuser)
		if status != http.StatusNotFound || !strings.Contains(string(body), strings.ReplaceAll(want, `"`, `\"`)) {
			t.Errorf("%s: %d %s, want 404 saying %s", path, status, body, want)
		}
	}
	if status, body := s.do(t, "POST", "/api/pm/w:5/stop", s.superuser); status != http.StatusNotFound {
		t.Errorf("stop w:5: %d %s", status, body)
	}
}
