package control

import (
	"encoding/json"
	"testing"

	"github.com/processman/processman/config"
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
