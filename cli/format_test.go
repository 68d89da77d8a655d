package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/fatih/color"
	"github.com/processman/processman/control"
)

func init() { color.NoColor = true } // plain text, as on a pipe

func TestShortDuration(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{0, "0s"}, {45 * time.Second, "45s"}, {59*time.Second + 999*time.Millisecond, "59s"},
		{time.Minute, "1m"}, {12*time.Minute + 30*time.Second, "12m"},
		{time.Hour, "1h"}, {47 * time.Hour, "47h"}, {48 * time.Hour, "2d"}, {100 * time.Hour, "4d"},
	} {
		if got := shortDuration(tc.d); got != tc.want {
			t.Errorf("shortDuration(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}

func TestHumanBytes(t *testing.T) {
	for _, tc := range []struct {
		n    uint64
		want string
	}{
		{0, "0 B"}, {1023, "1023 B"}, {1024, "1.0 KiB"}, {1536, "1.5 KiB"},
		{150 << 20, "150.0 MiB"}, {3 << 30, "3.0 GiB"},
	} {
		if got := humanBytes(tc.n); got != tc.want {
			t.Errorf("humanBytes(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
}

func TestPrintTable(t *testing.T) {
	t.Run("no processes", func(t *testing.T) {
		var b bytes.Buffer
		printTable(&b, nil)
		if b.String() != "no processes\n" {
			t.Errorf("%q", b.String())
		}
	})
	t.Run("rows", func(t *testing.T) {
		var b bytes.Buffer
		printTable(&b, []control.Summary{
			{Name: "agno-agent", State: "online", Pid: 4021, Ready: true, UptimeMs: 90_000, Restarts: 2, CPU: 2, Memory: 150 << 20, Route: "/api/agno"},
			{Name: "worker", State: "errored", Restarts: 10, Error: "too many unstable restarts"},
		})
		lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
		if len(lines) != 4 {
			t.Fatalf("%d lines:\n%s", len(lines), b.String())
		}
		if got := strings.Fields(lines[0]); strings.Join(got, " ") != "NAME STATUS PID UPTIME RESTARTS CPU MEMORY READY ROUTE" {
			t.Errorf("header %q", lines[0])
		}
		if got := strings.Join(strings.Fields(lines[1]), " "); got != "agno-agent online 4021 1m 2 2.0% 150.0 MiB yes /api/agno" {
			t.Errorf("running row %q", got)
		}
		// a process without a child has no pid, uptime, cpu, memory or readiness
		if got := strings.Join(strings.Fields(lines[2]), " "); got != "worker errored - - 10 - - - -" {
			t.Errorf("errored row %q", got)
		}
		if lines[3] != "errored worker: too many unstable restarts" {
			t.Errorf("the reason of an errored process: %q", lines[3])
		}
		// columns line up
		if strings.Index(lines[1], "online") != strings.Index(lines[0], "STATUS") || strings.Index(lines[2], "errored") != strings.Index(lines[0], "STATUS") {
			t.Errorf("columns do not line up:\n%s", b.String())
		}
	})
}

func TestPrintDetail(t *testing.T) {
	crashed := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	d := control.Detail{
		Summary: control.Summary{Name: "agent", State: "online", Pid: 77, Ready: true, UptimeMs: 5000, CPU: 1.5, Memory: 2048,
			TreeSize: 3, Restarts: 1, Route: "/api/agent", Auth: "user", Listen: "unix", Runtime: "python"},
		Command: []string{"/srv/.venv/bin/python", "agent.py"},
		Cwd:     "/srv",
		Venv:    "/srv/.venv",
		Env: []control.EnvVar{
			{Name: "OPENAI_API_KEY", Value: control.Redacted, Source: control.SourceConfig, Redacted: true},
			{Name: "PB_PROCESS_NAME", Value: "agent", Source: control.SourceProcessman},
		},
		Inherited: 12,
		Policy:    control.Policy{Restart: "always", MaxRestarts: 10, MinUptime: "5s", KillSignal: "SIGTERM", KillTimeout: "5s"},
		LastCrash: &control.Crash{
			Exit:      control.Exit{Time: crashed, Pid: 70, Code: 1, UptimeMs: 1200},
			LastLines: []control.Line{{Time: crashed, Stream: "stderr", Pid: 70, Text: "ModuleNotFoundError: No module named 'agno'"}},
			Hint:      "a Python module is missing from the virtualenv /srv/.venv: install it",
		},
		Warnings: []string{"/srv has requirements.txt but no virtualenv"},
	}
	var b bytes.Buffer
	printDetail(&b, d)
	out := b.String()
	for _, want := range []string{
		"status          online",
		"cpu             1.5% (3 processes)",
		"memory          2.0 KiB",
		"command         /srv/.venv/bin/python agent.py",
		"venv            /srv/.venv",
		"restart policy  always, max 10 unstable restarts, min uptime 5s",
		"stop            SIGTERM, then SIGKILL after 5s",
		"route           /api/agent (auth user, listen unix)",
		"environment (12 more inherited from PocketBase):",
		"OPENAI_API_KEY   " + control.Redacted + "  " + control.SourceConfig,
		"last crash: code 1 at ",
		"| ModuleNotFoundError: No module named 'agno'",
		"hint: a Python module is missing from the virtualenv /srv/.venv: install it",
		"warning: /srv has requirements.txt but no virtualenv",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
	if strings.Contains(out, "error ") || strings.Contains(out, "next restart") {
		t.Errorf("rows without a value are left out:\n%s", out)
	}
}
