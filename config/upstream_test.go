package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestUpstreamTarget(t *testing.T) {
	for upstream, want := range map[string]string{
		"http://agent.default.svc:8000":  "tcp agent.default.svc:8000",
		"http://agent.default.svc:8000/": "tcp agent.default.svc:8000",
		"http://10.0.0.7":                "tcp 10.0.0.7:80",
		"http://[::1]:9000":              "tcp [::1]:9000",
		"unix:/run/agent/agent.sock":     "unix /run/agent/agent.sock",
	} {
		network, address, err := UpstreamTarget(upstream)
		if got := network + " " + address; err != nil || got != want {
			t.Errorf("%s: %q, %v; want %q", upstream, got, err, want)
		}
	}
	for upstream, want := range map[string]string{
		"https://agent:443":     "https is not supported",
		"http://agent:8000/v1":  "only the scheme, host and port",
		"http://u:p@agent:8000": "only the scheme, host and port",
		"unix:agent.sock":       "absolute path",
		"agent:8000":            "not http://host:port",
		"ftp://agent":           "not http://host:port",
	} {
		if _, _, err := UpstreamTarget(upstream); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", upstream, err, want)
		}
	}
}

// An upstream entry in a file: what it needs, what it may not have.
func TestUpstreamEntries(t *testing.T) {
	for _, tc := range []struct {
		name, entry string
		want        []string // "path: message" fragments, in order; none: valid
	}{
		{"valid", `{"name": "agent", "upstream": "http://agent:8000", "route": "/api/agent", "gateway_secret_env": "AGENT_SECRET"}`, nil},
		{"no route", `{"name": "agent", "upstream": "http://agent:8000", "gateway_secret_env": "S"}`, []string{"/processes/0/route (process \"agent\"): an upstream needs a route"}},
		{"no secret", `{"name": "agent", "upstream": "http://agent:8000", "route": "/api/agent"}`, []string{"/processes/0/gateway_secret_env (process \"agent\"): an upstream route needs gateway_secret_env"}},
		{"https", `{"name": "agent", "upstream": "https://agent", "route": "/api/agent", "gateway_secret_env": "S"}`, []string{"/processes/0/upstream (process \"agent\"): upstream \"https://agent\": https is not supported"}},
		{"with a script", `{"name": "agent", "upstream": "http://agent:8000", "script": "app.py", "instances": 2, "route": "/api/agent", "gateway_secret_env": "S"}`,
			[]string{"/processes/0/instances (process \"agent\"): instances has no effect on an upstream route", "/processes/0/script (process \"agent\"): script has no effect"}},
		{"secret without upstream", `{"name": "agent", "script": "app.py", "gateway_secret_env": "S"}`, []string{"/processes/0/gateway_secret_env (process \"agent\"): gateway_secret_env is set but upstream is not"}},
		{"neither script nor upstream", `{"name": "agent"}`, []string{"/processes/0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "pb_processes.json")
			if err := os.WriteFile(path, []byte(`{"processes": [`+tc.entry+`]}`), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Load(path)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("errors: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			text := err.Error()
			at := 0
			for _, w := range tc.want {
				i := strings.Index(text[at:], w)
				if i < 0 {
					t.Fatalf("missing %q (in order) in:\n%s", w, text)
				}
				at += i
			}
		})
	}
}
