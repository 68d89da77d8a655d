package processman

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/pocketbase/pocketbase/core"
	"github.com/processman/processman/config"
	"github.com/processman/processman/control"
	"github.com/processman/processman/gateway"
	"github.com/processman/processman/gateway/identity"
	"github.com/processman/processman/supervisor"
)

// JSSendResult is what $processman.send returns to a JS hook.
type JSSendResult struct {
	StatusCode int                 `json:"statusCode"`
	Headers    map[string][]string `json:"headers"`
	// Body is the answer as text.
	Body string `json:"body"`
	// JSON is the answer decoded, when it is JSON; null otherwise.
	JSON any `json:"json"`
}

// jsSendTimeout is how long $processman.send waits when the call does not
// say: the sidecar's readiness hold included.
const jsSendTimeout = 120 * time.Second

// maxJSAnswer bounds the answer a JS hook receives: it is held in memory.
const maxJSAnswer = 32 << 20

// JSBindings returns the $processman object for PocketBase's JS hooks
// (pb_hooks), to call routed processes the way Sidecar does for Go code.
// Bind it in jsvm's OnInit:
//
//	jsvm.MustRegister(app, jsvm.Config{
//		OnInit: func(vm *goja.Runtime) {
//			vm.Set("$processman", processman.JSBindings(app))
//		},
//	})
//
// In a hook:
//
//	const res = $processman.send({
//		process: "agent",               // a routed process
//		method:  "POST",                // default GET
//		path:    "/embed",              // the sidecar's own path
//		headers: {"content-type": "application/json"},
//		body:    JSON.stringify({text: e.record.get("text")}),
//		auth:    e.auth,                // optional: sign as this record (default: PocketBase itself)
//		timeout: 30,                    // seconds, default 120
//	})
//	res.statusCode; res.json; res.body; res.headers
//
// The actions of the control API, on a process or one instance
// ("worker:1"); each returns once done, and throws on failure (a reload
// whose new copy did not become ready, an unknown name):
//
//	$processman.reload("agent")   // a new copy takes over, no downtime
//	$processman.restart("worker:1")
//	$processman.stop("worker"); $processman.start("worker")
//
// and apply, which applies the edited config file (see Apply) and returns
// its changes, throwing with every error when the file has any:
//
//	const result = $processman.apply() // result.changes[i].process, .action
func JSBindings(app core.App) map[string]any {
	action := func(verb string, do func(*supervisor.Manager, context.Context, string) error) func(string) error {
		return func(name string) error {
			m := Manager(app)
			if m == nil {
				return fmt.Errorf("$processman.%s(%q): processes are not running: PocketBase is starting or stopping", verb, name)
			}
			ctx, cancel := context.WithTimeout(context.Background(), control.MaxActionWait)
			defer cancel()
			if err := do(m, ctx, name); err != nil {
				return fmt.Errorf("$processman.%s(%q): %w", verb, name, err)
			}
			return nil
		}
	}
	return map[string]any{
		"send": func(params map[string]any) (*JSSendResult, error) {
			return jsSend(app, params)
		},
		"start":   action("start", (*supervisor.Manager).Start),
		"stop":    action("stop", (*supervisor.Manager).Stop),
		"restart": action("restart", (*supervisor.Manager).Restart),
		"reload":  action("reload", (*supervisor.Manager).Reload),
		"apply": func() (ApplyResult, error) {
			ctx, cancel := context.WithTimeout(context.Background(), control.MaxActionWait)
			defer cancel()
			result, err := Apply(ctx, app)
			if errors.Is(err, ErrApplyInvalid) {
				return result, fmt.Errorf("$processman.apply(): %w:\n%s", err, config.Errors(result.Errors).Error())
			}
			if err != nil {
				return result, fmt.Errorf("$processman.apply(): %w", err)
			}
			return result, nil
		},
	}
}

func jsSend(app core.App, params map[string]any) (*JSSendResult, error) {
	name, _ := params["process"].(string)
	if name == "" {
		return nil, fmt.Errorf(`$processman.send: "process" is required: the name of a routed process`)
	}
	client, err := Sidecar(app, name)
	if err != nil {
		return nil, fmt.Errorf("$processman.send: %w", err)
	}
	method := "GET"
	if m, ok := params["method"].(string); ok && m != "" {
		method = strings.ToUpper(m)
	}
	path, _ := params["path"].(string)
	if path == "" {
		path = "/"
	}
	if !strings.HasPrefix(path, "/") {
		return nil, fmt.Errorf(`$processman.send: "path" must start with "/" (the sidecar's own path), got %q`, path)
	}
	timeout := jsSendTimeout
	if t, ok := number(params["timeout"]); ok && t > 0 {
		timeout = time.Duration(t * float64(time.Second))
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if rec, ok := params["auth"].(*core.Record); ok && rec != nil {
		ctx = gateway.WithCaller(ctx, identity.Identity{
			ID: rec.Id, Collection: rec.Collection().Name, Superuser: rec.IsSuperuser(),
		})
	}
	var body io.Reader
	if b, ok := params["body"]; ok && b != nil {
		switch v := b.(type) {
		case string:
			body = strings.NewReader(v)
		default:
			encoded, err := json.Marshal(v)
			if err != nil {
				return nil, fmt.Errorf(`$processman.send: "body": %w`, err)
			}
			body = strings.NewReader(string(encoded))
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+name+path, body)
	if err != nil {
		return nil, fmt.Errorf("$processman.send: %w", err)
	}
	if headers, ok := params["headers"].(map[string]any); ok {
		for k, v := range headers {
			req.Header.Set(k, fmt.Sprint(v))
		}
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("$processman.send to %q: %w", name, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxJSAnswer+1))
	if err != nil {
		return nil, fmt.Errorf("$processman.send to %q: reading the answer: %w", name, err)
	}
	if len(raw) > maxJSAnswer {
		return nil, fmt.Errorf("$processman.send to %q: the answer is over %d MB; call the sidecar from Go to stream it", name, maxJSAnswer>>20)
	}
	res := &JSSendResult{StatusCode: resp.StatusCode, Headers: resp.Header, Body: string(raw)}
	if len(raw) > 0 && json.Valid(raw) {
		_ = json.Unmarshal(raw, &res.JSON)
	}
	return res, nil
}

// number reads a JS number, which reaches Go as an int64 or a float64.
func number(v any) (float64, bool) {
	switch n := v.(type) {
	case int64:
		return float64(n), true
	case int:
		return float64(n), true
	case float64:
		return n, true
	}
	return 0, false
}
