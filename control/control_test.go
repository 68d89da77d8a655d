package control

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pocketbase/pocketbase/apis"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/router"
	"github.com/processman/processman/config"
	"github.com/processman/processman/internal/testutil"
	"github.com/processman/processman/launch"
	"github.com/processman/processman/logs"
	"github.com/processman/processman/metrics"
	"github.com/processman/processman/supervisor"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// testServer is a real PocketBase serving the API over a real Manager.
type testServer struct {
	url       string
	app       *core.BaseApp
	manager   *supervisor.Manager
	superuser string // token
	user      string // token of an ordinary user
	dir       string
}

func startTestServer(t *testing.T, procs ...config.Process) *testServer {
	t.Helper()
	dir := t.TempDir()
	app := testutil.NewApp(t, dir)
	s := &testServer{app: app, manager: supervisor.NewManager(), dir: dir}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = s.manager.Shutdown(ctx)
	})
	for _, cfg := range procs {
		if cfg.Cwd == "" {
			cfg.Cwd = dir
		}
		out, err := logs.NewOutput(logs.Options{Process: cfg.Name, Instances: cfg.Instances, RingLines: 200})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = out.Close() })
		for i := range max(cfg.Instances, 1) {
			p := supervisor.New(cfg, supervisor.Options{
				Instance: i,
				Resolve: func(c config.Process, _ int) (*launch.Command, error) {
					return launch.Resolve(c, os.Environ(), map[string]string{"PB_PROCESS_NAME": c.Name, "PB_GATEWAY_SECRET": "abc123",
						"PB_INSTANCE": fmt.Sprint(i)})
				},
				Spawner: s.manager.Spawner(),
				Output:  out,
			})
			if err := s.manager.Add(p); err != nil {
				t.Fatal(err)
			}
		}
	}

	api := &API{Manager: func() *supervisor.Manager { return s.manager }, Sampler: metrics.NewSampler()}
	app.OnServe().BindFunc(func(e *core.ServeEvent) error {
		api.Bind(e.Router)
		return e.Next()
	})
	s.superuser, _ = testutil.AuthToken(t, app, core.CollectionNameSuperusers)
	s.user, _ = testutil.AuthToken(t, app, "users")
	s.url = testutil.Serve(t, app).URL
	return s
}

// do sends a request and returns the status and body.
func (s *testServer) do(t *testing.T, method, path, tok string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, s.url+path, nil)
	if tok != "" {
		req.Header.Set("Authorization", tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

// schema compiles a schema of the OpenAPI document.
func schema(t *testing.T, name string) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(OpenAPI))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("openapi.json", doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("openapi.json#/components/schemas/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return sch
}

// valid checks body against a schema of the OpenAPI document.
func valid(t *testing.T, name string, body []byte) {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("%s: %v: %s", name, err, body)
	}
	if err := schema(t, name).Validate(v); err != nil {
		t.Errorf("response does not match the OpenAPI %s schema: %v\n%s", name, err, body)
	}
}

const ticker = `i=0; while :; do i=$((i+1)); echo "tick $i"; sleep 0.2; done`

func tickerProcess(name string) config.Process {
	return config.Process{Name: name, Script: "sh", Args: []string{"-c", ticker},
		Env: map[string]string{"MODE": "test", "OPENAI_API_KEY": "sk-very-secret", "DATABASE_URL": "postgres://app:hunter2@db/app"}}
}

func waitOnline(t *testing.T, s *testServer, name string) supervisor.Status {
	t.Helper()
	var st supervisor.Status
	testutil.WaitFor(t, name+" online", 20*time.Second, func() bool {
		st = s.manager.Get(name).Status()
		return st.State == supervisor.Online
	})
	return st
}

func TestAuthOnEveryEndpoint(t *testing.T) {
	s := startTestServer(t, tickerProcess("app"))
	for _, rt := range (&API{}).routes() {
		path := Prefix + strings.ReplaceAll(rt.path, "{name}", "app")
		t.Run(rt.method+" "+rt.path, func(t *testing.T) {
			if code, body := s.do(t, rt.method, path, ""); code != http.StatusUnauthorized {
				t.Errorf("no token: %d %s, want 401", code, body)
			}
			if code, body := s.do(t, rt.method, path, s.user); code != http.StatusForbidden {
				t.Errorf("user token: %d %s, want 403", code, body)
			}
			if code, body := s.do(t, rt.method, path, "not-a-token"); code != http.StatusUnauthorized {
				t.Errorf("bad token: %d %s, want 401", code, body)
			}
			if !strings.Contains(rt.path, "{name}") {
				return
			}
			unknown := Prefix + strings.ReplaceAll(rt.path, "{name}", "nope")
			code, body := s.do(t, rt.method, unknown, s.superuser)
			if code != http.StatusNotFound || !strings.Contains(string(body), `No process named \"nope\"`) {
				t.Errorf("unknown process: %d %s, want 404 naming it", code, body)
			}
			valid(t, "Error", body)
		})
	}
}

func TestListAndDescribe(t *testing.T) {
	s := startTestServer(t, tickerProcess("app"), config.Process{Name: "off", Script: "sleep", Args: []string{"9"}, Disabled: true})
	st := waitOnline(t, s, "app")

	code, body := s.do(t, "GET", "/api/pm/list", s.superuser)
	if code != 200 {
		t.Fatalf("list: %d %s", code, body)
	}
	schemaOf := schema(t, "Summary")
	var list struct{ Items []json.RawMessage }
	if err := json.Unmarshal(body, &list); err != nil || len(list.Items) != 2 {
		t.Fatalf("list: %v %s", err, body)
	}
	for _, item := range list.Items {
		v, _ := jsonschema.UnmarshalJSON(bytes.NewReader(item))
		if err := schemaOf.Validate(v); err != nil {
			t.Errorf("list item does not match Summary: %v\n%s", err, item)
		}
	}
	var app, off Summary
	_ = json.Unmarshal(list.Items[0], &app)
	_ = json.Unmarshal(list.Items[1], &off)
	if app.Name != "app" || app.State != "online" || app.Pid != st.Pid || !app.Ready {
		t.Errorf("app: %+v, want online with pid %d", app, st.Pid)
	}
	if app.Memory == 0 || app.TreeSize < 1 {
		t.Errorf("app: memory %d, tree %d: want the tree's metrics", app.Memory, app.TreeSize)
	}
	if off.State != "stopped" || off.Pid != 0 || !off.Disabled {
		t.Errorf("off: %+v, want stopped and disabled", off)
	}

	code, body = s.do(t, "GET", "/api/pm/app", s.superuser)
	if code != 200 {
		t.Fatalf("describe: %d %s", code, body)
	}
	valid(t, "Detail", body)
	var d Detail
	_ = json.Unmarshal(body, &d)
	if len(d.Command) != 3 || !strings.HasSuffix(d.Command[0], "sh") || d.Cwd != s.dir {
		t.Errorf("command %q, cwd %q", d.Command, d.Cwd)
	}
	env := map[string]EnvVar{}
	for _, v := range d.Env {
		env[v.Name] = v
	}
	want := map[string]EnvVar{
		"MODE":              {Name: "MODE", Value: "test", Source: SourceConfig},
		"OPENAI_API_KEY":    {Name: "OPENAI_API_KEY", Value: Redacted, Source: SourceConfig, Redacted: true},
		"DATABASE_URL":      {Name: "DATABASE_URL", Value: "postgres://app:" + Redacted + "@db/app", Source: SourceConfig, Redacted: true},
		"PB_GATEWAY_SECRET": {Name: "PB_GATEWAY_SECRET", Value: Redacted, Source: SourceProcessman, Redacted: true},
		"PB_PROCESS_NAME":   {Name: "PB_PROCESS_NAME", Value: "app", Source: SourceProcessman},
	}
	for name, w := range want {
		if env[name] != w {
			t.Errorf("env %s: %+v, want %+v", name, env[name], w)
		}
	}
	if _, leaked := env["HOME"]; leaked || d.Inherited == 0 {
		t.Errorf("inherited variables are counted, not shown: HOME shown %v, inherited %d", leaked, d.Inherited)
	}
	for _, secret := range []string{"sk-very-secret", "hunter2", "abc123"} {
		if bytes.Contains(body, []byte(secret)) {
			t.Errorf("describe leaks %q", secret)
		}
	}
}

func TestActions(t *testing.T) {
	s := startTestServer(t, tickerProcess("app"))
	first := waitOnline(t, s, "app").Pid

	code, body := s.do(t, "POST", "/api/pm/app/restart", s.superuser)
	if code != 200 {
		t.Fatalf("restart: %d %s", code, body)
	}
	valid(t, "Summary", body)
	var after Summary
	_ = json.Unmarshal(body, &after)
	if after.State != "online" || after.Pid == 0 || after.Pid == first || after.Restarts != 1 {
		t.Errorf("after restart: %+v, want online with a new pid (was %d) and 1 restart", after, first)
	}

	code, body = s.do(t, "POST", "/api/pm/app/stop", s.superuser)
	_ = json.Unmarshal(body, &after)
	if code != 200 || after.State != "stopped" || after.Pid != 0 || after.LastExit == nil || !after.LastExit.Requested {
		t.Errorf("stop: %d %s", code, body)
	}
	code, body = s.do(t, "POST", "/api/pm/app/start", s.superuser)
	_ = json.Unmarshal(body, &after)
	if code != 200 || after.State != "online" || after.Pid == 0 {
		t.Errorf("start: %d %s", code, body)
	}
}

func TestActionOnInvalidProcessIsBadRequest(t *testing.T) {
	s := startTestServer(t)
	out, _ := logs.NewOutput(logs.Options{Process: "broken"})
	t.Cleanup(func() { _ = out.Close() })
	p := supervisor.New(config.Process{Name: "broken", Script: "x"}, supervisor.Options{
		Spawner: s.manager.Spawner(), Output: out, ConfigError: "invalid config: script x does not exist",
	})
	if err := s.manager.Add(p); err != nil {
		t.Fatal(err)
	}
	code, body := s.do(t, "POST", "/api/pm/broken/start", s.superuser)
	if code != 400 || !strings.Contains(string(body), "script x does not exist") || !strings.Contains(string(body), `"state":"errored"`) {
		t.Errorf("start of an invalid entry: %d %s, want 400 with the reason and state", code, body)
	}
}

func TestLogs(t *testing.T) {
	s := startTestServer(t, tickerProcess("app"))
	waitOnline(t, s, "app")
	testutil.WaitFor(t, "3 ticks", 10*time.Second, func() bool { return len(s.manager.Get("app").Output().Tail(0)) >= 3 })

	code, body := s.do(t, "GET", "/api/pm/app/logs?lines=2", s.superuser)
	var got struct{ Items []Line }
	if err := json.Unmarshal(body, &got); code != 200 || err != nil || len(got.Items) != 2 {
		t.Fatalf("lines=2: %d %s", code, body)
	}
	if !strings.HasPrefix(got.Items[1].Text, "tick ") || got.Items[1].Stream != "stdout" || got.Items[1].Pid == 0 {
		t.Errorf("last line %+v", got.Items[1])
	}
	for _, bad := range []string{"lines=-1", "lines=ten", "follow=maybe"} {
		code, body := s.do(t, "GET", "/api/pm/app/logs?"+bad, s.superuser)
		param, _, _ := strings.Cut(bad, "=")
		if code != 400 || !strings.Contains(string(body), `Invalid \"`+param+`\"`) {
			t.Errorf("%s: %d %s, want 400 naming %q", bad, code, body, param)
		}
	}
}

// sseEvents reads server-sent events from body into a channel.
func sseEvents(body io.Reader) <-chan [2]string {
	ch := make(chan [2]string, 100)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(body)
		var event string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				ch <- [2]string{event, strings.TrimPrefix(line, "data: ")}
			}
		}
	}()
	return ch
}

func openStream(t *testing.T, s *testServer, path string) <-chan [2]string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", s.url+path, nil)
	req.Header.Set("Authorization", s.superuser)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("%s: %d %s", path, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return sseEvents(resp.Body)
}

func next(t *testing.T, events <-chan [2]string, what string) [2]string {
	t.Helper()
	select {
	case ev, ok := <-events:
		if !ok {
			t.Fatalf("stream ended while waiting for %s", what)
		}
		return ev
	case <-time.After(15 * time.Second):
		t.Fatalf("no %s within 15 s", what)
	}
	return [2]string{}
}

func TestLogFollowDeliversNewLines(t *testing.T) {
	s := startTestServer(t, tickerProcess("app"))
	waitOnline(t, s, "app")
	testutil.WaitFor(t, "2 ticks", 10*time.Second, func() bool { return len(s.manager.Get("app").Output().Tail(0)) >= 2 })

	events := openStream(t, s, "/api/pm/app/logs?lines=1&follow=true")
	var numbers []int
	for len(numbers) < 4 {
		ev := next(t, events, "a log line")
		var l Line
		if ev[0] != "line" || json.Unmarshal([]byte(ev[1]), &l) != nil {
			t.Fatalf("event %q", ev)
		}
		var n int
		if _, err := fmt.Sscanf(l.Text, "tick %d", &n); err != nil {
			t.Fatalf("line %q", l.Text)
		}
		numbers = append(numbers, n)
	}
	// One line of backlog, then every new line once and in order.
	for i := 1; i < len(numbers); i++ {
		if numbers[i] != numbers[i-1]+1 {
			t.Errorf("ticks %v: want consecutive numbers, no gap and no repeat", numbers)
		}
	}
}

func TestEventsStreamStateChanges(t *testing.T) {
	s := startTestServer(t, tickerProcess("app"))
	waitOnline(t, s, "app")
	events := openStream(t, s, "/api/pm/events")
	var first Summary
	ev := next(t, events, "the initial state")
	if err := json.Unmarshal([]byte(ev[1]), &first); ev[0] != "process" || err != nil || first.State != "online" {
		t.Fatalf("first event %q, want the current state (online)", ev)
	}
	valid(t, "Summary", []byte(ev[1]))

	go func() { _ = s.manager.Get("app").Restart(context.Background()) }()
	var states []string
	for len(states) == 0 || states[len(states)-1] != "online" {
		var sum Summary
		_ = json.Unmarshal([]byte(next(t, events, "a state change")[1]), &sum)
		states = append(states, sum.State)
	}
	if strings.Join(states, ",") != "stopping,stopped,starting,online" {
		t.Errorf("restart streamed states %v", states)
	}
}

func TestNotServing(t *testing.T) {
	api := &API{Manager: func() *supervisor.Manager { return nil }}
	for _, rt := range api.routes() {
		if rt.path == "/openapi.json" {
			continue
		}
		e := &core.RequestEvent{}
		e.Request = httptest.NewRequest(rt.method, Prefix+strings.ReplaceAll(rt.path, "{name}", "app"), nil)
		e.Request.SetPathValue("name", "app")
		e.Response = httptest.NewRecorder()
		var apiErr *router.ApiError
		if err := rt.handler(e); !errors.As(err, &apiErr) || apiErr.Status != http.StatusServiceUnavailable {
			t.Errorf("%s %s while not serving: %v, want 503", rt.method, rt.path, err)
		}
	}
}

func TestOpenAPIMatchesRoutes(t *testing.T) {
	var doc struct {
		Paths map[string]map[string]json.RawMessage
	}
	if err := json.Unmarshal(OpenAPI, &doc); err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for path, ops := range doc.Paths {
		for method := range ops {
			documented[strings.ToUpper(method)+" "+path] = true
		}
	}
	served := map[string]bool{}
	r, _ := apis.NewRouter(testutil.NewApp(t, t.TempDir()))
	api := &API{}
	api.Bind(r)
	for _, rt := range api.routes() {
		served[rt.method+" "+Prefix+rt.path] = true
		if !r.HasRoute(rt.method, Prefix+rt.path) {
			t.Errorf("%s %s is not on the router", rt.method, Prefix+rt.path)
		}
	}
	for k := range served {
		if !documented[k] {
			t.Errorf("%s is served but not in openapi.json", k)
		}
	}
	for k := range documented {
		if !served[k] {
			t.Errorf("%s is in openapi.json but not served", k)
		}
	}
	for _, name := range config.ReservedNames {
		if !served["GET "+Prefix+"/"+name] && !served["POST "+Prefix+"/"+name] {
			t.Errorf("reserved name %q is not a route", name)
		}
	}
}
