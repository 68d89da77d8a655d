package health_test

import (
	"context"
	"os"
	"path/filepath"
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
	target  gateway.Target
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
		c.target = gateway.Target{Network: "unix", Address: filepath.Join(sockDir, "s.sock")}
		inject["PB_SOCKET"], inject["PB_GATEWAY_SECRET"] = c.target.Address, secret
	}
	cfg.Cwd = dir
	out, err := logs.NewOutput(logs.Options{Process: cfg.Name, RingLines: 200})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = out.Close() })
	c.process = supervisor.New(cfg, supervisor.Options{
		Resolve:        func(p config.Process) (*launch.Command, error) { return launch.Resolve(p, os.Environ(), inject) },
		Spawner:        manager.Spawner(),
		Output:         out,
		BeforeStart:    c.target.Prepare,
		CheckReadiness: true,
	})
	if err := manager.Add(c.process); err != nil {
		t.Fatal(err)
	}
	check := &health.Check{Process: c.process, Output: out, Target: c.target, Config: cfg.Health}
	if routed {
		check.Secret = secret
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
	if _, err := os.Stat(c.target.Address); err != nil {
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
