package config

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// MinGatewaySecret is the shortest secret an upstream route signs with.
const MinGatewaySecret = 32

// envName is the form of a variable's name.
var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// UpstreamTarget parses an upstream address: "http://host:port" gives
// ("tcp", "host:port"), "unix:/path" gives ("unix", "/path").
func UpstreamTarget(upstream string) (network, address string, err error) {
	if path, ok := strings.CutPrefix(upstream, "unix:"); ok {
		if !strings.HasPrefix(path, "/") {
			return "", "", fmt.Errorf("upstream %q: a unix socket needs an absolute path, as in unix:/run/agent.sock", upstream)
		}
		return "unix", path, nil
	}
	u, err := url.Parse(upstream)
	switch {
	case err != nil:
		return "", "", fmt.Errorf("upstream %q: %v", upstream, err)
	case u.Scheme == "https":
		return "", "", fmt.Errorf("upstream %q: https is not supported; reach the service over http inside its network, or over a unix socket", upstream)
	case u.Scheme != "http" || u.Host == "":
		return "", "", fmt.Errorf("upstream %q is not http://host:port or unix:/path", upstream)
	case u.Path != "" && u.Path != "/", u.RawQuery != "", u.Fragment != "", u.User != nil:
		return "", "", fmt.Errorf("upstream %q: give only the scheme, host and port; requests keep their own path below the route", upstream)
	}
	host := u.Host
	if u.Port() == "" {
		host += ":80"
	}
	return "tcp", host, nil
}

// processOnly are the fields of an entry that run something, which an
// upstream route does not.
func processOnly(p Process) []string {
	var set []string
	for _, f := range []struct {
		name  string
		isSet bool
	}{
		{"script", p.Script != ""}, {"args", len(p.Args) > 0}, {"interpreter", p.Interpreter != ""},
		{"interpreter_args", len(p.InterpreterArgs) > 0}, {"instances", p.Instances > 1}, {"cron", p.Cron != ""},
		{"watch", !p.Watch.IsZero()}, {"depends_on", len(p.DependsOn) > 0}, {"max_memory_restart", p.MaxMemoryRestart != 0},
		{"log_file", !p.LogFile.IsZero()}, {"listen", p.Listen != ""}, {"restart", p.Restart != ""},
	} {
		if f.isSet {
			set = append(set, f.name)
		}
	}
	return set
}

// checkUpstream checks an upstream entry: a route, a valid address, a
// secret variable, and none of the fields that run a process.
func checkUpstream(p Process, add func(field, msg, hint string)) {
	if p.Upstream == "" {
		if p.GatewaySecretEnv != "" {
			add("gateway_secret_env", "gateway_secret_env is set but upstream is not: a process processman starts gets its secret in PB_GATEWAY_SECRET",
				`remove gateway_secret_env, or add "upstream" for a service processman does not start`)
		}
		return
	}
	if p.Route == "" {
		add("route", "an upstream needs a route: the route is how PocketBase reaches it", `add a "route" such as "/api/agent"`)
	}
	if _, _, err := UpstreamTarget(p.Upstream); err != nil {
		add("upstream", err.Error(), fieldHint("upstream"))
	}
	switch {
	case p.GatewaySecretEnv == "":
		add("gateway_secret_env", "an upstream route needs gateway_secret_env: the service verifies each caller's identity with a secret it shares with PocketBase",
			`name a variable that holds the secret, e.g. "gateway_secret_env": "AGENT_GATEWAY_SECRET" with AGENT_GATEWAY_SECRET in env_file, and give the service the same value as PB_GATEWAY_SECRET`)
	case !envName.MatchString(p.GatewaySecretEnv):
		add("gateway_secret_env", fmt.Sprintf("gateway_secret_env %q is not a variable name", p.GatewaySecretEnv), fieldHint("gateway_secret_env"))
	}
	for _, field := range processOnly(p) {
		add(field, fmt.Sprintf("%s has no effect on an upstream route: processman starts nothing for it", field),
			`remove `+field+`, or remove "upstream" to run the service as a process of its own`)
	}
}
