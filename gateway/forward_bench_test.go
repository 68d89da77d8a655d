package gateway

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkForward is one GET through forward to a real sidecar on a Unix
// socket, with the client side left out (an in-memory ResponseWriter):
// allocations and CPU of the gateway's own part of a request.
func BenchmarkForward(b *testing.B) {
	body := []byte(`{"ok":true,"service":"gateway-upstream","pad":"xxxx"}`)
	up := startUpstream(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	}))
	p := &Proxy{Process: "side", Route: "/api/side", Backends: []Backend{{Target: Target{Network: "unix", Address: up.path}}}, Secret: testSecret}
	p.Init()
	defer p.closeIdle()
	req := httptest.NewRequest("GET", "http://pb.example/api/side/json?x=1", nil)
	req.Header.Set("User-Agent", "bench")
	req.Header.Set("Accept", "*/*")
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		w := httptest.NewRecorder()
		if err := p.forward(w, req, p.backends[0], testCaller); err != nil || w.Code != 200 {
			b.Fatal(err, w.Code)
		}
	}
}
