package cli_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/natlab/natlab/internal/testutil"
)

// complete runs natlab's hidden __complete command as a shell's Tab does
// and returns the values offered (without descriptions) and cobra's
// directive bits.
// It runs natlab, or the command line given as prefix when set.
func complete(t *testing.T, prefix []string, args ...string) ([]string, int) {
	t.Helper()
	if prefix == nil {
		prefix = []string{natlab}
	}
	argv := append(append(append([]string{}, prefix...), "__complete"), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = repoRoot(t)
	stdout, err := cmd.Output()
	if err != nil {
		t.Fatalf("%q: %v\n%s", argv, err, stdout)
	}
	lines := strings.Split(strings.TrimSpace(string(stdout)), "\n")
	last := lines[len(lines)-1]
	directive, err := strconv.Atoi(strings.TrimPrefix(last, ":"))
	if !strings.HasPrefix(last, ":") || err != nil {
		t.Fatalf("__complete %q: no directive line:\n%s", args, stdout)
	}
	var values []string
	for _, l := range lines[:len(lines)-1] {
		v, _, _ := strings.Cut(l, "\t")
		values = append(values, v)
	}
	return values, directive
}

// cobra's ShellCompDirective bits.
const (
	compNoSpace       = 2
	compNoFileComp    = 4
	compFilterFileExt = 8
)

func TestCompleteWithoutALab(t *testing.T) {
	for _, tc := range []struct {
		args      []string
		want      []string
		unwant    []string
		directive int
	}{
		{[]string{"up", "sym"}, []string{"symmetric"}, nil, compNoFileComp},
		{[]string{"run", "symmetric", "full"}, []string{"full-cone"}, nil, compNoFileComp}, // run takes several
		{[]string{"run", "--all", ""}, nil, []string{"symmetric"}, compNoFileComp},
		{[]string{"run", "--shard", ""}, nil, nil, compNoFileComp},
		{[]string{"validate", "symmetric", "sym"}, []string{"yaml", "yml"}, []string{"symmetric"}, compFilterFileExt},
		{[]string{"up", "scenarios/"}, []string{"yaml", "yml"}, nil, compFilterFileExt},
		{[]string{"graph", "--format", ""}, []string{"mermaid", "dot", "svg"}, nil, compNoFileComp},
		{[]string{"graph", "symmetric", "-o", ""}, nil, nil, 0},
		{[]string{"matrix", "--types", "full-cone,s"}, []string{"full-cone,symmetric"}, nil, compNoFileComp | compNoSpace},
		{[]string{"matrix", "--parallel", ""}, nil, nil, compNoFileComp},
		{[]string{"tour", "--act", ""}, []string{"I", "II", "III", "IV", "V", "VI", "VII"}, nil, compNoFileComp | 32},
		{[]string{"rules", "scenarios/symmetric.yaml", ""}, []string{"nat-a", "nat-b"}, []string{"alice", "stun"}, compNoFileComp},
		{[]string{"rules", "cgnat", ""}, []string{"carrier", "home", "friend"}, nil, compNoFileComp},
		{[]string{"down", "--all", ""}, nil, nil, compNoFileComp},
		{[]string{"exec", "no-such-lab", ""}, nil, nil, compNoFileComp},
		{[]string{"list", ""}, nil, nil, compNoFileComp},
		{[]string{""}, []string{"up", "down", "exec", "completion", "version"}, []string{"__complete"}, compNoFileComp},
	} {
		values, directive := complete(t, nil, tc.args...)
		for _, w := range tc.want {
			if !slices.Contains(values, w) {
				t.Errorf("__complete %q: %q missing from %q", tc.args, w, values)
			}
		}
		for _, u := range tc.unwant {
			if slices.Contains(values, u) {
				t.Errorf("__complete %q: %q offered: %q", tc.args, u, values)
			}
		}
		if directive != tc.directive {
			t.Errorf("__complete %q: directive %d, want %d", tc.args, directive, tc.directive)
		}
	}
}

// A lab that is up completes by name, and its nodes by what each command
// works on, also for a user who is not root.
func TestCompleteLabAndNodes(t *testing.T) {
	testutil.RequireRoot(t)
	name := testutil.UniqueName(t)
	t.Cleanup(func() { run(t, "down", name) })
	if r := run(t, "up", "symmetric", "--name", name); r.code != 0 {
		t.Fatalf("up: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// nobody runs a copy of natlab outside the test's private directory,
	// in a world-readable one.
	var nobody []string
	if setpriv, err := exec.LookPath("setpriv"); err == nil {
		dir := t.TempDir()
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		bin := filepath.Join(dir, "natlab")
		if err := copyExecutable(natlab, bin, 0o755); err != nil {
			t.Fatal(err)
		}
		nobody = []string{setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", bin}
	}
	for _, who := range []struct {
		name   string
		prefix []string
	}{{"root", nil}, {"nobody", nobody}} {
		t.Run(who.name, func(t *testing.T) {
			if who.name == "nobody" && who.prefix == nil {
				t.Skip("needs setpriv to complete as nobody (util-linux has it)")
			}
			for _, tc := range []struct {
				args   []string
				want   []string
				unwant []string
			}{
				{[]string{"exec", ""}, []string{name}, nil},
				{[]string{"down", name[:3]}, []string{name}, nil},
				{[]string{"status", name, ""}, nil, []string{name}},
				{[]string{"ui", ""}, []string{name, "act5-the-trick"}, nil},
				{[]string{"exec", name, ""}, []string{"alice", "bob", "nat-a", "nat-b", "stun", "internet"}, nil},
				{[]string{"classify", name, ""}, []string{"alice", "bob"}, []string{"nat-a", "stun"}},
				{[]string{"classify", name, "alice", "--server", ""}, []string{"stun"}, []string{"alice"}},
				{[]string{"table", name, ""}, []string{"nat-a", "nat-b"}, []string{"alice", "stun", "internet"}},
				{[]string{"trace", name, "nat-"}, []string{"nat-a", "nat-b"}, []string{"alice"}},
				{[]string{"rules", name, ""}, []string{"nat-a", "nat-b"}, []string{"bob"}},
				{[]string{"graph", name[:4]}, []string{name}, nil},
			} {
				values, _ := complete(t, who.prefix, tc.args...)
				for _, w := range tc.want {
					if !slices.Contains(values, w) {
						t.Errorf("as %s, __complete %q: %q missing from %q", who.name, tc.args, w, values)
					}
				}
				for _, u := range tc.unwant {
					if slices.Contains(values, u) {
						t.Errorf("as %s, __complete %q: %q offered: %q", who.name, tc.args, u, values)
					}
				}
			}
		})
	}
}

// The completion scripts are complete programs in their shells' syntax.
func TestCompletionScripts(t *testing.T) {
	for _, tc := range []struct {
		shell string
		check []string // how the shell parses a script without running it
	}{
		{"bash", []string{"bash", "-n"}},
		{"zsh", []string{"zsh", "-n"}},
		{"fish", []string{"fish", "--no-execute"}},
	} {
		t.Run(tc.shell, func(t *testing.T) {
			r := run(t, "completion", tc.shell)
			if r.code != 0 || !strings.Contains(r.stdout, "__complete") {
				t.Fatalf("completion %s: exit %d, %s\n%.300s", tc.shell, r.code, r.stderr, r.stdout)
			}
			testutil.RequireTool(t, tc.check[0])
			file := filepath.Join(t.TempDir(), "natlab."+tc.shell)
			if err := os.WriteFile(file, []byte(r.stdout), 0o644); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command(tc.check[0], append(tc.check[1:], file)...).CombinedOutput(); err != nil {
				t.Errorf("%s does not parse natlab completion %s: %v\n%s", tc.shell, tc.shell, err, out)
			}
		})
	}
}

// The scripts, loaded into their shells, complete a command line through
// natlab: a Tab after "natlab rules symmetric " offers its NATs.
func TestCompletionInTheShell(t *testing.T) {
	const bashCompletion = "/usr/share/bash-completion/bash_completion"
	shells := []struct {
		shell, script string
		// framework is a file the shell's script needs, "" if none.
		framework string
	}{
		{"bash", `source ` + bashCompletion + `; source <(natlab completion bash)
COMP_WORDS=(natlab rules symmetric ""); COMP_CWORD=3; COMP_LINE="natlab rules symmetric "; COMP_POINT=${#COMP_LINE}
__start_natlab; printf '%s\n' "${COMPREPLY[@]}"`, bashCompletion},
		{"fish", `natlab completion fish | source; complete -C "natlab rules symmetric "`, ""},
	}
	skipped := 0
	for _, tc := range shells {
		t.Run(tc.shell, func(t *testing.T) {
			defer func() {
				if t.Skipped() {
					skipped++
				}
			}()
			testutil.RequireTool(t, tc.shell)
			if tc.framework != "" {
				if _, err := os.Stat(tc.framework); err != nil {
					t.Skipf("needs %s's completion framework, %s (the bash-completion package)", tc.shell, tc.framework)
				}
			}
			cmd := exec.Command(tc.shell, "-c", tc.script)
			cmd.Dir = repoRoot(t)
			cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(natlab)+":"+os.Getenv("PATH"))
			// Only stdout: bash's compopt complains on stderr outside a real
			// Tab, and does nothing else.
			out, err := cmd.Output()
			var values []string
			for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
				v, _, _ := strings.Cut(l, "\t")
				values = append(values, v)
			}
			if err != nil || !slices.Equal(values, []string{"nat-a", "nat-b"}) {
				t.Errorf("%s: Tab after natlab rules symmetric: %v, %q, want nat-a and nat-b", tc.shell, err, values)
			}
		})
	}
	if skipped == len(shells) {
		t.Skip("no shell to complete in: each subtest says what it needs")
	}
}

// What make stamps with -ldflags -X reaches natlab version.
func TestVersionStamped(t *testing.T) {
	r := run(t, "version")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "natlab ") || !strings.Contains(r.stdout, runtime.Version()) {
		t.Errorf("version: exit %d, %q", r.code, r.stdout)
	}
	bin := filepath.Join(t.TempDir(), "natlab")
	pkg := "github.com/natlab/natlab/internal/buildinfo"
	ldflags := "-X " + pkg + ".version=v9.8.7 -X " + pkg + ".commit=0123456789abcdef -X " + pkg + ".date=2026-11-25T10:00:00Z"
	build := exec.Command("go", "build", "-ldflags", ldflags, "-o", bin, "github.com/natlab/natlab/cmd/natlab")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "version").Output()
	want := "natlab v9.8.7 (commit 0123456789ab, 2026-11-25T10:00:00Z) " + runtime.Version()
	if err != nil || !strings.HasPrefix(string(out), want) {
		t.Errorf("stamped version: %v, %q, want %q...", err, out, want)
	}
	if out, _ := exec.Command(bin, "--version").Output(); !strings.Contains(string(out), "v9.8.7") {
		t.Errorf("--version: %q", out)
	}
}
