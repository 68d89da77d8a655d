package control

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

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
			s := summaryOf(st, tc.cfg.WithDefaults(), metrics.Usage{})
			if got, want := jsonText(t, s.Auth), jsonText(t, tc.auth); got != want {
				t.Errorf("auth %s, want %s", got, want)
			}
			if tc.cfg.Route != "" && s.Listen != config.ListenUnix {
				t.Errorf("listen %q, want the default %q", s.Listen, config.ListenUnix)
			}
		})
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
