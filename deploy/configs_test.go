package deploy_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/asyncd/asyncd/internal/config"
	"github.com/asyncd/asyncd/internal/testbin"
	"go.yaml.in/yaml/v3"
)

// testVersion is stamped into the binary the tests build, the way
// deploy/docker/Dockerfile stamps a release version.
const testVersion = "0.0.0-deploytest"

// killMargin is what the supervisor adds to graceful_timeout (and
// shutdown_delay) before it kills a draining serving process
// (supervisor.killMargin): a stop can take graceful_timeout +
// shutdown_delay + killMargin, and service managers must wait that long.
const killMargin = 5 * time.Second

// stopSlack is how much longer than that minimum a service manager's stop
// timeout may be before it no longer counts as matched to the config.
const stopSlack = 15 * time.Second

var (
	repoRoot string // the asyncd module's root
	goBin    string
	// exampleBins holds the examples' binaries (customBinary,
	// dbapiBinaries), built once per test process; TestMain removes it.
	exampleBins string
)

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	wd, err := os.Getwd()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	repoRoot = filepath.Dir(wd) // the package directory is <root>/deploy
	if _, err := os.Stat(filepath.Join(repoRoot, "go.mod")); err != nil {
		fmt.Fprintf(os.Stderr, "module root not found above %s: %v\n", wd, err)
		return 1
	}
	if goBin, err = exec.LookPath("go"); err != nil {
		fmt.Fprintln(os.Stderr, "the go command is needed to build asyncd:", err)
		return 1
	}
	if exampleBins, err = os.MkdirTemp("", "asyncd-deploy-"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(exampleBins)
	return testbin.Main(m)
}

// asyncdBinary is the binary the checks run, built once per test process
// (testbin) with testVersion stamped, and without the race detector: the
// checks run it a hundred times to read configs, not to serve. In -short
// mode the test is skipped instead.
func asyncdBinary(t *testing.T) string {
	t.Helper()
	return testbin.Binary(t, testbin.Build{Version: testVersion})
}

// runBin runs bin with args in dir, with the clean environment
// (testbin.Env) so that a developer's ASYNCD_* variables cannot change a
// verdict, and returns what it printed and its exit status.
func runBin(t *testing.T, bin, dir string, args ...string) testbin.Result {
	t.Helper()
	return testbin.Run(t, bin, testbin.Options{Args: args, Dir: dir}, 30*time.Second)
}

// configFile is an asyncd config to check: a file, or a block of a
// Markdown document written out to a temporary file.
type configFile struct {
	name string // for messages: path from the repository root, with :line for Markdown blocks
	path string // the file to pass to -c
	dir  string // where to run asyncd (relative paths in the config resolve there)
	mod  string // directory of the Go module whose binary reads it
}

// findConfigs lists every asyncd config under docs/, deploy/ and examples/
// (YAML, JSON and Gunicorn .py files, and the Markdown code blocks there
// and in README.md that are asyncd configs: see docBlocks). Kubernetes
// manifests and kustomizations are YAML too: a document with apiVersion
// and kind is not an asyncd config.
func findConfigs(t *testing.T) []configFile {
	t.Helper()
	var out []configFile
	tmp := t.TempDir()
	addMarkdown := func(path string) {
		blocks, err := docBlocks(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range blocks {
			rel := relPath(path)
			f := filepath.Join(tmp, fmt.Sprintf("%s-%d.%s", strings.ReplaceAll(rel, "/", "_"), b.line, b.ext))
			if err := os.WriteFile(f, []byte(b.text), 0o644); err != nil {
				t.Fatal(err)
			}
			out = append(out, configFile{name: fmt.Sprintf("%s:%d", rel, b.line), path: f,
				dir: filepath.Dir(path), mod: moduleOf(t, path)})
		}
	}
	addMarkdown(filepath.Join(repoRoot, "README.md"))
	for _, top := range []string{"docs", "deploy", "examples"} {
		err := filepath.WalkDir(filepath.Join(repoRoot, top), func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				return nil
			}
			switch strings.ToLower(filepath.Ext(path)) {
			case ".md":
				addMarkdown(path)
			case ".yaml", ".yml", ".json":
				manifest, err := isKubernetes(path)
				if err != nil {
					return err
				}
				if manifest {
					return nil
				}
				fallthrough
			case ".py":
				out = append(out, configFile{name: relPath(path), path: path, dir: filepath.Dir(path), mod: moduleOf(t, path)})
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func relPath(path string) string {
	rel, err := filepath.Rel(repoRoot, path)
	if err != nil {
		return path
	}
	return filepath.ToSlash(rel)
}

// isKubernetes reports whether a YAML file holds Kubernetes objects (or a
// kustomization): a document with both apiVersion and kind.
func isKubernetes(path string) (bool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return false, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	for {
		var doc map[string]any
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return false, nil
		}
		if err != nil {
			// Not YAML a manifest could be: let asyncd report it.
			return false, nil
		}
		if doc["apiVersion"] != nil && doc["kind"] != nil {
			return true, nil
		}
	}
}

// moduleOf returns the directory of the Go module that path belongs to.
func moduleOf(t *testing.T, path string) string {
	t.Helper()
	for dir := filepath.Dir(path); ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		if dir == repoRoot || dir == filepath.Dir(dir) {
			return repoRoot
		}
	}
}

// binaryFor returns the asyncd binary of a module: the main one, or a
// team's own build (examples/custom-plugin), built the way its README says
// (customBinary). Any other module is an error: the test would not know
// how its binary is built.
func binaryFor(t *testing.T, mod string) string {
	t.Helper()
	switch mod {
	case repoRoot:
		return asyncdBinary(t)
	case filepath.Join(repoRoot, customPluginDir):
		return customBinary(t)
	case filepath.Join(repoRoot, dbapiDir):
		bin, _ := dbapiBinaries(t)
		return bin
	}
	t.Fatalf("config in module %s: the test knows how to build only asyncd and %s", relPath(mod), customPluginDir)
	return ""
}

// TestConfigsLoad checks that every asyncd config in the repository loads:
// `asyncd --check-config -c FILE` exits 0 and says so. The deployment
// configs must also load without a warning.
func TestConfigsLoad(t *testing.T) {
	configs := findConfigs(t)
	seen := map[string]bool{}
	for _, c := range configs {
		seen[c.name] = true
	}
	// The files the docs send users to must be among them: an empty walk
	// would pass vacuously.
	for _, must := range []string{
		"examples/asyncd.yaml", "deploy/nginx/asyncd.yaml", "deploy/systemd/asyncd.yaml",
		"deploy/docker/asyncd.yaml", "deploy/kubernetes/asyncd.yaml",
	} {
		if !seen[must] {
			t.Errorf("%s was not found among the configs", must)
		}
	}
	// And the Markdown examples users copy first: README.md's and the
	// generated docs/configuration.md's.
	for _, doc := range []string{"README.md:", "docs/configuration.md:"} {
		found := false
		for name := range seen {
			found = found || strings.HasPrefix(name, doc)
		}
		if !found {
			t.Errorf("no config block of %s was found", strings.TrimSuffix(doc, ":"))
		}
	}
	for _, c := range configs {
		t.Run(c.name, func(t *testing.T) {
			bin := binaryFor(t, c.mod)
			r := runBin(t, bin, c.dir, "--check-config", "-c", c.path)
			if r.Code != 0 || !strings.Contains(r.Stdout, "config OK") {
				t.Fatalf("asyncd --check-config -c %s: exit %d\nstdout: %s\nstderr: %s", c.name, r.Code, r.Stdout, r.Stderr)
			}
			if r.Stderr != "" {
				if strings.HasPrefix(c.name, "deploy/") {
					t.Errorf("deployment config %s loads with warnings:\n%s", c.name, r.Stderr)
				} else {
					t.Logf("%s warns (expected for Gunicorn migration examples):\n%s", c.name, r.Stderr)
				}
			}
		})
	}
}

// effective is a config as asyncd resolves it (--print-config): defaults
// filled in, values in canonical form.
type effective struct {
	Bind                []string          `yaml:"bind"`
	GracefulTimeout     string            `yaml:"graceful_timeout"`
	ShutdownDelay       string            `yaml:"shutdown_delay"`
	Keepalive           string            `yaml:"keepalive"`
	SocketMode          string            `yaml:"socket_mode"`
	SocketGroup         string            `yaml:"socket_group"`
	ForwardedAllowIPs   []string          `yaml:"forwarded_allow_ips"`
	SecureSchemeHeaders map[string]string `yaml:"secure_scheme_headers"`
	Routes              []struct {
		Path    string         `yaml:"path"`
		Handler string         `yaml:"handler"`
		Options map[string]any `yaml:"options"`
	} `yaml:"routes"`
}

func loadEffective(t *testing.T, rel string) effective {
	t.Helper()
	path := filepath.Join(repoRoot, rel)
	r := runBin(t, asyncdBinary(t), filepath.Dir(path), "--print-config", "-c", path)
	if r.Code != 0 {
		t.Fatalf("asyncd --print-config -c %s: exit %d: %s", rel, r.Code, r.Stderr)
	}
	var e effective
	if err := yaml.Unmarshal([]byte(r.Stdout), &e); err != nil {
		t.Fatalf("%s: --print-config output is not YAML: %v", rel, err)
	}
	return e
}

func (e effective) duration(t *testing.T, key, v string) time.Duration {
	t.Helper()
	d, err := time.ParseDuration(v)
	if err != nil {
		t.Fatalf("%s: %q from --print-config: %v", key, v, err)
	}
	return d
}

// stopBudget is the longest a graceful stop of this config can take.
func (e effective) stopBudget(t *testing.T) time.Duration {
	return e.duration(t, "graceful_timeout", e.GracefulTimeout) + e.duration(t, "shutdown_delay", e.ShutdownDelay) + killMargin
}

// healthRoute returns what the health-check route at path checks, "ready"
// or "live": the route must exist and be served by the health plugin
// (plugins/health), whose check option defaults to ready. A route served
// by anything else fails: a static 200 never turns 503 during
// shutdown_delay, which the stop arithmetic of the deployments relies on.
func (e effective) healthRoute(t *testing.T, path string) string {
	t.Helper()
	for _, r := range e.Routes {
		if r.Path != path {
			continue
		}
		if r.Handler != "health" {
			t.Fatalf("route %s is served by %q, not the health plugin", path, r.Handler)
		}
		check, _ := r.Options["check"].(string)
		switch strings.ToLower(check) {
		case "", "ready", "readiness":
			return "ready"
		case "live", "liveness":
			return "live"
		}
		t.Fatalf("route %s: unknown health check %q", path, check)
	}
	t.Fatalf("no route %s in the config", path)
	return ""
}

// TestHealthRoutes checks every deployment's health routes: /readyz, the
// route load balancers, the Docker HEALTHCHECK and the Kubernetes
// readinessProbe follow, is the health plugin in readiness mode; /livez,
// where a deployment has one, is the health plugin in liveness mode.
func TestHealthRoutes(t *testing.T) {
	for _, rel := range []string{
		"deploy/docker/asyncd.yaml", "deploy/kubernetes/asyncd.yaml",
		"deploy/systemd/asyncd.yaml", "deploy/nginx/asyncd.yaml",
	} {
		t.Run(rel, func(t *testing.T) {
			cfg := loadEffective(t, rel)
			if got := cfg.healthRoute(t, "/readyz"); got != "ready" {
				t.Errorf("/readyz is a %s check, want ready", got)
			}
			for _, r := range cfg.Routes {
				if r.Path == "/livez" {
					if got := cfg.healthRoute(t, "/livez"); got != "live" {
						t.Errorf("/livez is a %s check, want live", got)
					}
				}
			}
		})
	}
}

// bindPort returns the TCP port of the config's bind entries (they must
// agree on one).
func (e effective) bindPort(t *testing.T) int {
	t.Helper()
	port := -1
	for _, b := range e.Bind {
		if strings.HasPrefix(b, "unix:") || strings.HasPrefix(b, "fd://") {
			continue
		}
		_, p, err := net.SplitHostPort(strings.TrimPrefix(b, "tcp://"))
		if err != nil {
			t.Fatalf("bind %q: %v", b, err)
		}
		n, _ := strconv.Atoi(p)
		if port >= 0 && n != port {
			t.Fatalf("bind entries on ports %d and %d", port, n)
		}
		port = n
	}
	if port < 0 {
		t.Fatalf("no TCP bind entry in %v", e.Bind)
	}
	return port
}

// unit is a parsed systemd unit file: section -> key -> values.
type unit map[string]map[string][]string

func parseUnit(t *testing.T, rel string) unit {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, rel))
	if err != nil {
		t.Fatal(err)
	}
	u := unit{}
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
			u[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s:%d: not a unit file line: %q", rel, n, line)
			}
			u[section][strings.TrimSpace(k)] = append(u[section][strings.TrimSpace(k)], strings.TrimSpace(v))
		}
	}
	return u
}

// one returns the single value of a key, or fails.
func (u unit) one(t *testing.T, section, key string) string {
	t.Helper()
	vs := u[section][key]
	if len(vs) != 1 {
		t.Fatalf("[%s] %s: want one value, got %q", section, key, vs)
	}
	return vs[0]
}

// systemdSpan parses a systemd time span: "40", "40s", "1min 10s", "2m".
func systemdSpan(s string) (time.Duration, error) {
	units := map[string]time.Duration{
		"": time.Second, "s": time.Second, "sec": time.Second, "second": time.Second, "seconds": time.Second,
		"ms": time.Millisecond, "msec": time.Millisecond,
		"m": time.Minute, "min": time.Minute, "minute": time.Minute, "minutes": time.Minute,
		"h": time.Hour, "hr": time.Hour, "hour": time.Hour, "hours": time.Hour,
	}
	re := regexp.MustCompile(`^\s*([0-9]+(?:\.[0-9]+)?)\s*([a-z]*)`)
	var total time.Duration
	rest := strings.TrimSpace(s)
	if rest == "" {
		return 0, fmt.Errorf("empty time span")
	}
	for rest != "" {
		m := re.FindStringSubmatch(rest)
		if m == nil {
			return 0, fmt.Errorf("time span %q: cannot parse %q", s, rest)
		}
		unit, ok := units[m[2]]
		if !ok {
			return 0, fmt.Errorf("time span %q: unknown unit %q", s, m[2])
		}
		f, _ := strconv.ParseFloat(m[1], 64)
		total += time.Duration(f * float64(unit))
		rest = strings.TrimSpace(rest[len(m[0]):])
	}
	return total, nil
}

// checkStopTimeout checks a service manager's stop timeout against a
// config's graceful stop.
func checkStopTimeout(t *testing.T, what string, got, budget time.Duration) {
	t.Helper()
	if got < budget {
		t.Errorf("%s is %s, shorter than graceful_timeout + shutdown_delay + %s = %s: "+
			"requests still draining would be killed", what, got, killMargin, budget)
	}
	if got > budget+stopSlack {
		t.Errorf("%s is %s, more than %s beyond graceful_timeout + shutdown_delay + %s = %s: "+
			"not matched to the config", what, got, stopSlack, killMargin, budget)
	}
}

// sameListen reports whether a systemd ListenStream= value and an asyncd
// bind entry name the same socket.
func sameListen(listen, bind string) bool {
	if strings.HasPrefix(listen, "/") || strings.HasPrefix(listen, "@") {
		return bind == "unix:"+listen
	}
	if strings.HasPrefix(bind, "unix:") || strings.HasPrefix(bind, "fd://") {
		return false
	}
	lh, lp, err := net.SplitHostPort(listen)
	if err != nil {
		lh, lp = "", listen // a bare port: every address
	}
	bh, bp, err := net.SplitHostPort(strings.TrimPrefix(bind, "tcp://"))
	if err != nil || lp != bp {
		return false
	}
	norm := func(h string) string {
		if h == "" || h == "0.0.0.0" || h == "::" {
			return "*"
		}
		return strings.Trim(h, "[]")
	}
	return norm(lh) == norm(bh)
}

// TestSystemdUnits checks the service and socket units against the config
// they run.
func TestSystemdUnits(t *testing.T) {
	svc := parseUnit(t, "deploy/systemd/asyncd.service")
	sock := parseUnit(t, "deploy/systemd/asyncd.socket")
	cfg := loadEffective(t, "deploy/systemd/asyncd.yaml")

	for key, want := range map[string]string{
		"Type":         "notify",
		"NotifyAccess": "all",
		"ExecReload":   "/bin/kill -HUP $MAINPID",
		"KillSignal":   "SIGTERM",
		"KillMode":     "mixed",
	} {
		if got := svc.one(t, "Service", key); got != want {
			t.Errorf("asyncd.service: %s=%s, want %s", key, got, want)
		}
	}
	if exec := svc.one(t, "Service", "ExecStart"); !strings.HasSuffix(exec, " -c /etc/asyncd/asyncd.yaml") {
		t.Errorf("asyncd.service: ExecStart=%s does not run the config installed as /etc/asyncd/asyncd.yaml", exec)
	}
	stop, err := systemdSpan(svc.one(t, "Service", "TimeoutStopSec"))
	if err != nil {
		t.Fatal(err)
	}
	checkStopTimeout(t, "asyncd.service TimeoutStopSec", stop, cfg.stopBudget(t))

	// Every socket systemd passes must be adopted (its address is a bind
	// entry), and every bind entry must come from systemd; otherwise
	// asyncd binds a second socket on the same address and fails.
	listens := sock["Socket"]["ListenStream"]
	if len(listens) == 0 {
		t.Fatal("asyncd.socket has no ListenStream=")
	}
	fd := 3
	for _, l := range listens {
		found := false
		for _, b := range cfg.Bind {
			if sameListen(l, b) || b == "fd://"+strconv.Itoa(fd) {
				found = true
			}
		}
		if !found {
			t.Errorf("asyncd.socket ListenStream=%s matches no bind entry of deploy/systemd/asyncd.yaml %v", l, cfg.Bind)
		}
		fd++
	}
	for _, b := range cfg.Bind {
		found := false
		for i, l := range listens {
			if sameListen(l, b) || b == "fd://"+strconv.Itoa(3+i) {
				found = true
			}
		}
		if !found {
			t.Errorf("bind %s of deploy/systemd/asyncd.yaml is not one of asyncd.socket's ListenStream= %v", b, listens)
		}
	}
	if got := sock.one(t, "Unit", "Description"); got == "" {
		t.Error("asyncd.socket has no description")
	}
	if g := sock.one(t, "Socket", "SocketGroup"); g != nginxGroup || sock.one(t, "Socket", "SocketMode") != "0660" {
		t.Errorf("asyncd.socket: SocketGroup=%s SocketMode=%s: nginx (group %s) could not connect", g,
			sock.one(t, "Socket", "SocketMode"), nginxGroup)
	}
	if req := svc["Unit"]["Requires"]; len(req) != 1 || req[0] != "asyncd.socket" {
		t.Errorf("asyncd.service: Requires=%v, want asyncd.socket", req)
	}
}

// TestSystemdVerify runs systemd-analyze verify on the units when it is
// installed: any complaint (an unknown key, a bad value, a comment on a
// value's line) fails.
func TestSystemdVerify(t *testing.T) {
	units := map[string]string{}
	for _, name := range []string{"asyncd.service", "asyncd.socket"} {
		b, err := os.ReadFile(filepath.Join(repoRoot, "deploy/systemd", name))
		if err != nil {
			t.Fatal(err)
		}
		units[name] = string(b)
	}
	verifyUnits(t, units)
}

// yamlDocs decodes every document of a YAML file.
func yamlDocs(t *testing.T, rel string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, rel))
	if err != nil {
		t.Fatal(err)
	}
	var docs []map[string]any
	dec := yaml.NewDecoder(bytes.NewReader(b))
	for {
		var d map[string]any
		if err := dec.Decode(&d); err != nil {
			if errors.Is(err, io.EOF) {
				return docs
			}
			t.Fatalf("%s: %v", rel, err)
		}
		if d != nil {
			docs = append(docs, d)
		}
	}
}

// dig walks maps and lists: dig(x, "spec", "template", 0, "name").
func dig(t *testing.T, x any, path ...any) any {
	t.Helper()
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := x.(map[string]any)
			if !ok {
				t.Fatalf("looking up %v: %q is not in a mapping", path, k)
			}
			x = m[k]
		case int:
			l, ok := x.([]any)
			if !ok || k >= len(l) {
				t.Fatalf("looking up %v: no item %d", path, k)
			}
			x = l[k]
		}
		if x == nil {
			t.Fatalf("looking up %v: missing", path)
		}
	}
	return x
}

func asInt(t *testing.T, what string, x any) int {
	t.Helper()
	n, ok := x.(int)
	if !ok {
		t.Fatalf("%s: %v is not an integer", what, x)
	}
	return n
}

// TestKubernetes checks the manifests against deploy/kubernetes/asyncd.yaml:
// the grace period covers preStop, shutdown_delay and graceful_timeout;
// the probes hit the health plugin's routes on the port asyncd binds; the
// config reaches the path the container reads.
func TestKubernetes(t *testing.T) {
	cfg := loadEffective(t, "deploy/kubernetes/asyncd.yaml")
	kinds := map[string]map[string]any{}
	for _, f := range []string{"deployment.yaml", "service.yaml", "hpa.yaml", "kustomization.yaml"} {
		for _, d := range yamlDocs(t, "deploy/kubernetes/"+f) {
			kind, _ := d["kind"].(string)
			kinds[kind] = d
		}
	}
	for _, k := range []string{"Deployment", "Service", "HorizontalPodAutoscaler", "Kustomization"} {
		if kinds[k] == nil {
			t.Fatalf("no %s in deploy/kubernetes", k)
		}
	}
	dep := kinds["Deployment"]
	pod := dig(t, dep, "spec", "template", "spec")
	grace := asInt(t, "terminationGracePeriodSeconds", dig(t, pod, "terminationGracePeriodSeconds"))
	var c map[string]any
	for _, x := range dig(t, pod, "containers").([]any) {
		if m := x.(map[string]any); m["name"] == "asyncd" {
			c = m
		}
	}
	if c == nil {
		t.Fatal("no container named asyncd")
	}
	preStop := 0
	switch hook := dig(t, c, "lifecycle", "preStop").(map[string]any); {
	case hook["sleep"] != nil:
		preStop = asInt(t, "preStop.sleep.seconds", dig(t, hook, "sleep", "seconds"))
	case hook["exec"] != nil:
		cmd := dig(t, hook, "exec", "command").([]any)
		if len(cmd) != 2 || cmd[0] != "sleep" {
			t.Fatalf("preStop exec %v is not [sleep N]", cmd)
		}
		preStop, _ = strconv.Atoi(fmt.Sprint(cmd[1]))
	default:
		t.Fatalf("preStop hook %v is neither sleep nor exec", hook)
	}
	checkStopTimeout(t, "terminationGracePeriodSeconds (minus the preStop sleep)",
		time.Duration(grace-preStop)*time.Second, cfg.stopBudget(t))

	// Probes: readiness on a ready check, liveness on a live check, on the
	// container port asyncd binds.
	ports := map[string]int{}
	for _, p := range dig(t, c, "ports").([]any) {
		m := p.(map[string]any)
		ports[fmt.Sprint(m["name"])] = asInt(t, "containerPort", m["containerPort"])
	}
	for probe, want := range map[string]string{"readinessProbe": "ready", "livenessProbe": "live"} {
		path := fmt.Sprint(dig(t, c, probe, "httpGet", "path"))
		if got := cfg.healthRoute(t, path); got != want {
			t.Errorf("%s on %s: the route's check is %s, want %s", probe, path, got, want)
		}
		port := dig(t, c, probe, "httpGet", "port")
		n, ok := port.(int)
		if !ok {
			n = ports[fmt.Sprint(port)]
		}
		if n != cfg.bindPort(t) {
			t.Errorf("%s on port %v (%d); asyncd binds %v", probe, port, n, cfg.Bind)
		}
	}
	if tp := fmt.Sprint(dig(t, kinds["Service"], "spec", "ports", 0, "targetPort")); ports[tp] == 0 {
		if n, _ := strconv.Atoi(tp); n != cfg.bindPort(t) {
			t.Errorf("Service targetPort %s is not the container's port", tp)
		}
	}

	// Config: the ConfigMap generated from asyncd.yaml is mounted where
	// the container's -c points.
	args := dig(t, c, "args").([]any)
	if len(args) != 2 || args[0] != "-c" {
		t.Fatalf("container args %v, want [-c PATH]", args)
	}
	cfgPath := fmt.Sprint(args[1])
	gen := dig(t, kinds["Kustomization"], "configMapGenerator", 0).(map[string]any)
	if files := dig(t, gen, "files").([]any); len(files) != 1 || files[0] != "asyncd.yaml" || filepath.Base(cfgPath) != "asyncd.yaml" {
		t.Errorf("configMapGenerator files %v do not provide %s", files, filepath.Base(cfgPath))
	}
	mounted := false
	for _, v := range dig(t, pod, "volumes").([]any) {
		vm := v.(map[string]any)
		cm, ok := vm["configMap"].(map[string]any)
		if !ok || cm["name"] != gen["name"] {
			continue
		}
		for _, m := range dig(t, c, "volumeMounts").([]any) {
			mm := m.(map[string]any)
			if mm["name"] == vm["name"] && mm["mountPath"] == filepath.Dir(cfgPath) {
				mounted = true
			}
		}
	}
	if !mounted {
		t.Errorf("the ConfigMap %v is not mounted at %s", gen["name"], filepath.Dir(cfgPath))
	}
	if ref := dig(t, kinds["HorizontalPodAutoscaler"], "spec", "scaleTargetRef", "name"); ref != dig(t, dep, "metadata", "name") {
		t.Errorf("the HorizontalPodAutoscaler scales %v, not the Deployment", ref)
	}
}

// TestKustomize renders the manifests with kubectl when it is installed.
func TestKustomize(t *testing.T) {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl is not installed: the kustomization is not rendered here")
	}
	cmd := exec.Command(kubectl, "kustomize", filepath.Join(repoRoot, "deploy/kubernetes"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl kustomize deploy/kubernetes: %v\n%s", err, out)
	}
	if !regexp.MustCompile(`(?m)^\s+name: asyncd-config-[a-z0-9]+$`).Match(out) {
		t.Errorf("the Deployment does not reference the generated ConfigMap:\n%s", out)
	}
}

// dockerfile is a parsed Dockerfile: instructions per build stage.
type instruction struct{ cmd, args string }

func parseDockerfile(t *testing.T, rel string) [][]instruction {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, rel))
	if err != nil {
		t.Fatal(err)
	}
	var stages [][]instruction
	var cur strings.Builder
	flush := func() {
		line := strings.TrimSpace(cur.String())
		cur.Reset()
		if line == "" {
			return
		}
		cmd, args, _ := strings.Cut(line, " ")
		in := instruction{strings.ToUpper(cmd), strings.TrimSpace(args)}
		if in.cmd == "FROM" {
			stages = append(stages, nil)
		}
		if len(stages) == 0 {
			t.Fatalf("%s: %s before FROM", rel, in.cmd)
		}
		stages[len(stages)-1] = append(stages[len(stages)-1], in)
	}
	for _, l := range strings.Split(string(b), "\n") {
		trimmed := strings.TrimSpace(l)
		if strings.HasPrefix(trimmed, "#") {
			continue
		}
		if strings.HasSuffix(trimmed, "\\") {
			cur.WriteString(strings.TrimSuffix(trimmed, "\\") + " ")
			continue
		}
		cur.WriteString(trimmed)
		flush()
	}
	flush()
	return stages
}

// TestDockerfile checks the Dockerfile's configuration (docker build
// cannot run here): multi-stage, a static binary, a non-root user, a
// HEALTHCHECK on the config's readiness route, the config where the
// command reads it, and a documented stop timeout that covers the stop.
func TestDockerfile(t *testing.T) {
	stages := parseDockerfile(t, "deploy/docker/Dockerfile")
	cfg := loadEffective(t, "deploy/docker/asyncd.yaml")
	if len(stages) < 2 {
		t.Fatalf("%d build stages, want a multi-stage build", len(stages))
	}
	static := false
	for _, st := range stages[:len(stages)-1] {
		for _, in := range st {
			if in.cmd == "RUN" && strings.Contains(in.args, "go build") && strings.Contains(in.args, "CGO_ENABLED=0") {
				static = true
			}
		}
	}
	if !static {
		t.Error("no build stage runs go build with CGO_ENABLED=0")
	}
	final := stages[len(stages)-1]
	get := func(cmd string) []string {
		var out []string
		for _, in := range final {
			if in.cmd == cmd {
				out = append(out, in.args)
			}
		}
		return out
	}
	users := get("USER")
	if len(users) == 0 {
		t.Error("the final stage runs as root (no USER)")
	}
	for _, u := range users {
		if name, _, _ := strings.Cut(u, ":"); name == "root" || name == "0" {
			t.Errorf("USER %s is root", u)
		}
	}
	if s := get("STOPSIGNAL"); len(s) != 1 || s[0] != "SIGTERM" {
		t.Errorf("STOPSIGNAL %v, want SIGTERM (asyncd's graceful stop)", s)
	}
	hc := get("HEALTHCHECK")
	if len(hc) != 1 {
		t.Fatalf("%d HEALTHCHECK instructions in the final stage, want 1", len(hc))
	}
	m := regexp.MustCompile(`http://(?:127\.0\.0\.1|localhost):(\d+)(/[^"' ]*)`).FindStringSubmatch(hc[0])
	if m == nil {
		t.Fatalf("HEALTHCHECK %q does not fetch a local URL", hc[0])
	}
	if port, _ := strconv.Atoi(m[1]); port != cfg.bindPort(t) {
		t.Errorf("HEALTHCHECK port %d; asyncd binds %v", port, cfg.Bind)
	}
	if check := cfg.healthRoute(t, m[2]); check != "ready" {
		t.Errorf("HEALTHCHECK on %s, a %s check; want the readiness route", m[2], check)
	}
	// The config is copied to where the command reads it.
	var dest string
	for _, c := range get("COPY") {
		f := strings.Fields(c)
		if len(f) == 2 && f[0] == "deploy/docker/asyncd.yaml" {
			dest = f[1]
		}
	}
	if dest == "" {
		t.Fatal("deploy/docker/asyncd.yaml is not copied into the image")
	}
	if cmd := strings.Join(append(get("ENTRYPOINT"), get("CMD")...), " "); !strings.Contains(cmd, `"-c", "`+dest+`"`) {
		t.Errorf("ENTRYPOINT/CMD %s does not read %s", cmd, dest)
	}
	// Docker waits 10s by default before SIGKILL: every documented
	// docker run/stop must give the stop enough time.
	budget := cfg.stopBudget(t)
	found := 0
	for _, f := range []string{"deploy/docker/Dockerfile", "deploy/docker/asyncd.yaml", "deploy/README.md"} {
		b, err := os.ReadFile(filepath.Join(repoRoot, f))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range regexp.MustCompile(`--stop-timeout[ =](\d+)`).FindAllStringSubmatch(string(b), -1) {
			found++
			n, _ := strconv.Atoi(m[1])
			checkStopTimeout(t, f+": --stop-timeout", time.Duration(n)*time.Second, budget)
		}
	}
	if found == 0 {
		t.Error("no documented --stop-timeout: Docker's 10s default cuts the graceful stop short")
	}
}

// nginxConf is the parts of the nginx site the test checks.
type nginxConf struct {
	upstreams map[string]map[string][]string // name -> directive -> values
	locations []map[string][]string          // directive -> values
}

// parseNginx reads the site's upstream and location blocks (one directive
// per line, as the file is written).
func parseNginx(t *testing.T, rel string) nginxConf {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, rel))
	if err != nil {
		t.Fatal(err)
	}
	conf := nginxConf{upstreams: map[string]map[string][]string{}}
	var stack []string
	var block map[string][]string
	for _, l := range strings.Split(string(b), "\n") {
		line := strings.TrimSpace(l)
		if i := strings.Index(line, "#"); i >= 0 {
			line = strings.TrimSpace(line[:i])
		}
		switch {
		case line == "":
		case strings.HasSuffix(line, "{"):
			head := strings.Fields(strings.TrimSuffix(line, "{"))
			stack = append(stack, strings.Join(head, " "))
			switch head[0] {
			case "upstream":
				block = map[string][]string{}
				conf.upstreams[head[1]] = block
			case "location":
				block = map[string][]string{}
				conf.locations = append(conf.locations, block)
			}
		case line == "}":
			stack = stack[:len(stack)-1]
			block = nil
		case block != nil:
			name, args, _ := strings.Cut(strings.TrimSuffix(line, ";"), " ")
			block[name] = append(block[name], strings.TrimSpace(args))
		}
	}
	return conf
}

// nginxGroup is the group Debian's nginx workers run as.
const nginxGroup = "www-data"

// TestNginxSite checks the nginx site against the configs of the asyncd
// it fronts: it reaches asyncd's addresses, keeps upstream connections
// alive for less time than asyncd does, and sends the headers
// forwarded_allow_ips and secure_scheme_headers expect.
func TestNginxSite(t *testing.T) {
	conf := parseNginx(t, "deploy/nginx/asyncd.conf")
	if len(conf.upstreams) == 0 || len(conf.locations) == 0 {
		t.Fatal("no upstream or location blocks found")
	}
	for _, rel := range []string{"deploy/nginx/asyncd.yaml", "deploy/systemd/asyncd.yaml"} {
		cfg := loadEffective(t, rel)
		keepalive := cfg.duration(t, "keepalive", cfg.Keepalive)
		tcp, unixSock := false, false
		for name, up := range conf.upstreams {
			for _, s := range up["server"] {
				addr := strings.Fields(s)[0]
				bind := addr
				if p, ok := strings.CutPrefix(addr, "unix:"); ok {
					unixSock = true
					bind = "unix:" + p
				} else {
					tcp = true
				}
				found := false
				for _, b := range cfg.Bind {
					if b == bind {
						found = true
					}
				}
				if !found {
					t.Errorf("upstream %s server %s is not a bind entry of %s %v", name, addr, rel, cfg.Bind)
				}
				if !strings.HasPrefix(addr, "unix:") {
					host, _, _ := net.SplitHostPort(addr)
					if !contains(cfg.ForwardedAllowIPs, host) && !contains(cfg.ForwardedAllowIPs, "*") {
						t.Errorf("%s: forwarded_allow_ips %v does not trust nginx's address %s", rel, cfg.ForwardedAllowIPs, host)
					}
				}
			}
			if len(up["keepalive"]) != 1 {
				t.Errorf("upstream %s keeps no connections alive (keepalive N)", name)
			}
			kt := up["keepalive_timeout"]
			if len(kt) != 1 {
				t.Errorf("upstream %s: no keepalive_timeout (nginx's default 60s must be set explicitly below asyncd's %s)", name, keepalive)
				continue
			}
			d, err := time.ParseDuration(kt[0])
			if err != nil {
				t.Fatalf("upstream %s keepalive_timeout %q: %v", name, kt[0], err)
			}
			if d >= keepalive {
				t.Errorf("upstream %s keepalive_timeout %s is not shorter than %s keepalive %s: nginx would reuse connections asyncd is closing (502s)", name, d, rel, keepalive)
			}
		}
		if !tcp || !unixSock {
			t.Errorf("want an upstream over TCP and one over a unix socket (tcp %v, unix %v)", tcp, unixSock)
		}
		// nginx (www-data) needs write permission on the socket asyncd
		// creates, however asyncd was started.
		mode, err := strconv.ParseUint(cfg.SocketMode, 8, 32)
		if err != nil || cfg.SocketGroup != nginxGroup || mode&0o060 != 0o060 {
			t.Errorf("%s: socket_group %q, socket_mode %q: nginx (group %s) could not connect to the unix socket",
				rel, cfg.SocketGroup, cfg.SocketMode, nginxGroup)
		}
		if _, ok := cfg.SecureSchemeHeaders["X-FORWARDED-PROTO"]; !ok {
			t.Errorf("%s: secure_scheme_headers %v has no X-FORWARDED-PROTO, which nginx sends", rel, cfg.SecureSchemeHeaders)
		}
	}
	for i, loc := range conf.locations {
		if len(loc["proxy_pass"]) == 0 {
			continue
		}
		headers := map[string]string{}
		for _, h := range loc["proxy_set_header"] {
			name, val, _ := strings.Cut(h, " ")
			headers[strings.ToLower(name)] = strings.TrimSpace(val)
		}
		for name, want := range map[string]string{
			"host":              "$host",
			"x-forwarded-for":   "$proxy_add_x_forwarded_for",
			"x-forwarded-proto": "$scheme",
		} {
			if headers[name] != want {
				t.Errorf("location %d: proxy_set_header %s is %q, want %s", i, name, headers[name], want)
			}
		}
		if v := loc["proxy_http_version"]; len(v) != 1 || v[0] != "1.1" {
			t.Errorf("location %d: proxy_http_version %v, want 1.1 (upstream keep-alive)", i, v)
		}
		if c := headers["connection"]; c != `""` && c != `"upgrade"` {
			t.Errorf("location %d: Connection header %q: keep-alive needs \"\" (or \"upgrade\" for WebSocket)", i, c)
		}
	}
}

// TestNginxSyntax runs nginx -t on the site when nginx is installed, with
// a throw-away certificate and ports.
func TestNginxSyntax(t *testing.T) {
	nginx, err := exec.LookPath("nginx")
	if err != nil {
		if _, err = os.Stat("/usr/sbin/nginx"); err != nil {
			t.Skip("nginx is not installed: the site's syntax is not checked here")
		}
		nginx = "/usr/sbin/nginx"
	}
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl is not installed: no certificate for nginx -t")
	}
	dir := t.TempDir()
	gen := exec.Command(openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
		"-subj", "/CN=example.com", "-keyout", filepath.Join(dir, "key.pem"), "-out", filepath.Join(dir, "cert.pem"))
	if out, err := gen.CombinedOutput(); err != nil {
		t.Fatalf("openssl: %v\n%s", err, out)
	}
	site, err := os.ReadFile(filepath.Join(repoRoot, "deploy/nginx/asyncd.conf"))
	if err != nil {
		t.Fatal(err)
	}
	s := strings.NewReplacer(
		"/etc/ssl/certs/example.com.pem", filepath.Join(dir, "cert.pem"),
		"/etc/ssl/private/example.com.key", filepath.Join(dir, "key.pem"),
	).Replace(string(site))
	// nginx -t does not bind, but it resolves listen addresses: keep them.
	if err := os.WriteFile(filepath.Join(dir, "site.conf"), []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	main := fmt.Sprintf(`pid %[1]s/nginx.pid;
error_log %[1]s/error.log;
events {}
http {
  access_log off;
  client_body_temp_path %[1]s/body;
  proxy_temp_path %[1]s/proxy;
  include %[1]s/site.conf;
}
`, dir)
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(main), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(nginx, "-t", "-q", "-p", dir+"/", "-c", filepath.Join(dir, "nginx.conf")).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("nginx -t: %v\n%s", err, out)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestHelp checks that --help lists every flag under its Gunicorn
// settings section, in the settings table's order, and that Gunicorn's
// flags for settings asyncd does not implement are explained, not unknown.
func TestHelp(t *testing.T) {
	r := runBin(t, asyncdBinary(t), t.TempDir(), "--help")
	if r.Code != 0 {
		t.Fatalf("--help: exit %d: %s", r.Code, r.Stderr)
	}
	if !strings.HasPrefix(r.Stdout, "usage: asyncd [OPTIONS]") {
		t.Errorf("--help does not start with the usage line:\n%s", r.Stdout)
	}
	// Split the help into sections at "Group:" lines.
	sections := map[string]string{}
	var order []string
	current := "" // before the first group: -h and -v
	for _, line := range strings.Split(r.Stdout, "\n") {
		if regexp.MustCompile(`^[A-Z][A-Za-z ]+:$`).MatchString(line) {
			current = strings.TrimSuffix(line, ":")
			order = append(order, current)
			continue
		}
		sections[current] += line + "\n"
	}
	var want []string
	for _, g := range config.Groups {
		for _, s := range config.Describe() {
			if s.Group == g && s.Flag != "" && (s.Support == config.Supported || s.Support == config.Action) &&
				s.Key != "help" && s.Key != "version" {
				want = append(want, string(g))
				break
			}
		}
	}
	if strings.Join(order, ",") != strings.Join(want, ",") {
		t.Errorf("--help sections %q, want Gunicorn's %q", order, want)
	}
	flagRE := func(flag string) *regexp.Regexp {
		return regexp.MustCompile(`(?m)^  .*` + regexp.QuoteMeta("--"+flag) + `\b`)
	}
	for _, s := range config.Describe() {
		if s.Flag == "" {
			continue
		}
		section := string(s.Group)
		if s.Key == "help" || s.Key == "version" {
			section = ""
		}
		listed := flagRE(s.Flag).MatchString(sections[section])
		switch {
		case s.Support == config.Supported || s.Support == config.Action:
			if !listed {
				t.Errorf("--%s (%s) is not listed under %q", s.Flag, s.Key, section)
			}
		case flagRE(s.Flag).MatchString(r.Stdout):
			t.Errorf("--%s (%s, %s) is listed, but asyncd does not implement it", s.Flag, s.Key, s.Support)
		}
	}
	// Gunicorn's flags for unimplemented settings explain themselves.
	if r := runBin(t, asyncdBinary(t), t.TempDir(), "--check-config", "--preload"); r.Code != 0 || !strings.Contains(r.Stderr, "preload_app has no effect") {
		t.Errorf("--preload: exit %d, stderr %q; want accepted with a warning", r.Code, r.Stderr)
	}
	if r := runBin(t, asyncdBinary(t), t.TempDir(), "--check-config", "--daemon"); r.Code != 1 || !strings.Contains(r.Stderr, "daemon") {
		t.Errorf("--daemon: exit %d, stderr %q; want refused with the reason", r.Code, r.Stderr)
	}
}

// TestVersion checks that --version prints the version stamped at build
// time, the Go version and platform, and each backend's availability.
func TestVersion(t *testing.T) {
	r := runBin(t, asyncdBinary(t), t.TempDir(), "--version")
	if r.Code != 0 {
		t.Fatalf("--version: exit %d: %s", r.Code, r.Stderr)
	}
	gover, err := exec.Command(goBin, "env", "GOVERSION").Output()
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(r.Stdout), "\n")
	want := fmt.Sprintf("asyncd %s (%s, %s/%s)", testVersion, strings.TrimSpace(string(gover)), runtime.GOOS, runtime.GOARCH)
	if lines[0] != want {
		t.Errorf("--version first line %q, want %q", lines[0], want)
	}
	backends := map[string]string{}
	for _, l := range lines[1:] {
		m := regexp.MustCompile(`^backend (\S+): (available|unavailable here: .+)$`).FindStringSubmatch(l)
		if m == nil {
			t.Errorf("--version line %q is not a backend's status", l)
			continue
		}
		backends[m[1]] = m[2]
	}
	// epoll is in every Linux kernel asyncd runs on; io_uring depends on
	// the kernel and its sysctls, and says why when it cannot run.
	if backends["epoll"] != "available" {
		t.Errorf("backend epoll: %q, want available", backends["epoll"])
	}
	if backends["io_uring"] == "" {
		t.Errorf("--version does not report the io_uring backend:\n%s", r.Stdout)
	}
}
