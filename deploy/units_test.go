package deploy_test

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The systemd units live in deploy/systemd and nowhere else: the docs
// point to them, so that the one unit operators copy is the one
// TestSystemdUnits matches to its config and systemd-analyze verifies.

// unitSection matches a unit file's section header line.
var unitSection = regexp.MustCompile(`(?m)^\[(Unit|Service|Socket|Install)\]\s*$`)

// TestUnitsOnlyInDeploy: no Markdown document (README.md, docs/,
// deploy/, examples/) carries a systemd unit of its own; a code block
// that is one must be a copy of a deploy/systemd file.
func TestUnitsOnlyInDeploy(t *testing.T) {
	units := map[string]string{}
	for _, name := range []string{"asyncd.service", "asyncd.socket"} {
		b, err := os.ReadFile(filepath.Join(repoRoot, "deploy/systemd", name))
		if err != nil {
			t.Fatal(err)
		}
		units[strings.TrimSpace(string(b))] = name
	}
	check := func(path string) {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		fs, err := fences(string(b))
		if err != nil {
			t.Fatalf("%s: %v", relPath(path), err)
		}
		for _, f := range fs {
			if !unitSection.MatchString(f.text) {
				continue
			}
			if _, ok := units[strings.TrimSpace(f.text)]; !ok {
				t.Errorf("%s:%d: a systemd unit that is not a copy of deploy/systemd/asyncd.service or "+
					"asyncd.socket: point to those instead (go test ./deploy/ verifies them)", relPath(path), f.line)
			}
		}
	}
	check(filepath.Join(repoRoot, "README.md"))
	for _, top := range []string{"docs", "deploy", "examples"} {
		err := filepath.WalkDir(filepath.Join(repoRoot, top), func(path string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.EqualFold(filepath.Ext(path), ".md") {
				check(path)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// withoutSocketUnit is asyncd.service as its comments say to run it
// without asyncd.socket: no Requires=asyncd.socket, asyncd.socket out of
// After=, and the commented settings (#Key=value) uncommented.
func withoutSocketUnit(service string) string {
	var out []string
	for _, line := range strings.Split(service, "\n") {
		switch {
		case strings.HasPrefix(line, "Requires=asyncd.socket"):
			continue
		case strings.HasPrefix(line, "After="):
			line = strings.TrimRight(strings.ReplaceAll(line, " asyncd.socket", ""), " ")
		case regexp.MustCompile(`^#[A-Z][A-Za-z]+=`).MatchString(line):
			line = line[1:]
		}
		out = append(out, line)
	}
	return strings.Join(out, "\n")
}

// TestSystemdWithoutSocketUnit checks asyncd.service as its comments say
// to run it without asyncd.socket: it creates the unix socket's
// directory, and makes asyncd a member of the group the config gives the
// socket to (asyncd runs as User=, which may give its files only to its
// own groups).
func TestSystemdWithoutSocketUnit(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot, "deploy/systemd/asyncd.service"))
	if err != nil {
		t.Fatal(err)
	}
	variant := withoutSocketUnit(string(b))
	if strings.Contains(variant, "asyncd.socket\n") && regexp.MustCompile(`(?m)^(Requires|After)=.*asyncd\.socket`).MatchString(variant) {
		t.Fatalf("the variant still depends on asyncd.socket:\n%s", variant)
	}
	cfg := loadEffective(t, "deploy/systemd/asyncd.yaml")
	settings := map[string]string{}
	for _, line := range strings.Split(variant, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(k, "#") {
			settings[k] = v
		}
	}
	for _, bnd := range cfg.Bind {
		path, ok := strings.CutPrefix(bnd, "unix:")
		if !ok {
			continue
		}
		if dir := filepath.Dir(path); dir != "/run/"+settings["RuntimeDirectory"] {
			t.Errorf("unix socket %s: its directory %s is not RuntimeDirectory=%s", path, dir, settings["RuntimeDirectory"])
		}
		if settings["RuntimeDirectoryPreserve"] != "yes" {
			t.Errorf("RuntimeDirectoryPreserve=%q: a restart would remove the socket's directory under a running nginx", settings["RuntimeDirectoryPreserve"])
		}
		if g := cfg.SocketGroup; g != "" && g != settings["Group"] && !strings.Contains(" "+settings["SupplementaryGroups"]+" ", " "+g+" ") {
			t.Errorf("socket_group %s: asyncd (User=%s) is not a member (Group=%s, SupplementaryGroups=%s)",
				g, settings["User"], settings["Group"], settings["SupplementaryGroups"])
		}
	}
	verifyUnits(t, map[string]string{"asyncd.service": variant})
}

// verifyUnits runs systemd-analyze verify on unit files given by name and
// content, when it is installed: any complaint about them fails. verify
// checks that ExecStart's binary exists: the test's own asyncd stands in
// for /usr/local/bin/asyncd.
func verifyUnits(t *testing.T, units map[string]string) {
	t.Helper()
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed (Debian: apt-get install systemd): the units' syntax is not verified here")
	}
	dir := t.TempDir()
	var args []string
	for name, text := range units {
		text = strings.ReplaceAll(text, "/usr/local/bin/asyncd", asyncdBinary(t))
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, "./"+name)
	}
	cmd := exec.Command(analyze, append([]string{"verify"}, args...)...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	// Complaints about the host's own units are not ours.
	var ours []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if strings.Contains(l, "asyncd.s") {
			ours = append(ours, l)
		}
	}
	if err != nil || len(ours) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, strings.Join(ours, "\n"))
	}
}
