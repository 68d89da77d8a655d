package processman

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/processman/processman/config"
	"github.com/processman/processman/gateway"
	"github.com/processman/processman/health"
	"github.com/processman/processman/launch"
)

// upstreamBackend prepares the route of an upstream entry (proc with
// defaults): a service that runs elsewhere, behind one backend that its
// health watcher takes in and out of service. It returns the secret the
// route signs with, the backend and the watcher, which is not running yet.
func upstreamBackend(proc config.Process, logger *slog.Logger) (string, gateway.Backend, *health.Upstream, error) {
	secret, err := upstreamSecret(proc)
	if err != nil {
		return "", gateway.Backend{}, nil, err
	}
	network, address, err := config.UpstreamTarget(proc.Upstream)
	if err != nil {
		return "", gateway.Backend{}, nil, err
	}
	target := gateway.Target{Network: network, Address: address}
	watcher := &health.Upstream{Name: proc.Name, Target: target, Config: proc.Health, Secret: secret, Logger: logger}
	return secret, gateway.Backend{Target: target, Status: watcher.Status}, watcher, nil
}

// upstreamSecret is the value of the entry's gateway_secret_env, from
// env, env_file or PocketBase's environment, as a child would see it.
func upstreamSecret(proc config.Process) (string, error) {
	env, _, err := launch.Environment(proc, os.Environ(), nil)
	if err != nil {
		return "", err
	}
	name := proc.GatewaySecretEnv
	secret := env.Get(name)
	switch {
	case secret == "":
		return "", fmt.Errorf("gateway_secret_env: %s is not set in env, env_file or PocketBase's environment; set it to a secret of %d characters or more (e.g. openssl rand -hex 32), and give the service the same value as PB_GATEWAY_SECRET", name, config.MinGatewaySecret)
	case len(secret) < config.MinGatewaySecret:
		return "", fmt.Errorf("gateway_secret_env: %s has %d characters, fewer than %d; use a longer secret (e.g. openssl rand -hex 32)", name, len(secret), config.MinGatewaySecret)
	}
	return secret, nil
}
