// Package asynclog hands log records to their handler on a goroutine of
// its own. PocketBase's logger writes its batch of records to the log
// database in whichever goroutine adds the 200th record; processman's
// records (a process started, a request through a route) must not make
// a supervisor, a gateway request or a control action wait for that
// write.
package asynclog

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// item is one record and the handler it is for (which carries the
// attributes and groups of its logger).
type item struct {
	h slog.Handler
	r slog.Record
}

// queue is the records waiting, shared by a handler and those derived
// from it with WithAttrs and WithGroup.
type queue struct {
	items   chan item
	dropped atomic.Uint64
	wg      sync.WaitGroup // items handed over, not yet handled
	done    chan struct{}
}

// Handler is a slog.Handler that queues records for its inner handler.
type Handler struct {
	inner slog.Handler
	q     *queue
}

// New returns a handler in front of inner with room for size records; a
// record that finds the queue full is dropped and counted, never waited
// for.
func New(inner slog.Handler, size int) *Handler {
	q := &queue{items: make(chan item, size), done: make(chan struct{})}
	go func() {
		defer close(q.done)
		for it := range q.items {
			_ = it.h.Handle(context.Background(), it.r)
			q.wg.Done()
		}
	}()
	return &Handler{inner: inner, q: q}
}

// Enabled reports what the inner handler does.
func (h *Handler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.inner.Enabled(ctx, level)
}

// Handle queues r; it never blocks.
func (h *Handler) Handle(_ context.Context, r slog.Record) error {
	h.q.wg.Add(1)
	select {
	case h.q.items <- item{h: h.inner, r: r.Clone()}:
	default:
		h.q.wg.Done()
		h.q.dropped.Add(1)
	}
	return nil
}

// WithAttrs returns a handler with attrs that shares the queue.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &Handler{inner: h.inner.WithAttrs(attrs), q: h.q}
}

// WithGroup returns a handler with a group that shares the queue.
func (h *Handler) WithGroup(name string) slog.Handler {
	return &Handler{inner: h.inner.WithGroup(name), q: h.q}
}

// Dropped counts the records the queue had no room for.
func (h *Handler) Dropped() uint64 { return h.q.dropped.Load() }

// Flush waits, up to timeout, until every record queued before the call
// has been handled.
func (h *Handler) Flush(timeout time.Duration) bool {
	done := make(chan struct{})
	go func() {
		h.q.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return true
	case <-time.After(timeout):
		return false
	}
}
