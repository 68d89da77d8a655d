package gateway_test

import (
	"github.com/pocketbase/pocketbase"
	"github.com/pocketbase/pocketbase/core"
	"github.com/processman/processman/gateway"
)

// Routing a prefix of PocketBase to a sidecar that some other code
// starts: the gateway picks the socket, signs each caller's identity with
// the per-boot secret and holds requests until the sidecar is ready.
// (processman's plugin does this for every routed process.)
func ExampleRoutes() {
	app := pocketbase.New()
	app.OnServe().BindFunc(func(se *core.ServeEvent) error {
		routes, err := gateway.NewRoutes(gateway.RoutesConfig{Logger: app.Logger()})
		if err != nil {
			return err
		}
		target, err := routes.Listen("agent", "unix")
		if err != nil {
			return err
		}
		// start the sidecar here with PB_SOCKET=target.Address and
		// PB_GATEWAY_SECRET=routes.Secret()
		routes.Add(se.Router, gateway.Route{
			Process: "agent",
			Prefix:  "/api/agent",
			Authorize: func(e *core.RequestEvent) error {
				if e.Auth == nil {
					return e.UnauthorizedError("Sign in first.", nil)
				}
				return nil
			},
			LogRequest: func(status int) bool { return status >= 400 },
		}, gateway.Backend{Target: target})
		app.OnTerminate().BindFunc(func(e *core.TerminateEvent) error {
			_ = routes.Close()
			return e.Next()
		})
		return se.Next()
	})
}

// Calling a routed sidecar from Go code, signed as PocketBase itself.
func ExampleRoutes_Client() {
	var routes *gateway.Routes // from NewRoutes, with the "agent" route added
	client, err := routes.Client("agent")
	if err != nil {
		return
	}
	resp, err := client.Get("http://agent/status") // the sidecar's own path
	if err == nil {
		resp.Body.Close()
	}
}
