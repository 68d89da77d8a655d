package control

import (
	"slices"
	"strings"

	"github.com/processman/processman/internal/redact"
)

// EnvVar is one variable of a child's environment as the API shows it.
type EnvVar struct {
	Name  string `json:"name"`
	Value string `json:"value"`
	// Source is "config" (the entry's env), "env_file" or "processman"
	// (set by processman: PB_*, PYTHONUNBUFFERED, PORT, a venv's PATH).
	Source string `json:"source"`
	// Redacted is true when Value was replaced by Redacted.
	Redacted bool `json:"redacted"`
}

// Redacted replaces the value of a secret variable.
const Redacted = redact.Mask

// The sources of a variable.
const (
	SourceConfig     = "config"
	SourceEnvFile    = "env_file"
	SourceProcessman = "processman"
)

// IsSecretName reports whether a variable of this name holds a secret.
func IsSecretName(name string) bool { return redact.Name(name) }

// environment returns the variables processman gave a child (those of
// its config, its env files, and its own), redacted, sorted by name, and
// how many other variables it inherited unchanged from PocketBase.
//
// env is the child's environment ("K=V"), parent PocketBase's own,
// configKeys the names from the entry's env and envFileKeys those that
// came from env files; every env file value counts as a secret.
func environment(env, parent []string, configKeys map[string]string, envFileKeys []string) ([]EnvVar, int) {
	inherited := map[string]string{}
	for _, kv := range parent {
		if k, v, ok := strings.Cut(kv, "="); ok {
			inherited[k] = v
		}
	}
	var vars []EnvVar
	unchanged := 0
	for _, kv := range env {
		name, value, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		v := EnvVar{Name: name, Value: value}
		_, fromConfig := configKeys[name]
		switch {
		case fromConfig:
			v.Source = SourceConfig
		case slices.Contains(envFileKeys, name):
			v.Source = SourceEnvFile
		default:
			if old, ok := inherited[name]; ok && old == value {
				unchanged++
				continue
			}
			v.Source = SourceProcessman
		}
		if v.Source == SourceEnvFile || IsSecretName(name) {
			v.Value, v.Redacted = Redacted, true
		} else if safe, changed := redact.Value(value); changed {
			v.Value, v.Redacted = safe, true
		}
		vars = append(vars, v)
	}
	slices.SortFunc(vars, func(a, b EnvVar) int { return strings.Compare(a.Name, b.Name) })
	return vars, unchanged
}
