package identity_test

import (
	"bufio"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/processman/processman/gateway/identity"
)

func TestAppendHeadersMatchesApply(t *testing.T) {
	now := time.Unix(1700000000, 0)
	long := strings.Repeat("k", 100) // longer than a SHA-256 block: hashed first
	for _, secret := range []string{"s", strings.Repeat("ab", 32), long} {
		for _, id := range []identity.Identity{{}, {ID: "r1", Collection: "users"}, {Collection: "_superusers", ID: "x", Superuser: true}} {
			for _, method := range []string{"GET", "post"} {
				want := http.Header{}
				identity.Apply(want, secret, now, method, "/run?x=1", id)
				raw := "GET / HTTP/1.1\r\nHost: x\r\n" + string(identity.AppendHeaders(nil, secret, now, method, "/run?x=1", id)) + "\r\n"
				req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
				if err != nil {
					t.Fatal(err)
				}
				for k := range want {
					if got := req.Header.Values(k); len(got) != 1 || got[0] != want.Get(k) {
						t.Errorf("secret %d bytes, %+v, %s: %s = %q, want %q", len(secret), id, method, k, got, want.Get(k))
					}
				}
			}
		}
	}
}

func TestAppendHeadersDoesNotAllocate(t *testing.T) {
	buf := make([]byte, 0, 1024)
	now := time.Now()
	id := identity.Identity{ID: "r1", Collection: "users"}
	identity.AppendHeaders(buf, "secret", now, "GET", "/x", id) // warms the pool
	if n := testing.AllocsPerRun(100, func() { identity.AppendHeaders(buf[:0], "secret", now, "GET", "/x", id) }); n > 0 {
		t.Errorf("%v allocations per call", n)
	}
}
