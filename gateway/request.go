package gateway

import (
	"fmt"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/processman/processman/gateway/identity"
)

// The sidecar's request is written by the gateway itself (see forward.go);
// its headers are the client's, less the ones below, plus the gateway's:
// the same rules as net/http/httputil.ReverseProxy with Rewrite and
// ProxyRequest.SetXForwarded, and http.Transport's request writer.

// hopHeaders are meaningful for one connection only (RFC 7230 6.1 and
// RFC 2616 13.5.1): never forwarded, either way.
var hopHeaders = map[string]bool{
	"Connection":          true,
	"Proxy-Connection":    true,
	"Keep-Alive":          true,
	"Proxy-Authenticate":  true,
	"Proxy-Authorization": true,
	"Te":                  true,
	"Trailer":             true,
	"Transfer-Encoding":   true,
	"Upgrade":             true,
}

// gatewaySetHeaders are the client's headers the gateway replaces with
// its own values or writes itself (Host, User-Agent, the body's framing).
var gatewaySetHeaders = map[string]bool{
	"Host":               true,
	"User-Agent":         true,
	"Content-Length":     true,
	"Forwarded":          true,
	"X-Forwarded-For":    true,
	"X-Forwarded-Host":   true,
	"X-Forwarded-Proto":  true,
	"X-Forwarded-Prefix": true,
}

// connectionListed returns the header names, canonical, that the
// Connection header values conn list, and so are hop-by-hop too; less
// those of hopHeaders ("keep-alive", "upgrade"), removed anyway.
func connectionListed(conn []string) []string {
	var names []string
	for _, v := range conn {
		for f := range strings.SplitSeq(v, ",") {
			if f = textproto.TrimString(f); f != "" && !isHopHeader(f) {
				names = append(names, http.CanonicalHeaderKey(f))
			}
		}
	}
	return names
}

// isHopHeader reports whether name, in any case, is one of hopHeaders.
func isHopHeader(name string) bool {
	for h := range hopHeaders {
		if strings.EqualFold(h, name) {
			return true
		}
	}
	return false
}

// hasToken reports whether the comma-separated header values contain
// token, ignoring case.
func hasToken(values []string, token string) bool {
	for _, v := range values {
		for f := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(textproto.TrimString(f), token) {
				return true
			}
		}
	}
	return false
}

// upgradeType is the protocol a request asks to switch to ("websocket"),
// or "".
func upgradeType(h http.Header) string {
	if !hasToken(h["Connection"], "Upgrade") {
		return ""
	}
	return h.Get("Upgrade")
}

// forwardedPath is the request target the sidecar receives: the rest of
// the path after the route prefix (see restOfPath) and the query without
// unparsable parameters.
func (p *Proxy) forwardedPath(in *url.URL) string {
	rest, restEscaped := p.restOfPath(in.EscapedPath())
	out := url.URL{Path: rest, RawPath: restEscaped, RawQuery: cleanQueryParams(in.RawQuery), ForceQuery: in.ForceQuery}
	return out.RequestURI()
}

// restOfPath cuts the route prefix from the escaped path of a request,
// and returns the rest, decoded and as the client escaped it.
//
// The router matched the route segment by segment on the decoded path;
// the rest is cut from the escaped path by the same number of segments,
// so that "%2F" and friends reach the sidecar as sent, even when the
// client escaped part of the prefix.
func (p *Proxy) restOfPath(escaped string) (rest, restEscaped string) {
	restEscaped = "/"
	// The rest starts at the slash after the route's segments: the
	// (slashes in the route + 1)th slash of the path.
	slashes := strings.Count(p.Route, "/") + 1
	for i := 0; i < len(escaped); i++ {
		if escaped[i] == '/' {
			if slashes--; slashes == 0 {
				restEscaped = escaped[i:]
				break
			}
		}
	}
	rest, err := url.PathUnescape(restEscaped)
	if err != nil {
		rest = restEscaped
	}
	return rest, restEscaped
}

// requestHead is the request line and headers of the sidecar's request,
// with the body's framing: Content-Length when known, else chunked
// (contentLength -1), none for no body.
func (p *Proxy) requestHead(dst []byte, r *http.Request, target string, id identity.Identity, contentLength int64) []byte {
	dst = append(dst, r.Method...)
	dst = append(dst, ' ')
	dst = append(dst, target...)
	dst = append(dst, " HTTP/1.1\r\nHost: "...)
	if r.Host != "" {
		dst = append(dst, r.Host...)
	} else {
		dst = append(dst, "sidecar"...)
	}
	dst = append(dst, "\r\n"...)
	if ua := r.Header.Get("User-Agent"); ua != "" {
		dst = appendHeaderLine(dst, "User-Agent", ua)
	}
	listed := connectionListed(r.Header["Connection"])
	for k, vs := range r.Header {
		if hopHeaders[k] || gatewaySetHeaders[k] || identity.IsIdentityHeader(k) || slices.Contains(listed, k) {
			continue
		}
		for _, v := range vs {
			dst = appendHeaderLine(dst, k, v)
		}
	}
	if hasToken(r.Header["Te"], "trailers") {
		dst = append(dst, "Te: trailers\r\n"...)
	}
	if clientIP, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		dst = appendHeaderLine(dst, "X-Forwarded-For", clientIP)
	}
	dst = appendHeaderLine(dst, "X-Forwarded-Host", r.Host)
	if r.TLS == nil {
		dst = append(dst, "X-Forwarded-Proto: http\r\n"...)
	} else {
		dst = append(dst, "X-Forwarded-Proto: https\r\n"...)
	}
	dst = appendHeaderLine(dst, "X-Forwarded-Prefix", p.Route)
	dst = identity.AppendHeaders(dst, p.Secret, time.Now(), r.Method, target, id)
	switch {
	case contentLength > 0:
		dst = append(dst, "Content-Length: "...)
		dst = strconv.AppendInt(dst, contentLength, 10)
		dst = append(dst, "\r\n"...)
	case contentLength < 0:
		dst = append(dst, "Transfer-Encoding: chunked\r\n"...)
		if len(r.Trailer) > 0 {
			keys := make([]string, 0, len(r.Trailer))
			for k := range r.Trailer {
				if forwardedTrailer(k) {
					keys = append(keys, k)
				}
			}
			if len(keys) > 0 {
				dst = appendHeaderLine(dst, "Trailer", strings.Join(keys, ", "))
			}
		}
	case r.Method == http.MethodPost || r.Method == http.MethodPut || r.Method == http.MethodPatch:
		// as http.Transport: many servers expect a length for these
		dst = append(dst, "Content-Length: 0\r\n"...)
	}
	return append(dst, "\r\n"...)
}

// forwardedTrailer reports whether a request trailer may reach the
// sidecar: not one of the identity family (which Handle refuses when it
// is declared, and which is dropped when it is not), not Authorization,
// not a hop-by-hop field.
func forwardedTrailer(k string) bool {
	return !identity.IsIdentityHeader(k) && !hopHeaders[http.CanonicalHeaderKey(k)] &&
		!strings.EqualFold(k, "Authorization")
}

// refusal says why a request may not be forwarded at all: a second
// Authorization header (the sidecar would see two callers), or a
// declared trailer of the identity family or Authorization (a framework
// that merges trailers into headers would take it for the gateway's).
func refusal(r *http.Request) string {
	if len(r.Header.Values("Authorization")) > 1 {
		return "The request has more than one Authorization header; send one."
	}
	for k := range r.Trailer {
		if identity.IsIdentityHeader(k) || strings.EqualFold(k, "Authorization") {
			return fmt.Sprintf("The request declares the trailer %q, which it may not send.", k)
		}
	}
	return ""
}

// appendHeaderLine appends "k: v\r\n", with line breaks in v turned into
// spaces as http.Header.Write does.
func appendHeaderLine(dst []byte, k, v string) []byte {
	if strings.ContainsAny(v, "\r\n") {
		v = strings.NewReplacer("\r\n", " ", "\r", " ", "\n", " ").Replace(v)
	}
	dst = append(dst, k...)
	dst = append(dst, ": "...)
	dst = append(dst, textproto.TrimString(v)...)
	return append(dst, "\r\n"...)
}

// cleanQueryParams re-encodes a query with parameters that Go would not
// parse (a ';', or a bad escape), dropping those, as ReverseProxy does so
// that the sidecar cannot read the query differently than Go would.
func cleanQueryParams(s string) string {
	reencode := func(s string) string {
		v, _ := url.ParseQuery(s)
		return v.Encode()
	}
	for i := 0; i < len(s); {
		switch s[i] {
		case ';':
			return reencode(s)
		case '%':
			if i+2 >= len(s) || !ishex(s[i+1]) || !ishex(s[i+2]) {
				return reencode(s)
			}
			i += 3
		default:
			i++
		}
	}
	return s
}

func ishex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
