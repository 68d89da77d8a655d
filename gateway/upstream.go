package gateway

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// maxIdleConns caps the idle connections kept per sidecar.
const maxIdleConns = 256

// upstreamConn is one keep-alive HTTP/1.1 connection to a sidecar, with
// the buffers that stay with it for its whole life.
type upstreamConn struct {
	net.Conn
	br *bufio.Reader
	bw *bufio.Writer
	// reused is true when the connection served an earlier request, so a
	// failure before any answer may just mean the sidecar closed it.
	reused bool
	// idleSince is when the connection went back to the pool.
	idleSince time.Time
	// headLimit caps what br reads while the head of an answer is
	// parsed.
	headLimit headLimitReader
}

// upstream is the pool of idle connections to one sidecar. A connection
// is taken for one request and its answer at a time (no pipelining) and
// comes back only when both were read and written whole; the most
// recently used is taken first, so that the others age out after
// idleTimeout, under the keep-alive of uvicorn and Node (5 s), and the
// gateway never picks a connection the sidecar is about to close.
type upstream struct {
	dial        func(ctx context.Context) (net.Conn, error)
	idleTimeout time.Duration

	mu     sync.Mutex
	idle   []*upstreamConn // oldest first
	reaper *time.Timer     // closes expired idle connections; nil until needed
}

// get returns an idle connection, or a new one when none is idle or
// fresh is set.
func (u *upstream) get(ctx context.Context, fresh bool) (*upstreamConn, error) {
	if !fresh {
		if c := u.takeIdle(); c != nil {
			return c, nil
		}
	}
	conn, err := u.dial(ctx)
	if err != nil {
		return nil, err
	}
	c := &upstreamConn{Conn: conn, bw: bufio.NewWriterSize(conn, 4<<10)}
	c.headLimit = headLimitReader{r: conn, n: -1}
	c.br = bufio.NewReaderSize(&c.headLimit, 4<<10)
	return c, nil
}

// maxResponseHeadBytes caps the head of an answer, as http.Transport's
// default MaxResponseHeaderBytes does: a sidecar sending headers without
// end must not exhaust PocketBase's memory.
const maxResponseHeadBytes = 10 << 20

var errResponseHeadTooLarge = errors.New("gateway: the sidecar's response head is larger than 10 MB")

// headLimitReader reads at most n more bytes, then fails; n < 0 means
// no limit. The connection reads through it so that the head of an
// answer can be capped while it is parsed.
type headLimitReader struct {
	r io.Reader
	n int64
}

func (l *headLimitReader) Read(p []byte) (int, error) {
	if l.n < 0 {
		return l.r.Read(p)
	}
	if l.n == 0 {
		return 0, errResponseHeadTooLarge
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}

// takeIdle pops the most recently used idle connection, closing expired
// ones (all of them, since the last is the youngest).
func (u *upstream) takeIdle() *upstreamConn {
	now := time.Now()
	u.mu.Lock()
	n := len(u.idle)
	if n == 0 {
		u.mu.Unlock()
		return nil
	}
	c := u.idle[n-1]
	u.idle[n-1] = nil
	u.idle = u.idle[:n-1]
	var expired []*upstreamConn
	if now.Sub(c.idleSince) >= u.idleTimeout {
		expired = append(u.idle, c)
		u.idle = nil
		c = nil
	}
	u.mu.Unlock()
	for _, e := range expired {
		e.Close()
	}
	if c != nil {
		c.reused = true
	}
	return c
}

// put returns a connection whose request and answer are complete.
func (u *upstream) put(c *upstreamConn) {
	c.idleSince = time.Now()
	u.mu.Lock()
	if len(u.idle) >= maxIdleConns {
		u.mu.Unlock()
		c.Close()
		return
	}
	u.idle = append(u.idle, c)
	if u.reaper == nil {
		u.reaper = time.AfterFunc(u.idleTimeout, u.reap)
	} else if len(u.idle) == 1 {
		u.reaper.Reset(u.idleTimeout)
	}
	u.mu.Unlock()
}

// reap closes the idle connections that reached idleTimeout and runs
// again when the oldest remaining one will.
func (u *upstream) reap() {
	now := time.Now()
	u.mu.Lock()
	n := 0
	for n < len(u.idle) && now.Sub(u.idle[n].idleSince) >= u.idleTimeout {
		n++
	}
	expired := make([]*upstreamConn, n)
	copy(expired, u.idle[:n])
	u.idle = append(u.idle[:0], u.idle[n:]...)
	clear(u.idle[len(u.idle) : len(u.idle)+n])
	if len(u.idle) > 0 {
		u.reaper.Reset(u.idleTimeout - now.Sub(u.idle[0].idleSince))
	}
	u.mu.Unlock()
	for _, c := range expired {
		c.Close()
	}
}

// closeIdle closes every idle connection.
func (u *upstream) closeIdle() {
	u.mu.Lock()
	idle := u.idle
	u.idle = nil
	u.mu.Unlock()
	for _, c := range idle {
		c.Close()
	}
}
