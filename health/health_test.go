package health_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/processman/processman/config"
	"github.com/processman/processman/gateway"
	"github.com/processman/processman/health"
	"github.com/processman/processman/internal/testutil"
	"github.com/processman/processman/launch"
	"github.com/processman/processman/logs"
	"github.com/processman/processman/supervisor"
)

const secret = "0123456789abcdef0123456789abcdef"

// checked is a real process under a real supervisor, with a running
// health check.
type checked struct {
	process *supervisor.Process
	targets [2]gateway.Target // by slot
}

// start supervises cfg (its script in dir) with env, and runs a check of
// it with the config's health setting; routed processes get a socket.
func start(t *testing.T, dir string, cfg config.Process, routed bool, env map[string]string) *checked {
	t.Helper()
	manager := supervisor.NewManager()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() {
		cancel()
		shutdown, done := context.WithTimeout(context.Background(), 30*time.Second)
		defer done()
		_ = manager.Shutdown(shutdown)
	})
	inject := map[string]string{"PB_PROCESS_NAME": cfg.Name}
	for k, v := range env {
		inject[k] = v
	}
	c := &checked{}
	if routed {
		sockDir, err := os.MkdirTemp("", "hc")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(sockDir) })
		for slot := range c.targets {
			c.targets[slot] = gateway.Target{Network: "unix", Address: filepath.Join(sockDir, fmt.Sprintf("s%d.sock", slot))}
		}
		inject["PB_GATEWAY_SECRET"] = secret
	}
	cfg.Cwd = dir
	out, err := logs.NewOutput(logs.Options{Process: cfg.Name, RingLines: 200})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = out.Close() })
	opts := supervisor.Options{
		Resolve: func(p config.Process, slot int) (*launch.Command, error) {
			env := maps.Clone(inject)
			if routed {
				env["PB_SOCKET"] = c.targets[slot].Address
			}
			return launch.Resolve(p, os.Environ(), env)
		},
		Spawner:        manager.Spawner(),
		Output:         out,
		BeforeStart:    func(slot int) error { return c.targets[slot].Prepare() },
		CheckReadiness: true,
	}
	if routed {
		opts.Drain = func(context.Context, int, time.Duration) {} // no gateway here
	}
	c.process = supervisor.New(cfg, opts)
	if err := manager.Add(c.process); err != nil {
		t.Fatal(err)
	}
	check := &health.Check{Process: c.process, Output: out, Config: cfg.Health}
	if routed {
		check.Secret, check.Targets = secret, c.targets[:]
	}
	go check.Run(ctx)
	return c
}

// echoSidecar copies the gateway tests' sidecar into dir.
func echoSidecar(t *testing.T, dir string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "testdata", "echo-sidecar.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "side.mjs"), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestSocketAcceptingMeansReady(t *testing.T) {
	dir := t.TempDir()
	echoSidecar(t, dir)
	c := start(t, dir, config.Process{Name: "side", Script: "side.mjs"}, true, nil)
	testutil.WaitFor(t, "ready", 15*time.Second, func() bool { return c.process.Status().Ready })
	if _, err := os.Stat(c.targets[0].Address); err != nil {
		t.Errorf("ready without a socket: %v", err)
	}
}

func TestHTTPPathDecidesReadiness(t *testing.T) {
	dir := t.TempDir()
	echoSidecar(t, dir)
	// The socket accepts at once, but /health answers 503 for 1.5 s (and
	// 401 to a check that is not signed as PocketBase itself).
	c := start(t, dir, config.Process{Name: "side", Script: "side.mjs", Health: &config.Health{HTTP: "/health"}},
		true, map[string]string{"READY_AFTER_MS": "1500"})
	testutil.WaitFor(t, "online", 15*time.Second, func() bool { return c.process.Status().State == supervisor.Online })
	started := time.Now()
	time.Sleep(500 * time.Millisecond)
	if c.process.Status().Ready {
		t.Fatal("ready while /health still answered 503")
	}
	testutil.WaitFor(t, "ready", 15*time.Second, func() bool { return c.process.Status().Ready })
	if took := time.Since(started); took < time.Second {
		t.Errorf("ready %v after the start, before /health said so (after 1.5 s)", took)
	}
}

func TestReadyLine(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "worker.sh"), []byte("#!/bin/sh\necho booting\nsleep 1\necho 'worker ready to go'\nexec sleep 300\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	c := start(t, dir, config.Process{Name: "w", Script: "worker.sh", Health: &config.Health{Line: "ready to go"}}, false, nil)
	testutil.WaitFor(t, "online", 10*time.Second, func() bool { return c.process.Status().State == supervisor.Online })
	if c.process.Status().Ready {
		t.Fatal("ready before the line")
	}
	testutil.WaitFor(t, "the ready line", 10*time.Second, func() bool { return c.process.Status().Ready })
}

func TestLivenessRestartsAProcessThatStopsAnswering(t *testing.T) {
	dir := t.TempDir()
	echoSidecar(t, dir)
	failFile := filepath.Join(dir, "fail")
	c := start(t, dir, config.Process{Name: "side", Script: "side.mjs",
		Health: &config.Health{HTTP: "/health", Interval: config.Duration(100 * time.Millisecond), Failures: 3}},
		true, map[string]string{"HEALTH_FAIL_FILE": failFile})
	p := c.process
	testutil.WaitFor(t, "ready", 10*time.Second, func() bool { return p.Status().Ready })
	first := p.Status().Pid
	time.Sleep(500 * time.Millisecond) // passing checks do nothing
	if p.Status().Pid != first {
		t.Fatal("restarted while healthy")
	}
	if err := os.WriteFile(failFile, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "a restart", 15*time.Second, func() bool {
		st := p.Status()
		return st.Pid != 0 && st.Pid != first
	})
	os.Remove(failFile)
	testutil.WaitFor(t, "ready again", 10*time.Second, func() bool { return p.Status().Ready })
}

// A reload starts the new copy on the other slot, waits for its own
// readiness check, then lets it take over and stops the old copy.
func TestReloadTakesOverOnceTheNewCopyIsReady(t *testing.T) {
	dir := t.TempDir()
	echoSidecar(t, dir)
	c := start(t, dir, config.Process{Name: "side", Script: "side.mjs", Route: "/api/side", Health: &config.Health{HTTP: "/health"}},
		true, map[string]string{"READY_AFTER_MS": "800"})
	p := c.process
	testutil.WaitFor(t, "ready", 15*time.Second, func() bool { return p.Status().Ready })
	first := p.Status()

	done := make(chan error, 1)
	started := time.Now()
	go func() { done <- p.Reload(supervisor.WithReason(context.Background(), "a test")) }()
	testutil.WaitFor(t, "the new copy", 10*time.Second, func() bool { return p.Status().Next != nil })
	during := p.Status()
	if _, serving := p.Serving(first.Slot); !serving || during.Pid != first.Pid || during.Next.Slot == first.Slot {
		t.Errorf("while the new copy starts, the old one must serve on its slot: %+v", during)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if took := time.Since(started); took < 700*time.Millisecond {
		t.Errorf("took over after %v, before the new copy's /health passed (800 ms)", took)
	}
	after := p.Status()
	if after.Pid == first.Pid || after.Slot == first.Slot || !after.Ready || after.Reloads != 1 || after.Next != nil || after.Draining != nil {
		t.Errorf("after the reload: %+v", after)
	}
	if _, serving := p.Serving(after.Slot); !serving {
		t.Error("the new copy's slot does not serve")
	}
	if _, serving := p.Serving(first.Slot); serving {
		t.Error("the old slot still serves")
	}
	if e := after.LastExit; e == nil || e.Pid != first.Pid || !e.Requested || e.Reason != "a test" {
		t.Errorf("the old copy's exit: %+v", e)
	}
	if testutil.Alive(first.Pid) {
		t.Errorf("the old copy %d still runs", first.Pid)
	}
}

// A reload whose new copy is not ready in time, or exits, is given up:
// the old copy keeps serving, and the failure says why with the new
// copy's output.
func TestReloadGivenUpKeepsTheOldCopy(t *testing.T) {
	dir := t.TempDir()
	echoSidecar(t, dir)
	failFile, crashFile := filepath.Join(dir, "fail"), filepath.Join(dir, "crash")
	c := start(t, dir, config.Process{Name: "side", Script: "side.mjs", Route: "/api/side",
		ReadyTimeout: config.Duration(time.Second), Health: &config.Health{HTTP: "/health"}},
		true, map[string]string{"HEALTH_FAIL_FILE": failFile, "CRASH_FILE": crashFile})
	p := c.process
	testutil.WaitFor(t, "ready", 15*time.Second, func() bool { return p.Status().Ready })
	first := p.Status()

	for _, tc := range []struct {
		name, file, want, line string
	}{
		{"never ready", failFile, "not ready within ready_timeout (1s)", ""},
		{"exits", crashFile, "exited with code 3 before it was ready", "crashing as asked"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.WriteFile(tc.file, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			defer os.Remove(tc.file)
			err := p.Reload(context.Background())
			if !errors.Is(err, supervisor.ErrReloadFailed) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "keeps serving") {
				t.Fatalf("reload: %v", err)
			}
			st := p.Status()
			if st.Pid != first.Pid || st.Slot != first.Slot || !st.Ready || st.Next != nil || st.Reloads != 0 {
				t.Errorf("the old copy must stay current: %+v", st)
			}
			f := st.LastReloadFailure
			if f == nil || !strings.Contains(f.Error, tc.want) {
				t.Fatalf("failure record %+v", f)
			}
			if tc.line != "" && (len(f.LastLines) == 0 || f.LastLines[len(f.LastLines)-1].Text != tc.line) {
				t.Errorf("the new copy's output %+v, want its last line %q", f.LastLines, tc.line)
			}
			if tc.line != "" && (f.Exit == nil || f.Exit.Code != 3) {
				t.Errorf("the new copy's exit %+v", f.Exit)
			}
		})
	}
	if _, serving := p.Serving(first.Slot); !serving {
		t.Error("the old copy does not serve after the failed reloads")
	}
}
