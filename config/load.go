package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/processman/processman/internal/bounded"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// FileName is the config file looked up beside pb_data.
const FileName = "pb_processes.json"

// File is a loaded config file.
type File struct {
	// Path is the file's path as given.
	Path string
	// Processes are the entries in file order, with Cwd made absolute.
	// Entries that have errors are included as far as they decoded, so
	// that a caller can show them as errored; Errors.ForIndex tells them.
	Processes []Process
	// Notes say what was made of valid entries where the file could be
	// read two ways, such as a script found relative to the config file
	// rather than to cwd. They are not errors.
	Notes Errors
	// List is set for a file written as a bare list of processes.
	List bool
}

// Locate turns the JSON paths of errors found in the file's processes,
// written as the object form has them ("/processes/0/name"), into the
// file's own form ("/0/name" in a bare list), in their paths and in
// their messages, which name other entries by path.
func (f *File) Locate(es Errors) Errors {
	if f == nil || !f.List {
		return es
	}
	for i := range es {
		es[i].Path = strings.TrimPrefix(es[i].Path, "/processes")
		if es[i].Path == "" {
			es[i].Path = "/"
		}
		es[i].Message = strings.ReplaceAll(es[i].Message, "/processes/", "/")
	}
	return es
}

// Load reads and validates a config file. A missing file is reported as
// an error wrapping fs.ErrNotExist. Validation problems come back as
// Errors together with the file, so that valid entries can still run.
func Load(path string) (*File, error) {
	data, err := bounded.ReadFile(path, MaxFileBytes)
	if err != nil {
		return nil, fmt.Errorf("processman: read %s: %w", path, err)
	}
	return Parse(data, path)
}

// MaxFileBytes is the largest config file Load reads (a file of processes
// is a few KB).
const MaxFileBytes = 4 << 20

// Parse validates data as the contents of the config file at path (used
// to resolve relative directories and in messages): a list of processes,
// or an object {"processes": [...]}, which mean the same. Every problem is
// reported, each with its JSON path and a hint: syntax errors (with
// line:column), unknown fields, wrong types, invalid or duplicate names,
// missing script, and directories or env files that do not exist.
func Parse(data []byte, path string) (*File, error) {
	baseDir, _ := filepath.Abs(filepath.Dir(path))
	file := &File{Path: path}

	if err := checkSyntax(data, path); err != nil {
		return nil, Errors{*err}
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return nil, Errors{{File: path, Index: -1, Message: err.Error()}}
	}

	// A bare list of processes means the same as {"processes": [...]}: it
	// is validated as that object, and its errors' paths then say where
	// they are in the list.
	var entries []json.RawMessage
	switch top := inst.(type) {
	case []any:
		file.List = true
		inst = map[string]any{"processes": top}
		_ = json.Unmarshal(data, &entries)
	case map[string]any:
		var doc struct {
			Processes []json.RawMessage `json:"processes"`
		}
		_ = json.Unmarshal(data, &doc) // shape checked by the schema below
		entries = doc.Processes
	default:
		return file, Errors{{File: path, Path: "/", Index: -1,
			Message: fmt.Sprintf("expected a list of processes or an object, got %s", quoteAny(top)),
			Hint:    `write [{"name": "...", "script": "..."}] or {"processes": [...]}`}}
	}

	schema, _ := loadSchema()
	var errs Errors
	var verr *jsonschema.ValidationError
	if err := schema.Validate(inst); errors.As(err, &verr) {
		errs = append(errs, translate(verr, path, inst)...)
	}

	// Decode entry by entry, so that one bad entry does not hide the rest.
	for i, raw := range entries {
		p, fieldErrs := decodeEntry(raw, i, path, errs)
		errs = append(errs, fieldErrs...)
		p.Cwd = resolveDir(baseDir, p.Cwd)
		if note := findScript(&p, baseDir); note != "" {
			file.Notes = append(file.Notes, Error{File: path, Path: fmt.Sprintf("/processes/%d/script", i), Index: i, Process: p.Name, Message: note})
		}
		file.Processes = append(file.Processes, p)
	}
	for i := range errs {
		if errs[i].Index >= 0 && errs[i].Index < len(file.Processes) {
			errs[i].Process = file.Processes[errs[i].Index].Name
		}
	}

	errs = file.Locate(append(errs, Check(file.Processes, path)...))
	file.Notes = file.Locate(file.Notes)
	if len(errs) > 0 {
		return file, errs.sorted()
	}
	return file, nil
}

// findScript takes a relative script path that is not under cwd but is
// under the config file's directory from there (`"script":
// "./agent/main.py", "cwd": "./agent"` means agent/main.py), and says so.
// Bare command names, looked up on PATH, are left alone.
func findScript(p *Process, baseDir string) string {
	script := p.Script
	if script == "" || filepath.IsAbs(script) || p.Cwd == "" || filepath.Clean(p.Cwd) == filepath.Clean(baseDir) {
		return ""
	}
	if !strings.ContainsRune(script, '/') && ScriptRuntime(script) == "" {
		return ""
	}
	if fileExists(filepath.Join(p.Cwd, script)) {
		return ""
	}
	fromFile := filepath.Join(baseDir, script)
	if !fileExists(fromFile) {
		return ""
	}
	p.Script = fromFile
	return fmt.Sprintf("script %q is not under cwd %s; using %s, relative to the config file", script, p.Cwd, fromFile)
}

func fileExists(path string) bool {
	st, err := os.Stat(path)
	return err == nil && !st.IsDir()
}

// decodeEntry decodes one process entry field by field, so that a bad
// value leaves only its own field empty. Values the schema accepted but
// the Go type does not (a duration too large to represent) are reported
// at their field; values the schema already reported are not reported
// again.
func decodeEntry(raw json.RawMessage, index int, file string, known Errors) (Process, Errors) {
	var p Process
	var fields map[string]json.RawMessage
	if json.Unmarshal(raw, &fields) != nil {
		return p, nil // not an object: reported by the schema
	}
	var errs Errors
	for _, name := range slices.Sorted(maps.Keys(fields)) {
		one, _ := json.Marshal(map[string]json.RawMessage{name: fields[name]})
		err := json.Unmarshal(one, &p)
		if err == nil {
			continue
		}
		at := fmt.Sprintf("/processes/%d/%s", index, name)
		if slices.ContainsFunc(known, func(e Error) bool { return e.Path == at || strings.HasPrefix(e.Path, at+"/") }) {
			continue
		}
		var typeErr *json.UnmarshalTypeError
		msg := err.Error()
		if errors.As(err, &typeErr) {
			msg = fmt.Sprintf("expected %s", typeErr.Type)
		} else if u := errors.Unwrap(err); u != nil {
			msg = u.Error()
		}
		errs = append(errs, Error{File: file, Path: at, Index: index, Message: msg, Hint: fieldHint(name)})
	}
	return p, errs
}

// Check validates processes beyond the schema: names, duplicates, the
// existence of cwd and env_file, and values the schema cannot express.
// It is used for config files and for processes registered from Go
// (file is empty then). Cwd must already be absolute.
func Check(processes []Process, file string) Errors {
	var errs Errors
	seen := map[string]int{}
	for i, p := range processes {
		add := func(field, msg, hint string) {
			errs = append(errs, Error{File: file, Path: fmt.Sprintf("/processes/%d/%s", i, field), Index: i, Process: p.Name, Message: msg, Hint: hint})
		}
		switch {
		case p.Name == "":
			if file == "" { // files get this from the schema
				add("name", "missing name", fieldHint("name"))
			}
		case !namePattern().MatchString(p.Name):
			if file == "" { // files get this from the schema
				add("name", fmt.Sprintf("invalid name %q", p.Name), fieldHint("name"))
			}
		case slices.Contains(ReservedNames, p.Name):
			add("name", fmt.Sprintf("the name %q is reserved by the control API (/api/pm/%s)", p.Name, p.Name), "choose another name, e.g. \""+p.Name+"-app\"")
		default:
			if first, dup := seen[p.Name]; dup {
				add("name", fmt.Sprintf("duplicate name %q, already used by /processes/%d", p.Name, first), "give every process a unique name")
			} else {
				seen[p.Name] = i
			}
		}
		if strings.TrimSpace(p.Script) == "" && p.Upstream == "" && file == "" {
			add("script", "missing script", fieldHint("script"))
		}
		checkUpstream(p, add)
		if p.Cwd != "" {
			if st, err := os.Stat(p.Cwd); err != nil {
				add("cwd", fmt.Sprintf("directory %s does not exist", p.Cwd), "create it or fix the path (relative paths start from the config file's directory)")
			} else if !st.IsDir() {
				add("cwd", fmt.Sprintf("%s is not a directory", p.Cwd), "point cwd at a directory")
			}
		}
		if p.EnvFile != "" {
			envFile := p.EnvFile
			if !filepath.IsAbs(envFile) {
				envFile = filepath.Join(p.Cwd, envFile)
			}
			if st, err := os.Stat(envFile); err != nil {
				add("env_file", fmt.Sprintf("env file %s not found", envFile), "create it or fix the path (relative to cwd)")
			} else if !st.Mode().IsRegular() {
				add("env_file", fmt.Sprintf("env file %s is not a regular file", envFile), "point env_file at a dotenv file")
			} else if st.Size() > MaxEnvFileBytes {
				add("env_file", fmt.Sprintf("env file %s is larger than %d KB", envFile, MaxEnvFileBytes>>10), "an env file holds KEY=value lines; point env_file at one")
			}
		}
		if file == "" {
			errs = append(errs, checkGoValues(p, add)...)
		}
		checkRoute(p, add, file != "")
	}
	errs = append(errs, checkRouteCollisions(processes, file)...)
	return errs
}

// MaxEnvFileBytes is the largest env_file read (a dotenv file is a few
// KB).
const MaxEnvFileBytes = 1 << 20

// ReservedRoutes are PocketBase's own paths, which no route may take or
// contain.
var ReservedRoutes = []string{
	"/api/collections", "/api/files", "/api/realtime", "/api/pm", "/api/health",
	"/api/settings", "/api/logs", "/api/backups", "/api/crons", "/api/batch",
	"/api/oauth2-redirect", "/_",
}

// routePattern is the form of a route: plain segments of unreserved URL
// characters. PocketBase's router (Go's ServeMux) matches a route exactly
// as written only when it has no escapes (%61 is "a"), no wildcards
// ({name}), no empty segments and no dot segments; anything else could
// match another route than the one checked, or panic when mounted.
var routePattern = regexp.MustCompile(`^(/[A-Za-z0-9._~-]+)+$`)

// routesOverlap reports whether one route contains the other.
func routesOverlap(a, b string) bool {
	return a == b || strings.HasPrefix(a, b+"/") || strings.HasPrefix(b, a+"/")
}

// checkRoute checks a process's route, listen and auth values; the
// format of a file's route was already checked by the schema.
func checkRoute(p Process, add func(field, msg, hint string), fromFile bool) {
	if p.Route == "" && p.Health != nil && p.Health.HTTP != "" {
		add("health", "health.http needs a route: the check goes over the route's socket", `add a "route", or use {"line": "..."} instead`)
	}
	if p.Route == "" {
		if p.Listen != "" || !p.Auth.IsZero() || p.LogRequests != "" || p.BodyLimitMB != 0 || p.ResponseTimeout != 0 {
			add("route", "a route setting (listen, auth, log_requests, body_limit_mb, response_timeout) is set but route is not", `add a "route" such as "/api/agent", or remove the route settings`)
		}
		return
	}
	switch {
	case p.Route == "/api":
		add("route", `route "/api" would take all of PocketBase's API`, fieldHint("route"))
	case !routePattern.MatchString(p.Route):
		if !fromFile { // files get this from the schema
			add("route", fmt.Sprintf("invalid route %q", p.Route), fieldHint("route"))
		}
	case slices.ContainsFunc(strings.Split(p.Route, "/"), func(seg string) bool { return seg == "." || seg == ".." }):
		add("route", fmt.Sprintf("route %q has a dot segment (. or ..), which the router would resolve to another path", p.Route), "write the path as the router matches it, without . or .. segments")
	default:
		for _, r := range ReservedRoutes {
			if routesOverlap(p.Route, r) {
				add("route", fmt.Sprintf("route %q collides with PocketBase's own %s", p.Route, r), "choose another prefix, such as \"/api/agent\"")
			}
		}
	}
	if p.Listen != "" && p.Listen != ListenUnix && p.Listen != ListenTCP {
		add("listen", fmt.Sprintf("unknown listen %q", p.Listen), fieldHint("listen"))
	}
	if _, set := p.Env["PORT"]; set && p.Listen == ListenTCP {
		add("env/PORT", `PORT is set in env, but a routed process with listen "tcp" listens on the port processman picks and gives it in PORT`,
			`remove PORT from env: the gateway forwards the route to the port it gave; to choose the port yourself, drop "route" and call the process at its own address`)
	}
	if l := p.LogRequests; l != "" && l != "all" && l != "errors" && l != "none" {
		add("log_requests", fmt.Sprintf("unknown log_requests %q", l), fieldHint("log_requests"))
	}
	if m := p.Auth.Mode; m != "" && m != AuthPublic && m != AuthUser && m != AuthSuperuser {
		add("auth", fmt.Sprintf("unknown auth %q", m), fieldHint("auth"))
	}
	for _, c := range p.Auth.Collections {
		if strings.TrimSpace(c) == "" {
			add("auth", "empty collection name in auth", fieldHint("auth"))
		}
	}
}

// checkRouteCollisions reports routes that contain one another.
func checkRouteCollisions(processes []Process, file string) Errors {
	var errs Errors
	for i, p := range processes {
		for j := 0; j < i; j++ {
			q := processes[j]
			if p.Route != "" && q.Route != "" && routesOverlap(p.Route, q.Route) {
				errs = append(errs, Error{File: file, Path: fmt.Sprintf("/processes/%d/route", i), Index: i, Process: p.Name,
					Message: fmt.Sprintf("route %q collides with %q of /processes/%d", p.Route, q.Route, j),
					Hint:    "give each process its own prefix; one may not contain the other"})
			}
		}
	}
	return errs
}

// checkGoValues checks what the schema checks for files, for processes
// registered from Go.
func checkGoValues(p Process, add func(field, msg, hint string)) Errors {
	if p.Restart != "" && !slices.Contains([]string{RestartAlways, RestartOnFailure, RestartNever}, p.Restart) {
		add("restart", fmt.Sprintf("unknown restart policy %q", p.Restart), `use "always", "on-failure" or "never"`)
	}
	if p.KillSignal != "" {
		if _, err := ParseSignal(p.KillSignal); err != nil {
			add("kill_signal", fmt.Sprintf("unknown signal %q", p.KillSignal), fieldHint("kill_signal"))
		}
	}
	if p.MaxRestarts < -1 {
		add("max_restarts", fmt.Sprintf("max_restarts %d is below -1", p.MaxRestarts), "use -1 for no limit, or a positive count")
	}
	if p.Instances < 0 || p.Instances > MaxInstances {
		add("instances", fmt.Sprintf("instances %d is not between 1 and %d", p.Instances, MaxInstances), fieldHint("instances"))
	}
	if p.MaxMemoryRestart < 0 {
		add("max_memory_restart", fmt.Sprintf("max_memory_restart %d is negative", p.MaxMemoryRestart), fieldHint("max_memory_restart"))
	}
	if p.BackoffFactor != 0 && p.BackoffFactor < 1 {
		add("backoff_factor", fmt.Sprintf("backoff_factor %g is below 1", p.BackoffFactor), "use 1 for a fixed delay, or more to grow it")
	}
	return nil
}

// resolveDir makes dir absolute against base; empty means base.
func resolveDir(base, dir string) string {
	if dir == "" {
		return base
	}
	if strings.HasPrefix(dir, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			dir = filepath.Join(home, dir[2:])
		}
	}
	if filepath.IsAbs(dir) {
		return filepath.Clean(dir)
	}
	return filepath.Join(base, dir)
}

// checkSyntax reports a JSON syntax error with its line and column.
func checkSyntax(data []byte, path string) *Error {
	var v any
	err := json.Unmarshal(data, &v)
	if err == nil {
		return nil
	}
	e := &Error{File: path, Index: -1, Message: "invalid JSON: " + err.Error(), Hint: "fix the JSON syntax (a missing comma or quote, or a trailing comma)"}
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		e.Line, e.Column = lineColumn(data, syn.Offset)
	}
	return e
}

// lineColumn converts a byte offset to a 1-based line and column.
func lineColumn(data []byte, offset int64) (int, int) {
	if offset > int64(len(data)) {
		offset = int64(len(data))
	}
	before := data[:offset]
	line := bytes.Count(before, []byte("\n")) + 1
	col := int(offset) - bytes.LastIndexByte(before, '\n')
	if offset > 0 && col > 1 {
		col-- // the offset points just past the offending byte
	}
	return line, col
}

// translate turns the schema validator's error tree into one Error per
// problem, with hints taken from the schema.
func translate(verr *jsonschema.ValidationError, file string, inst any) Errors {
	var errs Errors
	var walk func(v *jsonschema.ValidationError)
	walk = func(v *jsonschema.ValidationError) {
		if len(v.Causes) > 0 {
			for _, c := range v.Causes {
				walk(c)
			}
			return
		}
		errs = append(errs, describe(v, file, inst)...)
	}
	walk(verr)
	return errs
}

func describe(v *jsonschema.ValidationError, file string, inst any) Errors {
	loc := v.InstanceLocation
	e := Error{File: file, Path: pointer(loc), Index: -1}
	if len(loc) >= 2 && loc[0] == "processes" {
		e.Index, _ = strconv.Atoi(loc[1])
	}
	field := ""
	if len(loc) >= 3 {
		field = loc[2]
	}
	inEntry := len(loc) == 2 && loc[0] == "processes"

	switch k := v.ErrorKind.(type) {
	case *kind.AdditionalProperties:
		known := []string{"$schema", "processes"}
		if inEntry {
			known = processFields()
		}
		var out Errors
		for _, prop := range k.Properties {
			u := e
			u.Path = pointer(append(slices.Clone(loc), prop))
			u.Message = fmt.Sprintf("unknown field %q", prop)
			if s, alias := suggest(prop, known); alias != "" {
				u.Hint = fmt.Sprintf("did you mean %q? (what is %q elsewhere is %q here)", s, alias, s)
			} else if s != "" {
				u.Hint = fmt.Sprintf("did you mean %q?", s)
			} else {
				u.Hint = "remove it; the known fields are listed in docs/config.md"
			}
			out = append(out, u)
		}
		return out
	case *kind.Required:
		var out Errors
		for _, m := range k.Missing {
			u := e
			u.Path = pointer(append(slices.Clone(loc), m))
			u.Message = fmt.Sprintf("missing required field %q", m)
			if inEntry {
				u.Hint = fieldHint(m)
			} else {
				u.Hint = `write {"processes": [ ... ]}`
			}
			out = append(out, u)
		}
		return out
	case *kind.Type:
		e.Message = fmt.Sprintf("expected %s, got %s%s", strings.Join(k.Want, " or "), k.Got, valueSuffix(inst, loc))
		e.Hint = fieldHint(field)
		if len(loc) == 1 && loc[0] == "processes" {
			e.Hint = `write {"processes": [{"name": "...", "script": "..."}]}`
		}
		if e.Hint == "" {
			e.Hint = "write a " + strings.Join(k.Want, " or a ")
		}
		if k.Got == "string" && slices.ContainsFunc(k.Want, func(w string) bool { return w == "integer" || w == "number" || w == "boolean" }) {
			e.Hint = "write it without quotes: " + e.Hint
		}
	case *kind.Enum:
		e.Message = fmt.Sprintf("invalid value %v", quoteAny(k.Got))
		opts := make([]string, len(k.Want))
		for i, w := range k.Want {
			opts[i] = quoteAny(w)
		}
		e.Hint = "use one of " + strings.Join(opts, ", ")
	case *kind.Pattern:
		e.Message = fmt.Sprintf("invalid value %q", k.Got)
		e.Hint = fieldHint(field)
	default:
		e.Message = v.ErrorKind.LocalizedString(printer)
		e.Hint = fieldHint(field)
	}
	return Errors{e}
}

// printer formats the validator's messages that have no special case.
var printer = message.NewPrinter(language.English)

func pointer(loc []string) string {
	if len(loc) == 0 {
		return "/"
	}
	esc := make([]string, len(loc))
	for i, s := range loc {
		esc[i] = strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
	}
	return "/" + strings.Join(esc, "/")
}

// valueSuffix shows the offending value when it is short.
func valueSuffix(inst any, loc []string) string {
	v := inst
	for _, tok := range loc {
		switch c := v.(type) {
		case map[string]any:
			v = c[tok]
		case []any:
			i, _ := strconv.Atoi(tok)
			if i < 0 || i >= len(c) {
				return ""
			}
			v = c[i]
		default:
			return ""
		}
	}
	s := quoteAny(v)
	if len(s) > 40 {
		return ""
	}
	return " " + s
}

func quoteAny(v any) string {
	switch x := v.(type) {
	case string:
		return strconv.Quote(x)
	case map[string]any:
		return "an object"
	case []any:
		return "a list"
	}
	b, _ := json.Marshal(v)
	return string(b)
}
