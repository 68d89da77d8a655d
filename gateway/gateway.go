// Package gateway forwards HTTP requests from PocketBase to a sidecar
// process over its Unix socket or loopback port: unbuffered, so that
// server-sent events and chunked answers stream as the sidecar writes
// them; with the caller's PocketBase identity, verified by PocketBase and
// signed for the sidecar; and held while the sidecar is not ready yet.
//
// Headers the sidecar receives are described in docs/gateway.md.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/router"
	"github.com/processman/processman/gateway/identity"
	"golang.org/x/time/rate"
)

// Defaults of a Proxy.
const (
	// DefaultHold is how long a request waits for a sidecar that is
	// starting, restarting or backing off before it gets a 503.
	DefaultHold = 10 * time.Second
	// idleConnTimeout is shorter than uvicorn's and Node's 5 s keep-alive,
	// so the gateway never reuses a connection the sidecar is closing.
	idleConnTimeout = 4 * time.Second
	// RetryAfter is the Retry-After of a 503, in seconds.
	RetryAfter = 2
	// SuccessLogsPerSecond caps the records of successful calls per route.
	SuccessLogsPerSecond = 50
)

// copyBuffers are the 32 KiB buffers the proxies copy bodies through,
// reused instead of allocated per request.
var copyBuffers = &bufferPool{pool: sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}}

type bufferPool struct{ pool sync.Pool }

func (b *bufferPool) Get() []byte  { return *b.pool.Get().(*[]byte) }
func (b *bufferPool) Put(p []byte) { b.pool.Put(&p) }

// Target is where a sidecar listens.
type Target struct {
	// Network is "unix" or "tcp".
	Network string
	// Address is the socket path or host:port.
	Address string
}

// Backend is one copy of a routed process: where it listens and whether
// it takes requests.
type Backend struct {
	// Target is where it listens.
	Target Target
	// Status returns its state (e.g. "online") and whether it is ready;
	// requests wait for ready. Nil means always ready.
	Status func() (state string, ready bool)
}

// Proxy forwards the requests of one route to its sidecar.
//
// The decisions that depend on the route's configuration are function
// fields, asked for every request: Authorize says who may call,
// LogRequest which calls are recorded.
type Proxy struct {
	// Process is the sidecar's name, used in errors and logs.
	Process string
	// Route is the mount prefix, without trailing slash.
	Route string
	// Backends are the copies of the sidecar that serve the route: a new
	// request goes to the ready one with the fewest requests in flight
	// (ties in turn), and stays on it to the end of its answer, stream or
	// WebSocket.
	Backends []Backend
	// Authorize refuses a caller with the error to answer (401, 403);
	// nil lets everyone call.
	Authorize func(e *core.RequestEvent) error
	// LogRequest reports whether a call that ended with status (0 when
	// no answer was written) gets a request record; nil records none.
	// Successful calls are capped at SuccessLogsPerSecond on top.
	LogRequest func(status int) bool
	// Secret signs the identity headers (PB_GATEWAY_SECRET).
	Secret string
	// Hold is how long to wait for the sidecar; zero means DefaultHold.
	Hold time.Duration
	// Logger receives the request records; nil means none.
	Logger *slog.Logger
	// BodyLimit caps request bodies in bytes; 0 means no limit.
	BodyLimit int64
	// ResponseTimeout bounds the wait for the sidecar's response headers;
	// 0 means no limit.
	ResponseTimeout time.Duration

	// successLogs limits the records of successful calls.
	successLogs *rate.Limiter

	backends []*backend
	turn     atomic.Uint32 // where the next pick starts looking, for ties
	// proxy, over http.Transport, serves protocol upgrades (WebSocket)
	// and Client; forward (forward.go) serves the rest on each backend's
	// own pool of connections.
	proxy *httputil.ReverseProxy
}

// backend is a Backend with its pool of connections.
type backend struct {
	Backend
	// key is the URL host http.Transport knows the backend by, so that
	// it keeps one pool of connections per backend.
	key string
	// upstream pools the connections that forward writes requests on.
	upstream *upstream
	hold     time.Duration
	// active counts the requests in flight: taken by pick, released when
	// the answer (stream, WebSocket) has ended.
	active atomic.Int64
}

// Init prepares the proxy; call it once before Handle.
func (p *Proxy) Init() {
	if p.Hold <= 0 {
		p.Hold = DefaultHold
	}
	p.successLogs = rate.NewLimiter(SuccessLogsPerSecond, SuccessLogsPerSecond)
	p.backends = make([]*backend, len(p.Backends))
	for i, b := range p.Backends {
		be := &backend{Backend: b, key: "backend-" + strconv.Itoa(i), hold: p.Hold}
		be.upstream = &upstream{
			dial:        be.dial,
			idleTimeout: idleConnTimeout,
		}
		p.backends[i] = be
	}
	transport := &http.Transport{
		DialContext:           p.dialKey,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       idleConnTimeout,
		ResponseHeaderTimeout: p.ResponseTimeout,
		DisableCompression:    true,
		ForceAttemptHTTP2:     false,
	}
	p.proxy = &httputil.ReverseProxy{
		Rewrite:   p.rewrite,
		Transport: transport,
		// net/http/httputil flushes every write of text/event-stream and
		// of answers without a Content-Length (chunked token streams) by
		// itself; -1 here would split every small answer in two writes.
		FlushInterval: 0,
		BufferPool:    copyBuffers,
		ErrorHandler:  p.upstreamError,
		ErrorLog:      nil,
	}
}

// pick chooses the backend of a new request: of those that are ready,
// the one with the fewest requests in flight, ties in turn. It counts the
// request on it (release it with done) and says whether one was ready;
// when none is, it returns the first, whose state the not-ready answer
// tells, without counting.
func (p *Proxy) pick() (*backend, bool) {
	n := len(p.backends)
	if n == 0 {
		return nil, false
	}
	for range 3 {
		var best *backend
		bestActive := int64(0)
		start := 0
		if n > 1 {
			start = int(p.turn.Add(1) % uint32(n))
		}
		for i := range n {
			b := p.backends[(start+i)%n]
			if !b.ready() {
				continue
			}
			if active := b.active.Load(); best == nil || active < bestActive {
				best, bestActive = b, active
			}
		}
		if best == nil {
			break
		}
		// Counted first, then asked again: a backend that stopped taking
		// requests in between (a reload's old copy) is left for another,
		// and one that still takes them cannot finish draining before
		// this request is counted.
		best.active.Add(1)
		if best.ready() {
			return best, true
		}
		best.done()
	}
	return p.backends[0], false
}

// pickOther is pick without the backend not: a ready copy, counted, or
// nil when there is no other.
func (p *Proxy) pickOther(not *backend) *backend {
	var best *backend
	for _, b := range p.backends {
		if b == not || !b.ready() {
			continue
		}
		if best == nil || b.active.Load() < best.active.Load() {
			best = b
		}
	}
	if best == nil {
		return nil
	}
	best.active.Add(1)
	return best
}

// done releases a request that pick counted.
func (b *backend) done() { b.active.Add(-1) }

// InFlight returns the requests in flight on backend i (streams and
// WebSockets included).
func (p *Proxy) InFlight(i int) int64 { return p.backends[i].active.Load() }

// Drain waits until backend i has no request in flight, up to timeout or
// until ctx ends, then closes its idle connections. The backend must
// have stopped taking new requests (its Status not ready): requests only
// end on it then.
func (p *Proxy) Drain(ctx context.Context, i int, timeout time.Duration) {
	b := p.backends[i]
	defer b.upstream.closeIdle()
	if b.active.Load() == 0 {
		return
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for b.active.Load() > 0 {
		select {
		case <-ctx.Done():
			return
		case <-deadline.C:
			if p.Logger != nil {
				p.Logger.Warn("processman: drain_timeout reached with requests still in flight; they are cut",
					"process", p.Process, "in_flight", b.active.Load(), "drain_timeout", timeout.String())
			}
			return
		case <-tick.C:
		}
	}
}

// ready reports whether the backend takes requests.
func (b *backend) ready() bool {
	if b.Status == nil {
		return true
	}
	_, ready := b.Status()
	return ready
}

// state is the backend's state for error answers.
func (b *backend) state() string {
	if b == nil || b.Status == nil {
		return ""
	}
	state, _ := b.Status()
	return state
}

// dialKey is http.Transport's dial: the address is a backend's key.
func (p *Proxy) dialKey(ctx context.Context, _, addr string) (net.Conn, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	for _, b := range p.backends {
		if b.key == host {
			return b.dial(ctx)
		}
	}
	return nil, fmt.Errorf("gateway: no backend %q", host)
}

// dial connects to the sidecar, retrying for up to Hold while it is not
// listening (starting, restarting, in backoff): such a request is held,
// not failed.
func (b *backend) dial(ctx context.Context) (net.Conn, error) {
	var d net.Dialer
	deadline := time.Now().Add(b.hold)
	delay := 10 * time.Millisecond
	for {
		conn, err := d.DialContext(ctx, b.Target.Network, b.Target.Address)
		if err == nil {
			return conn, nil
		}
		if !notListening(err) {
			return nil, err
		}
		if time.Now().After(deadline) {
			return nil, ErrNotReady
		}
		select {
		case <-ctx.Done():
			return nil, ErrNotReady
		case <-time.After(delay):
		}
		delay = min(delay*2, 200*time.Millisecond)
	}
}

// ErrNotReady is the failure of a request, from a route or a Client,
// whose sidecar did not become ready within Hold.
var ErrNotReady = errors.New("sidecar not ready")

// describeNotReady says why a process in state is not ready.
func describeNotReady(state string) string {
	if state == "online" {
		return "running, readiness check not passed yet"
	}
	return state
}

// isTimeout reports a response header timeout of the transport.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// notListening reports errors of a socket nobody listens on yet.
func notListening(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT)
}

// requestKey carries what rewrite needs from serve through ReverseProxy.
type requestKey struct{}

// proxiedRequest is what serve hands to rewrite and upstreamError.
type proxiedRequest struct {
	backend *backend
	caller  identity.Identity
	// failure is where upstreamError leaves the failure for the request
	// record.
	failure error
}

// Handle serves one request of the route: auth, identity, forward.
func (p *Proxy) Handle(e *core.RequestEvent) error {
	if reason := refusal(e.Request); reason != "" {
		return e.BadRequestError(reason, nil)
	}
	if p.Authorize != nil {
		if err := p.Authorize(e); err != nil {
			return err
		}
	}
	if p.BodyLimit > 0 {
		if e.Request.ContentLength > p.BodyLimit {
			return e.Error(http.StatusRequestEntityTooLarge, fmt.Sprintf("The request body is larger than the %d bytes this route accepts.", p.BodyLimit), nil)
		}
	}
	b := p.waitReady(e.Request.Context())
	if b == nil {
		var first *backend
		if len(p.backends) > 0 {
			first = p.backends[0]
		}
		p.answerError(e.Response, e.Request, first, ErrNotReady)
		p.logCall(e, identity.Identity{}, p.Hold, ErrNotReady)
		return nil
	}
	defer b.done()
	id := identity.Identity{}
	if e.Auth != nil {
		id = identity.Identity{ID: e.Auth.Id, Collection: e.Auth.Collection().Name, Superuser: e.HasSuperuserAuth()}
	}
	start := time.Now()
	var failure error
	// deferred: a stream cut midway aborts the handler with a panic
	defer func() { p.logCall(e, id, time.Since(start), failure) }()
	failure = p.serve(e.Response, e.Request, b, id)
	return nil
}

// serve forwards a request whose caller is id to backend b and returns
// the failure to record, if any.
func (p *Proxy) serve(w http.ResponseWriter, r *http.Request, b *backend, id identity.Identity) error {
	// PocketBase's router keeps a copy of every body read, so that hooks
	// can read it again. A proxied body is read once, by the sidecar:
	// stream it without the copy, however large it is.
	if body, ok := r.Body.(*router.RereadableReadCloser); ok {
		r.Body = body.ReadCloser
	}
	if p.BodyLimit > 0 && r.Body != nil && r.Body != http.NoBody {
		r.Body = http.MaxBytesReader(w, r.Body, p.BodyLimit)
	}
	if upgradeType(r.Header) != "" {
		// Upgrades (WebSocket) take ReverseProxy and http.Transport,
		// which hand the connection over.
		liftServerTimeouts(w, true, true)
		pr := &proxiedRequest{backend: b, caller: id}
		p.proxy.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestKey{}, pr)))
		return pr.failure
	}
	err := p.forward(w, r, b, id)
	if err != nil && p.elsewhere(r, err) {
		// The copy failed before any answer (killed, crashed, closed the
		// connection): a request that can be sent again goes once to
		// another ready copy, as nginx's proxy_next_upstream does.
		if other := p.pickOther(b); other != nil {
			defer other.done()
			b, err = other, p.forward(w, r, other, id)
		}
	}
	if err != nil {
		return p.answerError(w, r, b, err)
	}
	return nil
}

// elsewhere reports whether a request that failed with err, before any
// byte of an answer, may be sent to another copy: the route has more
// than one, the request has no body and an idempotent method, and the
// failure was the copy's connection, not a timeout or the client.
func (p *Proxy) elsewhere(r *http.Request, err error) bool {
	if len(p.backends) < 2 || r.Context().Err() != nil || !replayable(r) {
		return false
	}
	if r.ContentLength != 0 || (r.Body != nil && r.Body != http.NoBody && r.ContentLength < 0) {
		return false
	}
	return !isTimeout(err) && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) &&
		!errors.As(err, new(*http.MaxBytesError)) && !errors.As(err, new(clientBodyError))
}

// liftServerTimeouts clears the read and/or write deadline that
// PocketBase's server sets on the client's connection (5 minutes each),
// so that long streams and large uploads are not cut.
func liftServerTimeouts(w http.ResponseWriter, read, write bool) {
	rc := http.NewResponseController(w)
	if read {
		_ = rc.SetReadDeadline(time.Time{})
	}
	if write {
		_ = rc.SetWriteDeadline(time.Time{})
	}
}

// logCall writes one record per call, as LogRequest says.
func (p *Proxy) logCall(e *core.RequestEvent, id identity.Identity, took time.Duration, failure error) {
	if p.Logger == nil || p.LogRequest == nil {
		return
	}
	status := e.Status()
	failed := status >= 400 || status == 0
	if !p.LogRequest(status) || (!failed && !p.successLogs.Allow()) {
		return
	}
	level := slog.LevelInfo
	if status >= 500 || status == 0 {
		level = slog.LevelWarn
	}
	attrs := []slog.Attr{
		slog.String("type", "gateway"),
		slog.String("process", p.Process),
		slog.Int("status", status),
		slog.Float64("execTime", float64(took.Microseconds())/1000),
		slog.String("auth", id.Collection),
		slog.String("authId", id.ID),
		slog.String("remoteIP", e.RealIP()),
	}
	if failure != nil {
		attrs = append(attrs, slog.String("error", failure.Error()))
	}
	p.Logger.LogAttrs(context.Background(), level, fmt.Sprintf("%s %s", e.Request.Method, e.Request.URL.RequestURI()), attrs...)
}

// waitReady holds a request until a backend is ready, up to Hold, and
// returns it, counted (see pick); nil when none became ready.
func (p *Proxy) waitReady(ctx context.Context) *backend {
	if b, ready := p.pick(); b == nil || ready {
		return b
	}
	deadline := time.NewTimer(p.Hold)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-deadline.C:
			return nil
		case <-tick.C:
			if b, ready := p.pick(); ready {
				return b
			}
		}
	}
}

// rewrite turns the incoming request into the sidecar's: the prefix is
// removed, forwarding headers set, identity headers replaced.
func (p *Proxy) rewrite(pr *httputil.ProxyRequest) {
	in := pr.In
	req, _ := in.Context().Value(requestKey{}).(*proxiedRequest)
	rest, restEscaped := p.restOfPath(in.URL.EscapedPath())
	pr.Out.URL.Scheme = "http"
	pr.Out.URL.Host = req.backend.key
	pr.Out.Host = in.Host
	pr.Out.URL.Path = rest
	pr.Out.URL.RawPath = restEscaped
	pr.SetXForwarded()
	pr.Out.Header.Set("X-Forwarded-Prefix", p.Route)
	identity.Apply(pr.Out.Header, p.Secret, time.Now(), pr.Out.Method, pr.Out.URL.RequestURI(), req.caller)
}

// upstreamError is the ErrorHandler of ReverseProxy: it answers and
// leaves the failure for the request record.
func (p *Proxy) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	req, _ := r.Context().Value(requestKey{}).(*proxiedRequest)
	req.failure = p.answerError(w, r, req.backend, err)
}

// answerError answers a failed forward to b in PocketBase's error format
// and returns the failure to record: nil when the client went away.
func (p *Proxy) answerError(w http.ResponseWriter, r *http.Request, b *backend, err error) error {
	state := b.state()
	status, message := http.StatusBadGateway, fmt.Sprintf("The %q process failed to answer.", p.Process)
	var bodyErr clientBodyError
	switch {
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		return nil // the client went away; nothing to answer
	case errors.As(err, new(*http.MaxBytesError)):
		status, message = http.StatusRequestEntityTooLarge, fmt.Sprintf("The request body is larger than the %d bytes this route accepts.", p.BodyLimit)
	case errors.As(err, &bodyErr):
		status, message = http.StatusBadRequest, "The request body could not be read: "+bodyErr.err.Error()+"."
	case isTimeout(err):
		status, message = http.StatusGatewayTimeout, fmt.Sprintf("The %q process did not answer within %s.", p.Process, p.ResponseTimeout)
	case errors.Is(err, ErrNotReady):
		status = http.StatusServiceUnavailable
		message = fmt.Sprintf("The %q process is not ready (%s); try again shortly.", p.Process, describeNotReady(state))
		w.Header().Set("Retry-After", strconv.Itoa(RetryAfter))
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"status":%d,"message":%q,"data":{"process":%q,"state":%q}}`, status, message, p.Process, state)
	return err
}

// closeIdle closes the idle connections to every backend.
func (p *Proxy) closeIdle() {
	for _, b := range p.backends {
		b.upstream.closeIdle()
	}
	if t, ok := p.proxy.Transport.(*http.Transport); ok {
		t.CloseIdleConnections()
	}
}
