package processman_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"
	"github.com/processman/processman"
	"github.com/processman/processman/gateway/identity"
	"github.com/processman/processman/internal/testutil"
)

// echoSidecar is the test sidecar, answering with what it received.
func echoSidecar(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "echo-sidecar.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

type echo struct {
	Method  string            `json:"method"`
	URL     string            `json:"url"`
	Bytes   int64             `json:"bytes"`
	Headers map[string]string `json:"headers"`
	Secret  string            `json:"secret"`
	Env     map[string]string `json:"env"`
}

// call sends a request through PocketBase and decodes the echo.
func (s *server) call(t *testing.T, method, path, token string, header map[string]string) (*http.Response, echo) {
	t.Helper()
	req, _ := http.NewRequest(method, s.url+path, nil)
	if token != "" {
		req.Header.Set("Authorization", token)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e echo
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == 200 {
		if err := json.Unmarshal(body, &e); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, body)
		}
	}
	return resp, e
}

func gatewayServer(t *testing.T, cfg processman.Config, processes string) *server {
	t.Helper()
	s := startServer(t, cfg, map[string]string{
		"side.mjs":          echoSidecar(t),
		"pb_processes.json": `{"processes": [` + processes + `]}`,
	})
	return s
}

func TestGatewayForwardsWithVerifiedIdentity(t *testing.T) {
	s := gatewayServer(t, processman.Config{}, `{"name": "side", "script": "side.mjs", "route": "/api/side"}`)
	token, user := testutil.AuthToken(t, s.app, "users")
	forged := map[string]string{
		"X-PB-Auth-Id":        "someone-else",
		"x-pb-auth-superuser": "true",
		"X-Pb-Gateway-Proof":  "00",
	}
	resp, got := s.call(t, http.MethodPost, "/api/side/run/step?stream=1&x=%2F", token, forged)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if got.URL != "/run/step?stream=1&x=%2F" || got.Method != "POST" {
		t.Errorf("sidecar got %s %s, want POST /run/step?stream=1&x=%%2F", got.Method, got.URL)
	}
	h := got.Headers
	if h["x-pb-auth-id"] != user.Id || h["x-pb-auth-collection"] != "users" || h["x-pb-auth-superuser"] != "false" {
		t.Errorf("identity headers %v, want the user %s of users", h, user.Id)
	}
	if h["authorization"] != token {
		t.Error("the caller's token was not forwarded")
	}
	if h["x-forwarded-prefix"] != "/api/side" {
		t.Errorf("X-Forwarded-Prefix = %q", h["x-forwarded-prefix"])
	}
	// the sidecar can verify the proof with the secret it was given
	hdr := http.Header{}
	for k, v := range h {
		hdr.Set(k, v)
	}
	id, err := identity.Verify(hdr, got.Secret, time.Now(), "POST", got.URL)
	if err != nil || id.ID != user.Id {
		t.Errorf("proof does not verify: %v %+v", err, id)
	}
	if len(got.Secret) != 64 || got.Env["PB_ROUTE"] != "/api/side" || !strings.HasSuffix(got.Env["PB_SOCKET"], "/side.sock") {
		t.Errorf("routed env: secret %d chars, %v", len(got.Secret), got.Env)
	}
	if st, err := os.Stat(filepath.Dir(got.Env["PB_SOCKET"])); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("socket directory not private: %v %v", err, st.Mode())
	}
	// the bare prefix reaches "/"
	if _, got := s.call(t, http.MethodGet, "/api/side", token, nil); got.URL != "/" {
		t.Errorf("bare prefix forwarded as %q", got.URL)
	}
}

func TestGatewayAuthModes(t *testing.T) {
	s := gatewayServer(t, processman.Config{}, strings.Join([]string{
		`{"name": "pub", "script": "side.mjs", "route": "/api/pub", "auth": "public"}`,
		`{"name": "usr", "script": "side.mjs", "route": "/api/usr"}`,
		`{"name": "sup", "script": "side.mjs", "route": "/api/sup", "auth": "superuser"}`,
		`{"name": "mem", "script": "side.mjs", "route": "/api/mem", "auth": ["members"]}`,
	}, ","))
	userToken, _ := testutil.AuthToken(t, s.app, "users")
	memberToken, _ := testutil.AuthToken(t, s.app, "members")
	superToken, _ := testutil.AuthToken(t, s.app, core.CollectionNameSuperusers)
	callers := map[string]string{"guest": "", "user": userToken, "member": memberToken, "superuser": superToken}
	want := map[string]map[string]int{
		"/api/pub": {"guest": 200, "user": 200, "member": 200, "superuser": 200},
		"/api/usr": {"guest": 401, "user": 200, "member": 200, "superuser": 200},
		"/api/sup": {"guest": 401, "user": 403, "member": 403, "superuser": 200},
		"/api/mem": {"guest": 401, "user": 403, "member": 200, "superuser": 200},
	}
	for route, byCaller := range want {
		for caller, status := range byCaller {
			t.Run(route+" as "+caller, func(t *testing.T) {
				resp, got := s.call(t, http.MethodGet, route+"/x", callers[caller], nil)
				if resp.StatusCode != status {
					t.Fatalf("status %d, want %d", resp.StatusCode, status)
				}
				if status == 200 && caller == "superuser" && got.Headers["x-pb-auth-superuser"] != "true" {
					t.Errorf("superuser flag %q", got.Headers["x-pb-auth-superuser"])
				}
			})
		}
	}
}

func TestGatewayStreamsEventsAsWritten(t *testing.T) {
	s := gatewayServer(t, processman.Config{}, `{"name": "side", "script": "side.mjs", "route": "/api/side", "auth": "public"}`)
	resp, err := http.Get(s.url + "/api/side/sse?n=5&gap=300")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("content type %q", ct)
	}
	var arrivals []time.Time
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "data: ") {
			arrivals = append(arrivals, time.Now())
		}
	}
	if len(arrivals) != 5 {
		t.Fatalf("%d events, want 5", len(arrivals))
	}
	// Written 300 ms apart: buffering would deliver them together.
	for i := 1; i < len(arrivals); i++ {
		if gap := arrivals[i].Sub(arrivals[i-1]); gap < 150*time.Millisecond {
			t.Errorf("event %d arrived %v after the previous one: not streamed", i, gap)
		}
	}
}

func TestGatewayNotReadyAnswers503(t *testing.T) {
	s := startServer(t, processman.Config{GatewayHold: 300 * time.Millisecond}, map[string]string{
		// never listens on its socket
		"pb_processes.json": `{"processes": [{"name": "mute", "script": "sleep", "args": ["300"], "route": "/api/mute", "auth": "public"}]}`,
	})
	resp, err := http.Get(s.url + "/api/mute/x")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Status  int
		Message string
		Data    map[string]string
	}
	_ = json.NewDecoder(resp.Body).Decode(&body)
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("status %d, Retry-After %q; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if body.Status != 503 || body.Data["process"] != "mute" || body.Data["state"] != "online" || !strings.Contains(body.Message, "mute") {
		t.Errorf("body %+v", body)
	}
}

func TestGatewayHoldsRequestsUntilTheProcessListens(t *testing.T) {
	s := gatewayServer(t, processman.Config{}, `{"name": "side", "script": "side.mjs", "route": "/api/side", "auth": "public", "listen": "tcp"}`)
	p := s.process("side")
	if resp, got := s.call(t, "GET", "/api/side/a", "", nil); resp.StatusCode != 200 || got.Env["PORT"] == "" {
		t.Fatalf("before the stop: %d %v", resp.StatusCode, got.Env)
	}
	if err := p.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	type result struct {
		status int
		took   time.Duration
	}
	held := make(chan result, 1)
	go func() {
		start := time.Now()
		resp, _ := s.call(t, "GET", "/api/side/b", "", nil)
		held <- result{resp.StatusCode, time.Since(start)}
	}()
	time.Sleep(700 * time.Millisecond)
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	r := <-held
	if r.status != 200 {
		t.Fatalf("held request: status %d", r.status)
	}
	if r.took < 700*time.Millisecond {
		t.Errorf("answered after %v, before the process was started again", r.took)
	}
}

func TestGatewayStreamsLargeUploads(t *testing.T) {
	s := gatewayServer(t, processman.Config{}, `{"name": "side", "script": "side.mjs", "route": "/api/side", "auth": "public"}`)
	const size = 200 << 20
	var peak atomic.Uint64
	stop := make(chan struct{})
	go func() {
		var m runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
				runtime.ReadMemStats(&m)
				if m.HeapInuse > peak.Load() {
					peak.Store(m.HeapInuse)
				}
			}
		}
	}()
	req, _ := http.NewRequest("POST", s.url+"/api/side/upload", io.LimitReader(zeroReader{}, size))
	req.ContentLength = size
	resp, err := http.DefaultClient.Do(req)
	close(stop)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got echo
	_ = json.NewDecoder(resp.Body).Decode(&got)
	if resp.StatusCode != 200 || got.Bytes != size {
		t.Fatalf("status %d, sidecar got %d bytes, want %d (PocketBase's 32 MB limit must not apply)", resp.StatusCode, got.Bytes, size)
	}
	if p := peak.Load(); p > 100<<20 {
		t.Errorf("heap in use peaked at %d MB while streaming 200 MB: the body was buffered", p>>20)
	}
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func TestGatewayClientDisconnectReachesSidecar(t *testing.T) {
	s := gatewayServer(t, processman.Config{}, `{"name": "side", "script": "side.mjs", "route": "/api/side", "auth": "public"}`)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", s.url+"/api/side/sse?n=1000&gap=50", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(resp.Body)
	if _, err := br.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	if !hasOpenConnection(t) {
		t.Fatal("no connection to the sidecar while streaming: the check cannot see it")
	}
	cancel()
	resp.Body.Close()
	// The sidecar's stream ends early: no connection to it stays open.
	testutil.WaitFor(t, "the sidecar's connection to close", 10*time.Second, func() bool {
		return !hasOpenConnection(t)
	})
}

// hasOpenConnection reports whether the sidecar's socket has a connected
// peer: /proc/net/unix lists accepted connections under the socket's
// path with state 03 (connected); the listener itself is 01.
func hasOpenConnection(t *testing.T) bool {
	t.Helper()
	data, err := os.ReadFile("/proc/net/unix")
	if err != nil {
		t.Skip("needs /proc/net/unix")
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) >= 8 && strings.Contains(f[7], "/processman-") && strings.HasSuffix(f[7], "/side.sock") && f[5] == "03" {
			return true
		}
	}
	return false
}

func TestHealthPathGatesRequests(t *testing.T) {
	s := gatewayServer(t, processman.Config{}, `{"name": "side", "script": "side.mjs", "route": "/api/side", "auth": "public",
		"env": {"READY_AFTER_MS": "1500"}, "health": {"http": "/health"}}`)
	p := s.process("side")
	start := time.Now()
	resp, _ := s.call(t, "GET", "/api/side/x", "", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	// The socket accepts at once, but /health answers 503 for 1.5 s: the
	// request must have waited for it.
	if took := time.Since(start); took < time.Second {
		t.Errorf("answered after %v, before /health said ready", took)
	}
	if st := p.Status(); !st.Ready {
		t.Errorf("not ready after a successful call: %+v", st)
	}
}

func TestGatewayRequestRecords(t *testing.T) {
	s := gatewayServer(t, processman.Config{GatewayHold: 200 * time.Millisecond}, strings.Join([]string{
		`{"name": "side", "script": "side.mjs", "route": "/api/side", "auth": "public"}`,
		`{"name": "quiet", "script": "side.mjs", "route": "/api/quiet", "auth": "public", "log_requests": "errors"}`,
		`{"name": "mute", "script": "sleep", "args": ["300"], "route": "/api/mute", "auth": "public"}`,
	}, ","))
	for _, name := range []string{"side", "quiet"} {
		p := s.process(name)
		testutil.WaitFor(t, name+" ready", 15*time.Second, func() bool { return p.Status().Ready })
	}
	for _, path := range []string{"/api/side/logged?a=1", "/api/quiet/not-logged", "/api/mute/x"} {
		resp, _ := s.call(t, "GET", path, "", nil)
		_ = resp
	}
	find := func(message string) []*core.Log {
		var logs []*core.Log
		_ = s.app.LogQuery().AndWhere(dbx.HashExp{"message": message}).All(&logs)
		return logs
	}
	var ok []*core.Log
	testutil.WaitFor(t, "the request record", 30*time.Second, func() bool { ok = find("GET /api/side/logged?a=1"); return len(ok) > 0 })
	if len(ok) != 1 || ok[0].Data["process"] != "side" || fmt.Sprint(ok[0].Data["status"]) != "200" || ok[0].Data["type"] != "gateway" {
		t.Errorf("records: %d, first %v", len(ok), ok[0].Data)
	}
	var failed []*core.Log
	testutil.WaitFor(t, "the 503 record", 30*time.Second, func() bool { failed = find("GET /api/mute/x"); return len(failed) > 0 })
	if fmt.Sprint(failed[0].Data["status"]) != "503" || failed[0].Data["error"] == nil {
		t.Errorf("503 record %v", failed[0].Data)
	}
	if n := len(find("GET /api/quiet/not-logged")); n != 0 {
		t.Errorf("a successful call on an errors-only route was logged %d times", n)
	}
	// PocketBase's own activity log does not record gateway calls
	var activity []*core.Log
	_ = s.app.LogQuery().AndWhere(dbx.NewExp("json_extract(data, '$.url') = {:u}", dbx.Params{"u": "/api/side/logged?a=1"})).All(&activity)
	if len(activity) != 0 {
		t.Errorf("PocketBase's activity log recorded the gateway call: %v", activity[0].Data)
	}
}

func TestSidecarClientFromGoCode(t *testing.T) {
	s := gatewayServer(t, processman.Config{}, `{"name": "side", "script": "side.mjs", "route": "/api/side", "auth": "superuser"}`)
	client, err := processman.Sidecar(s.app, "side")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Post("http://side/summarize?x=1", "text/plain", strings.NewReader("hello"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got echo
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if got.URL != "/summarize?x=1" || got.Bytes != 5 || got.Headers["x-pb-auth-superuser"] != "true" {
		t.Errorf("sidecar got %+v", got)
	}
	hdr := http.Header{}
	for k, v := range got.Headers {
		hdr.Set(k, v)
	}
	if _, err := identity.Verify(hdr, got.Secret, time.Now(), "POST", got.URL); err != nil {
		t.Errorf("a call from Go is not signed: %v", err)
	}
	if _, err := processman.Sidecar(s.app, "nope"); err == nil {
		t.Error("a client for an unknown process")
	}
}

func TestGatewayBodyLimitAndResponseTimeout(t *testing.T) {
	s := startServer(t, processman.Config{}, map[string]string{
		"side.mjs": echoSidecar(t),
		// answers /slow only after 2 s
		"slow.mjs": "import http from 'node:http';\nhttp.createServer((req, res) => setTimeout(() => res.end('late'), 2000)).listen(process.env.PB_SOCKET);\n",
		"pb_processes.json": `{"processes": [
			{"name": "side", "script": "side.mjs", "route": "/api/side", "auth": "public", "body_limit_mb": 1},
			{"name": "slow", "script": "slow.mjs", "route": "/api/slow", "auth": "public", "response_timeout": "300ms"}]}`,
	})
	for _, name := range []string{"side", "slow"} {
		p := s.process(name)
		testutil.WaitFor(t, name+" ready", 15*time.Second, func() bool { return p.Status().Ready })
	}
	post := func(body io.Reader, size int64) int {
		req, _ := http.NewRequest("POST", s.url+"/api/side/up", body)
		req.ContentLength = size
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := post(io.LimitReader(zeroReader{}, 512<<10), 512<<10); got != 200 {
		t.Errorf("512 KB under a 1 MB limit: %d", got)
	}
	if got := post(io.LimitReader(zeroReader{}, 2<<20), 2<<20); got != 413 {
		t.Errorf("2 MB with Content-Length over a 1 MB limit: %d, want 413", got)
	}
	if got := post(io.NopCloser(io.LimitReader(zeroReader{}, 2<<20)), -1); got != 413 {
		t.Errorf("2 MB chunked over a 1 MB limit: %d, want 413", got)
	}
	start := time.Now()
	resp, err := http.Get(s.url + "/api/slow/x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 504 || time.Since(start) > 1500*time.Millisecond {
		t.Errorf("slow sidecar: %d after %v, want 504 after about 300ms", resp.StatusCode, time.Since(start))
	}
}
