package control

import (
	"strings"
	"testing"

	"github.com/processman/processman/internal/redact"
)

func TestSecretNames(t *testing.T) {
	for name, secret := range map[string]bool{
		"OPENAI_API_KEY": true, "PB_GATEWAY_SECRET": true, "DB_PASSWORD": true, "GITHUB_TOKEN": true,
		"AWS_ACCESS_KEY_ID": true, "SESSION_SECRET": true, "KEY": true, "PRIVATE_PEM": true, "PG_DSN": true,
		"PORT": false, "PB_URL": false, "MODE": false, "MONKEY": false, "PATH": false, "KEYBOARD_LAYOUT": false,
	} {
		if IsSecretName(name) != secret {
			t.Errorf("IsSecretName(%q) = %v, want %v", name, !secret, secret)
		}
	}
}

func TestRedactURL(t *testing.T) {
	for value, want := range map[string]string{
		"postgres://app:hunter2@db:5432/app?sslmode=disable": "postgres://app:" + Redacted + "@db:5432/app?sslmode=disable",
		"redis://:p%40ss@cache/0":                            "redis://:" + Redacted + "@cache/0",
		"https://user@example.com/x":                         "https://user@example.com/x",
		"http://127.0.0.1:8090":                              "http://127.0.0.1:8090",
		"not a url":                                          "not a url",
	} {
		got, changed := redact.Value(value)
		if got != want || changed != (got != value) {
			t.Errorf("redact.Value(%q) = %q, %v; want %q", value, got, changed, want)
		}
	}
}

func TestEnvironmentSources(t *testing.T) {
	env := []string{"HOME=/root", "PATH=/venv/bin:/usr/bin", "PB_URL=http://127.0.0.1:8090", "MODE=dev", "TOKEN_FROM_FILE=x", "PLAIN_FROM_FILE=y"}
	parent := []string{"HOME=/root", "PATH=/usr/bin"}
	vars, inherited := environment(env, parent, map[string]string{"MODE": "dev"}, []string{"TOKEN_FROM_FILE", "PLAIN_FROM_FILE"})
	if inherited != 1 {
		t.Errorf("inherited %d, want 1 (HOME)", inherited)
	}
	want := []EnvVar{
		{"MODE", "dev", SourceConfig, false},
		{"PATH", "/venv/bin:/usr/bin", SourceProcessman, false}, // changed by the venv
		{"PB_URL", "http://127.0.0.1:8090", SourceProcessman, false},
		{"PLAIN_FROM_FILE", Redacted, SourceEnvFile, true}, // every env file value
		{"TOKEN_FROM_FILE", Redacted, SourceEnvFile, true},
	}
	if len(vars) != len(want) {
		t.Fatalf("vars %+v, want %+v", vars, want)
	}
	for i := range want {
		if vars[i] != want[i] {
			t.Errorf("var %d: %+v, want %+v", i, vars[i], want[i])
		}
	}
}

// Secrets inside values are redacted too: in a URL's query and in a
// connection string, whatever the variable is called.
func TestEnvironmentRedactsSecretsInValues(t *testing.T) {
	env := []string{"UPSTREAM=https://api.example.com/v1?api_key=sk-live-1&model=x", "MSSQL=Server=db;User Id=sa;Password=S3cr3t;", "CACHE=redis://h/0?password=p4ss"}
	vars, _ := environment(env, nil, nil, nil)
	for _, v := range vars {
		for _, secret := range []string{"sk-live-1", "S3cr3t", "p4ss"} {
			if strings.Contains(v.Value, secret) || !v.Redacted {
				t.Errorf("%s = %q", v.Name, v.Value)
			}
		}
	}
}
