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
		return e.Blob(http.StatusOK, "application/json", linesAnswer(tail(out, n), MaxLogsAnswerBytes))
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

// MaxLogsAnswerBytes caps the JSON answer of the logs endpoint (without
// follow): the newest lines that fit are given, and "truncated" says how
// many older ones were left out. Lines of hostile output (long, escaped
// in JSON six bytes to one) must not make one request cost gigabytes.
const MaxLogsAnswerBytes = 4 << 20

// linesAnswer encodes {"items": [...], "truncated": n} with the newest of
// lines that fit in max bytes.
func linesAnswer(lines []logs.Line, max int) []byte {
	encoded := make([][]byte, 0, len(lines))
	size := len(`{"items":[],"truncated":0000000000}`)
	for i := len(lines) - 1; i >= 0; i-- {
		b, _ := json.Marshal(lineOf(lines[i]))
		if size+len(b)+1 > max {
			break
		}
		size += len(b) + 1
		encoded = append(encoded, b)
	}
	out := make([]byte, 0, size)
	out = append(out, `{"items":[`...)
	for i := len(encoded) - 1; i >= 0; i-- {
		out = append(out, encoded[i]...)
		if i > 0 {
			out = append(out, ',')
		}
	}
	out = append(out, `],"truncated":`...)
	out = strconv.AppendInt(out, int64(len(lines)-len(encoded)), 10)
	return append(out, '}')
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
