package processman_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/hook"
	"github.com/processman/processman"
	"github.com/processman/processman/gateway"
	"github.com/processman/processman/internal/testutil"
)

// frontDoorServer serves a public route /api/side, plus the route GET
// /api/side/special of "user code" inside its prefix; extra binds more.
// front reports whether the gateway's front door was mounted.
func frontDoorServer(t *testing.T, extra func(e *core.ServeEvent)) (s *server, front *bool) {
	t.Helper()
	front = new(bool)
	s = startServer(t, processman.Config{}, map[string]string{
		"side.mjs":          echoSidecar(t),
		"pb_processes.json": `{"processes": [{"name": "side", "script": "side.mjs", "route": "/api/side", "auth": "public"}]}`,
	}, func(app core.App) {
		app.OnServe().Bind(&hook.Handler[*core.ServeEvent]{
			Priority: -100, // before processman's: sees the handler it leaves
			Func: func(e *core.ServeEvent) error {
				e.Router.GET("/api/side/special", func(e *core.RequestEvent) error {
					return e.String(http.StatusOK, "user route")
				})
				if extra != nil {
					extra(e)
				}
				if err := e.Next(); err != nil {
					return err
				}
				_, *front = e.Server.Handler.(*gateway.Front)
				return nil
			},
		})
	})
	p := s.process("side")
	testutil.WaitFor(t, "side ready", 15*time.Second, func() bool { return p.Status().Ready })
	return s, front
}

func do(t *testing.T, method, url string, header map[string]string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func TestGatewayFrontDoorKeepsPocketBaseBehaviour(t *testing.T) {
	s, front := frontDoorServer(t, nil)
	if !*front {
		t.Fatal("the front door is not mounted")
	}
	t.Run("forwarded with PocketBase's headers", func(t *testing.T) {
		resp, body := do(t, "GET", s.url+"/api/side/x", nil)
		if resp.StatusCode != 200 || !strings.Contains(body, `"url":"/x"`) {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
		if resp.Header.Get("X-Frame-Options") != "SAMEORIGIN" || resp.Header.Get("X-Content-Type-Options") != "nosniff" ||
			!strings.Contains(strings.Join(resp.Header.Values("Vary"), ","), "Origin") {
			t.Errorf("headers %v", resp.Header)
		}
	})
	t.Run("a more specific route of PocketBase's wins", func(t *testing.T) {
		if _, body := do(t, "GET", s.url+"/api/side/special", nil); body != "user route" {
			t.Errorf("got %q", body)
		}
	})
	t.Run("CORS preflight answered by PocketBase", func(t *testing.T) {
		resp, body := do(t, "OPTIONS", s.url+"/api/side/x", map[string]string{"Origin": "https://app.example", "Access-Control-Request-Method": "POST"})
		if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") == "" || body != "" {
			t.Errorf("%d %v %q", resp.StatusCode, resp.Header, body)
		}
	})
	t.Run("CORS headers on a cross-origin call", func(t *testing.T) {
		resp, body := do(t, "GET", s.url+"/api/side/x", map[string]string{"Origin": "https://app.example"})
		if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "*" || !strings.Contains(body, `"url":"/x"`) {
			t.Errorf("%d %v %q", resp.StatusCode, resp.Header, body)
		}
	})
	t.Run("unclean path redirected as by ServeMux", func(t *testing.T) {
		resp, _ := do(t, "GET", s.url+"/api/side/a/../b", nil)
		if resp.StatusCode < 300 || resp.StatusCode > 399 || resp.Header.Get("Location") != "/api/side/b" {
			t.Errorf("%d %q", resp.StatusCode, resp.Header.Get("Location"))
		}
	})
	t.Run("rate limits apply when on", func(t *testing.T) {
		settings := s.app.Settings()
		settings.RateLimits.Enabled = true
		settings.RateLimits.Rules = []core.RateLimitRule{{Label: "/api/side/", MaxRequests: 2, Duration: 60}}
		if err := s.app.Save(settings); err != nil {
			t.Fatal(err)
		}
		defer func() {
			settings := s.app.Settings()
			settings.RateLimits.Enabled = false
			_ = s.app.Save(settings)
		}()
		var statuses []int
		for i := 0; i < 3; i++ {
			resp, _ := do(t, "GET", s.url+"/api/side/x", nil)
			statuses = append(statuses, resp.StatusCode)
		}
		if statuses[0] != 200 || statuses[2] != http.StatusTooManyRequests {
			t.Errorf("statuses %v, want 200 ... 429", statuses)
		}
	})
}

func TestGatewayFrontDoorStepsAsideForOtherMiddlewares(t *testing.T) {
	seen := make(chan string, 100)
	s, front := frontDoorServer(t, func(e *core.ServeEvent) {
		e.Router.BindFunc(func(e *core.RequestEvent) error {
			seen <- e.Request.URL.Path
			return e.Next()
		})
	})
	if *front {
		t.Error("the front door is mounted over a router with a middleware of someone else's")
	}
	if resp, _ := do(t, "GET", s.url+"/api/side/x", nil); resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	for got := range seen {
		if got == "/api/side/x" {
			break // and not before the call, as the health checks
		}
	}
}
