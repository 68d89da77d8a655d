package asynclog

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"
)

// slowHandler takes delay per record, as a database write would.
type slowHandler struct {
	delay time.Duration
	log   *records
	attrs []slog.Attr
}

type records struct {
	mu  sync.Mutex
	got []string
}

func newSlow(delay time.Duration) *slowHandler { return &slowHandler{delay: delay, log: &records{}} }

func (h *slowHandler) handled() []string {
	h.log.mu.Lock()
	defer h.log.mu.Unlock()
	return append([]string{}, h.log.got...)
}

func (h *slowHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *slowHandler) Handle(_ context.Context, r slog.Record) error {
	time.Sleep(h.delay)
	msg := r.Message
	for _, a := range h.attrs {
		msg += " " + a.String()
	}
	h.log.mu.Lock()
	defer h.log.mu.Unlock()
	h.log.got = append(h.log.got, msg)
	return nil
}
func (h *slowHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &slowHandler{delay: h.delay, log: h.log, attrs: append(append([]slog.Attr{}, h.attrs...), attrs...)}
}
func (h *slowHandler) WithGroup(string) slog.Handler { return h }

func TestLoggingNeverWaitsForTheHandler(t *testing.T) {
	inner := newSlow(20 * time.Millisecond)
	h := New(inner, 100)
	logger := slog.New(h)
	start := time.Now()
	for i := 0; i < 10; i++ {
		logger.Info("record")
	}
	if took := time.Since(start); took > 20*time.Millisecond {
		t.Errorf("10 records took %v to log: the caller waited for the handler", took)
	}
	if !h.Flush(5 * time.Second) {
		t.Fatal("not flushed")
	}
	if n := len(inner.handled()); n != 10 {
		t.Errorf("%d records handled, want 10", n)
	}
}

func TestFullQueueDropsAndCounts(t *testing.T) {
	inner := newSlow(100 * time.Millisecond)
	h := New(inner, 2)
	logger := slog.New(h)
	for i := 0; i < 20; i++ {
		logger.Info("record")
	}
	if d := h.Dropped(); d < 15 {
		t.Errorf("dropped %d of 20 with room for 2 and one being handled", d)
	}
	h.Flush(5 * time.Second)
}

func TestAttrsReachTheirHandler(t *testing.T) {
	inner := newSlow(0)
	h := New(inner, 10)
	slog.New(h).With("process", "agent").Info("started")
	if !h.Flush(time.Second) {
		t.Fatal("the derived handler's record was not flushed with the queue")
	}
	if got := inner.handled(); len(got) != 1 || got[0] != "started process=agent" {
		t.Errorf("handled %q", got)
	}
}
