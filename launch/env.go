package launch

import (
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"

	"github.com/joho/godotenv"
	"github.com/processman/processman/config"
	"github.com/processman/processman/internal/bounded"
)

// Env is an ordered environment that remembers which variables the
// process config set itself (env_file or env) rather than inherited.
type Env struct {
	keys []string
	vals map[string]string
	own  map[string]bool
}

// NewEnv parses KEY=value entries; later entries win.
func NewEnv(list []string) *Env {
	e := &Env{vals: map[string]string{}, own: map[string]bool{}}
	for _, kv := range list {
		if k, v, ok := strings.Cut(kv, "="); ok && k != "" {
			e.Set(k, v)
		}
	}
	return e
}

// Get returns the value of key, or "".
func (e *Env) Get(key string) string { return e.vals[key] }

// IsOwn reports whether the process config set key.
func (e *Env) IsOwn(key string) bool { return e.own[key] }

// Set sets key, keeping its position if it exists.
func (e *Env) Set(key, value string) {
	if _, ok := e.vals[key]; !ok {
		e.keys = append(e.keys, key)
	}
	e.vals[key] = value
}

// Unset removes key.
func (e *Env) Unset(key string) {
	if _, ok := e.vals[key]; !ok {
		return
	}
	delete(e.vals, key)
	for i, k := range e.keys {
		if k == key {
			e.keys = append(e.keys[:i], e.keys[i+1:]...)
			break
		}
	}
}

// List returns KEY=value entries.
func (e *Env) List() []string {
	out := make([]string, 0, len(e.keys))
	for _, k := range e.keys {
		out = append(out, k+"="+e.vals[k])
	}
	return out
}

// Environment builds the child's environment, later layers winning:
// PocketBase's environment, then the variables processman injects, then
// env_file, then env. It returns the names that came from env_file.
func Environment(p config.Process, baseEnv []string, inject map[string]string) (*Env, []string, error) {
	env := NewEnv(baseEnv)
	for _, k := range sortedKeys(inject) {
		env.Set(k, inject[k])
	}
	var fileKeys []string
	if p.EnvFile != "" {
		path := p.EnvFile
		if !filepath.IsAbs(path) {
			path = filepath.Join(p.Cwd, path)
		}
		values, err := readEnvFile(path, env)
		if err != nil {
			return nil, nil, fmt.Errorf("process %q: env_file %s: %w", p.Name, path, err)
		}
		if _, routedPort := inject["PORT"]; routedPort {
			if _, set := values["PORT"]; set {
				return nil, nil, fmt.Errorf(`process %q: env_file %s sets PORT, but a routed process with listen "tcp" listens on the port processman gives it in PORT; remove PORT from the file`, p.Name, path)
			}
		}
		fileKeys = sortedKeys(values)
		for _, k := range fileKeys {
			env.Set(k, values[k])
			env.own[k] = true
		}
	}
	for _, k := range sortedKeys(p.Env) {
		env.Set(k, p.Env[k])
		env.own[k] = true
	}
	return env, fileKeys, nil
}

// readEnvFile parses a dotenv file. ${VAR} in its values expands to the
// file's own earlier variables or, failing that, to the environment built
// so far (PocketBase's plus the injected PB_* variables), so that
// API_URL=${PB_URL}/api works. godotenv only expands the file's own
// variables, so the environment is put before the file as single-quoted
// (never expanded) lines, and only the file's own keys are kept.
func readEnvFile(path string, env *Env) (map[string]string, error) {
	data, err := bounded.ReadFile(path, config.MaxEnvFileBytes)
	if err != nil {
		return nil, err
	}
	own, err := godotenv.UnmarshalBytes(data)
	if err != nil {
		return nil, err
	}
	var prefix strings.Builder
	for _, k := range env.keys {
		v := env.vals[k]
		if isIdentifier(k) && !strings.ContainsAny(v, "'\n") {
			prefix.WriteString(k + "='" + v + "'\n")
		}
	}
	all, err := godotenv.UnmarshalBytes(append([]byte(prefix.String()), data...))
	if err != nil {
		return own, nil
	}
	for k := range own {
		own[k] = all[k]
	}
	return own, nil
}

func isIdentifier(s string) bool {
	for i, c := range s {
		if !(c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return s != ""
}

func sortedKeys(m map[string]string) []string {
	return slices.Sorted(maps.Keys(m))
}
