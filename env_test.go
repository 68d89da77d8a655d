package processman

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/processman/processman/gateway"
)

// documentedVariables reads the names of the table of injected variables
// in docs/environment.md, in order.
func documentedVariables(t *testing.T) []string {
	t.Helper()
	doc, err := os.ReadFile("docs/environment.md")
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(doc), "| variable | given to | value | example |")
	if !ok {
		t.Fatal("docs/environment.md has no table of injected variables")
	}
	table, _, _ = strings.Cut(table, "\n\n")
	var names []string
	for _, row := range strings.Split(table, "\n")[2:] {
		first := strings.SplitN(row, "|", 3)[1]
		for _, m := range regexp.MustCompile("`([A-Z_]+)`").FindAllStringSubmatch(first, -1) {
			names = append(names, m[1])
		}
	}
	return names
}

func TestChildEnvironmentIsTheDocumentedOne(t *testing.T) {
	documented := documentedVariables(t)
	env := childEnv{pocketBaseURL: "http://127.0.0.1:8090", dataDir: "/srv/pb_data", database: map[string]string{
		"PB_DB_DRIVER": "sqlite", "DB_DSN": "file:///srv/pb_data/data.db?mode=ro", "PB_DB_PATH": "/srv/pb_data/data.db"}}
	unix := func(paths ...string) [][slots]gateway.Target {
		var targets [][slots]gateway.Target
		for i := 0; i < len(paths); i += 2 {
			targets = append(targets, [slots]gateway.Target{{Network: "unix", Address: paths[i]}, {Network: "unix", Address: paths[i+1]}})
		}
		return targets
	}
	cases := []struct {
		name           string
		instance, slot int
		route          *routeEnv
		want           map[string]string
	}{
		{"plain", 0, 0, nil, map[string]string{"PB_URL": "http://127.0.0.1:8090", "PB_PORT": "8090", "PB_PROCESS_NAME": "plain",
			"PB_INSTANCE": "0", "NODE_APP_INSTANCE": "0", "DB_DSN": "file:///srv/pb_data/data.db?mode=ro", "PYTHONUNBUFFERED": "1"}},
		{"unix", 0, 0, &routeEnv{prefix: "/api/u", targets: unix("/tmp/pm/u.0a.sock", "/tmp/pm/u.0b.sock"), secret: "s3"},
			map[string]string{"PB_SOCKET": "/tmp/pm/u.0a.sock", "PB_ROUTE": "/api/u", "PB_GATEWAY_SECRET": "s3"}},
		{"tcp", 0, 0, &routeEnv{prefix: "/api/t", targets: [][slots]gateway.Target{{{Network: "tcp", Address: "127.0.0.1:41234"}, {Network: "tcp", Address: "127.0.0.1:41235"}}}, secret: "s3"},
			map[string]string{"PORT": "41234", "PB_PORT": "8090", "PB_ROUTE": "/api/t"}},
		{"instance-1-reloading", 1, 1, &routeEnv{prefix: "/api/i", targets: unix("/tmp/pm/i.0a.sock", "/tmp/pm/i.0b.sock", "/tmp/pm/i.1a.sock", "/tmp/pm/i.1b.sock"), secret: "s3"},
			map[string]string{"PB_SOCKET": "/tmp/pm/i.1b.sock", "PB_INSTANCE": "1", "NODE_APP_INSTANCE": "1"}},
	}
	given := map[string]bool{}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			vars := env.of(tc.name, tc.instance, tc.slot, tc.route)
			var names []string
			for _, v := range vars {
				names = append(names, v.name)
				given[v.name] = true
			}
			// in the documented order, each documented
			at := 0
			for _, n := range names {
				i := slices.Index(documented[at:], n)
				if i < 0 {
					t.Fatalf("%s is given out of the order of docs/environment.md (%v), or not documented", n, documented)
				}
				at += i + 1
			}
			got := envMap(vars)
			if len(got) != len(vars) {
				t.Errorf("a variable is given twice: %v", names)
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Errorf("%s = %q, want %q", k, got[k], v)
				}
			}
		})
	}
	for _, n := range documented {
		if !given[n] {
			t.Errorf("docs/environment.md documents %s, which no child gets", n)
		}
	}
}

func TestPocketBasePort(t *testing.T) {
	for url, port := range map[string]string{
		"http://127.0.0.1:8090": "8090", "https://example.com": "443", "http://example.com": "80", "http://[::1]:9000": "9000",
	} {
		if got := urlPort(url); got != port {
			t.Errorf("urlPort(%s) = %q, want %q", url, got, port)
		}
	}
}
