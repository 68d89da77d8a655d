package gateway

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// instance is one copy behind a route: a real server on its own socket
// that says who answered, and whether the gateway may use it.
type instance struct {
	name   string
	server *upstreamServer
	ready  atomic.Bool
	served atomic.Int32
	delay  time.Duration
}

func startInstances(t *testing.T, delays ...time.Duration) []*instance {
	t.Helper()
	out := make([]*instance, len(delays))
	for i, d := range delays {
		in := &instance{name: fmt.Sprint(i), delay: d}
		in.ready.Store(true)
		in.server = startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			in.served.Add(1)
			if r.URL.Path == "/stream" {
				w.Header().Set("Content-Type", "text/event-stream")
				for range 5 {
					fmt.Fprintf(w, "data: %s\n\n", in.name)
					w.(http.Flusher).Flush()
					time.Sleep(100 * time.Millisecond)
				}
				return
			}
			time.Sleep(in.delay)
			io.WriteString(w, in.name)
		}))
		out[i] = in
	}
	return out
}

func balancedFront(t *testing.T, instances []*instance) *gatewayFront {
	t.Helper()
	return startFront(t, instances[0].server.path, func(p *Proxy) {
		p.Backends = nil
		for _, in := range instances {
			p.Backends = append(p.Backends, Backend{
				Target: Target{Network: "unix", Address: in.server.path},
				Status: func() (string, bool) { return "online", in.ready.Load() },
			})
		}
	})
}

// Requests go to the ready copy with the fewest in flight: a slow copy
// gets fewer of many concurrent requests, and a copy that is not ready
// gets none.
func TestBalancerSendsToTheLeastBusyReadyCopy(t *testing.T) {
	instances := startInstances(t, 5*time.Millisecond, 5*time.Millisecond, 200*time.Millisecond, 0)
	instances[3].ready.Store(false)
	f := balancedFront(t, instances)
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 6 {
				resp, err := http.Get(f.URL + "/api/side/x")
				if err != nil {
					t.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	fast0, fast1, slow, notReady := instances[0].served.Load(), instances[1].served.Load(), instances[2].served.Load(), instances[3].served.Load()
	if fast0+fast1+slow != 120 || notReady != 0 {
		t.Fatalf("served %d, %d, %d and %d (not ready), want 120 by the ready ones", fast0, fast1, slow, notReady)
	}
	if slow >= fast0 || slow >= fast1 {
		t.Errorf("the slow copy served %d, the fast ones %d and %d: least in flight first should favour the fast", slow, fast0, fast1)
	}
	for i := range instances {
		if n := f.proxy.InFlight(i); n != 0 {
			t.Errorf("backend %d: %d in flight after every answer", i, n)
		}
	}
}

// Equal copies share sequential requests in turn.
func TestBalancerTakesTiesInTurn(t *testing.T) {
	instances := startInstances(t, 0, 0, 0)
	f := balancedFront(t, instances)
	for range 30 {
		resp, err := http.Get(f.URL + "/api/side/x")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	for i, in := range instances {
		if n := in.served.Load(); n < 5 {
			t.Errorf("copy %d served %d of 30 sequential requests", i, n)
		}
	}
}

// A stream stays on its copy; Drain waits for it once the copy takes no
// new requests, and new requests meanwhile go to the other copy.
func TestDrainWaitsForStreamsWhileOthersServe(t *testing.T) {
	instances := startInstances(t, 0, 0)
	instances[1].ready.Store(false)
	f := balancedFront(t, instances)
	resp, err := http.Get(f.URL + "/api/side/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	instances[1].ready.Store(true)
	instances[0].ready.Store(false) // copy 0 now drains
	if n := f.proxy.InFlight(0); n != 1 {
		t.Fatalf("%d in flight on copy 0, want the stream", n)
	}
	drained := make(chan time.Duration, 1)
	go func() {
		start := time.Now()
		f.proxy.Drain(context.Background(), 0, 5*time.Second)
		drained <- time.Since(start)
	}()
	for range 5 {
		r, err := http.Get(f.URL + "/api/side/x")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(r.Body)
		r.Body.Close()
		if string(body) != "1" {
			t.Errorf("a new request went to %q while copy 0 drained", body)
		}
	}
	stream, _ := io.ReadAll(resp.Body)
	if got := strings.Count(string(stream), "data: 0"); got != 5 {
		t.Errorf("the stream got %d of its 5 events from its own copy: %q", got, stream)
	}
	select {
	case took := <-drained:
		if took < 300*time.Millisecond {
			t.Errorf("drained after %v, before the stream (500 ms) ended", took)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Drain did not return after the stream ended")
	}
}

// Drain gives up at its timeout.
func TestDrainTimeout(t *testing.T) {
	instances := startInstances(t, time.Second)
	f := balancedFront(t, instances)
	go http.Get(f.URL + "/api/side/x")
	time.Sleep(100 * time.Millisecond)
	instances[0].ready.Store(false)
	start := time.Now()
	f.proxy.Drain(context.Background(), 0, 200*time.Millisecond)
	if took := time.Since(start); took < 200*time.Millisecond || took > 2*time.Second {
		t.Errorf("Drain returned after %v with a 200 ms timeout", took)
	}
}

// A Client's call is in flight until its body is read or closed.
func TestClientCallsCountInFlight(t *testing.T) {
	instances := startInstances(t, 0)
	f := balancedFront(t, instances)
	resp, err := f.proxy.Client().Get("http://side/stream")
	if err != nil {
		t.Fatal(err)
	}
	if n := f.proxy.InFlight(0); n != 1 {
		t.Errorf("%d in flight while the body is unread", n)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if n := f.proxy.InFlight(0); n != 0 {
		t.Errorf("%d in flight after the body", n)
	}
}

// A copy that fails before answering (here: it closes every connection it
// accepts, as a killed process does) costs no request that can be sent
// again: it goes once to another ready copy. A request with a body is
// not sent twice.
func TestRequestsGoToAnotherCopyWhenOneFailsBeforeAnswering(t *testing.T) {
	instances := startInstances(t, 0, 0)
	var dropped atomic.Int32
	broken := startUpstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		dropped.Add(1)
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	}))
	instances[0].server = broken
	f := balancedFront(t, instances)
	for i := range 20 {
		resp, err := http.Get(f.URL + "/api/side/x")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != "1" {
			t.Fatalf("GET %d: %d %q, want 200 from copy 1", i, resp.StatusCode, body)
		}
	}
	if dropped.Load() == 0 {
		t.Fatal("the broken copy got no request: nothing was retried")
	}
	before, failed := dropped.Load(), int32(0)
	for range 10 {
		resp, err := http.Post(f.URL+"/api/side/x", "text/plain", strings.NewReader("once"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusBadGateway:
			failed++
		case 200:
		default:
			t.Errorf("POST: %d", resp.StatusCode)
		}
	}
	if reached := dropped.Load() - before; reached == 0 || failed != reached {
		t.Errorf("%d POSTs reached the broken copy and %d failed: a POST must fail there, not be sent again", reached, failed)
	}
	if served := instances[1].served.Load(); served < 20 {
		t.Errorf("copy 1 answered %d requests, want every GET", served)
	}
}
