package control

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/pocketbase/pocketbase/core"
	"github.com/processman/processman/logs"
	"github.com/processman/processman/metrics"
	"github.com/processman/processman/supervisor"
)

// keepAlive is how often an idle event stream gets a comment line, so
// that proxies and clients see the connection is alive.
const keepAlive = 15 * time.Second

// logs answers recent lines, or with follow=true streams them and every
// new line as server-sent events.
func (a *API) logs(e *core.RequestEvent) error {
	p, err := a.process(e)
	if err != nil {
		return err
	}
	query := e.Request.URL.Query()
	n := DefaultLogLines
	if v := query.Get("lines"); v != "" {
		n, err = strconv.Atoi(v)
		if err != nil || n < 0 {
			return e.BadRequestError(`Invalid "lines": want a whole number of lines, 0 or more (e.g. lines=200).`,
				map[string]any{"lines": v})
		}
	}
	follow := false
	if v := query.Get("follow"); v != "" {
		follow, err = strconv.ParseBool(v)
		if err != nil {
			return e.BadRequestError(`Invalid "follow": want true or false.`, map[string]any{"follow": v})
		}
	}
	out := p.Output()
	if !follow {
		return e.JSON(http.StatusOK, map[string]any{"items": linesOf(tail(out, n))})
	}

	backlog, lines, cancel := out.TailAndSubscribe(n, 0)
	defer cancel()
	s, err := startStream(e)
	if err != nil {
		return err
	}
	for _, l := range backlog {
		s.send("line", lineOf(l))
	}
	return relay(e, s, lines, func(l logs.Line) { s.send("line", lineOf(l)) })
}

func tail(out *logs.Output, n int) []logs.Line {
	if n == 0 {
		return []logs.Line{}
	}
	return out.Tail(n)
}

// events streams the state changes of every process as server-sent
// events, starting with the current state of each.
func (a *API) events(e *core.RequestEvent) error {
	m, err := a.manager(e)
	if err != nil {
		return err
	}
	changes, cancel := m.Subscribe(0)
	defer cancel()
	s, err := startStream(e)
	if err != nil {
		return err
	}
	for _, p := range m.List() {
		s.send("process", summaryOf(p.Status(), p.Config(), zeroUsage))
	}
	return relay(e, s, changes, func(ev supervisor.Event) {
		if p := m.Get(ev.Status.Name); p != nil {
			s.send("process", summaryOf(ev.Status, p.Config(), zeroUsage))
		}
	})
}

// relay sends what arrives on ch until it is closed (PocketBase stops)
// or the client goes away, flushing once ch is drained and keeping an
// idle stream alive.
func relay[T any](e *core.RequestEvent, s *stream, ch <-chan T, send func(T)) error {
	s.flush()
	ticker := time.NewTicker(keepAlive)
	defer ticker.Stop()
	for {
		select {
		case v, open := <-ch:
			if !open {
				return nil
			}
			send(v)
			if len(ch) == 0 {
				s.flush()
			}
		case <-ticker.C:
			s.comment()
		case <-e.Request.Context().Done():
			return nil
		}
	}
}

// zeroUsage leaves CPU and memory out of events: they are sampled when
// the list is asked for, not on every state change.
var zeroUsage metrics.Usage

// stream writes server-sent events.
type stream struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

func startStream(e *core.RequestEvent) (*stream, error) {
	rc := http.NewResponseController(e.Response)
	// PocketBase's server ends every response after 5 minutes; a stream
	// lasts as long as the client wants it.
	_ = rc.SetWriteDeadline(time.Time{})
	h := e.Response.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	e.Response.WriteHeader(http.StatusOK)
	s := &stream{w: e.Response, rc: rc}
	s.comment()
	return s, nil
}

func (s *stream) send(event string, data any) {
	b, err := json.Marshal(data)
	if err != nil {
		return
	}
	fmt.Fprintf(s.w, "event: %s\ndata: %s\n\n", event, b)
}

func (s *stream) comment() {
	_, _ = s.w.Write([]byte(": keep-alive\n\n"))
	s.flush()
}

func (s *stream) flush() { _ = s.rc.Flush() }
