package ghaction

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"

	"github.com/natlab/natlab/internal/testutil"
)

// natlab is a natlab built for the tests, as a release would hold it.
var natlab string

func TestMain(m *testing.M) {
	var remove func()
	natlab, remove = testutil.BuildNatlab("action-test")
	code := m.Run()
	remove()
	os.Exit(code)
}

// root is the repository's root, where action.yml is.
func root(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// step is one run of scripts/action.sh as a step of the action runs it:
// with GitHub's files for outputs and the PATH in a temporary directory.
type step struct {
	code           int
	stdout, stderr string
	outputs        map[string]string
	path           string
	temp           string
}

func runStep(t *testing.T, arg string, env ...string) step {
	t.Helper()
	dir := t.TempDir()
	out, path := filepath.Join(dir, "output"), filepath.Join(dir, "path")
	temp := filepath.Join(dir, "runner-temp")
	if err := os.Mkdir(temp, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(root(t), "scripts", "action.sh"), arg)
	cmd.Dir = root(t)
	cmd.Env = append(os.Environ(), "GITHUB_OUTPUT="+out, "GITHUB_PATH="+path, "RUNNER_TEMP="+temp,
		"GITHUB_ACTION_PATH="+root(t), "RUNNER_ARCH=X64")
	cmd.Env = append(cmd.Env, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	s := step{stdout: stdout.String(), stderr: stderr.String(), outputs: map[string]string{}, temp: temp}
	if ee, ok := err.(*exec.ExitError); ok {
		s.code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(out); err == nil {
		for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
			if k, v, ok := strings.Cut(line, "="); ok {
				s.outputs[k] = v
			}
		}
	}
	if data, err := os.ReadFile(path); err == nil {
		s.path = strings.TrimSpace(string(data))
	}
	return s
}

// Which natlab the action installs: the release it is pinned to, or the
// source when it is pinned to a major tag, a branch or a commit; and
// whether it needs Go set up for that.
func TestPlan(t *testing.T) {
	for _, tc := range []struct {
		ref, input  string
		noGo        bool
		wantVersion string
		wantGo      string
		wantError   string
	}{
		{ref: "v1.2.3", wantVersion: "v1.2.3", wantGo: "false"},
		{ref: "v1.2.3-rc.1", wantVersion: "v1.2.3-rc.1", wantGo: "false"},
		{ref: "v1", wantVersion: "source", wantGo: "false"},
		{ref: "v1", noGo: true, wantVersion: "source", wantGo: "true"},
		{ref: "v1.2.3", noGo: true, wantVersion: "v1.2.3", wantGo: "false"},
		{ref: "main", wantVersion: "source", wantGo: "false"},
		{ref: "", wantVersion: "source", wantGo: "false"},
		{ref: "v1", input: "v2.0.0", wantVersion: "v2.0.0", wantGo: "false"},
		{ref: "v1.2.3", input: "source", noGo: true, wantVersion: "source", wantGo: "true"},
		{ref: "v1", input: "latest", wantError: `version "latest" is neither a release`},
	} {
		t.Run(fmt.Sprintf("%s,%s,nogo=%v", tc.ref, tc.input, tc.noGo), func(t *testing.T) {
			env := []string{"GITHUB_ACTION_REF=" + tc.ref, "INPUT_VERSION=" + tc.input}
			if tc.noGo {
				env = append(env, "PATH=/usr/sbin:/usr/bin:/sbin:/bin")
			}
			s := runStep(t, "plan", env...)
			if tc.wantError != "" {
				if s.code != 1 || !strings.Contains(s.stderr, tc.wantError) {
					t.Fatalf("exit %d, %q; want exit 1 and %q", s.code, s.stderr, tc.wantError)
				}
				return
			}
			if s.code != 0 {
				t.Fatalf("exit %d: %s", s.code, s.stderr)
			}
			if s.outputs["version"] != tc.wantVersion || s.outputs["need-go"] != tc.wantGo {
				t.Errorf("outputs %v, want version %s and need-go %s", s.outputs, tc.wantVersion, tc.wantGo)
			}
		})
	}
}

// releaseServer serves release v9.9.9 as GitHub's release downloads do:
// the binary and SHA256SUMS, whose line for it is sum.
func releaseServer(t *testing.T, sum string) *httptest.Server {
	t.Helper()
	bin, err := os.ReadFile(natlab)
	if err != nil {
		t.Fatal(err)
	}
	if sum == "" {
		sum = fmt.Sprintf("%x", sha256.Sum256(bin))
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v9.9.9/natlab-v9.9.9-linux-amd64", func(w http.ResponseWriter, r *http.Request) { w.Write(bin) })
	mux.HandleFunc("GET /v9.9.9/SHA256SUMS", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s  natlab-v9.9.9-linux-amd64\n%s  natlab-v9.9.9-linux-arm64\n", sum, strings.Repeat("0", 64))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// A release is fetched, checked against its SHA256SUMS and put on the
// job's PATH; one whose sum does not match, or that is not there, is
// refused and nothing is installed.
func TestInstallRelease(t *testing.T) {
	testutil.RequireTool(t, "curl")
	for _, tc := range []struct {
		name, version, sum, wantError string
	}{
		{name: "ok", version: "v9.9.9"},
		{name: "bad sum", version: "v9.9.9", sum: strings.Repeat("ab", 32), wantError: "does not match release v9.9.9's SHA256SUMS"},
		{name: "no such release", version: "v9.9.8", wantError: "could not fetch natlab-v9.9.8-linux-amd64 of release v9.9.8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := releaseServer(t, tc.sum)
			s := runStep(t, "install", "INPUT_VERSION="+tc.version, "INPUT_PACKAGES=", "NATLAB_RELEASES="+srv.URL)
			installed := filepath.Join(s.temp, "natlab-bin", "natlab")
			if tc.wantError != "" {
				if s.code != 1 || !strings.Contains(s.stderr, tc.wantError) {
					t.Errorf("exit %d, %q; want exit 1 and %q", s.code, s.stderr, tc.wantError)
				}
				if _, err := os.Stat(installed); err == nil {
					t.Errorf("%s was installed all the same", installed)
				}
				return
			}
			if s.code != 0 {
				t.Fatalf("exit %d: %s", s.code, s.stderr)
			}
			if s.outputs["natlab"] != installed || s.path != filepath.Dir(installed) {
				t.Errorf("outputs %v, PATH %q; want natlab=%s on the PATH", s.outputs, s.path, installed)
			}
			if out, err := exec.Command(installed, "version").Output(); err != nil || !strings.HasPrefix(string(out), "natlab ") {
				t.Errorf("the installed natlab: %v, %q", err, out)
			}
		})
	}
}

// An action pinned to a major tag builds natlab from its own source,
// stamped with the tag.
func TestInstallFromSource(t *testing.T) {
	s := runStep(t, "install", "INPUT_VERSION=source", "GITHUB_ACTION_REF=v7", "INPUT_PACKAGES=iputils-ping")
	if s.code != 0 {
		t.Fatalf("exit %d: %s%s", s.code, s.stdout, s.stderr)
	}
	if s.outputs["version"] != "v7" {
		t.Errorf("version %q, want v7 (the ref the action is pinned to); outputs %v", s.outputs["version"], s.outputs)
	}
	if _, err := os.Stat(s.outputs["natlab"]); err != nil {
		t.Error(err)
	}
}

// The run step runs the scenarios, globs expanded, and writes the reports
// where the inputs say; a glob that matches nothing is an error, not a
// silent pass.
func TestRun(t *testing.T) {
	testutil.RequireRoot(t)
	dir := t.TempDir()
	junit, report := filepath.Join(dir, "out.xml"), filepath.Join(dir, "out.json")
	s := runStep(t, "run", "NATLAB="+natlab, "INPUT_SCENARIOS=scenarios/full-c*.yaml\nact1-address-problem",
		"INPUT_JUNIT="+junit, "INPUT_JSON="+report, "INPUT_ARGS=--shard 1/1")
	if s.code != 0 {
		t.Fatalf("exit %d: %s%s", s.code, s.stdout, s.stderr)
	}
	xml, err := os.ReadFile(junit)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"full-cone", "act1-address-problem", "<testcase"} {
		if !strings.Contains(string(xml), want) {
			t.Errorf("the JUnit report has no %q:\n%s", want, xml)
		}
	}
	if _, err := os.Stat(report); err != nil {
		t.Error(err)
	}
	s = runStep(t, "run", "NATLAB="+natlab, "INPUT_SCENARIOS=nothing/*.yaml")
	if s.code != 1 || !strings.Contains(s.stderr, "no file matches nothing/*.yaml") {
		t.Errorf("a glob of nothing: exit %d, %q", s.code, s.stderr)
	}
}

// action.yml's steps pass each input the script reads, and every input
// is described.
func TestActionInputs(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(root(t), "action.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var action struct {
		Inputs map[string]struct {
			Description string `yaml:"description"`
		} `yaml:"inputs"`
		Runs struct {
			Steps []struct {
				Env map[string]string `yaml:"env"`
			} `yaml:"steps"`
		} `yaml:"runs"`
	}
	if err := yaml.Unmarshal(data, &action); err != nil {
		t.Fatal(err)
	}
	passed := map[string]bool{}
	for _, st := range action.Runs.Steps {
		for k, v := range st.Env {
			if strings.HasPrefix(k, "INPUT_") {
				passed[strings.ToLower(strings.TrimPrefix(k, "INPUT_"))] = true
			}
			if strings.Contains(v, "inputs.") {
				name := strings.TrimSuffix(strings.TrimSpace(strings.Split(v, "inputs.")[1]), "}}")
				if _, ok := action.Inputs[strings.TrimSpace(name)]; !ok {
					t.Errorf("step env %s uses input %q, which action.yml does not declare", k, name)
				}
			}
		}
	}
	for name, in := range action.Inputs {
		if in.Description == "" {
			t.Errorf("input %s has no description", name)
		}
		if !passed[name] {
			t.Errorf("input %s is passed to no step", name)
		}
	}
}
