package processman_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"
	"github.com/processman/processman"
	"github.com/processman/processman/gateway/identity"
	"github.com/processman/processman/internal/testutil"
	"github.com/processman/processman/supervisor"
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
	Method   string            `json:"method"`
	URL      string            `json:"url"`
	Bytes    int64             `json:"bytes"`
	Headers  map[string]string `json:"headers"`
	Trailers map[string]string `json:"trailers"`
	Secret   string            `json:"secret"`
	Env      map[string]string `json:"env"`
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
	if len(got.Secret) != 64 || got.Env["PB_ROUTE"] != "/api/side" || !strings.HasSuffix(got.Env["PB_SOCKET"], "/side.0a.sock") {
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
	// Growth above what earlier tests left: a buffered body adds 200 MB.
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	var peak atomic.Uint64
	peak.Store(base.HeapInuse)
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
	if grew := peak.Load() - base.HeapInuse; grew > 100<<20 {
		t.Errorf("heap in use grew by %d MB (from %d MB) while streaming 200 MB: the body was buffered", grew>>20, base.HeapInuse>>20)
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
		if len(f) >= 8 && strings.Contains(f[7], "/processman-") && strings.HasPrefix(filepath.Base(f[7]), "side.") && f[5] == "03" {
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

// A route that PocketBase's router already has (pb_hooks, Go code) is not
// mounted over it: that would panic when PocketBase builds its router.
// The process is errored instead, and PocketBase serves.
func TestRouteTakenByAnotherHandler(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "pb_processes.json"), []byte(`[
		{"name": "side", "script": "sleep", "args": ["300"], "route": "/api/taken"},
		{"name": "free", "script": "sleep", "args": ["300"]}]`), 0o644); err != nil {
		t.Fatal(err)
	}
	app := testutil.NewApp(t, dir)
	if err := processman.Register(app, nil, processman.Config{Quiet: true}); err != nil {
		t.Fatal(err)
	}
	// bound after the plugin, as pb_hooks' routerAdd is
	app.OnServe().BindFunc(func(e *core.ServeEvent) error {
		e.Router.GET("/api/taken/{path...}", func(e *core.RequestEvent) error { return e.String(200, "mine") })
		return e.Next()
	})
	srv := testutil.Serve(t, app)
	side := processman.Manager(app).Get("side")
	testutil.WaitFor(t, "side errored", 10*time.Second, func() bool { return side.Status().State == supervisor.Errored })
	if st := side.Status(); !strings.Contains(st.Error, `route "/api/taken" is taken`) {
		t.Errorf("error %q", st.Error)
	}
	resp, err := http.Get(srv.URL + "/api/taken/x")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "mine" {
		t.Errorf("the other route answered %d %q", resp.StatusCode, body)
	}
	if st := processman.Manager(app).Get("free").Status(); st.State != supervisor.Online && st.State != supervisor.Starting {
		t.Errorf("free: %s", st.State)
	}
}

// rawCall writes a request as it is on a new connection to PocketBase and
// returns the status line and the rest of the answer.
func rawCall(t *testing.T, url, request string) (string, string) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(conn, request); err != nil {
		t.Fatal(err)
	}
	answer, _ := io.ReadAll(conn)
	status, rest, _ := strings.Cut(string(answer), "\r\n")
	return status, rest
}

// No identity reaches the sidecar through a second Authorization header
// or through trailers; a malformed body is the client's fault.
func TestGatewayRefusesForgedTrailersAndTwoAuthorizations(t *testing.T) {
	s := gatewayServer(t, processman.Config{}, `{"name": "side", "script": "side.mjs", "route": "/api/side", "auth": "public"}`)
	p := s.process("side")
	testutil.WaitFor(t, "ready", 15*time.Second, func() bool { return p.Status().Ready })
	user, _ := testutil.AuthToken(t, s.app, "users")
	admin, _ := testutil.AuthToken(t, s.app, core.CollectionNameSuperusers)
	host := strings.TrimPrefix(s.url, "http://")

	status, rest := rawCall(t, s.url, "GET /api/side/x HTTP/1.1\r\nHost: "+host+"\r\nAuthorization: "+user+"\r\nAuthorization: "+admin+"\r\nConnection: close\r\n\r\n")
	if !strings.Contains(status, " 400 ") || !strings.Contains(rest, "more than one Authorization header") {
		t.Errorf("two Authorization headers: %s\n%s", status, rest)
	}

	for _, declared := range []string{"X-Pb-Auth-Superuser", "X_pb_auth_id", "Authorization"} {
		status, rest = rawCall(t, s.url, "POST /api/side/x HTTP/1.1\r\nHost: "+host+"\r\nTransfer-Encoding: chunked\r\nTrailer: "+declared+"\r\nConnection: close\r\n\r\n"+
			"2\r\nhi\r\n0\r\n"+declared+": true\r\n\r\n")
		if !strings.Contains(status, " 400 ") || !strings.Contains(rest, "declares the trailer") {
			t.Errorf("declared trailer %s: %s\n%s", declared, status, rest)
		}
	}

	// Undeclared trailers of the family are dropped; others pass.
	status, rest = rawCall(t, s.url, "POST /api/side/x HTTP/1.1\r\nHost: "+host+"\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum\r\nConnection: close\r\n\r\n"+
		"2\r\nhi\r\n0\r\nX-Checksum: abc\r\nX-Pb-Auth-Superuser: true\r\nX_pb_auth_id: forged\r\nX-Pb-Gateway-Proof: x\r\nAuthorization: "+admin+"\r\n\r\n")
	if !strings.Contains(status, " 200 ") {
		t.Fatalf("chunked upload with trailers: %s\n%s", status, rest)
	}
	_, body, _ := strings.Cut(rest, "\r\n\r\n")
	var got echo
	if err := json.Unmarshal([]byte(dechunk(body)), &got); err != nil {
		t.Fatalf("%v: %q", err, body)
	}
	if got.Trailers["x-checksum"] != "abc" || len(got.Trailers) != 1 || got.Headers["x-pb-auth-superuser"] != "false" {
		t.Errorf("the sidecar got trailers %v, superuser %q", got.Trailers, got.Headers["x-pb-auth-superuser"])
	}

	status, rest = rawCall(t, s.url, "POST /api/side/x HTTP/1.1\r\nHost: "+host+"\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\nhi\r\n0\r\n\r\n")
	if !strings.Contains(status, " 400 ") || !strings.Contains(rest, "could not be read") {
		t.Errorf("malformed chunks: %s\n%s", status, rest)
	}
}

// dechunk decodes a chunked body, or returns it as it is.
func dechunk(body string) string {
	var out strings.Builder
	for body != "" {
		size, rest, ok := strings.Cut(body, "\r\n")
		n, err := strconv.ParseInt(size, 16, 64)
		if !ok || err != nil {
			return body
		}
		if n == 0 {
			break
		}
		out.WriteString(rest[:n])
		body = rest[n+2:]
	}
	return out.String()
}

// The socket directory is made again when someone removed it: a routed
// process restarts into it instead of crash-looping.
func TestSocketDirectoryIsMadeAgain(t *testing.T) {
	s := gatewayServer(t, processman.Config{Quiet: true}, `{"name": "side", "script": "side.mjs", "route": "/api/side", "auth": "public", "restart_delay": "50ms"}`)
	p := s.process("side")
	testutil.WaitFor(t, "ready", 15*time.Second, func() bool { return p.Status().Ready })
	var socket string
	for _, kv := range p.Launched().Env {
		if v, ok := strings.CutPrefix(kv, "PB_SOCKET="); ok {
			socket = v
		}
	}
	if err := os.RemoveAll(filepath.Dir(socket)); err != nil {
		t.Fatal(err)
	}
	first := p.Status().Pid
	if proc, err := os.FindProcess(first); err != nil || proc.Kill() != nil {
		t.Fatal("cannot kill the process", err)
	}
	testutil.WaitFor(t, "a new run, ready", 15*time.Second, func() bool {
		st := p.Status()
		return st.Pid != first && st.Ready
	})
	if resp, _ := s.call(t, "GET", "/api/side/x", "", nil); resp.StatusCode != 200 {
		t.Errorf("status %d after the directory came back", resp.StatusCode)
	}
	if st := p.Status(); st.Restarts != 1 {
		t.Errorf("%d restarts, want 1", st.Restarts)
	}
	if info, err := os.Stat(filepath.Dir(socket)); err != nil || info.Mode().Perm() != 0o700 {
		t.Errorf("socket directory: %v %v", info, err)
	}
}
