package control

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/processman/processman/config"
	"github.com/processman/processman/logs"
	"github.com/processman/processman/metrics"
	"github.com/processman/processman/supervisor"
)

// The summary shows a route's defaults as the route acts on them.
func TestSummaryShowsDefaultsAsTheyAct(t *testing.T) {
	st := supervisor.Status{Name: "agent", State: supervisor.Online}
	for _, tc := range []struct {
		name string
		cfg  config.Process
		auth any
	}{
		{"no auth is user", config.Process{Route: "/api/agent"}, config.AuthUser},
		{"a mode", config.Process{Route: "/api/agent", Auth: config.Auth{Mode: config.AuthPublic}}, config.AuthPublic},
		{"collections", config.Process{Route: "/api/agent", Auth: config.Auth{Collections: []string{"members"}}}, []string{"members"}},
		{"no route, no auth", config.Process{}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := summaryOf([]supervisor.Status{st}, tc.cfg.WithDefaults(), nil)
			if got, want := jsonText(t, s.Auth), jsonText(t, tc.auth); got != want {
				t.Errorf("auth %s, want %s", got, want)
			}
			if tc.cfg.Route != "" && s.Listen != config.ListenUnix {
				t.Errorf("listen %q, want the default %q", s.Listen, config.ListenUnix)
			}
		})
	}
}

// A process of several instances sums them up and shows each.
func TestSummaryOfInstances(t *testing.T) {
	now := time.Now()
	statuses := []supervisor.Status{
		{Name: "api", Instance: 0, State: supervisor.Online, Pid: 10, Ready: true, Restarts: 2, Reloads: 1, StartedAt: now},
		{Name: "api", Instance: 1, State: supervisor.Online, Pid: 11, Ready: false, Restarts: 1, UnstableRestarts: 3,
			Next: &supervisor.Copy{Pid: 12, Slot: 1, StartedAt: now}},
		{Name: "api", Instance: 2, State: supervisor.Errored, Error: "gave up", LastExit: &supervisor.Exit{Time: now, Pid: 9, Code: 1}},
	}
	usage := map[int]metrics.Usage{10: {CPU: 5, Memory: 100, Processes: 1}, 11: {CPU: 7, Memory: 50, Processes: 2}}
	s := summaryOf(statuses, config.Process{Name: "api", Instances: 3, Route: "/api/x"}.WithDefaults(), usage)
	if s.State != "mixed" || s.Ready || s.Pid != 10 || s.Restarts != 3 || s.Reloads != 1 || s.UnstableRestarts != 3 {
		t.Errorf("summary %+v", s)
	}
	if s.CPU != 12 || s.Memory != 150 || s.TreeSize != 3 || !s.Reloading || s.LastExit == nil || s.LastExit.Pid != 9 {
		t.Errorf("sums %+v", s)
	}
	if s.Error != "instance 2: gave up" {
		t.Errorf("error %q", s.Error)
	}
	if len(s.Instances) != 3 || s.Instances[1].Memory != 50 || s.Instances[1].Next == nil || s.Instances[1].Next.Pid != 12 || s.Instances[2].State != "errored" {
		t.Errorf("instances %+v", s.Instances)
	}
	one := summaryOf(statuses[:1], config.Process{Name: "api"}.WithDefaults(), usage)
	if one.State != "online" || !one.Ready || len(one.Instances) != 1 {
		t.Errorf("one instance %+v", one)
	}
}

func jsonText(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The logs answer keeps under its cap however the lines encode, with the
// newest lines, and says how many it left out.
func TestLinesAnswerIsCapped(t *testing.T) {
	var lines []logs.Line
	for i := 0; i < 1000; i++ {
		lines = append(lines, logs.Line{Stream: "stdout", Pid: 1, Text: fmt.Sprintf("%04d", i) + strings.Repeat("<", 4000)}) // 6 bytes each in JSON
	}
	body := linesAnswer(lines, 1<<20)
	if len(body) > 1<<20 {
		t.Fatalf("%d bytes over a 1 MB cap", len(body))
	}
	var got struct {
		Items     []Line `json:"items"`
		Truncated int    `json:"truncated"`
	}
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Items) == 0 || got.Truncated != 1000-len(got.Items) || got.Items[len(got.Items)-1].Text[:4] != "0999" {
		t.Errorf("%d items, %d truncated, last %q", len(got.Items), got.Truncated, got.Items[len(got.Items)-1].Text[:4])
	}
	if small := linesAnswer(lines[:3], 1<<20); !strings.HasSuffix(string(small), `"truncated":0}`) {
		t.Errorf("nothing left out: %s", small[len(small)-20:])
	}
}
