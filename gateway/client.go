package gateway

import (
	"context"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/processman/processman/gateway/identity"
)

// System is the identity of calls that PocketBase code itself makes to a
// sidecar: a superuser without a record.
var System = identity.Identity{Superuser: true}

type callerKey struct{}

// WithCaller makes calls with ctx carry id instead of System, for code
// that calls a sidecar on behalf of a user.
func WithCaller(ctx context.Context, id identity.Identity) context.Context {
	return context.WithValue(ctx, callerKey{}, id)
}

// Client returns an HTTP client whose requests go to the sidecar, over
// the same transport as the route: the URL's host is ignored, the path
// is the sidecar's own (without the route prefix), requests wait up to
// Hold for the sidecar to be ready, and carry signed identity headers
// (System, or the caller set with WithCaller).
func (p *Proxy) Client() *http.Client {
	return &http.Client{Transport: clientTransport{p}}
}

type clientTransport struct{ p *Proxy }

func (t clientTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	b := t.p.waitReady(req.Context())
	if b == nil {
		return nil, ErrNotReady
	}
	id, ok := req.Context().Value(callerKey{}).(identity.Identity)
	if !ok {
		id = System
	}
	out := req.Clone(req.Context())
	out.URL.Scheme, out.URL.Host = "http", b.key
	identity.Apply(out.Header, t.p.Secret, time.Now(), out.Method, out.URL.RequestURI(), id)
	resp, err := t.p.proxy.Transport.RoundTrip(out)
	if err != nil {
		b.done()
		return nil, err
	}
	// In flight until its body is read to the end or closed.
	resp.Body = &releasingBody{ReadCloser: resp.Body, release: b.done}
	return resp, nil
}

// releasingBody releases the request it belongs to once, at EOF or Close.
type releasingBody struct {
	io.ReadCloser
	release func()
	once    sync.Once
}

func (r *releasingBody) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	if err != nil {
		r.once.Do(r.release)
	}
	return n, err
}

func (r *releasingBody) Close() error {
	err := r.ReadCloser.Close()
	r.once.Do(r.release)
	return err
}
