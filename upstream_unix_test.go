//go:build unix

package processman_test

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pocketbase/pocketbase/core"
	"github.com/processman/processman"
	"github.com/processman/processman/gateway/identity"
	"github.com/processman/processman/internal/testutil"
	"github.com/processman/processman/supervisor"
)

// outsideSidecar starts the echo sidecar as a service processman does not
// start, listening on listen (a port, or a socket path) and verifying
// the gateway with secret. stop kills it.
func outsideSidecar(t *testing.T, dir, listen, secret string) (stop func()) {
	t.Helper()
	script := filepath.Join(dir, "outside.mjs")
	if err := os.WriteFile(script, []byte(echoSidecar(t)), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("node", script)
	cmd.Env = append(os.Environ(), "PB_GATEWAY_SECRET="+secret)
	if strings.HasPrefix(listen, "/") {
		_ = os.Remove(listen) // left by a killed run
		cmd.Env = append(cmd.Env, "PB_SOCKET="+listen)
	} else {
		cmd.Env = append(cmd.Env, "PORT="+listen)
	}
	out, _ := cmd.StdoutPipe()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan bool, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		ready <- strings.TrimSpace(line) == "ready"
	}()
	select {
	case ok := <-ready:
		if !ok {
			t.Fatal("the outside sidecar did not start")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the outside sidecar did not start within 20 s")
	}
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			_ = cmd.Wait()
		}
	}
	t.Cleanup(stop)
	return stop
}

// An upstream route forwards to a service processman does not start, with
// the route's auth, identities signed with the shared secret, streaming,
// health gating and request records, and never shows the secret.
func TestUpstreamRouteToAServiceElsewhere(t *testing.T) {
	secret, _ := identity.NewSecret()
	for _, tc := range []struct{ name, listen string }{{"tcp", ""}, {"unix", "socket"}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			listen, upstream := "", ""
			if tc.listen == "socket" {
				listen = filepath.Join(dir, "agent.sock")
				upstream = "unix:" + listen
			} else {
				addr := testutil.FreeAddr(t)
				listen = addr[strings.LastIndex(addr, ":")+1:]
				upstream = "http://" + addr
			}
			stop := outsideSidecar(t, dir, listen, secret)
			s := startServer(t, processman.Config{Quiet: true, GatewayHold: 300 * time.Millisecond}, map[string]string{
				".env": "AGENT_SECRET=" + secret + "\n",
				"pb_processes.json": `{"processes": [{"name": "agent", "upstream": "` + upstream + `", "route": "/api/agent",
					"gateway_secret_env": "AGENT_SECRET", "env_file": ".env", "health": {"http": "/health", "interval": "200ms"}}]}`,
			})
			if processman.Manager(s.app).Get("agent") != nil {
				t.Error("an upstream route has a supervised process")
			}
			token, user := testutil.AuthToken(t, s.app, "users")
			var e echo
			testutil.WaitFor(t, "the upstream to be reachable", 20*time.Second, func() bool {
				resp, got := s.call(t, "GET", "/api/agent/notes?x=1", token, nil)
				e = got
				return resp.StatusCode == 200
			})
			if e.URL != "/notes?x=1" {
				t.Errorf("the service got %s, want the path below the route", e.URL)
			}
			h := http.Header{}
			for k, v := range e.Headers {
				h.Set(k, v)
			}
			id, err := identity.Verify(h, secret, time.Now(), "GET", "/notes?x=1")
			if err != nil || id.ID != user.Id || id.Collection != "users" {
				t.Errorf("identity %+v, %v; want %s of users, signed with the shared secret", id, err, user.Id)
			}
			if resp, _ := s.call(t, "GET", "/api/agent/notes", "", nil); resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("a guest got %d, want 401 (auth user)", resp.StatusCode)
			}

			// streaming: the events arrive as they are written
			req, _ := http.NewRequest("GET", s.url+"/api/agent/sse?n=3&gap=300", nil)
			req.Header.Set("Authorization", token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			reader := bufio.NewReader(resp.Body)
			var arrived []time.Time
			for len(arrived) < 3 {
				line, err := reader.ReadString('\n')
				if err != nil {
					t.Fatalf("stream: %v after %d events", err, len(arrived))
				}
				if strings.HasPrefix(line, "data: ") {
					arrived = append(arrived, time.Now())
				}
			}
			resp.Body.Close()
			if spread := arrived[2].Sub(arrived[0]); spread < 400*time.Millisecond {
				t.Errorf("3 events written 300 ms apart arrived within %v: buffered", spread)
			}

			// health gating: the service goes away, the route answers 503 until it is back
			stop()
			testutil.WaitFor(t, "503 while the upstream is unreachable", 10*time.Second, func() bool {
				resp, _ := s.call(t, "GET", "/api/agent/x", token, nil)
				return resp.StatusCode == http.StatusServiceUnavailable
			})
			outsideSidecar(t, dir, listen, secret)
			testutil.WaitFor(t, "200 once the upstream is back", 20*time.Second, func() bool {
				resp, _ := s.call(t, "GET", "/api/agent/x", token, nil)
				return resp.StatusCode == 200
			})

			// request records, lifecycle records, and no secret anywhere
			var logs []*core.Log
			testutil.WaitFor(t, "the route's request records", 30*time.Second, func() bool {
				logs = nil
				_ = s.app.LogQuery().All(&logs) // filtered here: data is JSON on PostgreSQL, text on SQLite
				requests, unreachable := 0, 0
				for _, l := range logs {
					if l.Data["process"] == "agent" && l.Data["status"] != nil {
						requests++
					}
					if l.Message == "processman: upstream unreachable" {
						unreachable++
					}
				}
				return requests >= 3 && unreachable >= 1
			})
			for _, l := range logs {
				if strings.Contains(fmt.Sprint(l.Data), secret) || strings.Contains(l.Message, secret) {
					t.Errorf("the secret is in a log record: %s %v", l.Message, l.Data)
				}
			}
		})
	}
}

// A missing or short secret errors the entry, naming the variable; the
// other processes start.
func TestUpstreamRouteNeedsItsSecret(t *testing.T) {
	s := startServer(t, processman.Config{Quiet: true}, map[string]string{
		"pb_processes.json": `{"processes": [
			{"name": "nosecret", "upstream": "http://127.0.0.1:9", "route": "/api/a", "gateway_secret_env": "MISSING_SECRET_VAR"},
			{"name": "short", "upstream": "http://127.0.0.1:9", "route": "/api/b", "gateway_secret_env": "SHORT", "env": {"SHORT": "abc"}},
			{"name": "ok", "script": "sleep", "args": ["300"]}]}`,
	})
	for name, want := range map[string]string{
		"nosecret": "MISSING_SECRET_VAR is not set in env, env_file or PocketBase's environment",
		"short":    "SHORT has 3 characters, fewer than 32",
	} {
		st := waitState(t, s.process(name), supervisor.Errored)
		if !strings.Contains(st.Error, want) || !strings.Contains(st.Error, "/route") {
			t.Errorf("%s: error %q, want %q", name, st.Error, want)
		}
	}
	waitState(t, s.process("ok"), supervisor.Online)
	if resp, _ := s.call(t, "GET", "/api/a/x", "", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("an unmounted upstream route answered %d", resp.StatusCode)
	}
}

// Apply mounts an upstream route while PocketBase serves and unmounts it.
func TestApplyAddsAndRemovesAnUpstreamRoute(t *testing.T) {
	secret, _ := identity.NewSecret()
	dir := t.TempDir()
	addr := testutil.FreeAddr(t)
	outsideSidecar(t, dir, addr[strings.LastIndex(addr, ":")+1:], secret)
	plain := `{"name": "idle", "script": "sleep", "args": ["300"]}`
	s := startServer(t, processman.Config{Quiet: true}, map[string]string{"pb_processes.json": `{"processes": [` + plain + `]}`})
	token, _ := testutil.AuthToken(t, s.app, "users")
	write := func(entries string) processman.ApplyResult {
		t.Helper()
		if err := os.WriteFile(filepath.Join(s.dir, "pb_processes.json"), []byte(`{"processes": [`+entries+`]}`), 0o644); err != nil {
			t.Fatal(err)
		}
		result, err := processman.Apply(t.Context(), s.app)
		if err != nil {
			t.Fatalf("apply: %v %+v", err, result)
		}
		return result
	}
	result := write(plain + `, {"name": "agent", "upstream": "http://` + addr + `", "route": "/api/agent", "gateway_secret_env": "S", "env": {"S": "` + secret + `"}}`)
	if c := result.Changes[len(result.Changes)-1]; c.Process != "agent" || c.Action != processman.ApplyAdded {
		t.Errorf("changes %+v", result.Changes)
	}
	testutil.WaitFor(t, "the added upstream route", 20*time.Second, func() bool {
		resp, _ := s.call(t, "GET", "/api/agent/x", token, nil)
		return resp.StatusCode == 200
	})
	result = write(plain)
	if c := result.Changes[0]; c.Process != "agent" || c.Action != processman.ApplyRemoved {
		t.Errorf("changes %+v", result.Changes)
	}
	if resp, _ := s.call(t, "GET", "/api/agent/x", token, nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("the removed route answered %d", resp.StatusCode)
	}
}
