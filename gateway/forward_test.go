package gateway

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/processman/processman/gateway/identity"
)

const testSecret = "0123456789abcdef"

var testCaller = identity.Identity{ID: "u1", Collection: "users"}

// socketPath is a short Unix socket path in a fresh directory.
func socketPath(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "gw")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "s.sock")
}

// upstreamServer is a real net/http server on a Unix socket, counting the
// connections it accepts.
type upstreamServer struct {
	path   string
	conns  atomic.Int32 // accepted
	closed atomic.Int32
}

func startUpstream(t testing.TB, h http.Handler) *upstreamServer {
	t.Helper()
	u := &upstreamServer{path: socketPath(t)}
	l, err := net.Listen("unix", u.path)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ConnState: func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			u.conns.Add(1)
		case http.StateClosed, http.StateHijacked:
			u.closed.Add(1)
		}
	}}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return u
}

// gatewayFront serves p the way Handle does, minus PocketBase: every
// request as testCaller. failures receives what Handle would record.
type gatewayFront struct {
	*httptest.Server
	proxy    *Proxy
	mu       sync.Mutex
	failures []error
}

func startFront(t *testing.T, socket string, configure func(*Proxy)) *gatewayFront {
	t.Helper()
	p := &Proxy{Process: "side", Route: "/api/side", Backends: []Backend{{Target: Target{Network: "unix", Address: socket}}},
		Secret: testSecret, Hold: 2 * time.Second}
	if configure != nil {
		configure(p)
	}
	p.Init()
	f := &gatewayFront{proxy: p}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, ready := p.pick()
		if ready {
			defer b.done()
		}
		failure := p.serve(w, r, b, testCaller)
		f.mu.Lock()
		f.failures = append(f.failures, failure)
		f.mu.Unlock()
	}))
	t.Cleanup(func() {
		f.Close()
		p.closeIdle()
	})
	return f
}

func mustDo(t *testing.T, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

func get(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	return mustDo(t, req)
}

func TestForwardRequestHead(t *testing.T) {
	got := make(chan *http.Request, 1)
	up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r
		w.Header().Set("Connection", "X-Hop")
		w.Header().Set("X-Hop", "1")
		w.Header().Set("Keep-Alive", "timeout=5")
		w.Header().Set("X-Kept", "yes")
	}))
	f := startFront(t, up.path, nil)

	req, _ := http.NewRequest("POST", f.URL+"/api/side/run/a%2Fb?q=1&bad=%zz", strings.NewReader("hi"))
	req.Header.Set("Connection", "keep-alive, X-Private")
	req.Header.Set("X-Private", "hop")
	req.Header.Set("Proxy-Authorization", "secret")
	req.Header.Set("X-PB-Auth-Id", "forged")
	req.Header["X_PB_Auth_Superuser"] = []string{"true"}
	req.Header.Set("X-Forwarded-For", "6.6.6.6")
	req.Header.Set("X-Forwarded-Prefix", "/forged")
	req.Header.Set("Authorization", "token")
	req.Header.Set("Te", "trailers")
	req.Header.Add("X-Multi", "a")
	req.Header.Add("X-Multi", "b")
	req.Header.Set("User-Agent", "test-agent")
	resp, _ := mustDo(t, req)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	for _, h := range []string{"X-Hop", "Keep-Alive"} {
		if resp.Header.Get(h) != "" {
			t.Errorf("hop-by-hop answer header %s reached the client", h)
		}
	}
	if resp.Header.Get("X-Kept") != "yes" {
		t.Error("end-to-end answer header lost")
	}

	r := <-got
	wantURI := "/run/a%2Fb?q=1" // the unparsable parameter is dropped, as ReverseProxy does
	if r.RequestURI != wantURI {
		t.Errorf("request target %q, want %q", r.RequestURI, wantURI)
	}
	if id, err := identity.Verify(r.Header, testSecret, time.Now(), r.Method, r.RequestURI); err != nil || id != testCaller {
		t.Errorf("identity %+v, %v; want %+v", id, err, testCaller)
	}
	checks := map[string]string{
		"X-Private":           "",
		"Proxy-Authorization": "",
		"X-Forwarded-For":     "127.0.0.1",
		"X-Forwarded-Prefix":  "/api/side",
		"X-Forwarded-Proto":   "http",
		"X-Forwarded-Host":    strings.TrimPrefix(f.URL, "http://"),
		"Authorization":       "token",
		"Te":                  "trailers",
		"User-Agent":          "test-agent",
		"X_pb_auth_superuser": "",
	}
	for k, want := range checks {
		if v := strings.Join(r.Header.Values(k), ","); v != want {
			t.Errorf("sidecar header %s = %q, want %q", k, v, want)
		}
	}
	if len(r.Header["X_PB_Auth_Superuser"]) > 0 {
		t.Error("X_PB_ header reached the sidecar")
	}
	if v := r.Header.Values("X-Multi"); len(v) != 2 {
		t.Errorf("repeated header: %v", v)
	}
	if r.Host != strings.TrimPrefix(f.URL, "http://") {
		t.Errorf("Host %q", r.Host)
	}
	if r.ContentLength != 2 {
		t.Errorf("Content-Length %d", r.ContentLength)
	}
}

func TestForwardWithoutUserAgentSendsNone(t *testing.T) {
	got := make(chan *http.Request, 1)
	up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got <- r }))
	f := startFront(t, up.path, nil)
	req, _ := http.NewRequest("GET", f.URL+"/api/side", nil)
	req.Header.Set("User-Agent", "") // Go's client sends none
	mustDo(t, req)
	r := <-got
	if _, ok := r.Header["User-Agent"]; ok || r.RequestURI != "/" {
		t.Errorf("User-Agent %q, target %q", r.Header.Get("User-Agent"), r.RequestURI)
	}
}

func TestForwardReusesConnections(t *testing.T) {
	up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		fmt.Fprint(w, "ok")
	}))
	f := startFront(t, up.path, nil)
	for i := 0; i < 50; i++ {
		var req *http.Request
		switch i % 3 {
		case 0:
			req, _ = http.NewRequest("GET", f.URL+"/api/side/x", nil)
		case 1:
			req, _ = http.NewRequest("POST", f.URL+"/api/side/x", strings.NewReader("body"))
		case 2:
			req, _ = http.NewRequest("HEAD", f.URL+"/api/side/x", nil)
		}
		resp, body := mustDo(t, req)
		if resp.StatusCode != 200 || (req.Method != "HEAD" && body != "ok") {
			t.Fatalf("%s: %d %q", req.Method, resp.StatusCode, body)
		}
	}
	if n := up.conns.Load(); n != 1 {
		t.Errorf("50 sequential requests took %d connections, want 1", n)
	}

	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 20; j++ {
				resp, err := http.Get(f.URL + "/api/side/y")
				if err != nil {
					t.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	if n := up.conns.Load(); n > 9 {
		t.Errorf("8 concurrent clients took %d connections", n)
	}
}

func TestForwardClosesIdleConnections(t *testing.T) {
	up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	f := startFront(t, up.path, nil)
	f.proxy.backends[0].upstream.idleTimeout = 100 * time.Millisecond
	get(t, f.URL+"/api/side")
	deadline := time.Now().Add(3 * time.Second)
	for up.closed.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the idle connection was not closed after the idle timeout")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if resp, _ := get(t, f.URL+"/api/side"); resp.StatusCode != 200 || up.conns.Load() != 2 {
		t.Errorf("after the idle timeout: %d, %d connections", resp.StatusCode, up.conns.Load())
	}
}

// closingUpstream answers each request, or none when answer is false, and
// then closes the connection without saying so (no Connection: close),
// as a sidecar restarting or ending an idle keep-alive does.
func closingUpstream(t *testing.T, answer func(r *http.Request) bool) (path string, requests *atomic.Int32) {
	t.Helper()
	requests = new(atomic.Int32)
	path = rawUpstream(t, func(c net.Conn) {
		r, err := http.ReadRequest(bufio.NewReader(c))
		if err != nil {
			return
		}
		io.Copy(io.Discard, r.Body)
		requests.Add(1)
		if answer(r) {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
		time.Sleep(50 * time.Millisecond) // closed while the gateway keeps it idle
	})
	return path, requests
}

// rawUpstream is a sidecar that speaks raw bytes: serve runs for each
// connection it accepts on a fresh Unix socket, whose path it returns,
// and the connection is closed when serve returns.
func rawUpstream(t *testing.T, serve func(c net.Conn)) string {
	t.Helper()
	path := socketPath(t)
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				serve(c)
			}()
		}
	}()
	return path
}

func TestForwardRetriesAConnectionTheSidecarClosed(t *testing.T) {
	path, requests := closingUpstream(t, func(*http.Request) bool { return true })
	f := startFront(t, path, nil)
	for i, method := range []string{"GET", "GET", "POST", "DELETE", "GET"} {
		time.Sleep(100 * time.Millisecond) // the previous connection is closed by now
		var body io.Reader
		if method == "POST" {
			body = strings.NewReader("payload")
		}
		req, _ := http.NewRequest(method, f.URL+"/api/side/x", body)
		resp, got := mustDo(t, req)
		if resp.StatusCode != 200 || got != "ok" {
			t.Fatalf("request %d (%s) on a connection the sidecar closed: %d %q", i, method, resp.StatusCode, got)
		}
	}
	if n := requests.Load(); n != 5 {
		t.Errorf("the sidecar got %d requests, want 5 (each once)", n)
	}
}

func TestForwardRetriesOnceAndOnlyWhatIsReplayable(t *testing.T) {
	// The first request is answered; later ones are read, then the
	// connection is dropped without an answer.
	var answered atomic.Bool
	path, requests := closingUpstream(t, func(*http.Request) bool { return answered.CompareAndSwap(false, true) })
	f := startFront(t, path, nil)
	get(t, f.URL+"/api/side")

	// A GET on the pooled connection: closed before it is used, so sent
	// again once on a new one, which drops it too: 502.
	time.Sleep(100 * time.Millisecond)
	before := requests.Load()
	if resp, _ := get(t, f.URL+"/api/side"); resp.StatusCode != http.StatusBadGateway {
		t.Errorf("status %d, want 502", resp.StatusCode)
	}
	if n := requests.Load() - before; n != 1 {
		t.Errorf("a dropped GET reached the sidecar %d times, want 1 (the stale connection carried none)", n)
	}

	// A POST dropped after it was read is never sent again.
	before = requests.Load()
	req, _ := http.NewRequest("POST", f.URL+"/api/side", nil)
	if resp, _ := mustDo(t, req); resp.StatusCode != http.StatusBadGateway {
		t.Errorf("status %d, want 502", resp.StatusCode)
	}
	if n := requests.Load() - before; n != 1 {
		t.Errorf("a dropped POST reached the sidecar %d times, want 1", n)
	}
}

// hashUpstream answers with the length and SHA-256 of the request body and
// whether it came chunked.
func hashUpstream(t *testing.T) *upstreamServer {
	return startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, err := io.Copy(h, r.Body)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		fmt.Fprintf(w, "%d %x %v", n, h.Sum(nil), len(r.TransferEncoding) > 0)
	}))
}

// patterned is a reproducible body of n bytes.
func patterned(n int64) io.Reader {
	return io.LimitReader(&patternReader{}, n)
}

type patternReader struct{ i byte }

func (p *patternReader) Read(b []byte) (int, error) {
	for i := range b {
		b[i] = p.i
		p.i = p.i*31 + 7
	}
	return len(b), nil
}

func sum(r io.Reader) string {
	h := sha256.New()
	io.Copy(h, r)
	return hex.EncodeToString(h.Sum(nil))
}

func TestForwardRequestBodies(t *testing.T) {
	up := hashUpstream(t)
	f := startFront(t, up.path, nil)
	for _, tc := range []struct {
		name    string
		size    int64
		chunked bool
	}{
		{"small", 10, false},
		{"small chunked", 10, true},
		{"large", 48 << 20, false},
		{"large chunked", 48 << 20, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader = patterned(tc.size)
			if tc.chunked {
				body = io.NopCloser(body) // no length known: chunked
			}
			req, _ := http.NewRequest("PUT", f.URL+"/api/side/up", body)
			if !tc.chunked {
				req.ContentLength = tc.size
			}
			resp, got := mustDo(t, req)
			want := fmt.Sprintf("%d %s %v", tc.size, sum(patterned(tc.size)), tc.chunked)
			if resp.StatusCode != 200 || got != want {
				t.Errorf("%d %q, want %q", resp.StatusCode, got, want)
			}
		})
	}
}

func TestForwardStreamsAChunkedUploadAsItComes(t *testing.T) {
	first := make(chan string, 1)
	up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		buf := make([]byte, 5)
		io.ReadFull(r.Body, buf)
		first <- string(buf)
		io.Copy(io.Discard, r.Body)
	}))
	f := startFront(t, up.path, nil)
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		req, _ := http.NewRequest("POST", f.URL+"/api/side", pr)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	pw.Write([]byte("hello"))
	select {
	case got := <-first:
		if got != "hello" {
			t.Errorf("got %q", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the first chunk did not reach the sidecar while the upload went on")
	}
	pw.Close()
	<-done
}

func TestForwardLargeAnswer(t *testing.T) {
	const size = 48 << 20
	up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/chunked" {
			w.Header().Set("Content-Type", "application/octet-stream")
		} else {
			w.Header().Set("Content-Length", fmt.Sprint(size))
		}
		io.Copy(w, patterned(size))
	}))
	f := startFront(t, up.path, nil)
	for _, path := range []string{"/length", "/chunked"} {
		resp, err := http.Get(f.URL + "/api/side" + path)
		if err != nil {
			t.Fatal(err)
		}
		got := sum(resp.Body)
		resp.Body.Close()
		if got != sum(patterned(size)) {
			t.Errorf("%s: the answer changed on the way", path)
		}
	}
	if up.conns.Load() != 1 {
		t.Errorf("%d connections, want 1", up.conns.Load())
	}
}

func TestForwardStreamsEventsAsWritten(t *testing.T) {
	next := make(chan struct{})
	up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Content-Length", "") // unknown; a stream
		w.WriteHeader(200)
		w.(http.Flusher).Flush()
		<-next // headers alone first
		for i := 0; i < 3; i++ {
			fmt.Fprintf(w, "data: %d\n\n", i)
			w.(http.Flusher).Flush()
			<-next
		}
	}))
	f := startFront(t, up.path, nil)
	resp, err := http.Get(f.URL + "/api/side/sse")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("Content-Type %q", resp.Header.Get("Content-Type"))
	}
	br := bufio.NewReader(resp.Body)
	for i := 0; i < 3; i++ {
		next <- struct{}{}
		line, err := br.ReadString('\n')
		if err != nil || line != fmt.Sprintf("data: %d\n", i) {
			t.Fatalf("event %d: %q %v", i, line, err)
		}
		br.ReadString('\n')
	}
	close(next)
}

func TestForwardClientDisconnectEndsTheSidecarsRequest(t *testing.T) {
	ended := make(chan struct{})
	up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(ended)
		w.Header().Set("Content-Type", "text/event-stream")
		for {
			if _, err := fmt.Fprint(w, "data: x\n\n"); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}))
	f := startFront(t, up.path, nil)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", f.URL+"/api/side/sse", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	bufio.NewReader(resp.Body).ReadString('\n')
	cancel()
	resp.Body.Close()
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("the sidecar's request went on after the client left")
	}
}

func TestForwardAnswerBeforeTheBodyIsRead(t *testing.T) {
	up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "too much", http.StatusRequestEntityTooLarge) // body unread
	}))
	f := startFront(t, up.path, nil)
	req, _ := http.NewRequest("POST", f.URL+"/api/side", patterned(64<<20))
	req.ContentLength = 64 << 20
	done := make(chan int, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- -1 // the server may close before the client has sent it all
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	select {
	case status := <-done:
		if status != http.StatusRequestEntityTooLarge && status != -1 {
			t.Errorf("status %d, want 413", status)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("hung on an answer that came before the body was read")
	}
}

func TestForwardResponseTimeoutAndBodyLimit(t *testing.T) {
	up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/slow":
			time.Sleep(time.Second)
		case "/stream":
			// a gap longer than the timeout after the head: not cut
			w.WriteHeader(200)
			w.(http.Flusher).Flush()
			time.Sleep(400 * time.Millisecond)
			fmt.Fprint(w, "late")
		default:
			io.Copy(io.Discard, r.Body)
		}
	}))
	f := startFront(t, up.path, func(p *Proxy) {
		p.ResponseTimeout = 200 * time.Millisecond
		p.BodyLimit = 1 << 20
	})
	start := time.Now()
	if resp, _ := get(t, f.URL+"/api/side/slow"); resp.StatusCode != http.StatusGatewayTimeout || time.Since(start) > 900*time.Millisecond {
		t.Errorf("slow head: %d after %v, want 504 after about 200ms", resp.StatusCode, time.Since(start))
	}
	if resp, body := get(t, f.URL+"/api/side/stream"); resp.StatusCode != 200 || body != "late" {
		t.Errorf("started stream: %d %q", resp.StatusCode, body)
	}
	// A slow upload is not a slow answer: the timeout starts once it is sent.
	pr, pw := io.Pipe()
	go func() {
		pw.Write([]byte("a"))
		time.Sleep(400 * time.Millisecond)
		pw.Write([]byte("b"))
		pw.Close()
	}()
	req, _ := http.NewRequest("POST", f.URL+"/api/side/upload", pr)
	if resp, _ := mustDo(t, req); resp.StatusCode != 200 {
		t.Errorf("slow upload: %d", resp.StatusCode)
	}
	req, _ = http.NewRequest("POST", f.URL+"/api/side/upload", io.NopCloser(patterned(2<<20)))
	if resp, _ := mustDo(t, req); resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("chunked body over the limit: %d, want 413", resp.StatusCode)
	}
	var maxBytes *http.MaxBytesError
	f.mu.Lock()
	last := f.failures[len(f.failures)-1]
	f.mu.Unlock()
	if !errors.As(last, &maxBytes) {
		t.Errorf("recorded failure %v, want the body limit", last)
	}
}

func TestForwardCutAnswerAbortsTheClientConnection(t *testing.T) {
	up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		w.WriteHeader(200)
		io.WriteString(w, "only ten!!")
		w.(http.Flusher).Flush()
		c, _, _ := http.NewResponseController(w).Hijack()
		c.Close()
	}))
	f := startFront(t, up.path, nil)
	// The head may not have left yet (net/http buffers it with the start
	// of the body): either way the client sees a failure.
	resp, err := http.Get(f.URL + "/api/side")
	if err == nil {
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if err == nil {
		t.Error("a cut answer reached the client as a whole one")
	}
}

func TestForwardNotListening(t *testing.T) {
	f := startFront(t, socketPath(t), func(p *Proxy) {
		p.Hold = 100 * time.Millisecond
		p.Backends[0].Status = func() (string, bool) { return "starting", true }
	})
	resp, body := get(t, f.URL+"/api/side")
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || !strings.Contains(body, `"status":503`) {
		t.Errorf("%d %q", resp.StatusCode, body)
	}
}

func TestForwardTrailers(t *testing.T) {
	up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Trailer", "X-Sum")
		w.Header().Set("X-Request-Trailer", r.Trailer.Get("X-Req"))
		io.WriteString(w, "body")
		w.Header().Set("X-Sum", "42")
	}))
	f := startFront(t, up.path, nil)
	resp, body := get(t, f.URL+"/api/side")
	if body != "body" || resp.Trailer.Get("X-Sum") != "42" {
		t.Errorf("body %q, trailer %v", body, resp.Trailer)
	}
	// Request trailers reach the sidecar too.
	req, _ := http.NewRequest("POST", f.URL+"/api/side", io.NopCloser(strings.NewReader("x")))
	req.Trailer = http.Header{"X-Req": {"v"}}
	resp, _ = mustDo(t, req)
	if got := resp.Header.Get("X-Request-Trailer"); got != "v" {
		t.Errorf("request trailer at the sidecar %q, want v", got)
	}
}

func TestForwardInformationalAnswers(t *testing.T) {
	up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</style.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Del("Link")
		time.Sleep(2 * clientWatchDelay) // the final answer takes its time
		io.WriteString(w, "final")
	}))
	f := startFront(t, up.path, nil)
	var hints []int
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
		hints = append(hints, code)
		return nil
	}}
	req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "GET", f.URL+"/api/side", nil)
	resp, body := mustDo(t, req)
	if resp.StatusCode != 200 || body != "final" || len(hints) != 1 || hints[0] != 103 {
		t.Errorf("%d %q, 1xx %v", resp.StatusCode, body, hints)
	}
}

func TestForwardUpgradeTakesReverseProxy(t *testing.T) {
	gotID := make(chan string, 1)
	up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotID <- r.Header.Get(identity.HeaderAuthID)
		if r.Header.Get("Upgrade") != "echo" {
			http.Error(w, "no upgrade", 400)
			return
		}
		w.Header().Set("Connection", "Upgrade")
		w.Header().Set("Upgrade", "echo")
		w.WriteHeader(http.StatusSwitchingProtocols)
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		line, _ := brw.ReadString('\n')
		brw.WriteString("echo " + line)
		brw.Flush()
	}))
	f := startFront(t, up.path, nil)
	c, err := net.Dial("tcp", strings.TrimPrefix(f.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "GET /api/side/ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("%v %v", resp, err)
	}
	fmt.Fprintf(c, "ping\n")
	if line, _ := br.ReadString('\n'); line != "echo ping\n" {
		t.Errorf("through the upgraded connection: %q", line)
	}
	if id := <-gotID; id != testCaller.ID {
		t.Errorf("identity on the upgrade request %q", id)
	}
}

func TestForwardClientLeavingASlowAnswer(t *testing.T) {
	// The client leaves this long after the sidecar got the request:
	// before the gateway watches the client, and after.
	for _, wait := range []time.Duration{clientWatchDelay / 5, 3 * clientWatchDelay} {
		t.Run(fmt.Sprint("leaves after ", wait), func(t *testing.T) {
			started, ended := make(chan struct{}), make(chan struct{})
			up := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				close(started)
				defer close(ended)
				select {
				case <-r.Context().Done():
				case <-time.After(10 * time.Second):
				}
			}))
			f := startFront(t, up.path, nil)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go func() {
				<-started
				time.Sleep(wait)
				cancel()
			}()
			req, _ := http.NewRequestWithContext(ctx, "GET", f.URL+"/api/side/think", nil)
			if _, err := http.DefaultClient.Do(req); err == nil {
				t.Fatal("answered")
			}
			select {
			case <-ended:
			case <-time.After(5 * time.Second):
				t.Fatal("the sidecar's request went on after the client left")
			}
		})
	}
}

func TestForwardHeadInPieces(t *testing.T) {
	path := rawUpstream(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			if _, err := http.ReadRequest(br); err != nil {
				return
			}
			io.WriteString(c, "HTTP/1.1 200 OK\r\nX-First: 1\r\n")
			time.Sleep(2 * clientWatchDelay)
			io.WriteString(c, "Content-Length: 4\r\n\r\nbody")
		}
	})
	f := startFront(t, path, func(p *Proxy) { p.ResponseTimeout = time.Second })
	for i := 0; i < 2; i++ {
		resp, body := get(t, f.URL+"/api/side")
		if resp.StatusCode != 200 || body != "body" || resp.Header.Get("X-First") != "1" {
			t.Errorf("%d %q %v", resp.StatusCode, body, resp.Header)
		}
	}
}

func TestForwardCapsTheAnswersHead(t *testing.T) {
	path := rawUpstream(t, func(c net.Conn) {
		if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\n")
		line := "X-Long: " + strings.Repeat("a", 64<<10) + "\r\n"
		for i := 0; i < (maxResponseHeadBytes/len(line))+10; i++ {
			if _, err := io.WriteString(c, line); err != nil {
				return
			}
		}
	})
	f := startFront(t, path, nil)
	if resp, _ := get(t, f.URL+"/api/side"); resp.StatusCode != http.StatusBadGateway {
		t.Errorf("status %d, want 502", resp.StatusCode)
	}
	f.mu.Lock()
	last := f.failures[len(f.failures)-1]
	f.mu.Unlock()
	if !errors.Is(last, errResponseHeadTooLarge) {
		t.Errorf("failure %v", last)
	}
}
