// Package identity signs and verifies the identity headers that the
// gateway adds to every request it forwards to a sidecar (docs/gateway.md,
// "Request to the sidecar").
//
// The gateway removes every client-sent header whose name starts with
// "X-PB-" (any case) and sets five headers of its own:
//
//	X-Pb-Auth-Id          the authenticated record's id, empty for a guest
//	X-Pb-Auth-Collection  its collection name, empty for a guest
//	X-Pb-Auth-Superuser   "true" or "false"
//	X-Pb-Gateway-Time     Unix time in seconds of signing
//	X-Pb-Gateway-Proof    lower-case hex HMAC-SHA256 of the canonical string
//
// The HMAC key is the bytes of the hex string PB_GATEWAY_SECRET itself (not
// the bytes it encodes). The canonical string is, joined by "\n" with no
// trailing newline:
//
//	v1
//	<time, decimal>
//	<method, ASCII upper case>
//	<forwarded path with query, verbatim as the sidecar receives it>
//	<auth id>
//	<auth collection>
//	<"true" or "false">
//
// [Apply] is the gateway side, [Verify] the sidecar side; the Python and
// Node SDKs implement the same [Verify] rules, checked against the shared
// vectors in testdata/gateway-identity.json.
package identity

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Header names, in the canonical form of [http.CanonicalHeaderKey]. Header
// names are case-insensitive on the wire: docs spell them "X-PB-...".
const (
	// HeaderPrefix starts every identity header; clients' headers with
	// this prefix, in any case, are removed by [Strip].
	HeaderPrefix = "X-Pb-"

	HeaderAuthID         = "X-Pb-Auth-Id"
	HeaderAuthCollection = "X-Pb-Auth-Collection"
	HeaderAuthSuperuser  = "X-Pb-Auth-Superuser"
	HeaderTime           = "X-Pb-Gateway-Time"
	HeaderProof          = "X-Pb-Gateway-Proof"
)

// MaxSkew is how far, either way, the signing time may be from the
// verifier's clock.
const MaxSkew = 60 * time.Second

// version is the first line of the canonical string.
const version = "v1"

// Errors returned by [Verify], possibly wrapped with detail: compare with
// [errors.Is]. A sidecar answers 401 to all of them.
var (
	// ErrMissing: the proof or time header is absent or empty.
	ErrMissing = errors.New("identity: gateway proof or time header missing")
	// ErrBadProof: the proof does not match, a header is malformed or
	// repeated, or the verifier has no secret.
	ErrBadProof = errors.New("identity: gateway proof does not match")
	// ErrExpired: the proof matches but its time is more than [MaxSkew]
	// from the verifier's clock.
	ErrExpired = errors.New("identity: gateway proof expired")
)

// Identity is who the gateway authenticated. The zero value is a guest.
type Identity struct {
	ID         string // record id; empty for a guest
	Collection string // auth collection name, e.g. "users" or "_superusers"; empty for a guest
	Superuser  bool
}

// hasPrefix reports whether the header name k starts with [HeaderPrefix],
// ignoring case.
func hasPrefix(k string) bool {
	return len(k) >= len(HeaderPrefix) && strings.EqualFold(k[:len(HeaderPrefix)], HeaderPrefix)
}

// Strip removes every header whose name starts with "X-PB-" in any case,
// including keys stored in h without canonicalization (h["x-pb-auth-id"]),
// and the same names written with underscores ("X_PB_Auth_Id"), which
// servers following CGI conventions merge with the real ones.
func Strip(h http.Header) {
	for k := range h {
		if IsIdentityHeader(k) {
			delete(h, k)
		}
	}
}

// asciiUpper upper-cases a-z only, the same in every implementation
// (strings.ToUpper, Python's str.upper and JavaScript's toUpperCase differ
// outside ASCII). HTTP methods are ASCII tokens anyway.
func asciiUpper(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'a' && c <= 'z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if b[j] >= 'a' && b[j] <= 'z' {
					b[j] -= 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

func boolString(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

// canonical joins the fields as received; the exported functions format
// theirs first.
func canonical(t, method, path, id, collection, superuser string) string {
	return strings.Join([]string{version, t, asciiUpper(method), path, id, collection, superuser}, "\n")
}

// Canonical returns the string that the proof signs: "v1", t, the method
// upper-cased, path verbatim (with its query, as forwarded), the id, the
// collection and "true"/"false", joined by "\n". None of the fields may
// contain a newline; the gateway's never do (HTTP forbids it in methods
// and paths, PocketBase in ids and collection names).
func Canonical(t int64, method, path string, id Identity) string {
	return canonical(strconv.FormatInt(t, 10), method, path, id.ID, id.Collection, boolString(id.Superuser))
}

func mac(secret, msg string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(msg))
	return hex.EncodeToString(m.Sum(nil))
}

// Sign returns the proof: lower-case hex HMAC-SHA256 of [Canonical], keyed
// with the bytes of secret as given (the hex string, not its decoding).
func Sign(secret string, t int64, method, path string, id Identity) string {
	return mac(secret, Canonical(t, method, path, id))
}

// Apply strips every client-sent "X-PB-" header from h (see [Strip]) and
// sets the five identity headers for a request signed at now. method and
// path must be what the sidecar will receive: path is the forwarded path
// with its query, the route prefix already removed.
func Apply(h http.Header, secret string, now time.Time, method, path string, id Identity) {
	Strip(h)
	t := now.Unix()
	h.Set(HeaderAuthID, id.ID)
	h.Set(HeaderAuthCollection, id.Collection)
	h.Set(HeaderAuthSuperuser, boolString(id.Superuser))
	h.Set(HeaderTime, strconv.FormatInt(t, 10))
	h.Set(HeaderProof, Sign(secret, t, method, path, id))
}

// IsIdentityHeader reports whether a client-sent header named k is one
// that [Strip] removes: "X-PB-" in any case, or with "_" for "-".
func IsIdentityHeader(k string) bool {
	return hasPrefix(k) || hasPrefix(strings.ReplaceAll(k, "_", "-"))
}

// values returns every value of the header name in h, under its canonical
// key and under any other spelling stored directly in the map.
func values(h http.Header, name string) []string {
	var vs []string
	for k, v := range h {
		if strings.EqualFold(k, name) {
			vs = append(vs, v...)
		}
	}
	return vs
}

// parseTime accepts only the canonical decimal form the gateway writes:
// digits, no sign, no leading zero, within int64. Anything looser would let
// two spellings share one proof, and implementations differ on what their
// integer parsers accept.
func parseTime(s string) (int64, bool) {
	if s == "" || len(s) > 19 || (s[0] == '0' && len(s) > 1) {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	t, err := strconv.ParseInt(s, 10, 64)
	return t, err == nil
}

// Verify checks the identity headers of a request received by a sidecar
// at now, for the method and path (with query) the sidecar received, and
// returns the identity they carry. Header names match in any case. The
// checks, in order (the shared vectors pin the same order for the SDKs):
//
//  1. The proof or time header is absent or empty: [ErrMissing].
//  2. One of the five headers appears more than once, the time is not a
//     plain decimal (digits only, no sign or leading zero) within int64,
//     or secret is empty: [ErrBadProof].
//  3. The proof is not the HMAC of the canonical string built from the
//     received header values verbatim (absent id, collection or superuser
//     read as empty), compared in constant time: [ErrBadProof].
//  4. The superuser header is not exactly "true" or "false": [ErrBadProof].
//  5. The time is more than [MaxSkew] from now, either way: [ErrExpired].
//
// On error the returned Identity is the zero value.
func Verify(h http.Header, secret string, now time.Time, method, path string) (Identity, error) {
	names := [...]string{HeaderAuthID, HeaderAuthCollection, HeaderAuthSuperuser, HeaderTime, HeaderProof}
	var got [len(names)]string
	var dup string
	for i, name := range names {
		vs := values(h, name)
		if len(vs) > 1 && dup == "" {
			dup = name
		}
		if len(vs) > 0 {
			got[i] = vs[0]
		}
	}
	id, coll, su, ts, proof := got[0], got[1], got[2], got[3], got[4]

	switch {
	case proof == "":
		return Identity{}, fmt.Errorf("%w: no %s", ErrMissing, HeaderProof)
	case ts == "":
		return Identity{}, fmt.Errorf("%w: no %s", ErrMissing, HeaderTime)
	case dup != "":
		return Identity{}, fmt.Errorf("%w: %s sent more than once", ErrBadProof, dup)
	}
	t, ok := parseTime(ts)
	if !ok {
		return Identity{}, fmt.Errorf("%w: malformed %s %q", ErrBadProof, HeaderTime, ts)
	}
	if secret == "" {
		return Identity{}, fmt.Errorf("%w: no gateway secret to verify with", ErrBadProof)
	}
	want := mac(secret, canonical(ts, method, path, id, coll, su))
	if !hmac.Equal([]byte(proof), []byte(want)) {
		return Identity{}, ErrBadProof
	}
	if su != "true" && su != "false" {
		return Identity{}, fmt.Errorf("%w: malformed %s %q", ErrBadProof, HeaderAuthSuperuser, su)
	}
	n := now.Unix()
	skew := int64(MaxSkew / time.Second)
	if t < n-skew || t > n+skew {
		return Identity{}, fmt.Errorf("%w: signed at %d, now %d", ErrExpired, t, n)
	}
	return Identity{ID: id, Collection: coll, Superuser: su == "true"}, nil
}

// NewSecret returns a fresh per-boot secret: 32 random bytes from
// crypto/rand as 64 lower-case hex characters.
func NewSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("identity: gateway secret: %w", err)
	}
	return hex.EncodeToString(b), nil
}
