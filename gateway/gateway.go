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
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/router"
	"github.com/processman/processman/config"
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

// Proxy forwards the requests of one route to one sidecar.
type Proxy struct {
	// Process is the sidecar's name, used in errors and logs.
	Process string
	// Route is the mount prefix, without trailing slash.
	Route string
	// Target is where the sidecar listens.
	Target Target
	// Auth says who may call the route.
	Auth config.Auth
	// Secret signs the identity headers (PB_GATEWAY_SECRET).
	Secret string
	// Hold is how long to wait for the sidecar; zero means DefaultHold.
	Hold time.Duration
	// Status returns the sidecar's state (e.g. "online") and whether it is
	// ready; requests wait for ready.
	Status func() (state string, ready bool)
	// Logger receives the request records; nil means none.
	Logger *slog.Logger
	// BodyLimit caps request bodies in bytes; 0 means no limit.
	BodyLimit int64
	// ResponseTimeout bounds the wait for the sidecar's response headers;
	// 0 means no limit.
	ResponseTimeout time.Duration
	// LogRequests is "all" (default), "errors" or "none".
	LogRequests string

	// successLogs limits the records of successful calls.
	successLogs *rate.Limiter

	// upstream pools the connections that forward (forward.go) writes
	// requests on; proxy, over http.Transport, serves protocol upgrades
	// (WebSocket), requests with trailers and Client.
	upstream *upstream
	proxy    *httputil.ReverseProxy
}

// Init prepares the proxy; call it once before Handle.
func (p *Proxy) Init() {
	if p.Hold <= 0 {
		p.Hold = DefaultHold
	}
	p.successLogs = rate.NewLimiter(SuccessLogsPerSecond, SuccessLogsPerSecond)
	p.upstream = &upstream{
		dial:        func(ctx context.Context) (net.Conn, error) { return p.dial(ctx, "", "") },
		idleTimeout: idleConnTimeout,
	}
	transport := &http.Transport{
		DialContext:           p.dial,
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

// dial connects to the sidecar, retrying for up to Hold while it is not
// listening (starting, restarting, in backoff): such a request is held,
// not failed.
func (p *Proxy) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	var d net.Dialer
	deadline := time.Now().Add(p.Hold)
	delay := 10 * time.Millisecond
	for {
		conn, err := d.DialContext(ctx, p.Target.Network, p.Target.Address)
		if err == nil {
			return conn, nil
		}
		if !notListening(err) {
			return nil, err
		}
		if time.Now().After(deadline) {
			return nil, errNotReady
		}
		select {
		case <-ctx.Done():
			return nil, errNotReady
		case <-time.After(delay):
		}
		delay = min(delay*2, 200*time.Millisecond)
	}
}

var errNotReady = errors.New("sidecar not ready")

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

// identityKey carries the verified identity from Handle to rewrite.
type identityKey struct{}

// failureKey carries a *error where upstreamError leaves the failure
// for the request record.
type failureKey struct{}

// Handle serves one request of the route: auth, identity, forward.
func (p *Proxy) Handle(e *core.RequestEvent) error {
	if err := p.authorize(e); err != nil {
		return err
	}
	if p.BodyLimit > 0 {
		if e.Request.ContentLength > p.BodyLimit {
			return e.Error(http.StatusRequestEntityTooLarge, fmt.Sprintf("The request body is larger than the %d bytes this route accepts.", p.BodyLimit), nil)
		}
	}
	if !p.waitReady(e.Request.Context()) {
		p.answerError(e.Response, e.Request, errNotReady)
		p.logCall(e, identity.Identity{}, p.Hold, errNotReady)
		return nil
	}
	id := identity.Identity{}
	if e.Auth != nil {
		id = identity.Identity{ID: e.Auth.Id, Collection: e.Auth.Collection().Name, Superuser: e.HasSuperuserAuth()}
	}
	start := time.Now()
	var failure error
	// deferred: a stream cut midway aborts the handler with a panic
	defer func() { p.logCall(e, id, time.Since(start), failure) }()
	failure = p.serve(e.Response, e.Request, id)
	return nil
}

// serve forwards a request whose caller is id and returns the failure to
// record, if any.
func (p *Proxy) serve(w http.ResponseWriter, r *http.Request, id identity.Identity) (failure error) {
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
		ctx := context.WithValue(r.Context(), identityKey{}, id)
		p.proxy.ServeHTTP(w, r.WithContext(context.WithValue(ctx, failureKey{}, &failure)))
		return failure
	}
	if err := p.forward(w, r, id); err != nil {
		return p.answerError(w, r, err)
	}
	return nil
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

// logCall writes one record per call, as LogRequests says.
func (p *Proxy) logCall(e *core.RequestEvent, id identity.Identity, took time.Duration, failure error) {
	if p.Logger == nil || p.LogRequests == "none" {
		return
	}
	status := e.Status()
	failed := status >= 400 || status == 0
	if !failed && (p.LogRequests == "errors" || !p.successLogs.Allow()) {
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

// waitReady holds a request while the sidecar is not ready, up to Hold.
func (p *Proxy) waitReady(ctx context.Context) bool {
	if p.Status == nil {
		return true
	}
	if _, ready := p.Status(); ready {
		return true
	}
	deadline := time.NewTimer(p.Hold)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-deadline.C:
			return false
		case <-tick.C:
			if _, ready := p.Status(); ready {
				return true
			}
		}
	}
}

// authorize applies the route's auth rule with PocketBase's own auth.
// Superusers may call every route.
func (p *Proxy) authorize(e *core.RequestEvent) error {
	mode := p.Auth.Mode
	if mode == "" && len(p.Auth.Collections) == 0 {
		mode = config.AuthUser
	}
	if mode == config.AuthPublic {
		return nil
	}
	if e.Auth == nil {
		return e.UnauthorizedError("The request requires valid authorization token.", nil)
	}
	if e.HasSuperuserAuth() {
		return nil
	}
	switch {
	case mode == config.AuthUser:
		return nil
	case mode == config.AuthSuperuser:
		return e.ForbiddenError("Only superusers can perform this action.", nil)
	case slices.Contains(p.Auth.Collections, e.Auth.Collection().Name):
		return nil
	}
	return e.ForbiddenError(fmt.Sprintf("Records of %q cannot call this route.", e.Auth.Collection().Name), nil)
}

// rewrite turns the incoming request into the sidecar's: the prefix is
// removed, forwarding headers set, identity headers replaced.
func (p *Proxy) rewrite(pr *httputil.ProxyRequest) {
	in := pr.In
	rest, restEscaped := p.restOfPath(in.URL.EscapedPath())
	pr.Out.URL.Scheme = "http"
	pr.Out.URL.Host = "sidecar"
	pr.Out.Host = in.Host
	pr.Out.URL.Path = rest
	pr.Out.URL.RawPath = restEscaped
	pr.SetXForwarded()
	pr.Out.Header.Set("X-Forwarded-Prefix", p.Route)

	id, _ := in.Context().Value(identityKey{}).(identity.Identity)
	identity.Apply(pr.Out.Header, p.Secret, time.Now(), pr.Out.Method, pr.Out.URL.RequestURI(), id)
}

// upstreamError is the ErrorHandler of ReverseProxy: it answers and
// leaves the failure for the request record.
func (p *Proxy) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	failure := p.answerError(w, r, err)
	if recorded, ok := r.Context().Value(failureKey{}).(*error); ok {
		*recorded = failure
	}
}

// answerError answers a failed forward in PocketBase's error format and
// returns the failure to record: nil when the client went away.
func (p *Proxy) answerError(w http.ResponseWriter, r *http.Request, err error) error {
	state := ""
	if p.Status != nil {
		state, _ = p.Status()
	}
	status, message := http.StatusBadGateway, fmt.Sprintf("The %q process failed to answer.", p.Process)
	switch {
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		return nil // the client went away; nothing to answer
	case errors.As(err, new(*http.MaxBytesError)):
		status, message = http.StatusRequestEntityTooLarge, fmt.Sprintf("The request body is larger than the %d bytes this route accepts.", p.BodyLimit)
	case isTimeout(err):
		status, message = http.StatusGatewayTimeout, fmt.Sprintf("The %q process did not answer within %s.", p.Process, p.ResponseTimeout)
	case errors.Is(err, errNotReady):
		status = http.StatusServiceUnavailable
		message = fmt.Sprintf("The %q process is not ready (%s); try again shortly.", p.Process, describeNotReady(state))
		w.Header().Set("Retry-After", strconv.Itoa(RetryAfter))
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"status":%d,"message":%q,"data":{"process":%q,"state":%q}}`, status, message, p.Process, state)
	return err
}
