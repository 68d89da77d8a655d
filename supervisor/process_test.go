package supervisor

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/processman/processman/config"
	"github.com/processman/processman/internal/testutil"
	"github.com/processman/processman/launch"
	"github.com/processman/processman/logs"
)

// harness runs processes under a real Manager and Spawner.
type harness struct {
	t       *testing.T
	manager *Manager
	dir     string
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	h := &harness{t: t, manager: NewManager(), dir: t.TempDir()}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := h.manager.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return h
}

// add supervises cfg; Cwd defaults to the harness's directory.
func (h *harness) add(cfg config.Process) *Process {
	h.t.Helper()
	return h.addInstances(cfg)[0]
}

// addInstances supervises every instance of cfg, sharing one output;
// each child gets PB_INSTANCE.
func (h *harness) addInstances(cfg config.Process) []*Process {
	h.t.Helper()
	if cfg.Cwd == "" {
		cfg.Cwd = h.dir
	}
	out, err := logs.NewOutput(logs.Options{Process: cfg.Name, Instances: cfg.Instances, RingLines: 500})
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { _ = out.Close() })
	var procs []*Process
	for i := range max(cfg.Instances, 1) {
		p := New(cfg, Options{
			Instance: i,
			Resolve: func(c config.Process, _ int) (*launch.Command, error) {
				return launch.Resolve(c, os.Environ(), map[string]string{"PB_PROCESS_NAME": c.Name, "PB_INSTANCE": strconv.Itoa(i), "PYTHONUNBUFFERED": "1"})
			},
			Spawner: h.manager.Spawner(),
			Output:  out,
		})
		if err := h.manager.Add(p); err != nil {
			h.t.Fatal(err)
		}
		procs = append(procs, p)
	}
	return procs
}

// script writes an executable file in the harness's directory.
func (h *harness) script(name, body string) string {
	h.t.Helper()
	path := filepath.Join(h.dir, name)
	if err := os.WriteFile(path, []byte(body), 0o755); err != nil {
		h.t.Fatal(err)
	}
	return path
}

func waitState(t *testing.T, p *Process, want State, timeout time.Duration) Status {
	t.Helper()
	var st Status
	testutil.WaitFor(t, fmt.Sprintf("%s to be %s", p.cfg.Name, want), timeout, func() bool {
		st = p.Status()
		return st.State == want
	})
	return st
}

// waitExited waits for the first exit of p to be recorded.
func waitExited(t *testing.T, p *Process, timeout time.Duration) Status {
	t.Helper()
	var st Status
	testutil.WaitFor(t, p.cfg.Name+" to exit", timeout, func() bool {
		st = p.Status()
		return st.LastExit != nil && !st.State.Running()
	})
	return st
}

// pidsWithMarker lists live processes whose environment holds marker.
func pidsWithMarker(t *testing.T, marker string) []int {
	return testutil.PidsWithEnv(t, "TEST_MARKER", marker)
}

func TestRestartWithBackoffThenErrored(t *testing.T) {
	h := newHarness(t)
	starts := filepath.Join(h.dir, "starts")
	h.script("crash.sh", fmt.Sprintf("#!/bin/sh\ndate +%%s%%N >> %s\necho \"boom $$\"\necho 'fatal: config missing' >&2\nexit 3\n", starts))
	p := h.add(config.Process{
		Name: "crasher", Script: "crash.sh",
		RestartDelay:    config.Duration(100 * time.Millisecond),
		BackoffFactor:   2,
		MaxRestarts:     3,
		MinUptime:       config.Duration(10 * time.Second),
		MaxRestartDelay: config.Duration(10 * time.Second),
	})
	st := waitState(t, p, Errored, 20*time.Second)

	if st.Restarts != 3 {
		t.Errorf("restarts = %d, want 3", st.Restarts)
	}
	if !strings.Contains(st.Error, "max_restarts 3") {
		t.Errorf("error %q does not explain the errored state", st.Error)
	}
	crash := st.LastCrash
	if crash == nil || crash.Code != 3 || crash.Signal != "" || crash.Requested {
		t.Fatalf("crash record = %+v, want exit code 3", crash)
	}
	var texts []string
	for _, l := range crash.LastLines {
		texts = append(texts, l.Stream+":"+l.Text)
	}
	want := []string{fmt.Sprintf("stdout:boom %d", crash.Pid), "stderr:fatal: config missing"}
	if len(texts) != 2 || !containsAll(texts, want) {
		t.Errorf("crash lines = %q, want %q (this run's lines only)", texts, want)
	}

	data, _ := os.ReadFile(starts)
	fields := strings.Fields(string(data))
	if len(fields) != 4 {
		t.Fatalf("%d starts, want 4 (1 + max_restarts)", len(fields))
	}
	var gaps []time.Duration
	for i := 1; i < len(fields); i++ {
		a, _ := strconv.ParseInt(fields[i-1], 10, 64)
		b, _ := strconv.ParseInt(fields[i], 10, 64)
		gaps = append(gaps, time.Duration(b-a))
	}
	// Delays are 100, 200 and 400 ms: each gap must be at least its delay
	// and the gaps must grow.
	for i, min := range []time.Duration{100, 200, 400} {
		if gaps[i] < min*time.Millisecond {
			t.Errorf("gap %d = %v, want at least %v", i, gaps[i], min*time.Millisecond)
		}
	}
	if !(gaps[0] < gaps[1] && gaps[1] < gaps[2]) {
		t.Errorf("gaps %v do not grow", gaps)
	}

	// errored stays errored, and a manual start runs it again
	time.Sleep(300 * time.Millisecond)
	if got := p.Status().State; got != Errored {
		t.Fatalf("state %s after errored, want errored", got)
	}
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "a fifth start", 5*time.Second, func() bool {
		data, _ := os.ReadFile(starts)
		return len(strings.Fields(string(data))) >= 5
	})
}

func containsAll(have, want []string) bool {
	for _, w := range want {
		found := false
		for _, h := range have {
			found = found || h == w
		}
		if !found {
			return false
		}
	}
	return true
}

func TestCrashRecordKeepsLast50Lines(t *testing.T) {
	h := newHarness(t)
	// stdout and stderr are two pipes, so their relative order is not
	// kept; this test writes one stream only.
	h.script("app.py", "import sys\nfor i in range(80):\n    print(f'line {i}')\nsys.exit(4)\n")
	p := h.add(config.Process{Name: "py", Script: "app.py", Restart: config.RestartNever})
	st := waitExited(t, p, 15*time.Second)
	if st.State != Stopped {
		t.Errorf("state %s, want stopped (restart never)", st.State)
	}
	crash := st.LastCrash
	if crash == nil {
		t.Fatal("no crash record")
	}
	if crash.Code != 4 {
		t.Errorf("code = %d, want 4", crash.Code)
	}
	if len(crash.LastLines) != CrashLines {
		t.Fatalf("%d lines, want %d", len(crash.LastLines), CrashLines)
	}
	if first, last := crash.LastLines[0].Text, crash.LastLines[CrashLines-1].Text; first != "line 30" || last != "line 79" {
		t.Errorf("kept lines %q to %q, want 'line 30' to 'line 79'", first, last)
	}
}

func TestGracefulStop(t *testing.T) {
	h := newHarness(t)
	h.script("app.py", `import signal, sys, time
def bye(*_):
    print("graceful shutdown")
    sys.exit(0)
signal.signal(signal.SIGTERM, bye)
print("ready")
while True:
    time.sleep(0.05)
`)
	p := h.add(config.Process{Name: "py", Script: "app.py"})
	testutil.WaitFor(t, "ready line", 15*time.Second, func() bool { return hasLine(p, "ready") })
	if err := p.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	st := p.Status()
	if st.State != Stopped || st.Pid != 0 {
		t.Fatalf("after stop: %+v", st)
	}
	if st.LastExit == nil || !st.LastExit.Requested || st.LastExit.Code != 0 {
		t.Errorf("last exit = %+v, want requested exit 0", st.LastExit)
	}
	if st.LastCrash != nil {
		t.Errorf("a requested stop left a crash record: %+v", st.LastCrash)
	}
	if !hasLine(p, "graceful shutdown") {
		t.Error("the SIGTERM handler did not run")
	}
}

func hasLine(p *Process, text string) bool {
	for _, l := range p.opts.Output.Tail(0) {
		if l.Text == text {
			return true
		}
	}
	return false
}

func TestStopKillsAfterTimeout(t *testing.T) {
	tests := []struct {
		name   string
		script string
	}{
		{"leader ignores SIGTERM", "#!/bin/sh\ntrap '' TERM\necho up\nwhile :; do sleep 0.1; done\n"},
		// "up" comes once the trap is set, so that the stop cannot win the race.
		{"grandchild ignores SIGTERM", "#!/bin/sh\nsh -c \"trap '' TERM; echo up; while :; do sleep 0.1; done\" &\nwait\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			marker := fmt.Sprint(time.Now().UnixNano())
			h.script("stubborn.sh", tt.script)
			p := h.add(config.Process{
				Name: "stubborn", Script: "stubborn.sh",
				KillTimeout: config.Duration(500 * time.Millisecond),
				Env:         map[string]string{"TEST_MARKER": marker},
			})
			testutil.WaitFor(t, "up", 10*time.Second, func() bool { return hasLine(p, "up") })
			pgid := p.Status().Pid
			start := time.Now()
			if err := p.Stop(context.Background()); err != nil {
				t.Fatal(err)
			}
			if took := time.Since(start); took < 500*time.Millisecond {
				t.Errorf("stop took %v, less than kill_timeout: SIGTERM was not ignored?", took)
			}
			if groupAlive(pgid) {
				t.Error("process group still alive after stop")
			}
			if pids := pidsWithMarker(t, marker); len(pids) > 0 {
				t.Errorf("processes left: %v", pids)
			}
		})
	}
}

func TestStopTakesGrandchildren(t *testing.T) {
	h := newHarness(t)
	marker := fmt.Sprint(time.Now().UnixNano())
	// sh → sh → sleep, plus a python grandchild: a tree like npm → node.
	h.script("tree.sh", "#!/bin/sh\nsh -c 'sleep 300 & wait' &\npython3 -c 'import time; time.sleep(300)' &\necho up\nwait\n")
	p := h.add(config.Process{Name: "tree", Script: "tree.sh", Env: map[string]string{"TEST_MARKER": marker}})
	testutil.WaitFor(t, "4 processes in the tree", 15*time.Second, func() bool { return len(pidsWithMarker(t, marker)) == 4 })
	if err := p.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if pids := pidsWithMarker(t, marker); len(pids) > 0 {
		t.Fatalf("processes left after stop: %v", pids)
	}
}

func TestLeaderExitTakesItsGroup(t *testing.T) {
	h := newHarness(t)
	marker := fmt.Sprint(time.Now().UnixNano())
	// The leader crashes and leaves a child behind: a restart must not
	// run beside the orphan of the previous run.
	h.script("leaky.sh", "#!/bin/sh\nsleep 300 &\necho started\nexit 2\n")
	p := h.add(config.Process{Name: "leaky", Script: "leaky.sh", Restart: config.RestartNever,
		KillTimeout: config.Duration(time.Second), Env: map[string]string{"TEST_MARKER": marker}})
	waitExited(t, p, 15*time.Second)
	if pids := pidsWithMarker(t, marker); len(pids) > 0 {
		t.Fatalf("the crashed leader's child survived: %v", pids)
	}
}

func TestConcurrentRequestsNeverRunTwoCopies(t *testing.T) {
	h := newHarness(t)
	marker := fmt.Sprint(time.Now().UnixNano())
	h.script("app.sh", "#!/bin/sh\nexec sleep 300\n")
	p := h.add(config.Process{Name: "one", Script: "app.sh",
		KillTimeout: config.Duration(time.Second), Env: map[string]string{"TEST_MARKER": marker}})
	waitState(t, p, Online, 10*time.Second)

	stop := make(chan struct{})
	maxSeen := 0
	var watcher sync.WaitGroup
	watcher.Add(1)
	go func() {
		defer watcher.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if n := len(pidsWithMarker(t, marker)); n > maxSeen {
				maxSeen = n
			}
		}
	}()

	var wg sync.WaitGroup
	for i := range 24 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			switch i % 4 {
			case 0, 1:
				err = p.Restart(context.Background())
			case 2:
				err = p.Start(context.Background())
			case 3:
				err = p.Stop(context.Background())
			}
			if err != nil {
				t.Errorf("request %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitState(t, p, Online, 10*time.Second)
	time.Sleep(200 * time.Millisecond)
	close(stop)
	watcher.Wait()

	if maxSeen > 1 {
		t.Errorf("saw %d copies running at once", maxSeen)
	}
	if pids := pidsWithMarker(t, marker); len(pids) != 1 || pids[0] != p.Status().Pid {
		t.Errorf("running copies %v, want exactly the supervised pid %d", pids, p.Status().Pid)
	}
}

func TestStartFailureIsErroredAndExplained(t *testing.T) {
	h := newHarness(t)
	p := h.add(config.Process{Name: "ghost", Script: "missing.py"})
	st := waitState(t, p, Errored, 10*time.Second)
	if !strings.Contains(st.Error, filepath.Join(h.dir, "missing.py")) || !strings.Contains(st.Error, "not found") {
		t.Errorf("error %q does not name the missing script", st.Error)
	}
	if err := p.Start(context.Background()); err == nil {
		t.Error("start of a missing script succeeded")
	}
	// once the script exists, a start works: resolution happens per start
	h.script("missing.py", "import time\ntime.sleep(300)\n")
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := p.Status(); st.State != Online || st.Error != "" {
		t.Errorf("after fixing: %+v", st)
	}
}

func TestDisabledProcessDoesNotStart(t *testing.T) {
	h := newHarness(t)
	h.script("app.sh", "#!/bin/sh\nexec sleep 300\n")
	p := h.add(config.Process{Name: "off", Script: "app.sh", Disabled: true})
	time.Sleep(200 * time.Millisecond)
	if st := p.Status(); st.State != Stopped || st.Pid != 0 {
		t.Fatalf("disabled process: %+v", st)
	}
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitState(t, p, Online, 10*time.Second)
}

func TestConfigErrorMarksErrored(t *testing.T) {
	h := newHarness(t)
	out, _ := logs.NewOutput(logs.Options{Process: "bad"})
	p := New(config.Process{Name: "bad", Script: "x", Cwd: h.dir}, Options{
		Resolve:     func(c config.Process, _ int) (*launch.Command, error) { return launch.Resolve(c, os.Environ(), nil) },
		Spawner:     h.manager.Spawner(),
		Output:      out,
		ConfigError: "invalid config: /processes/0/restart: invalid value",
	})
	if err := h.manager.Add(p); err != nil {
		t.Fatal(err)
	}
	st := waitState(t, p, Errored, 5*time.Second)
	if !strings.Contains(st.Error, "/processes/0/restart") {
		t.Errorf("error = %q", st.Error)
	}
	if err := p.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "invalid config") {
		t.Errorf("start of an invalid process: %v", err)
	}
}

func TestWatchdogIsReplacedWhenKilled(t *testing.T) {
	h := newHarness(t)
	h.script("app.sh", "#!/bin/sh\nexec sleep 300\n")
	a := h.add(config.Process{Name: "a", Script: "app.sh"})
	waitState(t, a, Online, 10*time.Second)
	first := h.manager.Spawner().WatchdogPid()
	if first == 0 {
		t.Fatal("no watchdog after a start")
	}
	proc, _ := os.FindProcess(first)
	_ = proc.Kill()
	testutil.WaitFor(t, "watchdog to die", 5*time.Second, func() bool { return !groupAlive(first) })

	b := h.add(config.Process{Name: "b", Script: "app.sh"})
	waitState(t, b, Online, 10*time.Second)
	second := h.manager.Spawner().WatchdogPid()
	if second == 0 || second == first {
		t.Fatalf("watchdog not replaced: first %d, now %d", first, second)
	}
}

// A killed watchdog is replaced at once, without waiting for the next
// start, and the new one knows every live group: when it goes (as when
// PocketBase dies), it takes them with it.
func TestWatchdogIsSupervised(t *testing.T) {
	h := newHarness(t)
	h.script("app.sh", "#!/bin/sh\nsleep 300 &\nexec sleep 300\n")
	a := h.add(config.Process{Name: "a", Script: "app.sh"})
	pid := waitState(t, a, Online, 10*time.Second).Pid
	spawner := h.manager.Spawner()
	first := spawner.WatchdogPid()
	proc, _ := os.FindProcess(first)
	_ = proc.Kill()
	testutil.WaitFor(t, "a new watchdog", 5*time.Second, func() bool {
		w := spawner.WatchdogPid()
		return w != 0 && w != first && testutil.Alive(w)
	})
	if n := spawner.WatchdogRestarts(); n != 1 {
		t.Errorf("restarts %d, want 1", n)
	}
	// The new watchdog's input closes, as when PocketBase is killed: the
	// group it learned goes.
	second := spawner.WatchdogPid()
	_ = spawner.Close()
	testutil.WaitFor(t, "the child to be stopped by the new watchdog", 10*time.Second, func() bool { return !groupAlive(pid) })
	testutil.WaitFor(t, "the new watchdog to exit", 10*time.Second, func() bool { return !testutil.Alive(second) })
}
