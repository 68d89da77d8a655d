// Package redact hides secrets wherever processman shows a child's
// environment or command line: values of secret-looking variables, the
// password of a URL, secret query parameters and the password=... of a
// connection string.
package redact

import (
	"net/url"
	"regexp"
	"strings"
)

// Mask replaces a secret.
const Mask = "********"

// secretName matches the names of variables, parameters and flags whose
// values are secrets.
var secretName = regexp.MustCompile(`(?i)(secret|token|passw|pwd|api_?key|access_?key|private|credential|auth|cookie|session|signature|salt|dsn|(^|[_-])key($|[_-]))`)

// Name reports whether a variable, parameter or flag of this name holds a
// secret.
func Name(name string) bool { return secretName.MatchString(name) }

// pair finds key=value pairs in a value: URL query parameters (?a=1&b=2),
// connection strings (Server=x;Password=y; or host=x password=y) and
// flags (--token=x). A value in quotes may hold the separators.
var pair = regexp.MustCompile(`([A-Za-z][A-Za-z0-9_.-]*)(\s*=\s*)('[^']*'|"[^"]*"|[^;&\s'"]*)`)

// Value hides the secrets inside a value that is not secret by its name:
// a URL's password (postgres://user:********@db/app), secret query
// parameters (?api_key=********) and secret key=value pairs
// (Password=********;). It reports whether anything was hidden.
func Value(value string) (string, bool) {
	out, changed := urlPassword(value)
	out = pair.ReplaceAllStringFunc(out, func(m string) string {
		sub := pair.FindStringSubmatch(m)
		if !Name(sub[1]) || sub[3] == "" || sub[3] == Mask {
			return m
		}
		changed = true
		return sub[1] + sub[2] + Mask
	})
	return out, changed
}

// Args hides the secrets of a command line: the value of a secret flag,
// given as --token=x or as --token x, and secrets inside other arguments
// (a URL with a password).
func Args(args []string) []string {
	out := make([]string, len(args))
	for i, arg := range args {
		if i > 0 && isSecretFlag(args[i-1]) {
			out[i] = Mask
			continue
		}
		out[i], _ = Value(arg)
	}
	return out
}

// isSecretFlag reports whether arg is a flag such as --api-key that takes
// a secret as the next argument.
func isSecretFlag(arg string) bool {
	if !strings.HasPrefix(arg, "-") || strings.Contains(arg, "=") {
		return false
	}
	return Name(strings.TrimLeft(arg, "-"))
}

// urlPassword hides the password of a URL such as
// postgres://user:pass@host/db, leaving the rest as written.
func urlPassword(value string) (string, bool) {
	scheme := strings.Index(value, "://")
	if scheme < 0 {
		return value, false
	}
	if u, err := url.Parse(value); err != nil || u.User == nil {
		return value, false
	} else if _, has := u.User.Password(); !has {
		return value, false
	}
	start := scheme + len("://")
	authority := value[start:]
	if end := strings.IndexAny(authority, "/?#"); end >= 0 {
		authority = authority[:end]
	}
	at := strings.LastIndex(authority, "@")
	colon := strings.Index(authority[:max(at, 0)], ":")
	if at < 0 || colon < 0 {
		return value, false
	}
	return value[:start+colon+1] + Mask + value[start+at:], true
}
