package identity_test

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sort"
	"testing"
	"time"

	"github.com/processman/processman/gateway/identity"
)

// vectorsFile is shared with the Python and Node SDKs; its proofs were
// computed independently of this package.
const vectorsFile = "../../testdata/gateway-identity.json"

type vectorFile struct {
	Secret  string       `json:"secret"`
	Vectors []vector     `json:"vectors"`
	Verify  []verifyCase `json:"verify"`
}

type vector struct {
	Name       string `json:"name"`
	Time       int64  `json:"time"`
	Method     string `json:"method"`
	Path       string `json:"path"`
	ID         string `json:"id"`
	Collection string `json:"collection"`
	Superuser  bool   `json:"superuser"`
	Canonical  string `json:"canonical"`
	Proof      string `json:"proof"`
}

type verifyCase struct {
	Name     string                     `json:"name"`
	Now      int64                      `json:"now"`
	Method   string                     `json:"method"`
	Path     string                     `json:"path"`
	Secret   *string                    `json:"secret"`
	Headers  map[string]json.RawMessage `json:"headers"`
	Valid    bool                       `json:"valid"`
	Error    *string                    `json:"error"`
	Identity *struct {
		ID         string `json:"id"`
		Collection string `json:"collection"`
		Superuser  bool   `json:"superuser"`
	} `json:"identity"`
}

func loadVectors(t *testing.T) vectorFile {
	t.Helper()
	b, err := os.ReadFile(vectorsFile)
	if err != nil {
		t.Fatal(err)
	}
	var f vectorFile
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	if len(f.Secret) != 64 {
		t.Fatalf("secret: %d characters, want 64", len(f.Secret))
	}
	if len(f.Vectors) == 0 || len(f.Verify) == 0 {
		t.Fatal("no vectors")
	}
	return f
}

// headerValues decodes a JSON header value: a string, or a list of strings
// for a header sent more than once.
func headerValues(t *testing.T, raw json.RawMessage) []string {
	t.Helper()
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return []string{s}
	}
	var l []string
	if err := json.Unmarshal(raw, &l); err != nil {
		t.Fatalf("header value %s: %v", raw, err)
	}
	return l
}

func TestVectors(t *testing.T) {
	f := loadVectors(t)
	for _, v := range f.Vectors {
		t.Run(v.Name, func(t *testing.T) {
			id := identity.Identity{ID: v.ID, Collection: v.Collection, Superuser: v.Superuser}
			if got := identity.Canonical(v.Time, v.Method, v.Path, id); got != v.Canonical {
				t.Errorf("Canonical = %q, want %q", got, v.Canonical)
			}
			if got := identity.Sign(f.Secret, v.Time, v.Method, v.Path, id); got != v.Proof {
				t.Errorf("Sign = %s, want %s", got, v.Proof)
			}

			// What Apply sets must verify to the same identity.
			h := http.Header{}
			identity.Apply(h, f.Secret, time.Unix(v.Time, 0), v.Method, v.Path, id)
			if got := h.Get(identity.HeaderProof); got != v.Proof {
				t.Errorf("Apply set proof %s, want %s", got, v.Proof)
			}
			got, err := identity.Verify(h, f.Secret, time.Unix(v.Time, 0), v.Method, v.Path)
			if err != nil || got != id {
				t.Errorf("Verify(Apply) = %+v, %v; want %+v", got, err, id)
			}
		})
	}
}

var errorNames = map[string]error{
	"missing":   identity.ErrMissing,
	"bad_proof": identity.ErrBadProof,
	"expired":   identity.ErrExpired,
}

func TestVerifyVectors(t *testing.T) {
	f := loadVectors(t)
	for _, c := range f.Verify {
		secret := f.Secret
		if c.Secret != nil {
			secret = *c.Secret
		}
		// Headers as net/http stores them (canonical keys) and as a map
		// filled directly (keys kept as spelled): both must give the same.
		for _, mode := range []string{"canonical", "raw"} {
			t.Run(c.Name+"/"+mode, func(t *testing.T) {
				h := http.Header{}
				keys := make([]string, 0, len(c.Headers))
				for k := range c.Headers {
					keys = append(keys, k)
				}
				sort.Strings(keys)
				for _, k := range keys {
					for _, v := range headerValues(t, c.Headers[k]) {
						if mode == "canonical" {
							h.Add(k, v)
						} else {
							h[k] = append(h[k], v)
						}
					}
				}

				got, err := identity.Verify(h, secret, time.Unix(c.Now, 0), c.Method, c.Path)
				if c.Valid {
					if err != nil {
						t.Fatalf("Verify: %v, want valid", err)
					}
					if c.Identity == nil {
						t.Fatal("vector: valid without identity")
					}
					want := identity.Identity{ID: c.Identity.ID, Collection: c.Identity.Collection, Superuser: c.Identity.Superuser}
					if got != want {
						t.Fatalf("Verify = %+v, want %+v", got, want)
					}
					return
				}
				if c.Error == nil {
					t.Fatal("vector: invalid without error")
				}
				wantErr, ok := errorNames[*c.Error]
				if !ok {
					t.Fatalf("vector: unknown error %q", *c.Error)
				}
				if !errors.Is(err, wantErr) {
					t.Fatalf("Verify error = %v, want %v", err, wantErr)
				}
				if got != (identity.Identity{}) {
					t.Fatalf("Verify returned %+v with an error", got)
				}
			})
		}
	}
}

func TestStrip(t *testing.T) {
	h := http.Header{}
	h.Set("Authorization", "Bearer token")
	h.Set("X-Forwarded-For", "192.0.2.1")
	h.Set("X-Pbx-Other", "kept")   // "X-Pb" without the dash is another name
	h.Set("X-Pb", "kept")          // too short to carry the prefix
	h.Set("X-Other-X-Pb-Id", "ok") // prefix elsewhere in the name
	h.Set("X-Pb-Gateway-Proof", "spoofed")
	h.Add("x-pb-auth-collection", "_superusers") // canonicalized by Add
	h["x-pb-auth-id"] = []string{"spoofed"}      // non-canonical keys
	h["X-PB-AUTH-SUPERUSER"] = []string{"true"}
	h["x-PB-gateway-TIME"] = []string{"1"}
	h["X-Pb-Custom"] = []string{"anything"}
	h["X_PB_Auth_Id"] = []string{"spoofed"} // CGI-style servers read it as X-PB-Auth-Id

	identity.Strip(h)

	want := map[string]string{
		"Authorization":   "Bearer token",
		"X-Forwarded-For": "192.0.2.1",
		"X-Pbx-Other":     "kept",
		"X-Pb":            "kept",
		"X-Other-X-Pb-Id": "ok",
	}
	if len(h) != len(want) {
		t.Errorf("after Strip: %v, want only %v", h, want)
	}
	for k, v := range want {
		if got := h.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
}

func TestApplyOverwritesSpoofedHeaders(t *testing.T) {
	secret, err := identity.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1700000000, 0)
	h := http.Header{}
	h.Set("Authorization", "Bearer token")
	h.Set("X-Forwarded-For", "192.0.2.1")
	h.Add(identity.HeaderAuthID, "admin")
	h.Add(identity.HeaderAuthID, "admin2")
	h["x-pb-auth-id"] = []string{"spoofed"}
	h["X-PB-AUTH-SUPERUSER"] = []string{"true"}
	h["X-Pb-Auth-Collection"] = []string{"_superusers"}
	h["x-pb-gateway-proof"] = []string{"deadbeef"}
	h["X-Pb-Gateway-Time"] = []string{"1"}

	user := identity.Identity{ID: "k3v1t9x2m8q4z7a", Collection: "users"}
	identity.Apply(h, secret, now, "POST", "/run", user)

	want := map[string]string{
		"Authorization":               "Bearer token",
		"X-Forwarded-For":             "192.0.2.1",
		identity.HeaderAuthID:         user.ID,
		identity.HeaderAuthCollection: "users",
		identity.HeaderAuthSuperuser:  "false",
		identity.HeaderTime:           "1700000000",
		identity.HeaderProof:          identity.Sign(secret, 1700000000, "POST", "/run", user),
	}
	if len(h) != len(want) {
		t.Errorf("after Apply: %v, want only the keys of %v", h, want)
	}
	for k, v := range want {
		if got := h[k]; len(got) != 1 || got[0] != v {
			t.Errorf("%s = %q, want [%q]", k, got, v)
		}
	}

	got, err := identity.Verify(h, secret, now.Add(30*time.Second), "POST", "/run")
	if err != nil || got != user {
		t.Errorf("Verify = %+v, %v; want %+v", got, err, user)
	}

	// A guest gets empty id and collection, still signed.
	h = http.Header{}
	h.Set(identity.HeaderAuthSuperuser, "true")
	identity.Apply(h, secret, now, "GET", "/", identity.Identity{})
	if vs, ok := h[identity.HeaderAuthID]; !ok || len(vs) != 1 || vs[0] != "" {
		t.Errorf("guest %s = %q, want present and empty", identity.HeaderAuthID, vs)
	}
	if got := h.Get(identity.HeaderAuthSuperuser); got != "false" {
		t.Errorf("guest %s = %q, want false", identity.HeaderAuthSuperuser, got)
	}
	if got, err := identity.Verify(h, secret, now, "GET", "/"); err != nil || got != (identity.Identity{}) {
		t.Errorf("guest Verify = %+v, %v", got, err)
	}
}

func TestVerifySkew(t *testing.T) {
	const secret = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	signed := time.Unix(1700000000, 0)
	h := http.Header{}
	identity.Apply(h, secret, signed, "GET", "/", identity.Identity{})
	for _, tc := range []struct {
		now time.Time
		err error
	}{
		{signed, nil},
		{signed.Add(identity.MaxSkew), nil},
		{signed.Add(identity.MaxSkew + 999*time.Millisecond), nil}, // whole seconds
		{signed.Add(-identity.MaxSkew), nil},
		{signed.Add(identity.MaxSkew + time.Second), identity.ErrExpired},
		{signed.Add(-identity.MaxSkew - time.Second), identity.ErrExpired},
	} {
		if _, err := identity.Verify(h, secret, tc.now, "GET", "/"); !errors.Is(err, tc.err) {
			t.Errorf("now %s after signing: %v, want %v", tc.now.Sub(signed), err, tc.err)
		}
	}
}

func TestNewSecret(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 100; i++ {
		s, err := identity.NewSecret()
		if err != nil {
			t.Fatal(err)
		}
		if len(s) != 64 {
			t.Fatalf("NewSecret() = %q: %d characters, want 64", s, len(s))
		}
		if b, err := hex.DecodeString(s); err != nil || len(b) != 32 || hex.EncodeToString(b) != s {
			t.Fatalf("NewSecret() = %q: not 32 bytes of lower-case hex", s)
		}
		if seen[s] {
			t.Fatalf("NewSecret() repeated %q", s)
		}
		seen[s] = true
	}
}

// The gateway signs what it forwards; the sidecar (here the same process)
// verifies it.
func Example() {
	secret := "8287abb491fa958a259dfab110776f7c233d473cbe387ac7402f405610794db7" // PB_GATEWAY_SECRET
	signedAt := time.Unix(1700000060, 0)

	// Gateway: /api/agent/run?stream=1 forwarded as /run?stream=1. A
	// client-sent X-PB-Auth-Superuser is removed first.
	h := http.Header{}
	h.Set("X-PB-Auth-Superuser", "true")
	identity.Apply(h, secret, signedAt, "POST", "/run?stream=1",
		identity.Identity{ID: "k3v1t9x2m8q4z7a", Collection: "users"})
	fmt.Println(h.Get(identity.HeaderAuthSuperuser), h.Get(identity.HeaderTime))

	// Sidecar, 5 s later.
	id, err := identity.Verify(h, secret, signedAt.Add(5*time.Second), "POST", "/run?stream=1")
	fmt.Printf("%+v %v\n", id, err)

	// A replay two minutes later, or to another path, is refused.
	_, err = identity.Verify(h, secret, signedAt.Add(2*time.Minute), "POST", "/run?stream=1")
	fmt.Println(errors.Is(err, identity.ErrExpired))
	_, err = identity.Verify(h, secret, signedAt.Add(5*time.Second), "POST", "/admin")
	fmt.Println(errors.Is(err, identity.ErrBadProof))

	// Output:
	// false 1700000060
	// {ID:k3v1t9x2m8q4z7a Collection:users Superuser:false} <nil>
	// true
	// true
}
