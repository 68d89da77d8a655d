package control

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pocketbase/pocketbase/core"
	"github.com/processman/processman/logs"
	"github.com/processman/processman/supervisor"
)

// keepAlive is how often an idle event stream gets a comment line, so
// that proxies and clients see the connection is alive.
const keepAlive = 15 * time.Second

// logs answers recent lines, or with follow=true streams them and every
// new line as server-sent events.
func (a *API) logs(e *core.RequestEvent) error {
	procs, err := a.process(e)
	if err != nil {
		return err
	}
	p := procs[0]
	// "api:1" names one instance of several: only its lines.
	keep := func(logs.Line) bool { return true }
	if strings.Contains(e.Request.PathValue("name"), ":") {
		instance := p.Instance()
		keep = func(l logs.Line) bool { return l.Instance == instance }
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
		return e.Blob(http.StatusOK, "application/json", linesAnswer(lastLines(out, n, keep), MaxLogsAnswerBytes))
	}

	backlogLines := n
	if n > 0 && strings.Contains(e.Request.PathValue("name"), ":") {
		backlogLines = math.MaxInt // filtered below
	}
	backlog, lines, cancel := out.TailAndSubscribe(backlogLines, 0)
	defer cancel()
	s, err := startStream(e)
	if err != nil {
		return err
	}
	for _, l := range lastOf(backlog, n, keep) {
		s.send("line", lineOf(l))
	}
	return relay(e, s, lines, func(l logs.Line) {
		if keep(l) {
			s.send("line", lineOf(l))
		}
	})
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

// lastLines returns the last n lines of out that keep accepts.
func lastLines(out *logs.Output, n int, keep func(logs.Line) bool) []logs.Line {
	if n == 0 {
		return []logs.Line{}
	}
	return lastOf(out.Tail(0), n, keep)
}

// lastOf returns the last n of lines that keep accepts, in order.
func lastOf(lines []logs.Line, n int, keep func(logs.Line) bool) []logs.Line {
	kept := make([]logs.Line, 0, min(n, len(lines)))
	for i := len(lines) - 1; i >= 0 && len(kept) < n; i-- {
		if keep(lines[i]) {
			kept = append(kept, lines[i])
		}
	}
	slices.Reverse(kept)
	return kept
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
	for _, name := range m.Names() {
		s.send("process", eventSummary(m.Instances(name), nil))
	}
	return relay(e, s, changes, func(ev supervisor.Event) {
		if procs := m.Instances(ev.Status.Name); len(procs) > 0 {
			s.send("process", eventSummary(procs, &ev.Status))
		}
	})
}

// eventSummary is the summary of a process's instances for the events
// stream, with changed (if set) as its instance's status, and without
// CPU and memory: they are sampled when the list is asked for, not on
// every state change.
func eventSummary(procs []*supervisor.Process, changed *supervisor.Status) Summary {
	statuses := make([]supervisor.Status, len(procs))
	for i, p := range procs {
		statuses[i] = p.Status()
		if changed != nil && changed.Instance == i {
			statuses[i] = *changed
		}
	}
	return summaryOf(statuses, procs[0].Config(), nil)
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
