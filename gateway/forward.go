package gateway

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/processman/processman/gateway/identity"
)

// forward sends r to backend b and copies the answer to w, as
// net/http/httputil.ReverseProxy with http.Transport would, but written
// and read in the handler's own goroutine on a pooled connection
// (upstream.go): none of the goroutine hand-offs, channels and header
// map copies that http.Transport spends on every request, and no
// goroutine at all for a request without body.
//
// It returns an error only when nothing was written to w yet; the caller
// answers it (502, 503, 504, 413, or nothing for a client that went
// away). A failure while the answer streams aborts the client's
// connection with http.ErrAbortHandler, as ReverseProxy does, so that a
// cut answer is never taken for a whole one.
func (p *Proxy) forward(w http.ResponseWriter, r *http.Request, b *backend, id identity.Identity) error {
	ctx := r.Context()
	body, contentLength := r.Body, r.ContentLength
	if contentLength == 0 || body == nil || body == http.NoBody {
		body, contentLength = nil, 0
	} else {
		liftServerTimeouts(w, true, false) // an upload may be long
	}
	headBuf := requestHeads.Get().(*[]byte)
	defer func() {
		if cap(*headBuf) <= 64<<10 { // a rare huge head is not kept
			requestHeads.Put(headBuf)
		}
	}()
	*headBuf = p.requestHead((*headBuf)[:0], r, p.forwardedPath(r.URL), id, contentLength)

	var x *exchange
	for attempt := 0; ; attempt++ {
		conn, err := b.upstream.get(ctx, attempt > 0)
		if err != nil {
			return err
		}
		if conn.reused && (body != nil || !replayable(r)) && !conn.alive() {
			// Such a request cannot be sent twice: make sure first that
			// the sidecar has not closed this connection while it idled.
			conn.Close()
			attempt++
			if conn, err = b.upstream.get(ctx, true); err != nil {
				return err
			}
		}
		x = &exchange{conn: conn, timeout: p.ResponseTimeout}
		err, unanswered := x.roundTrip(ctx, w, r, *headBuf, body, contentLength)
		if err == nil {
			break
		}
		x.abort()
		// Failed before any byte of an answer on a connection that had
		// served before: the sidecar may have closed it while it idled.
		// Once more on a new connection, if the request can be sent
		// again: no byte of its body read yet, and not sent at all or
		// idempotent.
		if unanswered && conn.reused && attempt == 0 && !x.bodyRead.Load() && ctx.Err() == nil &&
			(x.nothingWritten || replayable(r)) {
			// The others idled as long or longer; after a restart of
			// the sidecar they are all closed.
			b.upstream.closeIdle()
			continue
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if x.bodyErr != nil {
			// The body's failure (a body over the route's limit, a
			// client gone mid-upload) is the cause of the rest.
			return x.bodyErr
		}
		return err
	}

	if err := x.copyResponse(ctx, w); err != nil {
		x.abort()
		panic(http.ErrAbortHandler)
	}
	if x.finish(w) {
		b.upstream.put(x.conn)
	}
	return nil
}

// requestHeads are the buffers the request heads are built in.
var requestHeads = sync.Pool{New: func() any { b := make([]byte, 0, 1<<10); return &b }}

// replayable reports whether a request may be sent again after a failure
// that may have reached the sidecar: idempotent methods, as http.Transport
// decides.
func replayable(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	_, key := r.Header["Idempotency-Key"]
	_, xkey := r.Header["X-Idempotency-Key"]
	return key || xkey
}

// exchange is one request and its answer on one upstream connection.
type exchange struct {
	conn    *upstreamConn
	timeout time.Duration // for the answer's head, once the request is sent
	resp    *http.Response
	start   time.Time // when the request was written
	// stopWatch ends the watch that closes conn when the client goes
	// away (see watch); false means the client went away and conn is
	// closed. nil while the client is not watched.
	stopWatch func() bool

	// nothingWritten: the request could not be written at all.
	nothingWritten bool

	// A request body is written by its own goroutine while the answer is
	// read, as http.Transport does: a sidecar may answer (413, 401)
	// before it has read the whole body.
	bodyDone chan struct{} // closed when the body goroutine ends; nil without body
	bodyErr  error         // set before bodyDone is closed
	bodyRead atomic.Bool   // a byte of the client's body was read: it cannot be sent again

	mu      sync.Mutex // orders the answer's arrival and the timeout's start
	gotHead bool
}

// clientWatchDelay is how long the gateway waits for an answer before it
// watches the client (see exchange.watch): most answers come sooner, and
// the watch costs more than the rest of a quick exchange. A client that
// leaves is noticed that much later at most.
const clientWatchDelay = 50 * time.Millisecond

// roundTrip writes the request and reads the head of the answer.
// unanswered says that it failed before any byte of an answer came, and
// not for want of time.
func (x *exchange) roundTrip(ctx context.Context, w http.ResponseWriter, r *http.Request, head []byte, body io.Reader, contentLength int64) (err error, unanswered bool) {
	conn := x.conn
	x.start = time.Now()
	conn.bw.Write(head)
	if body == nil {
		if err := conn.bw.Flush(); err != nil {
			x.nothingWritten = true
			return err, true
		}
		if err := x.awaitAnswer(ctx); err != nil {
			return err, !isTimeout(err)
		}
	} else {
		// The head goes out with the first bytes of the body; the
		// body goroutine starts the response timeout when it is done.
		x.watch(ctx)
		x.bodyDone = make(chan struct{})
		go x.sendBody(body, contentLength, r.Trailer)
		if _, err := conn.br.Peek(1); err != nil {
			return err, !isTimeout(err)
		}
	}
	for {
		if x.stopWatch == nil && !headBuffered(conn.br) {
			// The rest of the head is on its way: wait for it as for
			// a slow answer.
			x.watch(ctx)
			conn.SetReadDeadline(x.answerDeadline())
		}
		conn.headLimit.n = maxResponseHeadBytes - int64(conn.br.Buffered())
		resp, err := http.ReadResponse(conn.br, r)
		conn.headLimit.n = -1
		if err != nil {
			return err, false
		}
		if resp.StatusCode == http.StatusSwitchingProtocols {
			return errors.New("gateway: 101 Switching Protocols to a request without Upgrade"), false
		}
		if resp.StatusCode >= 200 {
			x.mu.Lock()
			x.gotHead = true
			conn.SetReadDeadline(time.Time{})
			x.mu.Unlock()
			x.resp = resp
			return nil, false
		}
		// 1xx (103 Early Hints, ...) are passed on as they come, and
		// the final answer follows.
		liftServerTimeouts(w, false, true)
		h := w.Header()
		copyResponseHeader(h, resp.Header)
		w.WriteHeader(resp.StatusCode)
		clear(h) // as ReverseProxy: WriteHeader does not for 1xx
		if x.stopWatch == nil {
			// The final answer may take its time.
			x.watch(ctx)
			conn.SetReadDeadline(x.answerDeadline())
		}
	}
}

// awaitAnswer waits for the first byte of the answer to a request
// without body, up to the response timeout, watching the client only
// once clientWatchDelay has passed.
func (x *exchange) awaitAnswer(ctx context.Context) error {
	wait := clientWatchDelay
	if x.timeout > 0 && x.timeout < wait {
		wait = x.timeout
	}
	x.conn.SetReadDeadline(x.start.Add(wait))
	for {
		_, err := x.conn.br.Peek(1)
		if err == nil || !isTimeout(err) || x.stopWatch != nil {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err() // the client left while the sidecar thought
		}
		deadline := x.answerDeadline()
		if !deadline.IsZero() && !time.Now().Before(deadline) {
			return err // the response timeout
		}
		x.watch(ctx)
		x.conn.SetReadDeadline(deadline)
	}
}

// answerDeadline is when the response timeout of a request without body
// ends; zero for none.
func (x *exchange) answerDeadline() time.Time {
	if x.timeout <= 0 {
		return time.Time{}
	}
	return x.start.Add(x.timeout)
}

// watch closes the connection when the client goes away (its request's
// context ends), so that a read or write of the exchange fails at once
// and the sidecar sees its request end.
func (x *exchange) watch(ctx context.Context) {
	if x.stopWatch == nil {
		conn := x.conn
		x.stopWatch = context.AfterFunc(ctx, func() { conn.Close() })
	}
}

// headBuffered reports whether the whole head of an answer is in br
// already, so that reading it cannot wait.
func headBuffered(br *bufio.Reader) bool {
	b, _ := br.Peek(br.Buffered())
	return bytes.Contains(b, []byte("\r\n\r\n"))
}

// sendBody writes the request body after the head: with its
// Content-Length as it arrives, or chunked, one chunk per read of the
// client's body, each flushed so that a streamed upload streams on.
func (x *exchange) sendBody(body io.Reader, contentLength int64, trailer http.Header) {
	defer close(x.bodyDone)
	bw := x.conn.bw
	buf := copyBuffers.Get()
	defer copyBuffers.Put(buf)
	var written int64
	var err error
	for {
		n, rerr := body.Read(buf)
		if n > 0 {
			x.bodyRead.Store(true)
			written += int64(n)
			if contentLength < 0 {
				fmt.Fprintf(bw, "%x\r\n", n)
				bw.Write(buf[:n])
				bw.WriteString("\r\n")
				err = bw.Flush()
			} else {
				_, err = bw.Write(buf[:n])
			}
			if err != nil {
				break
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			err = clientBodyError{rerr}
			break
		}
	}
	switch {
	case err != nil:
	case contentLength < 0:
		// The last chunk, then the trailers, known now that the body
		// was read to its end.
		bw.WriteString("0\r\n")
		for k, vs := range trailer {
			if !forwardedTrailer(k) {
				continue // undeclared, or of the identity family: dropped
			}
			for _, v := range vs {
				bw.Write(appendHeaderLine(nil, k, v))
			}
		}
		bw.WriteString("\r\n")
	case written != contentLength:
		err = fmt.Errorf("gateway: request body of %d bytes, Content-Length %d", written, contentLength)
	}
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		// An unfinished request cannot be answered: end it.
		x.bodyErr = err
		x.conn.Close()
		return
	}
	if x.timeout > 0 {
		x.mu.Lock()
		if !x.gotHead {
			x.conn.SetReadDeadline(time.Now().Add(x.timeout))
		}
		x.mu.Unlock()
	}
}

// clientBodyError is a failure to read the client's request body: a
// malformed chunked body, a body over the route's limit, a client gone
// mid-upload. It is the client's fault, not the sidecar's.
type clientBodyError struct{ err error }

func (e clientBodyError) Error() string { return "reading the request body: " + e.err.Error() }
func (e clientBodyError) Unwrap() error { return e.err }

// copyResponse writes the answer's head and streams its body to w:
// server-sent events and answers without a length are flushed at every
// read, as ReverseProxy does, so that each event reaches the client as
// the sidecar writes it; others go out as net/http buffers them.
func (x *exchange) copyResponse(ctx context.Context, w http.ResponseWriter) error {
	resp := x.resp
	copyResponseHeader(w.Header(), resp.Header)
	// The Trailer header is not in resp.Header: announce the trailers
	// from resp.Trailer.
	announced := len(resp.Trailer)
	if announced > 0 {
		keys := make([]string, 0, announced)
		for k := range resp.Trailer {
			keys = append(keys, k)
		}
		w.Header().Add("Trailer", strings.Join(keys, ", "))
	}
	stream := resp.ContentLength == -1 || isEventStream(resp.Header.Get("Content-Type"))
	rc := http.NewResponseController(w)
	if stream || int64(x.conn.br.Buffered()) < resp.ContentLength {
		// A stream or a body still to come may take longer than the
		// server's write timeout, and the client may leave meanwhile;
		// a body already here is written at once.
		_ = rc.SetWriteDeadline(time.Time{})
		x.watch(ctx)
	}
	w.WriteHeader(resp.StatusCode)
	if stream && x.conn.br.Buffered() == 0 {
		// Nothing of the body is here yet: the head goes out now, so
		// that the client sees the stream open.
		_ = rc.Flush()
	}
	buf := copyBuffers.Get()
	defer copyBuffers.Put(buf)
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			if _, err := w.Write(buf[:n]); err != nil {
				return err
			}
			if stream {
				if err := rc.Flush(); err != nil {
					return err
				}
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return rerr
		}
	}
	resp.Body.Close() // complete: this fills resp.Trailer

	if len(resp.Trailer) > 0 {
		// Trailers need a chunked answer: flushing now keeps net/http
		// from sending a Content-Length for a short body.
		_ = rc.Flush()
	}
	if len(resp.Trailer) == announced {
		copyResponseHeader(w.Header(), resp.Trailer)
		return nil
	}
	for k, vs := range resp.Trailer {
		for _, v := range vs {
			w.Header().Add(http.TrailerPrefix+k, v)
		}
	}
	return nil
}

// finish ends the exchange after a complete answer and reports whether
// the connection can serve another request: the whole request was
// written, the whole answer read, and neither side asked to close.
func (x *exchange) finish(w http.ResponseWriter) bool {
	reusable := (x.stopWatch == nil || x.stopWatch()) && !x.resp.Close && x.conn.br.Buffered() == 0
	if x.bodyDone != nil && !x.bodySent() {
		// The sidecar answered without reading the whole body.
		reusable = false
		_ = http.NewResponseController(w).Flush() // the answer first
		x.endBody()
	}
	if !reusable {
		x.conn.Close()
	}
	return reusable
}

// bodySent reports whether the body goroutine wrote the whole body. It
// waits a little for a goroutine that has not ended yet: the sidecar may
// have read the body and answered before the goroutine got to end, as
// http.Transport allows for before it reuses a connection.
func (x *exchange) bodySent() bool {
	select {
	case <-x.bodyDone:
		return x.bodyErr == nil
	default:
	}
	wait := time.NewTimer(50 * time.Millisecond)
	defer wait.Stop()
	select {
	case <-x.bodyDone:
		return x.bodyErr == nil
	case <-wait.C:
		return false
	}
}

// abort closes the connection after a failure and ends the body
// goroutine, if any.
func (x *exchange) abort() {
	if x.stopWatch != nil {
		x.stopWatch()
	}
	x.conn.Close()
	if x.resp != nil {
		x.resp.Body.Close()
	}
	if x.bodyDone != nil {
		x.endBody()
	}
}

// endBody closes the connection, so that the body goroutine's next
// write to the sidecar fails, and waits for the goroutine: the client's
// body must not be read once the handler returns. A goroutine waiting
// for a client that stalls mid-upload holds the handler until the client
// sends more or goes away, as net/http would when it closes the body.
func (x *exchange) endBody() {
	x.conn.Close()
	<-x.bodyDone
}

// copyResponseHeader adds the answer's headers to dst, less hop-by-hop
// ones (those of hopHeaders and those named in Connection).
func copyResponseHeader(dst, src http.Header) {
	listed := connectionListed(src["Connection"])
	for k, vs := range src {
		if hopHeaders[k] || slices.Contains(listed, k) {
			continue
		}
		if prior, ok := dst[k]; ok {
			dst[k] = append(prior, vs...)
		} else {
			dst[k] = vs
		}
	}
}

// isEventStream reports whether a Content-Type is text/event-stream,
// parameters aside.
func isEventStream(contentType string) bool {
	base, _, _ := strings.Cut(contentType, ";")
	return strings.EqualFold(strings.TrimSpace(base), "text/event-stream")
}

// alive reports whether an idle connection is still open: a peek that
// does not wait finds neither an end of stream nor stray bytes.
func (c *upstreamConn) alive() bool {
	sc, ok := c.Conn.(syscall.Conn)
	if !ok {
		return true
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	open := true
	err = raw.Read(func(fd uintptr) bool {
		open = peekOpen(fd)
		return true
	})
	return err == nil && open
}
