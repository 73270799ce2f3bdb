package deploy_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// These tests validate the deployment bundles without a container engine:
// every file parses, every name one file uses exists where it is defined
// (environment variables against the real flags, files, services, data
// source uids, metric names), the NATS configs go through nats-server's own
// parser and carry the permissions the design needs, and the dashboards'
// SQL runs against the real schema (dashboards_test.go).

// walk lists the files under deploy/ with one of the extensions.
func walk(t *testing.T, exts ...string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || d.Name() == "local") && path != "." {
			return fs.SkipDir
		}
		for _, e := range exts {
			if strings.HasSuffix(path, e) {
				out = append(out, path)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// yamlDocs decodes every document of a YAML file.
func yamlDocs(t *testing.T, path string) []map[string]any {
	t.Helper()
	dec := yaml.NewDecoder(bytes.NewReader(readFile(t, path)))
	var docs []map[string]any
	for {
		var d map[string]any
		err := dec.Decode(&d)
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if d != nil {
			docs = append(docs, d)
		}
	}
}

func TestFilesParse(t *testing.T) {
	yamls := walk(t, ".yaml", ".yml")
	jsons := walk(t, ".json")
	if len(yamls) < 8 || len(jsons) < 2 {
		t.Fatalf("found %d YAML and %d JSON files; the bundle is incomplete", len(yamls), len(jsons))
	}
	for _, p := range yamls {
		if len(yamlDocs(t, p)) == 0 {
			t.Errorf("%s: no YAML document", p)
		}
	}
	for _, p := range jsons {
		var v any
		if err := json.Unmarshal(readFile(t, p), &v); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
}

var envLine = regexp.MustCompile(`^#?([A-Z][A-Z0-9_]*)=`)

// envKeys returns the variables an env file defines or documents (a
// commented-out "#KEY=default" line documents KEY).
func envKeys(t *testing.T, path string) map[string]bool {
	t.Helper()
	keys := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(readFile(t, path)))
	for sc.Scan() {
		if m := envLine.FindStringSubmatch(sc.Text()); m != nil {
			keys[m[1]] = true
		}
	}
	return keys
}

// envValues returns the active KEY=value lines of an env file.
func envValues(t *testing.T, path string) map[string]string {
	t.Helper()
	vals := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(readFile(t, path)))
	for sc.Scan() {
		line := sc.Text()
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			vals[k] = v
		}
	}
	return vals
}

// watchfloorEnv is every variable `watchfloor run` reads: the generated
// config/watchfloor.env, which cmd/watchfloor's TestEnvExample keeps equal
// to the flags.
func watchfloorEnv(t *testing.T) map[string]bool {
	t.Helper()
	keys := envKeys(t, "config/watchfloor.env")
	if len(keys) < 30 || !keys["WATCHFLOOR_NATS_URL"] || !keys["WATCHFLOOR_CLICKHOUSE_ADDR"] || !keys["WATCHFLOOR_OTEL_ENDPOINT"] {
		t.Fatalf("config/watchfloor.env documents %d keys; regenerate it with go test ./cmd/watchfloor -run TestEnvExample -update", len(keys))
	}
	return keys
}

var sensorSection = regexp.MustCompile(`^# Flags of WFSENSOR_COMMAND=(\w+):$`)
var sensorFlag = regexp.MustCompile(`^# --([a-z0-9-]+)\b`)

// sensorFlags maps each wfsensor command to its flags, from the generated
// reference in config/wfsensor.env (cmd/wfsensor's TestEnvExample keeps
// it equal to the real flag sets).
func sensorFlags(t *testing.T) map[string]map[string]bool {
	t.Helper()
	out := map[string]map[string]bool{}
	var cur map[string]bool
	sc := bufio.NewScanner(bytes.NewReader(readFile(t, "config/wfsensor.env")))
	for sc.Scan() {
		if m := sensorSection.FindStringSubmatch(sc.Text()); m != nil {
			cur = map[string]bool{}
			out[m[1]] = cur
			continue
		}
		if m := sensorFlag.FindStringSubmatch(sc.Text()); m != nil && cur != nil {
			cur[m[1]] = true
		}
	}
	for _, cmd := range []string{"tail", "syslog", "replay"} {
		if len(out[cmd]) < 10 {
			t.Fatalf("config/wfsensor.env lists %d flags for %s; regenerate it with go test ./cmd/wfsensor -run TestEnvExample -update", len(out[cmd]), cmd)
		}
	}
	return out
}

// checkSensorArgs checks a wfsensor command line (command first).
func checkSensorArgs(t *testing.T, where string, flags map[string]map[string]bool, args []string) {
	t.Helper()
	if len(args) == 0 {
		t.Errorf("%s: empty wfsensor command line", where)
		return
	}
	known, ok := flags[args[0]]
	if !ok {
		t.Errorf("%s: wfsensor has no command %q", where, args[0])
		return
	}
	for _, a := range args[1:] {
		if name, ok := strings.CutPrefix(a, "--"); ok {
			name, _, _ = strings.Cut(name, "=")
			if !known[name] {
				t.Errorf("%s: wfsensor %s has no flag --%s", where, args[0], name)
			}
		}
	}
	hasAgency := slices.Contains(args, "--agency")
	if !hasAgency {
		t.Errorf("%s: wfsensor %s without --agency", where, args[0])
	}
}

func asStrings(v any) []string {
	l, _ := v.([]any)
	out := make([]string, 0, len(l))
	for _, x := range l {
		out = append(out, toString(x))
	}
	return out
}

func toString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case nil:
		return ""
	default:
		b, _ := json.Marshal(x)
		return strings.Trim(string(b), `"`)
	}
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

// exists reports whether path exists, relative to dir.
func exists(dir, path string) bool {
	_, err := os.Stat(filepath.Join(dir, path))
	return err == nil
}

func TestCompose(t *testing.T) {
	docs := yamlDocs(t, "compose/compose.yaml")
	compose := docs[0]
	services := asMap(compose["services"])
	volumes := asMap(compose["volumes"])
	env := watchfloorEnv(t)
	sflags := sensorFlags(t)

	var pipelines, nats []string
	for name, sv := range services {
		svc := asMap(sv)
		if svc["image"] == nil && svc["build"] == nil {
			t.Errorf("service %s has neither image nor build", name)
		}
		if b := asMap(svc["build"]); b != nil {
			ctx := toString(b["context"])
			if !exists("compose", ctx) || !exists(filepath.Join("compose", ctx), toString(b["dockerfile"])) {
				t.Errorf("service %s: build context %q / dockerfile %q not found", name, ctx, b["dockerfile"])
			}
		}
		for dep := range asMap(svc["depends_on"]) {
			if services[dep] == nil {
				t.Errorf("service %s depends on unknown service %s", name, dep)
			}
		}
		for _, v := range asStrings(svc["volumes"]) {
			src, _, _ := strings.Cut(v, ":")
			if strings.HasPrefix(src, ".") {
				if !exists("compose", src) {
					t.Errorf("service %s mounts %s, which does not exist", name, src)
				}
			} else if _, ok := volumes[src]; !ok {
				t.Errorf("service %s mounts named volume %s, which is not declared", name, src)
			}
		}
		if ef := toString(svc["env_file"]); ef != "" && !exists("compose", ef) {
			t.Errorf("service %s: env_file %s not found", name, ef)
		}
		environment := asMap(svc["environment"])
		cmd := asStrings(svc["command"])
		entry := asStrings(svc["entrypoint"])
		switch {
		case len(entry) > 0 && strings.HasSuffix(entry[0], "/wfsensor"):
			checkSensorArgs(t, "compose service "+name, sflags, cmd)
			for k := range environment {
				if k != "WFSENSOR_NATS" && k != "WFSENSOR_PASSWORD" {
					t.Errorf("compose service %s: wfsensor does not read %s", name, k)
				}
			}
		case toString(svc["image"]) == "watchfloor:dev":
			pipelines = append(pipelines, name)
			if len(cmd) != 1 || cmd[0] != "run" {
				t.Errorf("compose service %s: command %v, want [run]", name, cmd)
			}
			for k := range environment {
				if !env[k] {
					t.Errorf("compose service %s sets %s, which is no flag of watchfloor run", name, k)
				}
			}
			if toString(environment["WATCHFLOOR_NATS_REPLICAS"]) != "3" {
				t.Errorf("compose service %s: WATCHFLOOR_NATS_REPLICAS = %v, want 3 on the cluster", name, environment["WATCHFLOOR_NATS_REPLICAS"])
			}
			for _, u := range strings.Split(toString(environment["WATCHFLOOR_NATS_URL"]), ",") {
				host := strings.TrimPrefix(strings.Split(u, ":")[1], "//")
				if services[host] == nil {
					t.Errorf("compose service %s: NATS URL %s names no service", name, u)
				}
			}
		case strings.HasPrefix(toString(svc["image"]), "nats:"):
			nats = append(nats, name)
			if len(cmd) != 2 || cmd[0] != "-c" {
				t.Errorf("compose service %s: command %v, want -c <config>", name, cmd)
			} else if !exists("nats", filepath.Base(cmd[1])) {
				t.Errorf("compose service %s: config %s is not in deploy/nats", name, cmd[1])
			}
		}
	}
	sort.Strings(pipelines)
	sort.Strings(nats)
	if len(pipelines) != 2 || len(nats) != 3 {
		t.Errorf("pipelines %v, NATS nodes %v: want 2 and 3", pipelines, nats)
	}
	for _, n := range []string{"clickhouse", "grafana", "prometheus", "sensor-demo"} {
		if services[n] == nil {
			t.Errorf("no %s service", n)
		}
	}

	// Prometheus scrapes exactly the pipeline services on the metrics port.
	prom := yamlDocs(t, "compose/prometheus.yml")[0]
	var targets []string
	for _, sc := range prom["scrape_configs"].([]any) {
		for _, st := range asMap(sc)["static_configs"].([]any) {
			targets = append(targets, asStrings(asMap(st)["targets"])...)
		}
	}
	sort.Strings(targets)
	var want []string
	for _, p := range pipelines {
		want = append(want, p+":9464")
	}
	if !slices.Equal(targets, want) {
		t.Errorf("prometheus targets %v, want %v", targets, want)
	}
}

func TestExampleEnvFiles(t *testing.T) {
	env := watchfloorEnv(t)
	for k := range envValues(t, "k8s/pipeline.env") {
		if !env[k] {
			t.Errorf("k8s/pipeline.env sets %s, which is no flag of watchfloor run", k)
		}
	}
	vals := envValues(t, "config/wfsensor.env")
	for _, k := range []string{"WFSENSOR_NATS", "WFSENSOR_PASSWORD", "WFSENSOR_COMMAND", "WFSENSOR_ARGS"} {
		if vals[k] == "" {
			t.Errorf("config/wfsensor.env sets no %s (the systemd unit uses it)", k)
		}
	}
	checkSensorArgs(t, "config/wfsensor.env", sensorFlags(t), append([]string{vals["WFSENSOR_COMMAND"]}, strings.Fields(vals["WFSENSOR_ARGS"])...))

	// The Dockerfile's ENV lines are watchfloor flags too.
	for _, line := range strings.Split(string(readFile(t, "Dockerfile")), "\n") {
		for _, m := range regexp.MustCompile(`\b(WATCHFLOOR_[A-Z0-9_]+)=`).FindAllStringSubmatch(line, -1) {
			if !env[m[1]] {
				t.Errorf("Dockerfile sets %s, which is no flag of watchfloor run", m[1])
			}
		}
	}
}

func TestDockerfile(t *testing.T) {
	df := string(readFile(t, "Dockerfile"))
	for _, m := range regexp.MustCompile(`\./cmd/[a-z]+`).FindAllString(df, -1) {
		if !exists("..", m) {
			t.Errorf("Dockerfile builds %s, which does not exist", m)
		}
	}
	for _, m := range regexp.MustCompile(`COPY --from=build /src/(\S+)`).FindAllStringSubmatch(df, -1) {
		if !exists("..", m[1]) {
			t.Errorf("Dockerfile copies %s, which does not exist", m[1])
		}
	}
	if !strings.Contains(df, "USER nonroot") {
		t.Error("Dockerfile does not drop to a non-root user")
	}
}

func TestKustomize(t *testing.T) {
	env := watchfloorEnv(t)
	sflags := sensorFlags(t)
	k := yamlDocs(t, "k8s/kustomization.yaml")[0]
	for _, r := range asStrings(k["resources"]) {
		if !exists("k8s", r) {
			t.Errorf("kustomization resource %s not found", r)
		}
	}
	pipelineEnv := envValues(t, "k8s/pipeline.env")
	for _, r := range asStrings(k["resources"]) {
		for _, d := range yamlDocs(t, filepath.Join("k8s", r)) {
			if d["apiVersion"] == nil || d["kind"] == nil || asMap(d["metadata"])["name"] == nil {
				t.Errorf("%s: document without apiVersion, kind or metadata.name", r)
			}
			if d["kind"] != "Deployment" {
				continue
			}
			spec := asMap(asMap(asMap(d["spec"])["template"])["spec"])
			containers, _ := spec["containers"].([]any)
			if len(containers) == 0 {
				t.Errorf("%s: Deployment without containers", r)
			}
			for _, c := range containers {
				c := asMap(c)
				sc := asMap(c["securityContext"])
				if sc["allowPrivilegeEscalation"] != false || sc["readOnlyRootFilesystem"] != true {
					t.Errorf("%s: container %s is not locked down", r, c["name"])
				}
				args := asStrings(c["args"])
				if cmd := asStrings(c["command"]); len(cmd) > 0 && strings.HasSuffix(cmd[0], "/wfsensor") {
					checkSensorArgs(t, r, sflags, args)
				}
				envList, _ := c["env"].([]any)
				for _, e := range envList {
					ref := asMap(asMap(asMap(e)["valueFrom"])["configMapKeyRef"])
					if key := toString(ref["key"]); key != "" && pipelineEnv[key] == "" {
						t.Errorf("%s: env %v reads key %s, which k8s/pipeline.env does not set", r, asMap(e)["name"], key)
					}
				}
			}
		}
	}
	for key := range pipelineEnv {
		if !env[key] {
			t.Errorf("k8s/pipeline.env sets %s, no flag of watchfloor run", key)
		}
	}

	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl not installed: kustomize build not run")
	}
	out, err := exec.Command(kubectl, "kustomize", "k8s").CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl kustomize k8s: %v\n%s", err, out)
	}
	kinds := map[string]int{}
	dec := yaml.NewDecoder(bytes.NewReader(out))
	for {
		var d map[string]any
		if err := dec.Decode(&d); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			t.Fatal(err)
		}
		kinds[toString(d["kind"])]++
		if ns := toString(asMap(d["metadata"])["namespace"]); d["kind"] != "Namespace" && ns != "watchfloor" {
			t.Errorf("rendered %s %v in namespace %q, want watchfloor", d["kind"], asMap(d["metadata"])["name"], ns)
		}
	}
	want := map[string]int{"Namespace": 1, "Deployment": 2, "Service": 2, "ConfigMap": 1, "Secret": 2, "PodDisruptionBudget": 1}
	for kind, n := range want {
		if kinds[kind] != n {
			t.Errorf("kustomize renders %d %s, want %d (all: %v)", kinds[kind], kind, n, kinds)
		}
	}
}

var exposure = regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+)`)

func TestSystemdUnits(t *testing.T) {
	unit := string(readFile(t, "systemd/wfsensor@.service"))
	for _, want := range []string{"ExecStart=/usr/local/bin/wfsensor $WFSENSOR_COMMAND $WFSENSOR_ARGS", "EnvironmentFile=/etc/wfsensor/%i.env", "NoNewPrivileges=yes", "ProtectSystem=strict", "CapabilityBoundingSet=\n"} {
		if !strings.Contains(unit, want) {
			t.Errorf("wfsensor@.service lacks %q", want)
		}
	}
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed: units not verified")
	}
	// verify wants the executable to exist: point it at /bin/true.
	dir := t.TempDir()
	path := filepath.Join(dir, "wfsensor@check.service")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(unit, "/usr/local/bin/wfsensor", "/bin/true")), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(sa, "verify", path).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	out, _ = exec.Command(sa, "security", "--offline=yes", path).CombinedOutput()
	m := exposure.FindSubmatch(out)
	if m == nil {
		t.Fatalf("systemd-analyze security printed no exposure level:\n%s", out)
	}
	t.Logf("systemd-analyze security: exposure %s", m[1])
	if string(m[1]) > "2.0" || len(m[1]) > 3 {
		t.Errorf("wfsensor@.service exposure %s, want at most 2.0", m[1])
	}
	// The syslog drop-in only adds the one capability it needs.
	dropin := string(readFile(t, "systemd/wfsensor-syslog.conf"))
	if !strings.Contains(dropin, "CapabilityBoundingSet=CAP_NET_BIND_SERVICE\n") || strings.Count(dropin, "CAP_") != 2 {
		t.Errorf("wfsensor-syslog.conf should grant CAP_NET_BIND_SERVICE and nothing else")
	}
}
