package check

// The Kubernetes example, deploy/kubernetes/*.yaml: every document parses
// strictly into the Kubernetes API types (an unknown or misspelt field is
// an error, as with the API server's strict field validation), and the
// fields processman depends on agree with each other, with the image the
// Dockerfile builds and with processman's own validator (`pm check`).

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// kubernetesDir holds the example's manifests.
var kubernetesDir = filepath.Join(repoRoot, "deploy", "kubernetes")

const (
	// The Deployment and container that read pb_processes.json.
	pocketbaseName = "pocketbase"
	// What a service behind an upstream route verifies identities with.
	pbGatewaySecret = "PB_GATEWAY_SECRET"
	healthPath      = "/api/health"
	clusterDomain   = "svc.cluster.local"
)

// What a stop takes, for terminationGracePeriodSeconds.
const (
	defaultKill  = 5 * time.Second  // kill_timeout's default (docs/config.md)
	httpShutdown = 1 * time.Second  // what PocketBase gives requests in flight before processman stops
	minimumGrace = 35 * time.Second // this example's margin
)

// testGatewaySecret stands for the Secret in `pm check`: 64 hex
// characters, as `openssl rand -hex 32` makes.
const testGatewaySecret = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestKubernetes(t *testing.T) {
	k := readManifests(t)
	pb, ok := k.deployments[pocketbaseName]
	if !ok {
		t.Fatalf("no Deployment %q in %s", pocketbaseName, kubernetesDir)
	}
	pbContainer, pbIndex := containerNamed(pb.Spec.Template.Spec, pocketbaseName)
	if pbContainer == nil {
		t.Fatalf("%s has no container %q", pb.at("spec.template.spec.containers"), pocketbaseName)
	}
	pbField := func(field string) string {
		return pb.at(fmt.Sprintf("spec.template.spec.containers[%d].%s", pbIndex, field))
	}
	// The file the sidecars come from; the subtests that need it are
	// skipped when it cannot be read, this error says why.
	processes, processesErr := k.processesFile(pb, pbContainer, pbField)
	if processesErr != nil {
		t.Error(processesErr)
	}
	needProcesses := func(t *testing.T) {
		if processesErr != nil {
			t.Skip("no pb_processes.json (see the error above)")
		}
	}

	t.Run("deployments and services", func(t *testing.T) {
		for _, d := range sortedValues(k.deployments) {
			selector, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
			switch {
			case d.Spec.Selector == nil || selector.Empty():
				t.Errorf("%s is missing or empty", d.at("spec.selector"))
				continue
			case err != nil:
				t.Errorf("%s: %v", d.at("spec.selector"), err)
				continue
			case !selector.Matches(labels.Set(d.Spec.Template.Labels)):
				t.Errorf("%s %s does not match spec.template.metadata.labels %v", d.at("spec.selector"), selector, d.Spec.Template.Labels)
			}
			if len(k.servicesOf(d)) == 0 {
				t.Errorf("%s: no Service selects its pods (labels %v)", d.at("spec.template.metadata.labels"), d.Spec.Template.Labels)
			}
		}
		for _, s := range sortedValues(k.services) {
			selected := k.deploymentsOf(s)
			if len(selected) == 0 {
				t.Errorf("%s %v selects the pods of no Deployment", s.at("spec.selector"), s.Spec.Selector)
			}
			for _, d := range selected {
				for i, port := range s.Spec.Ports {
					if target := targetPortOf(port); !hasPort(d.Spec.Template.Spec, target) {
						t.Errorf("%s %s is not a containerPort of Deployment %s", s.at(fmt.Sprintf("spec.ports[%d].targetPort", i)), target.String(), d.Name)
					}
				}
			}
		}
	})

	t.Run("pocketbase probes", func(t *testing.T) {
		_, port, err := net.SplitHostPort(flagValue(pbContainer.Args, "--http"))
		if err != nil {
			t.Fatalf("%s: --http %q: %v", pbField("args"), flagValue(pbContainer.Args, "--http"), err)
		}
		listens, _ := strconv.Atoi(port)
		for name, probe := range map[string]*corev1.Probe{"readinessProbe": pbContainer.ReadinessProbe, "livenessProbe": pbContainer.LivenessProbe} {
			if probe == nil || probe.HTTPGet == nil {
				t.Errorf("%s: want an httpGet on %s", pbField(name), healthPath)
				continue
			}
			if probe.HTTPGet.Path != healthPath {
				t.Errorf("%s is %q, want %s", pbField(name+".httpGet.path"), probe.HTTPGet.Path, healthPath)
			}
			if number, _, ok := containerPort(pb.Spec.Template.Spec, probe.HTTPGet.Port); !ok || int(number) != listens {
				t.Errorf("%s is %s, want the port of --http, %d (a containerPort)", pbField(name+".httpGet.port"), probe.HTTPGet.Port.String(), listens)
			}
		}
	})

	t.Run("database credentials", func(t *testing.T) {
		postgresURL := envNamed(*pbContainer, "POSTGRES_URL")
		switch {
		case postgresURL == nil:
			t.Errorf("%s has no POSTGRES_URL: the fork would connect to its built-in default", pbField("env"))
		case postgresURL.ValueFrom == nil || postgresURL.ValueFrom.SecretKeyRef == nil:
			t.Errorf("%s: POSTGRES_URL holds the database password; take it from a secretKeyRef, not a value", pbField("env"))
		}
		// No container has a URL with a password written in its manifest.
		for _, d := range sortedValues(k.deployments) {
			for i, c := range d.Spec.Template.Spec.Containers {
				for j, env := range c.Env {
					if u, err := url.Parse(env.Value); err == nil && u.User != nil {
						if _, hasPassword := u.User.Password(); hasPassword {
							t.Errorf("%s (%s) is a URL with a password; take it from a secretKeyRef", d.at(fmt.Sprintf("spec.template.spec.containers[%d].env[%d].value", i, j)), env.Name)
						}
					}
				}
			}
		}
	})

	t.Run("secret references", func(t *testing.T) {
		// The Secrets are created by hand (secrets.example.yaml says how),
		// so the example must document every key the pods read.
		for _, d := range sortedValues(k.deployments) {
			for i, c := range d.Spec.Template.Spec.Containers {
				for j, env := range c.Env {
					ref := secretRefOf(env)
					if ref == nil || (ref.Optional != nil && *ref.Optional) {
						continue
					}
					field := d.at(fmt.Sprintf("spec.template.spec.containers[%d].env[%d]", i, j))
					secret, ok := k.secrets[ref.Name]
					if !ok {
						t.Errorf("%s (%s) reads Secret %q, which no manifest defines", field, env.Name, ref.Name)
					} else if !secret.has(ref.Key) {
						t.Errorf("%s (%s) reads key %q of Secret %s, which %s does not have", field, env.Name, ref.Key, ref.Name, secret.file)
					}
				}
			}
		}
	})

	t.Run("upstream routes", func(t *testing.T) {
		needProcesses(t)
		upstreams := 0
		for i, p := range processes.entries {
			if p.Upstream == "" {
				continue
			}
			upstreams++
			entry := fmt.Sprintf("%s: /processes/%d (%s)", processes.where, i, p.Name)
			service, agent, agentContainer, err := k.serviceBehind(p.Upstream)
			if err != nil {
				t.Errorf("%s: upstream: %v", entry, err)
				continue
			}
			// PocketBase signs with gateway_secret_env, the service
			// verifies with PB_GATEWAY_SECRET: one Secret key for both.
			signs := envNamed(*pbContainer, p.GatewaySecretEnv)
			verifies := envNamed(*agentContainer, pbGatewaySecret)
			switch {
			case p.GatewaySecretEnv == "":
				t.Errorf("%s: no gateway_secret_env", entry)
			case signs == nil:
				t.Errorf("%s: gateway_secret_env %s is not in %s", entry, p.GatewaySecretEnv, pbField("env"))
			case secretRefOf(*signs) == nil:
				t.Errorf("%s: %s is not from a secretKeyRef", pbField("env["+p.GatewaySecretEnv+"]"), p.GatewaySecretEnv)
			case verifies == nil || secretRefOf(*verifies) == nil:
				t.Errorf("%s: Deployment %s (behind Service %s) has no %s from a secretKeyRef: it could not verify the identities %s signs", entry, agent.Name, service.Name, pbGatewaySecret, p.GatewaySecretEnv)
			default:
				from, to := secretRefOf(*signs), secretRefOf(*verifies)
				if from.Name != to.Name || from.Key != to.Key {
					t.Errorf("%s: %s is Secret %s key %s, but Deployment %s's %s is Secret %s key %s: every identity would be refused (401)",
						entry, p.GatewaySecretEnv, from.Name, from.Key, agent.Name, pbGatewaySecret, to.Name, to.Key)
				}
			}
		}
		if upstreams == 0 {
			t.Errorf("%s has no upstream entry: nothing routes to the agent Service", processes.where)
		}
	})

	t.Run("termination grace period", func(t *testing.T) {
		needProcesses(t)
		// The kubelet's grace period covers preStop, then the whole stop:
		// PocketBase's 1 s for requests in flight, then every local
		// sidecar stopped in parallel within its kill_timeout, twice over
		// for one caught in a reload (its old copy, then the new one; a
		// stop cuts the drain short). At least 35 s all the same, this
		// example's margin, so that a kill_timeout raised a little needs
		// no change here.
		kill := defaultKill
		for i, p := range processes.entries {
			if p.Upstream != "" || p.KillTimeout == "" {
				continue
			}
			duration, err := time.ParseDuration(p.KillTimeout)
			if err != nil {
				t.Errorf("%s: /processes/%d/kill_timeout: %v", processes.where, i, err)
			}
			kill = max(kill, duration)
		}
		need := max(minimumGrace, preStopSleep(*pbContainer)+httpShutdown+2*kill)
		grace := pb.Spec.Template.Spec.TerminationGracePeriodSeconds
		if grace == nil || time.Duration(*grace)*time.Second < need {
			got := "unset (30 s)"
			if grace != nil {
				got = fmt.Sprintf("%d s", *grace)
			}
			t.Errorf("%s is %s, want at least %s (35 s, or preStop + 1 s + twice the largest kill_timeout of pb_processes.json): the kubelet would SIGKILL the sidecars mid-stop",
				pb.at("spec.template.spec.terminationGracePeriodSeconds"), got, need)
		}
	})

	t.Run("sidecar directories", func(t *testing.T) {
		needProcesses(t)
		image := parseDockerfile(t).final()
		for i, p := range processes.entries {
			if p.Upstream == "" {
				if _, err := repoDirOf(image, p.Cwd); err != nil {
					t.Errorf("%s: /processes/%d/cwd (%s): %v", processes.where, i, p.Name, err)
				}
			}
		}
	})

	t.Run("pm check", func(t *testing.T) {
		needProcesses(t)
		pmCheck(t, processes, parseDockerfile(t).final())
	})
}

// -- the manifests ---------------------------------------------------------------

type manifests struct {
	deployments map[string]deployment
	services    map[string]service
	configMaps  map[string]configMap
	secrets     map[string]secret
}

// Each object with the file it is in, to name in failures.
type (
	deployment struct {
		file string
		*appsv1.Deployment
	}
	service struct {
		file string
		*corev1.Service
	}
	configMap struct {
		file string
		*corev1.ConfigMap
	}
	secret struct {
		file string
		*corev1.Secret
	}
)

func (d deployment) at(field string) string { return d.file + ": Deployment " + d.Name + ": " + field }
func (s service) at(field string) string    { return s.file + ": Service " + s.Name + ": " + field }
func (c configMap) at(field string) string  { return c.file + ": ConfigMap " + c.Name + ": " + field }

func (s secret) has(key string) bool {
	_, inData := s.Data[key]
	_, inStringData := s.StringData[key]
	return inData || inStringData
}

// readManifests parses every document of the example's files into the API
// type its apiVersion and kind name.
func readManifests(t *testing.T) manifests {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(kubernetesDir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in %s (%v)", kubernetesDir, err)
	}
	k := manifests{deployments: map[string]deployment{}, services: map[string]service{}, configMaps: map[string]configMap{}, secrets: map[string]secret{}}
	namespace := "" // of the first object: they refer to each other by name
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Base(file)
		for _, doc := range yamlDocuments(data) {
			where := fmt.Sprintf("%s:%d", name, doc.line)
			if asJSON, err := yaml.YAMLToJSON(doc.text); err == nil && string(asJSON) == "null" {
				continue // comments only
			}
			var typeMeta metav1.TypeMeta
			if err := yaml.Unmarshal(doc.text, &typeMeta); err != nil {
				t.Errorf("%s: %v", where, err)
				continue
			}
			var object metav1.Object
			var add func() // into k, once decoded
			switch typeMeta.APIVersion + " " + typeMeta.Kind {
			case "apps/v1 Deployment":
				d := deployment{name, &appsv1.Deployment{}}
				object, err = d, decodeStrict(doc.text, d.Deployment)
				add = func() { addUnique(t, k.deployments, d.Name, d, where) }
			case "v1 Service":
				s := service{name, &corev1.Service{}}
				object, err = s, decodeStrict(doc.text, s.Service)
				add = func() { addUnique(t, k.services, s.Name, s, where) }
			case "v1 ConfigMap":
				c := configMap{name, &corev1.ConfigMap{}}
				object, err = c, decodeStrict(doc.text, c.ConfigMap)
				add = func() { addUnique(t, k.configMaps, c.Name, c, where) }
			case "v1 Secret":
				s := secret{name, &corev1.Secret{}}
				object, err = s, decodeStrict(doc.text, s.Secret)
				add = func() { addUnique(t, k.secrets, s.Name, s, where) }
			default:
				t.Errorf("%s: apiVersion %q kind %q: want apps/v1 Deployment or a v1 Service, ConfigMap or Secret", where, typeMeta.APIVersion, typeMeta.Kind)
				continue
			}
			if err != nil {
				t.Errorf("%s: %s: %v", where, typeMeta.Kind, err)
				continue
			}
			add()
			if namespace == "" {
				namespace = namespaceOf(object)
			} else if namespaceOf(object) != namespace {
				t.Errorf("%s: %s %s is in namespace %q, the objects before it in %q", where, typeMeta.Kind, object.GetName(), namespaceOf(object), namespace)
			}
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	return k
}

// decodeStrict decodes one document as the API server's strict field
// validation does. sigs.k8s.io/yaml's UnmarshalStrict refuses unknown fields
// and duplicate keys, but the encoding/json beneath it matches field names
// whatever their case and does not say where a field is; the API server's
// decoder, sigs.k8s.io/json, is case-sensitive and gives each field's
// path, so it goes first.
func decodeStrict(doc []byte, object any) error {
	asJSON, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return err
	}
	strict, err := kjson.UnmarshalStrict(asJSON, object)
	if err != nil {
		return err
	}
	if len(strict) > 0 {
		messages := make([]string, len(strict))
		for i, e := range strict {
			messages[i] = e.Error()
		}
		return errors.New(strings.Join(messages, "; "))
	}
	return yaml.UnmarshalStrict(doc, object)
}

func addUnique[T any](t *testing.T, into map[string]T, name string, value T, where string) {
	t.Helper()
	if _, taken := into[name]; taken {
		t.Errorf("%s: a second object named %q of this kind", where, name)
	}
	into[name] = value
}

type yamlDocument struct {
	line int // where it starts, 1-based
	text []byte
}

// documentSeparator is a line of its own that starts a YAML document.
var documentSeparator = regexp.MustCompile(`^---(\s.*)?$`)

// yamlDocuments splits a file at its "---" lines, keeping where each
// document starts so that failures can point at it.
func yamlDocuments(data []byte) []yamlDocument {
	var docs []yamlDocument
	current := yamlDocument{line: 1}
	for i, line := range strings.SplitAfter(string(data), "\n") {
		if documentSeparator.MatchString(strings.TrimRight(line, "\r\n")) {
			docs = append(docs, current)
			current = yamlDocument{line: i + 2}
			continue
		}
		current.text = append(current.text, line...)
	}
	return append(docs, current)
}

func namespaceOf(object metav1.Object) string {
	if namespace := object.GetNamespace(); namespace != "" {
		return namespace
	}
	return "default"
}

// sortedValues returns the objects in the order of their names, so that
// failures come in the same order at every run.
func sortedValues[T any](objects map[string]T) []T {
	var values []T
	for _, name := range slices.Sorted(maps.Keys(objects)) {
		values = append(values, objects[name])
	}
	return values
}

// servicesOf returns the Services whose selector picks d's pods.
func (k manifests) servicesOf(d deployment) []service {
	var found []service
	for _, s := range sortedValues(k.services) {
		if selects(s, d) {
			found = append(found, s)
		}
	}
	return found
}

// deploymentsOf returns the Deployments whose pods s selects.
func (k manifests) deploymentsOf(s service) []deployment {
	var found []deployment
	for _, d := range sortedValues(k.deployments) {
		if selects(s, d) {
			found = append(found, d)
		}
	}
	return found
}

// selects tells whether the Service sends traffic to the Deployment's
// pods; a Service without a selector selects nothing.
func selects(s service, d deployment) bool {
	return len(s.Spec.Selector) > 0 && labels.SelectorFromSet(s.Spec.Selector).Matches(labels.Set(d.Spec.Template.Labels))
}

// targetPortOf is where a Service port sends traffic: its targetPort, or
// the port itself when none is given.
func targetPortOf(port corev1.ServicePort) intstr.IntOrString {
	if port.TargetPort.Type == intstr.String && port.TargetPort.StrVal != "" || port.TargetPort.IntVal != 0 {
		return port.TargetPort
	}
	return intstr.FromInt32(port.Port)
}

// containerPort resolves a port by number or name to a container port of
// the pod: its number and the container.
func containerPort(pod corev1.PodSpec, port intstr.IntOrString) (int32, *corev1.Container, bool) {
	for i := range pod.Containers {
		c := &pod.Containers[i]
		for _, p := range c.Ports {
			if port.Type == intstr.String && p.Name == port.StrVal || port.Type == intstr.Int && p.ContainerPort == port.IntVal {
				return p.ContainerPort, c, true
			}
		}
	}
	return 0, nil, false
}

func hasPort(pod corev1.PodSpec, port intstr.IntOrString) bool {
	_, _, ok := containerPort(pod, port)
	return ok
}

func containerNamed(pod corev1.PodSpec, name string) (*corev1.Container, int) {
	for i := range pod.Containers {
		if pod.Containers[i].Name == name {
			return &pod.Containers[i], i
		}
	}
	return nil, -1
}

func envNamed(c corev1.Container, name string) *corev1.EnvVar {
	for i := range c.Env {
		if c.Env[i].Name == name {
			return &c.Env[i]
		}
	}
	return nil
}

func secretRefOf(env corev1.EnvVar) *corev1.SecretKeySelector {
	if env.ValueFrom == nil {
		return nil
	}
	return env.ValueFrom.SecretKeyRef
}

func preStopSleep(c corev1.Container) time.Duration {
	if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Sleep == nil {
		return 0
	}
	return time.Duration(c.Lifecycle.PreStop.Sleep.Seconds) * time.Second
}

// serviceBehind finds what an upstream address reaches in the cluster:
// http://NAME.NAMESPACE.svc.cluster.local:PORT must be a Service of the
// manifests and one of its ports, in front of a Deployment; it returns
// them and the container that port leads to.
func (k manifests) serviceBehind(upstream string) (service, deployment, *corev1.Container, error) {
	u, err := url.Parse(upstream)
	if err != nil || u.Scheme != "http" || u.Port() == "" {
		return service{}, deployment{}, nil, fmt.Errorf("%q: want http://NAME.NAMESPACE.%s:PORT, a Service's address", upstream, clusterDomain)
	}
	name, namespace, _ := strings.Cut(strings.TrimSuffix(u.Hostname(), "."+clusterDomain), ".")
	s, ok := k.services[name]
	if !ok || namespace != namespaceOf(s) || u.Hostname() != name+"."+namespace+"."+clusterDomain {
		var known []string
		for _, s := range sortedValues(k.services) {
			known = append(known, s.Name+"."+namespaceOf(s)+"."+clusterDomain)
		}
		return service{}, deployment{}, nil, fmt.Errorf("host %q is not the DNS name of a Service of the manifests (%s)", u.Hostname(), strings.Join(known, ", "))
	}
	for _, port := range s.Spec.Ports {
		if strconv.Itoa(int(port.Port)) != u.Port() {
			continue
		}
		for _, d := range k.deploymentsOf(s) {
			if _, c, ok := containerPort(d.Spec.Template.Spec, targetPortOf(port)); ok {
				return s, d, c, nil
			}
		}
		return service{}, deployment{}, nil, fmt.Errorf("Service %s port %d leads to no container port", s.Name, port.Port)
	}
	var ports []string
	for _, port := range s.Spec.Ports {
		ports = append(ports, strconv.Itoa(int(port.Port)))
	}
	return service{}, deployment{}, nil, fmt.Errorf("port %s is not a port of Service %s (%s, %s)", u.Port(), s.Name, strings.Join(ports, ", "), s.file)
}

// -- pb_processes.json from the ConfigMap ------------------------------------------

type processesConfig struct {
	where   string // the ConfigMap's key, for failures
	data    []byte
	entries []processEntry
}

// processEntry holds the fields of an entry that the manifests depend on;
// pm check validates the rest.
type processEntry struct {
	Name             string `json:"name"`
	Upstream         string `json:"upstream"`
	GatewaySecretEnv string `json:"gateway_secret_env"`
	Cwd              string `json:"cwd"`
	KillTimeout      string `json:"kill_timeout"`
}

// processesFile finds the pb_processes.json that the PocketBase container
// reads (--processes, else pb_data/../pb_processes.json) among its volume
// mounts, and returns it from its ConfigMap.
func (k manifests) processesFile(pb deployment, c *corev1.Container, field func(string) string) (processesConfig, error) {
	file := flagValue(c.Args, "--processes")
	if file == "" {
		dataDir := flagValue(c.Args, "--dir")
		if dataDir == "" {
			return processesConfig{}, fmt.Errorf("%s: neither --processes nor --dir: pb_processes.json would be looked for beside the binary", field("args"))
		}
		file = path.Join(path.Dir(dataDir), "pb_processes.json")
	}
	for i, mount := range c.VolumeMounts {
		var item string // the file's name in the volume
		switch {
		case mount.MountPath == file && mount.SubPath != "":
			item = mount.SubPath
		case mount.SubPath == "" && path.Dir(file) == path.Clean(mount.MountPath):
			item = path.Base(file)
		default:
			continue
		}
		mountField := field(fmt.Sprintf("volumeMounts[%d]", i))
		volume := volumeNamed(pb.Spec.Template.Spec, mount.Name)
		if volume == nil || volume.ConfigMap == nil {
			return processesConfig{}, fmt.Errorf("%s (%s) is not a ConfigMap volume", mountField, file)
		}
		key := item
		if len(volume.ConfigMap.Items) > 0 {
			key = ""
			for _, projected := range volume.ConfigMap.Items {
				if projected.Path == item {
					key = projected.Key
				}
			}
		}
		cm, ok := k.configMaps[volume.ConfigMap.Name]
		if !ok {
			return processesConfig{}, fmt.Errorf("%s mounts ConfigMap %q, which no manifest defines", mountField, volume.ConfigMap.Name)
		}
		data, ok := cm.Data[key]
		if !ok || key == "" {
			return processesConfig{}, fmt.Errorf("%s has no key %q for %s (%s)", cm.at("data"), key, file, mountField)
		}
		config := processesConfig{where: cm.at("data." + key), data: []byte(data)}
		var err error
		config.entries, err = parseProcesses(config.data)
		if err != nil {
			return processesConfig{}, fmt.Errorf("%s: %v", config.where, err)
		}
		return config, nil
	}
	return processesConfig{}, fmt.Errorf("%s: nothing is mounted at %s, the processes file PocketBase reads", field("volumeMounts"), file)
}

// parseProcesses reads both forms of the file: a list of processes, or an
// object whose "processes" is that list.
func parseProcesses(data []byte) ([]processEntry, error) {
	var entries []processEntry
	if trimmed := bytes.TrimSpace(data); len(trimmed) > 0 && trimmed[0] == '[' {
		err := json.Unmarshal(data, &entries)
		return entries, err
	}
	var object struct {
		Processes []processEntry `json:"processes"`
	}
	err := json.Unmarshal(data, &object)
	return object.Processes, err
}

func volumeNamed(pod corev1.PodSpec, name string) *corev1.Volume {
	for i := range pod.Volumes {
		if pod.Volumes[i].Name == name {
			return &pod.Volumes[i]
		}
	}
	return nil
}

// repoDirOf maps a sidecar's working directory in the image back to the
// repository, through the Dockerfile's COPY of the build context. It must
// be absolute: a relative cwd starts from the processes file's directory,
// where the ConfigMap holds nothing else.
func repoDirOf(image instructions.Stage, imageDir string) (string, error) {
	if imageDir == "" {
		return "", errors.New("none: it would be the directory of the mounted file, where nothing else is; give the directory in the image")
	}
	if !path.IsAbs(imageDir) {
		return "", fmt.Errorf("%q is relative to the mounted file's directory, where nothing else is; give the directory in the image", imageDir)
	}
	source := repoPathOf(image, imageDir)
	if source == "" {
		return "", fmt.Errorf("%s is not copied into the image from the repository (the Dockerfile's final stage)", imageDir)
	}
	dir, err := filepath.Abs(filepath.Join(repoRoot, source))
	if err != nil {
		return "", err
	}
	if info, err := os.Stat(dir); err != nil || !info.IsDir() {
		return "", fmt.Errorf("%s comes from %s, which is not a directory of the repository", imageDir, source)
	}
	return dir, nil
}

// pmCheck runs processman's own validator, `pocketbase pm check`, built
// from the repository, on the ConfigMap's file: with each sidecar's
// directory in the image mapped back to the repository, and each
// gateway_secret_env set to a test value (in the cluster, a Secret).
func pmCheck(t *testing.T, processes processesConfig, image instructions.Stage) {
	goCommand := tool(t, "GO", "go", "install Go, which builds ./cmd/pocketbase for pm check")
	var file any
	if err := json.Unmarshal(processes.data, &file); err != nil {
		t.Fatalf("%s: %v", processes.where, err)
	}
	entries, _ := file.([]any)
	if object, ok := file.(map[string]any); ok {
		entries, _ = object["processes"].([]any)
	}
	env := os.Environ()
	for _, entry := range entries {
		fields, _ := entry.(map[string]any)
		if cwd, ok := fields["cwd"].(string); ok {
			dir, err := repoDirOf(image, cwd)
			if err != nil {
				t.Fatalf("%s: process %v: cwd: %v", processes.where, fields["name"], err)
			}
			fields["cwd"] = dir
		}
		if name, ok := fields["gateway_secret_env"].(string); ok && name != "" {
			env = append(env, name+"="+testGatewaySecret)
		}
	}
	mapped, err := json.MarshalIndent(file, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	checked := filepath.Join(dir, "pb_processes.json")
	if err := os.WriteFile(checked, mapped, 0o644); err != nil {
		t.Fatal(err)
	}

	root, err := filepath.Abs(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	binary := filepath.Join(dir, "pocketbase")
	build := exec.Command(goCommand, "build", "-o", binary, "./cmd/pocketbase")
	build.Dir = root
	// The plugin's module names its own toolchain (go.mod's toolchain
	// line), which may be newer than this module's: GOTOOLCHAIN=local is
	// for deploy/check only.
	build.Env = append(os.Environ(), "GOTOOLCHAIN=auto")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/pocketbase (in %s): %v\n%s", root, err, out)
	}

	// --dev=false: a binary in a temporary directory looks like `go run`
	// to PocketBase, which would then print every SQL statement.
	check := exec.Command(binary, "pm", "check", checked, "--dir", filepath.Join(dir, "pb_data"), "--dev=false")
	check.Env = env
	out, err := check.CombinedOutput()
	if err != nil {
		t.Errorf("pocketbase pm check on %s (cwd mapped to the repository): %v\n%s", processes.where, err, out)
	} else if !bytes.Contains(out, []byte(": ok, ")) {
		t.Errorf("pocketbase pm check on %s did not say ok:\n%s", processes.where, out)
	} else {
		t.Logf("pocketbase pm check:\n%s", out)
	}
}
