package processman_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/processman/processman"
	"github.com/processman/processman/internal/testutil"
	"github.com/processman/processman/supervisor"
)

// instances returns every instance of name, each online and ready.
func (s *server) instances(name string, n int) []*supervisor.Process {
	s.t.Helper()
	procs := processman.Manager(s.app).Instances(name)
	if len(procs) != n {
		s.t.Fatalf("%d instances of %q, want %d", len(procs), name, n)
	}
	for _, p := range procs {
		testutil.WaitFor(s.t, p.Ref()+" ready", 20*time.Second, func() bool { return p.Status().Ready })
	}
	return procs
}

// echoPid sends GET path and returns the pid of the copy that answered.
func echoPid(t *testing.T, url string) (int, int) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, 0
	}
	defer resp.Body.Close()
	var got struct {
		Pid int `json:"pid"`
	}
	body, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(body, &got)
	return resp.StatusCode, got.Pid
}

// steady is a client calling a route from several goroutines until end:
// the calls, those that did not answer 200, and the slowest.
type steady struct {
	failed, total atomic.Int32
	slowest       atomic.Int64 // nanoseconds
	stop          chan struct{}
	wg            sync.WaitGroup
}

// steadyClient starts n goroutines that GET url, pausing pause between
// calls, until end.
func steadyClient(t *testing.T, url string, n int, pause time.Duration) *steady {
	c := &steady{stop: make(chan struct{})}
	for range n {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			for {
				select {
				case <-c.stop:
					return
				default:
				}
				start := time.Now()
				status, _ := echoPid(t, url)
				took := int64(time.Since(start))
				c.total.Add(1)
				if status != 200 {
					c.failed.Add(1)
				}
				for cur := c.slowest.Load(); took > cur && !c.slowest.CompareAndSwap(cur, took); cur = c.slowest.Load() {
				}
				time.Sleep(pause)
			}
		}()
	}
	return c
}

// end stops the client and waits for its calls.
func (c *steady) end() {
	close(c.stop)
	c.wg.Wait()
}

// Three instances each get their index and socket, and share the route's
// requests; a killed instance loses no request that had not reached it.
func TestInstancesShareTheRoute(t *testing.T) {
	s := gatewayServer(t, processman.Config{Quiet: true},
		`{"name": "side", "script": "side.mjs", "route": "/api/side", "auth": "public", "instances": 3}`)
	procs := s.instances("side", 3)
	sockets := map[string]bool{}
	for i, p := range procs {
		env := map[string]string{}
		for _, kv := range p.Launched().Env {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
		if env["PB_INSTANCE"] != fmt.Sprint(i) || env["NODE_APP_INSTANCE"] != fmt.Sprint(i) {
			t.Errorf("instance %d: PB_INSTANCE %q NODE_APP_INSTANCE %q", i, env["PB_INSTANCE"], env["NODE_APP_INSTANCE"])
		}
		sockets[env["PB_SOCKET"]] = true
	}
	if len(sockets) != 3 {
		t.Errorf("sockets %v: one per instance", sockets)
	}

	served := map[int]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 5 {
				status, pid := echoPid(t, s.url+"/api/side/x")
				mu.Lock()
				served[pid]++
				mu.Unlock()
				if status != 200 {
					t.Errorf("status %d", status)
				}
			}
		}()
	}
	wg.Wait()
	for _, p := range procs {
		if served[p.Status().Pid] < 5 {
			t.Errorf("instance %s answered %d of 60 requests: %v", p.Ref(), served[p.Status().Pid], served)
		}
	}

	// kill instance 1 under a steady client: no request fails
	client := steadyClient(t, s.url+"/api/side/x", 4, 0)
	time.Sleep(200 * time.Millisecond)
	victim := procs[1].Status().Pid
	if proc, err := os.FindProcess(victim); err == nil {
		_ = proc.Kill()
	}
	testutil.WaitFor(t, "instance 1 back", 20*time.Second, func() bool {
		st := procs[1].Status()
		return st.Ready && st.Pid != victim
	})
	time.Sleep(200 * time.Millisecond)
	client.end()
	if client.failed.Load() != 0 {
		t.Errorf("%d of %d requests failed while an instance was killed", client.failed.Load(), client.total.Load())
	}
	if procs[0].Status().Restarts != 0 || procs[2].Status().Restarts != 0 {
		t.Error("the other instances restarted")
	}
}

// A reload under a steady client loses no request, keeps a stream open
// to its end on the old copy, and holds no request long.
func TestReloadUnderLoad(t *testing.T) {
	s := gatewayServer(t, processman.Config{Quiet: true},
		`{"name": "side", "script": "side.mjs", "route": "/api/side", "auth": "public", "instances": 2,
		  "health": {"http": "/health"}, "env": {"READY_AFTER_MS": "700"}}`)
	procs := s.instances("side", 2)
	old := []int{procs[0].Status().Pid, procs[1].Status().Pid}

	// a stream of 20 events 100 ms apart, started before the reload
	streamDone := make(chan string, 1)
	resp, err := http.Get(s.url + "/api/side/sse?n=20&gap=100")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		streamDone <- string(body)
	}()

	client := steadyClient(t, s.url+"/api/side/x", 4, 5*time.Millisecond)
	time.Sleep(200 * time.Millisecond)
	if err := processman.Manager(s.app).Reload(context.Background(), "side"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	client.end()

	for i, p := range procs {
		st := p.Status()
		if st.Pid == old[i] || st.Reloads != 1 || !st.Ready {
			t.Errorf("%s after the reload: %+v", p.Ref(), st)
		}
	}
	if client.failed.Load() != 0 || client.total.Load() < 50 {
		t.Errorf("%d of %d requests failed during the reload", client.failed.Load(), client.total.Load())
	}
	if d := time.Duration(client.slowest.Load()); d > 500*time.Millisecond {
		t.Errorf("a request waited %v during the reload", d)
	}
	select {
	case body := <-streamDone:
		if n := strings.Count(body, "data: "); n != 20 {
			t.Errorf("the stream got %d of its 20 events across the reload", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the stream did not end")
	}
}

// A routed process whose tree goes over max_memory_restart is replaced,
// and the exit says why.
func TestMaxMemoryRestart(t *testing.T) {
	s := startServer(t, processman.Config{Quiet: true, MemoryInterval: 200 * time.Millisecond}, map[string]string{
		"leak.py": `import os, time
held = []
grow = os.path.exists("grow")
print("started", flush=True)
while True:
    if grow and len(held) < 40:
        held.append(bytearray(4 << 20))
    time.sleep(0.05)
`,
		"grow":              "",
		"pb_processes.json": `[{"name": "leak", "script": "leak.py", "max_memory_restart": "64MB", "restart_delay": "50ms"}]`,
	})
	p := s.process("leak")
	first := waitState(t, p, supervisor.Online).Pid
	testutil.WaitFor(t, "a restart at the memory limit", 30*time.Second, func() bool {
		st := p.Status()
		return st.LastExit != nil && st.LastExit.Pid == first
	})
	exit := p.Status().LastExit
	if !exit.Requested || !strings.Contains(exit.Reason, "over max_memory_restart 64MB") || !strings.HasPrefix(exit.Reason, "memory ") {
		t.Errorf("exit %+v", exit)
	}
	os.Remove(filepath.Join(s.dir, "grow")) // the next run stays small
	testutil.WaitFor(t, "online again", 20*time.Second, func() bool { return p.Status().State == supervisor.Online })
	second := p.Status().Pid
	time.Sleep(time.Second)
	if st := p.Status(); st.Pid != second {
		t.Errorf("a run under its limit was replaced: %+v", st.LastExit)
	}
}

// A reload given up answers 409 with the new copy's output through the
// control API, and the old copy keeps serving.
func TestReloadGivenUpThroughTheAPI(t *testing.T) {
	s := gatewayServer(t, processman.Config{Quiet: true},
		`{"name": "side", "script": "side.mjs", "route": "/api/side", "auth": "public", "env": {"CRASH_FILE": "crash"}}`)
	p := s.instances("side", 1)[0]
	first := p.Status().Pid
	if err := os.WriteFile(filepath.Join(s.dir, "crash"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	token, _ := testutil.AuthToken(t, s.app, "_superusers")
	req, _ := http.NewRequest("POST", s.url+"/api/pm/side/reload", nil)
	req.Header.Set("Authorization", token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var answer struct {
		Message string `json:"message"`
		Data    struct {
			ReloadFailure struct {
				Error     string `json:"error"`
				LastLines []struct {
					Text string `json:"text"`
				} `json:"last_lines"`
			} `json:"reload_failure"`
		} `json:"data"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&answer)
	f := answer.Data.ReloadFailure
	if resp.StatusCode != http.StatusConflict || !strings.Contains(answer.Message, "keeps serving") || !strings.Contains(f.Error, "exited with code 3") {
		t.Fatalf("%d %+v", resp.StatusCode, answer)
	}
	if len(f.LastLines) == 0 || f.LastLines[len(f.LastLines)-1].Text != "crashing as asked" {
		t.Errorf("the new copy's output: %+v", f.LastLines)
	}
	if status, pid := echoPid(t, s.url+"/api/side/x"); status != 200 || pid != first {
		t.Errorf("after the failed reload: %d from pid %d, want 200 from %d", status, pid, first)
	}
}

// A file change reloads a routed process: the new copy takes over and
// the old one's exit says why.
func TestWatchReloadsARoutedProcess(t *testing.T) {
	s := startServer(t, processman.Config{Quiet: true}, map[string]string{
		"side.mjs":          echoSidecar(t),
		"src/main.js":       "",
		"pb_processes.json": `[{"name": "side", "script": "side.mjs", "route": "/api/side", "auth": "public", "watch": ["src"]}]`,
	})
	p := s.instances("side", 1)[0]
	first := p.Status().Pid
	if err := os.WriteFile(filepath.Join(s.dir, "src", "main.js"), []byte("//"), 0o644); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "a reload", 20*time.Second, func() bool {
		st := p.Status()
		return st.Reloads == 1 && st.LastExit != nil && st.LastExit.Pid == first
	})
	if reason := p.Status().LastExit.Reason; !strings.HasPrefix(reason, "files changed: ") || !strings.Contains(reason, "main.js") {
		t.Errorf("reason %q", reason)
	}
}
